/**
 * Owns the create/edit grant form (presets, inline validation messages, server errors) and the
 * one-time display of a new grant's token and set-up lines with a copy button.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { CreatedGrant, GrantView } from "../bindings";
import { InlineError } from "../components/bits";
import { keys } from "../queries";
import { EMPTY, PRESETS, fromGrant, toPatch, toSpec, validate, type Errors, type Field, type FormValues } from "./grantForm";

interface Props {
  /** The grant being edited; absent: a new grant. */
  grant?: GrantView;
  onClose: () => void;
  onCreated: (c: CreatedGrant) => void;
}

export function GrantForm({ grant, onClose, onCreated }: Props) {
  const mode = grant ? "edit" : "create";
  const [initial] = useState<FormValues>(() => (grant ? fromGrant(grant) : EMPTY));
  const [v, setV] = useState<FormValues>(initial);
  const [errors, setErrors] = useState<Errors>({});
  const [submitted, setSubmitted] = useState(false);
  const qc = useQueryClient();

  const save = useMutation({
    mutationFn: async (values: FormValues) => {
      if (grant) return { updated: await api.grantUpdate(grant.id, toPatch(values, initial)) };
      return { created: await api.grantCreate(toSpec(values)) };
    },
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: keys.grants });
      void qc.invalidateQueries({ queryKey: keys.help });
      if ("created" in r && r.created) onCreated(r.created);
      else onClose();
    },
  });

  const set = (f: Field, value: string | boolean) => {
    const next = { ...v, [f]: value };
    setV(next);
    if (submitted) setErrors(validate(next, mode));
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    const errs = validate(v, mode);
    setErrors(errs);
    if (Object.keys(errs).length === 0) save.mutate(v);
  };

  const text = (f: Field, label: string, hint: string, placeholder = "", disabled = false) => (
    <label className={`field ${errors[f] ? "invalid" : ""}`}>
      <span className="field-label">{label}</span>
      <input
        value={v[f] as string}
        placeholder={placeholder}
        disabled={disabled}
        onChange={(e) => set(f, e.target.value)}
        aria-invalid={Boolean(errors[f])}
        aria-describedby={`hint-${f}`}
        data-testid={`form-${f}`}
      />
      <span id={`hint-${f}`} className={errors[f] ? "field-error" : "field-hint"} data-testid={errors[f] ? `form-error-${f}` : undefined}>
        {errors[f] ?? hint}
      </span>
    </label>
  );

  return (
    <form className="panel grant-form" onSubmit={submit} noValidate data-testid="grant-form" aria-label={grant ? "Edit grant" : "New grant"}>
      <header className="panel-head">
        <h2>{grant ? `Edit “${grant.label}”` : "New grant"}</h2>
        <button type="button" className="ghost" onClick={onClose} data-testid="grant-form-close">
          Cancel
        </button>
      </header>
      {!grant && (
        <div className="presets" role="group" aria-label="Presets">
          {PRESETS.map((p) => (
            <button
              type="button"
              key={p.id}
              className="chip"
              onClick={() => {
                const next = { ...v, ...p.values };
                setV(next);
                if (submitted) setErrors(validate(next, mode));
              }}
              data-testid={`preset-${p.id}`}
            >
              <strong>{p.name}</strong> <span className="muted">{p.summary}</span>
            </button>
          ))}
        </div>
      )}
      <div className="form-grid">
        {text("label", "Name", "What the task is, so you recognise it in prompts", "research")}
        {grant
          ? text("budget", "Budget (USD)", "Change it with Top up", "", true)
          : text("budget", "Budget (USD)", "The most this task may ever spend", "5")}
        {grant
          ? text("expires", "Extend by", "Optional: make it last longer, e.g. 1h", "1h")
          : text("expires", "Lasts for", "After this every request is refused: 30m, 2h, 7d", "2h")}
        {text("hosts", "Hosts it may pay", "Comma-separated: api.example.com, *.example.org", "api.example.com")}
        {text("autoBelow", "Pay without asking below (USD)", "Cheaper payments go through at once", "0.05")}
        {text("askBelow", "Refuse from (USD)", "Payments between the two limits wait for you; empty: always ask", "1")}
        {text("perRequestMax", "Per-request cap (USD)", "Optional: no single payment above this", "0.50")}
        {text("approvalTimeout", "Waits for you for", "Unanswered prompts are denied after this", "60s")}
        {!grant && text("payees", "Only these payees", "Optional: 0x addresses", "0x…")}
        {!grant && text("networks", "Only these networks", "Optional: base, base-sepolia", "base")}
        <label className="check">
          <input
            type="checkbox"
            checked={v.onlyListedHosts}
            onChange={(e) => set("onlyListedHosts", e.target.checked)}
            data-testid="form-onlyListedHosts"
          />
          Refuse every host not listed (standard proxy mode)
        </label>
        {!grant && (
          <label className="check">
            <input type="checkbox" checked={v.onlyRun} onChange={(e) => set("onlyRun", e.target.checked)} data-testid="form-onlyRun" />
            Only inside <code>purser run</code> (the agent runs contained)
          </label>
        )}
        {!grant && text("onlyExe", "Only this program", "Optional: the absolute path of the one executable whose requests may use the token", "/usr/bin/python3")}
      </div>
      <InlineError error={save.error} testid="grant-form-error" />
      <footer className="panel-foot">
        <button type="submit" className="primary" disabled={save.isPending} data-testid="grant-save">
          {save.isPending ? "Saving…" : grant ? "Save changes" : "Create grant"}
        </button>
      </footer>
    </form>
  );
}

/** The new grant's token and set-up lines: shown once, with a copy button. */
export function CreatedPanel({ created, onClose }: { created: CreatedGrant; onClose: () => void }) {
  const [copied, setCopied] = useState<"" | "ok" | "failed">("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.setupLines);
      setCopied("ok");
    } catch {
      setCopied("failed");
    }
  };
  return (
    <section className="panel created" data-testid="grant-created" aria-label="Grant created">
      <header className="panel-head">
        <h2>“{created.grant.label}” is ready</h2>
      </header>
      <p>
        Give these lines to your agent. <strong>The token is shown only now</strong> — Purser keeps just its hash.
      </p>
      <pre className="setup" data-testid="setup-lines">
        {created.setupLines}
      </pre>
      <footer className="panel-foot">
        <span className="muted" role="status" data-testid="copy-status">
          {copied === "ok" ? "Copied to the clipboard" : copied === "failed" ? "Copy failed — select the lines and copy them" : ""}
        </span>
        <button type="button" onClick={() => void copy()} data-testid="copy-setup">
          Copy set-up lines
        </button>
        <button type="button" className="primary" onClick={onClose} data-testid="created-done">
          Done
        </button>
      </footer>
    </section>
  );
}
