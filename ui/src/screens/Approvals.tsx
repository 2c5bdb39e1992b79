/**
 * Owns the Approvals screen: the queue of held payments with the facts the native prompt shows
 * (real method/host/path, payee, amount in USD and in the asset, budget after, the agent's and
 * the server's words marked as such, countdown), Approve / Deny / an auto-approve rule, all
 * keyboard first: ↑/↓ (or j/k) move, A approves, D denies, R focuses the rule.
 */
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { PendingApproval } from "../bindings";
import { Empty, InlineError, Skeleton, useNow } from "../components/bits";
import { useToast } from "../components/toasts";
import { USD_RE, askedBy, askedByFirst, countdown, secondsUntil, usdFromMicros, usdText } from "../format";
import { keys, useApprovals } from "../queries";
import { Rules } from "./Rules";

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) return false;
  return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
}

/** `focusId`: a notification's Open action asked for this request (`focusNonce` counts Opens). */
export function Approvals({ focusId, focusNonce = 0 }: { focusId: string | null; focusNonce?: number }) {
  const approvals = useApprovals();
  const qc = useQueryClient();
  const toast = useToast();
  const now = useNow();
  const list = approvals.data ?? [];
  const [selected, setSelected] = useState<string | null>(focusId);
  const listRef = useRef<HTMLUListElement>(null);
  const ruleRef = useRef<HTMLInputElement>(null);

  // Each new Open (a new id or the same one again) selects it: adjusted while rendering, as
  // React advises for state that follows a prop (no effect, no extra commit).
  const [focusSeen, setFocusSeen] = useState({ focusId, focusNonce });
  if (focusSeen.focusId !== focusId || focusSeen.focusNonce !== focusNonce) {
    setFocusSeen({ focusId, focusNonce });
    if (focusId) setSelected(focusId);
  }
  // Keep a valid selection as the queue changes.
  const current = list.find((a) => a.id === selected) ?? list[0] ?? null;
  const index = current ? list.indexOf(current) : -1;

  const done = () => {
    void qc.invalidateQueries({ queryKey: keys.approvals });
    void qc.invalidateQueries({ queryKey: keys.grants });
    void qc.invalidateQueries({ queryKey: keys.rules });
  };
  const decide = useMutation({
    mutationFn: ({ id, approve }: { id: string; approve: boolean }) => (approve ? api.approvalApprove(id) : api.approvalDeny(id)),
    onSuccess: (_d, { approve }) => {
      // Move to the next one in the queue.
      const next = list[index + 1] ?? list[index - 1] ?? null;
      setSelected(next ? next.id : null);
      toast.info(approve ? "Approved" : "Denied");
      done();
    },
    onError: (e, { approve }) => toast.error(e, approve ? "Could not approve" : "Could not deny"),
  });

  const act = (approve: boolean) => {
    if (current && !decide.isPending) decide.mutate({ id: current.id, approve });
  };
  const move = (delta: number) => {
    if (list.length === 0) return;
    const i = Math.min(list.length - 1, Math.max(0, index + delta));
    setSelected(list[i]!.id);
    listRef.current?.querySelectorAll<HTMLElement>("[data-approval-item]")[i]?.scrollIntoView({ block: "nearest" });
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
      switch (e.key) {
        case "ArrowDown":
        case "j":
          e.preventDefault();
          move(1);
          break;
        case "ArrowUp":
        case "k":
          e.preventDefault();
          move(-1);
          break;
        case "a":
        case "A":
          e.preventDefault();
          act(true);
          break;
        case "d":
        case "D":
          e.preventDefault();
          act(false);
          break;
        case "r":
        case "R":
          e.preventDefault();
          ruleRef.current?.focus();
          break;
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  return (
    <section className="screen" aria-labelledby="approvals-title" data-testid="screen-approvals">
      <header className="screen-head">
        <div>
          <h1 id="approvals-title">Approvals</h1>
          <p className="muted">
            <kbd>↑</kbd>/<kbd>↓</kbd> choose · <kbd>A</kbd> approve · <kbd>D</kbd> deny · <kbd>R</kbd> rule
          </p>
        </div>
        <span className="count" data-testid="approvals-count">
          {list.length} waiting
        </span>
      </header>
      <InlineError error={approvals.error} />
      {approvals.isPending ? (
        <Skeleton rows={2} height={72} />
      ) : list.length === 0 ? (
        <Empty title="Nothing is waiting for you" testid="approvals-empty">
          <p>
            When an agent asks to pay more than its grant pays without asking, the request waits here (and in a
            notification) until you approve or deny it.
          </p>
        </Empty>
      ) : (
        <div className="approvals">
          <ul className="queue" ref={listRef} role="listbox" aria-label="Waiting payments" data-testid="approval-queue">
            {list.map((a) => (
              <li
                key={a.id}
                role="option"
                aria-selected={a.id === current?.id}
                className={a.id === current?.id ? "selected" : ""}
                onClick={() => setSelected(a.id)}
                data-approval-item
                data-testid={`approval-item-${a.id}`}
              >
                <span className="money">{usdText(a.amount_usd)}</span>
                <span className="host">{a.host}</span>
                <span className="muted">{a.grant_label}</span>
                <span className="countdown muted">{a.paused ? "paused" : countdown(secondsUntil(a.expires_at, now))}</span>
              </li>
            ))}
          </ul>
          {current && (
            <ApprovalCard
              key={current.id}
              a={current}
              now={now}
              busy={decide.isPending}
              ruleRef={ruleRef}
              onApprove={() => act(true)}
              onDeny={() => act(false)}
              onRuled={done}
            />
          )}
        </div>
      )}
      <Rules now={now} />
    </section>
  );
}

interface CardProps {
  a: PendingApproval;
  now: number;
  busy: boolean;
  ruleRef: React.RefObject<HTMLInputElement | null>;
  onApprove: () => void;
  onDeny: () => void;
  onRuled: () => void;
}

function pathOf(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

/**
 * While a request is on screen (and the window visible) its countdown stands still, as the
 * native prompt promises; it runs on when another is selected, the screen closes or the window
 * hides. Best effort: a request already decided, or a shell without these commands, just keeps
 * its countdown (shown as is), so failures here are not errors to report.
 */
function useViewing(id: string): void {
  const qc = useQueryClient();
  useEffect(() => {
    let viewing = false;
    const set = (on: boolean) => {
      if (on === viewing) return;
      viewing = on;
      (on ? api.approvalView(id) : api.approvalUnview(id)).then(
        () => void qc.invalidateQueries({ queryKey: keys.approvals }),
        () => {},
      );
    };
    const onVisibility = () => set(document.visibilityState === "visible");
    onVisibility();
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      document.removeEventListener("visibilitychange", onVisibility);
      set(false);
    };
  }, [id, qc]);
}

function ApprovalCard({ a, now, busy, ruleRef, onApprove, onDeny, onRuled }: CardProps) {
  useViewing(a.id);
  const left = secondsUntil(a.expires_at, now);
  const toast = useToast();
  const [maxUsd, setMaxUsd] = useState(a.amount_usd);
  const [minutes, setMinutes] = useState("10");
  const [err, setErr] = useState("");
  const rule = useMutation({
    mutationFn: () => api.approvalRule(a.id, maxUsd.trim(), Number(minutes)),
    onSuccess: () => {
      toast.info(`Approved, and ${a.host} is auto-approved up to ${usdText(maxUsd.trim())} for ${minutes} min`);
      onRuled();
    },
  });
  const submitRule = (e: FormEvent) => {
    e.preventDefault();
    if (!USD_RE.test(maxUsd.trim())) return setErr("Enter a price like 0.10");
    if (!/^[1-9][0-9]*$/.test(minutes) || Number(minutes) > 10_080) return setErr("Minutes: a whole number from 1 to 10080 (7 days)");
    setErr("");
    rule.mutate();
  };
  return (
    <article className="panel approval" data-testid="approval-detail" data-approval-id={a.id} aria-label="Payment waiting for you">
      <div className="approval-amount">
        <span className="big money" data-testid="approval-usd">
          {usdText(a.amount_usd)}
        </span>
        <span className="muted" data-testid="approval-asset">
          {a.amount_asset} on {a.network_name}
        </span>
        <span className={`countdown ${left < 15 && !a.paused ? "urgent" : ""}`} data-testid="approval-countdown">
          {a.paused ? "countdown paused while you look" : `denied by default in ${countdown(left)}`}
        </span>
      </div>
      <dl className="facts">
        <dt>Asked by</dt>
        <dd className="who" data-testid="approval-who" title={askedBy(a.who)}>
          {askedByFirst(a.who)}
        </dd>
        <dt>Request</dt>
        <dd>
          <code data-testid="approval-request">
            {a.method} {a.host}
            {pathOf(a.url)}
          </code>
        </dd>
        <dt>Pays</dt>
        <dd data-testid="approval-payee">
          {a.payee_label && <strong>{a.payee_label} </strong>}
          <code className="addr">{a.pay_to}</code>
        </dd>
        <dt>Grant</dt>
        <dd data-testid="approval-budget">
          {a.grant_label}: {usdFromMicros(a.remaining_before_atomic)} left → <strong>{usdFromMicros(a.remaining_after_atomic)}</strong> after
        </dd>
        {a.agent && (
          <>
            <dt>Agent</dt>
            <dd>
              <span className="unverified">{a.agent}</span> <span className="tag">unverified</span>
            </dd>
          </>
        )}
        {a.intent && (
          <>
            <dt>Agent says</dt>
            <dd>
              <q className="agent-words" data-testid="approval-intent">
                {a.intent}
              </q>{" "}
              <span className="tag">the agent's words — not checked</span>
            </dd>
          </>
        )}
        {a.description && (
          <>
            <dt>Server says</dt>
            <dd>
              <q className="agent-words" data-testid="approval-description">
                {a.description}
              </q>{" "}
              <span className="tag">the server's words — not checked</span>
            </dd>
          </>
        )}
      </dl>
      <div className="decide">
        <button className="primary" onClick={onApprove} disabled={busy} data-testid="approval-approve" aria-keyshortcuts="A">
          Approve <kbd>A</kbd>
        </button>
        <button className="danger-outline" onClick={onDeny} disabled={busy} data-testid="approval-deny" aria-keyshortcuts="D">
          Deny <kbd>D</kbd>
        </button>
      </div>
      <form className="rule" onSubmit={submitRule} noValidate data-testid="approval-rule-form">
        <span>
          Approve and auto-approve <code>{a.host}</code> up to $
        </span>
        <input
          ref={ruleRef}
          className="narrow"
          value={maxUsd}
          onChange={(e) => setMaxUsd(e.target.value)}
          aria-label="Maximum price in USD"
          data-testid="rule-max-usd"
        />
        <span>for</span>
        <input className="narrow" value={minutes} onChange={(e) => setMinutes(e.target.value)} aria-label="Minutes" data-testid="rule-minutes" />
        <span>minutes</span>
        <button type="submit" disabled={rule.isPending || busy} data-testid="rule-save">
          Approve with rule
        </button>
        {err && (
          <span className="field-error" data-testid="rule-error">
            {err}
          </span>
        )}
        <InlineError error={rule.error} />
      </form>
    </article>
  );
}
