/**
 * Owns the Grants screen: every grant with its state, budget bar (spent / reserved /
 * remaining), expiry countdown, hosts and value at risk; one-click Revoke with a short Undo
 * (only while nothing was spent since), Revoke all, Top up, and the create/edit form.
 */
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { CreatedGrant, GrantView } from "../bindings";
import { Empty, InlineError, Skeleton, useNow } from "../components/bits";
import { useToast } from "../components/toasts";
import { USD_RE, atomic, countdown, secondsUntil, share, usdFromMicros } from "../format";
import { keys, useGrants } from "../queries";
import { CreatedPanel, GrantForm } from "./GrantForm";

/** How long Undo stays after a revoke (the core allows 10 s; leave room for the round trip). */
export const UNDO_MS = 8000;

/** What a grant could still spend: its remaining budget while active, plus payments in flight. */
export function valueAtRisk(g: GrantView): bigint {
  const reserved = atomic(g.reserved_atomic) ?? 0n;
  return (g.state === "active" ? (atomic(g.remaining_atomic) ?? 0n) : 0n) + reserved;
}

interface UndoEntry {
  spent: string;
  reserved: string;
}

type Panel = { kind: "none" } | { kind: "new" } | { kind: "edit"; grant: GrantView } | { kind: "created"; created: CreatedGrant };

export function Grants() {
  const grants = useGrants();
  const qc = useQueryClient();
  const toast = useToast();
  const now = useNow();
  const [panel, setPanel] = useState<Panel>({ kind: "none" });
  const [undo, setUndo] = useState<Record<string, UndoEntry>>({});
  const [confirmAll, setConfirmAll] = useState(false);
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  useEffect(() => () => timers.current.forEach(clearTimeout), []);

  const refresh = () => void qc.invalidateQueries({ queryKey: keys.grants });
  const dropUndo = (id: string) => {
    clearTimeout(timers.current.get(id));
    timers.current.delete(id);
    setUndo((u) => {
      const { [id]: _gone, ...rest } = u;
      return rest;
    });
  };

  const revoke = useMutation({
    mutationFn: (g: GrantView) => api.grantRevoke(g.id),
    onSuccess: (g) => {
      setUndo((u) => ({ ...u, [g.id]: { spent: g.spent_atomic, reserved: g.reserved_atomic } }));
      clearTimeout(timers.current.get(g.id));
      timers.current.set(g.id, setTimeout(() => dropUndo(g.id), UNDO_MS));
      refresh();
    },
    onError: (e) => toast.error(e, "Could not revoke"),
  });
  const unrevoke = useMutation({
    mutationFn: (id: string) => api.grantUnrevoke(id),
    onSuccess: (g) => {
      dropUndo(g.id);
      toast.info(`“${g.label}” is active again`);
      refresh();
    },
    onError: (e, id) => {
      dropUndo(id);
      toast.error(e, "Could not undo");
    },
  });
  const revokeAll = useMutation({
    mutationFn: api.grantsRevokeAll,
    onSuccess: (gs) => {
      setConfirmAll(false);
      toast.info(`Revoked ${gs.length} grant${gs.length === 1 ? "" : "s"}`);
      refresh();
    },
    onError: (e) => toast.error(e, "Could not revoke all"),
  });

  const list = grants.data ?? [];
  const active = list.filter((g) => g.state === "active");
  const atRisk = list.reduce((sum, g) => sum + valueAtRisk(g), 0n);

  return (
    <section className="screen" aria-labelledby="grants-title" data-testid="screen-grants">
      <header className="screen-head">
        <div>
          <h1 id="grants-title">Grants</h1>
          <p className="muted">
            Value at risk{" "}
            <strong className="money" data-testid="value-at-risk">
              {usdFromMicros(atRisk)}
            </strong>{" "}
            — the most your active grants could still spend.
          </p>
        </div>
        <div className="actions">
          {confirmAll ? (
            <span className="confirm" role="group" aria-label="Confirm revoke all">
              Revoke {active.length} active grant{active.length === 1 ? "" : "s"}?
              <button className="danger" onClick={() => revokeAll.mutate()} data-testid="revoke-all-confirm">
                Revoke all
              </button>
              <button className="ghost" onClick={() => setConfirmAll(false)} data-testid="revoke-all-cancel">
                Keep
              </button>
            </span>
          ) : (
            <button className="danger-outline" disabled={active.length === 0} onClick={() => setConfirmAll(true)} data-testid="revoke-all">
              Revoke all
            </button>
          )}
          <button className="primary" onClick={() => setPanel({ kind: "new" })} data-testid="grant-new">
            New grant
          </button>
        </div>
      </header>

      {panel.kind === "new" && (
        <GrantForm onClose={() => setPanel({ kind: "none" })} onCreated={(created) => setPanel({ kind: "created", created })} />
      )}
      {panel.kind === "edit" && (
        <GrantForm grant={panel.grant} onClose={() => setPanel({ kind: "none" })} onCreated={() => setPanel({ kind: "none" })} />
      )}
      {panel.kind === "created" && <CreatedPanel created={panel.created} onClose={() => setPanel({ kind: "none" })} />}

      <InlineError error={grants.error} />
      {grants.isPending ? (
        <Skeleton rows={3} height={96} />
      ) : list.length === 0 ? (
        <Empty title="No grants yet" testid="grants-empty">
          <p>Create a grant for your agent — it gets a token and a budget. Every payment it makes is checked against the grant.</p>
          <button className="primary" onClick={() => setPanel({ kind: "new" })} data-testid="grants-empty-new">
            Create your first grant
          </button>
        </Empty>
      ) : (
        <ul className="grant-list" data-testid="grant-list">
          {list.map((g) => {
            const u = undo[g.id];
            const canUndo = u !== undefined && g.state === "revoked" && u.spent === g.spent_atomic && u.reserved === g.reserved_atomic;
            return (
              <GrantRow
                key={g.id}
                g={g}
                now={now}
                canUndo={canUndo}
                busy={revoke.isPending || unrevoke.isPending}
                onRevoke={() => revoke.mutate(g)}
                onUndo={() => unrevoke.mutate(g.id)}
                onEdit={() => setPanel({ kind: "edit", grant: g })}
              />
            );
          })}
        </ul>
      )}
    </section>
  );
}

interface RowProps {
  g: GrantView;
  now: number;
  canUndo: boolean;
  busy: boolean;
  onRevoke: () => void;
  onUndo: () => void;
  onEdit: () => void;
}

function GrantRow({ g, now, canUndo, busy, onRevoke, onUndo, onEdit }: RowProps) {
  const [topUp, setTopUp] = useState(false);
  const [run, setRun] = useState(false);
  const budget = atomic(g.budget_atomic) ?? 0n;
  const spent = atomic(g.spent_atomic) ?? 0n;
  const reserved = atomic(g.reserved_atomic) ?? 0n;
  const remaining = atomic(g.remaining_atomic) ?? 0n;
  const left = secondsUntil(g.expires_at, now);
  return (
    <li className={`grant-row state-${g.state}`} data-testid={`grant-row-${g.id}`} data-state={g.state}>
      <div className="grant-main">
        <div className="grant-title">
          <h3 data-testid="grant-label">{g.label}</h3>
          <span className={`badge state-${g.state}`} data-testid="grant-state">
            {g.state}
          </span>
          <span className="muted expiry" data-testid="grant-expiry">
            {g.state === "active" ? `expires in ${countdown(left)}` : g.state === "expired" ? "expired" : "revoked"}
          </span>
        </div>
        <div
          className="budget-bar"
          role="img"
          aria-label={`${usdFromMicros(spent)} spent, ${usdFromMicros(reserved)} reserved, ${usdFromMicros(remaining)} left of ${usdFromMicros(budget)}`}
          data-testid="budget-bar"
        >
          <span className="seg spent" style={{ width: `${share(spent, budget)}%` }} />
          <span className="seg reserved" style={{ width: `${share(reserved, budget)}%` }} />
        </div>
        <div className="budget-text">
          <span>
            <i className="dot spent" /> {usdFromMicros(spent)} spent
          </span>
          <span>
            <i className="dot reserved" /> {usdFromMicros(reserved)} reserved
          </span>
          <span>
            <i className="dot remaining" /> {usdFromMicros(remaining)} left of {usdFromMicros(budget)}
          </span>
          <span className="risk" data-testid="grant-risk">
            at risk {usdFromMicros(valueAtRisk(g))}
          </span>
        </div>
        <div className="hosts" data-testid="grant-hosts">
          {g.hosts.map((h) => (
            <code key={h} className="host">
              {h}
            </code>
          ))}
        </div>
        {topUp && <TopUp g={g} onDone={() => setTopUp(false)} />}
        {run && <RunAgent g={g} onDone={() => setRun(false)} />}
      </div>
      <div className="grant-actions">
        {g.state === "active" && (
          <>
            <button className="ghost" onClick={onEdit} data-testid="grant-edit">
              Edit
            </button>
            <button className="ghost" onClick={() => setTopUp((t) => !t)} data-testid="grant-topup">
              Top up
            </button>
            <button className="ghost" onClick={() => setRun((r) => !r)} data-testid="grant-run">
              Run an agent
            </button>
            <button className="danger-outline" onClick={onRevoke} disabled={busy} data-testid="grant-revoke">
              Revoke
            </button>
          </>
        )}
        {canUndo && (
          <button className="primary" onClick={onUndo} disabled={busy} data-testid="grant-undo">
            Undo revoke
          </button>
        )}
      </div>
    </li>
  );
}

function TopUp({ g, onDone }: { g: GrantView; onDone: () => void }) {
  const [usd, setUsd] = useState("");
  const [err, setErr] = useState("");
  const qc = useQueryClient();
  const toast = useToast();
  const m = useMutation({
    mutationFn: (v: string) => api.grantTopUp(g.id, v),
    onSuccess: (ng) => {
      toast.info(`“${ng.label}” now has ${usdFromMicros(ng.remaining_atomic)} left`);
      void qc.invalidateQueries({ queryKey: keys.grants });
      onDone();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = usd.trim();
    if (!USD_RE.test(v) || /^0(\.0+)?$/.test(v)) {
      setErr("Enter dollars to add, like 5 or 0.50");
      return;
    }
    setErr("");
    m.mutate(v);
  };
  return (
    <form className="topup" onSubmit={submit} noValidate data-testid="topup-form">
      <label>
        Add (USD){" "}
        <input value={usd} onChange={(e) => setUsd(e.target.value)} placeholder="5" aria-invalid={Boolean(err)} data-testid="topup-usd" autoFocus />
      </label>
      <button type="submit" className="primary small" disabled={m.isPending} data-testid="topup-save">
        Add to budget
      </button>
      {err && (
        <span className="field-error" data-testid="topup-error">
          {err}
        </span>
      )}
      <InlineError error={m.error} />
    </form>
  );
}

/**
 * "Run an agent": the command (run by `sh -c`) and its working dir; Purser starts it contained
 * (bubblewrap: the host read-only, Purser's files hidden, the network only through Purser), on
 * this grant, with a token that works only for that run.
 */
function RunAgent({ g, onDone }: { g: GrantView; onDone: () => void }) {
  const [command, setCommand] = useState("");
  const [cwd, setCwd] = useState("");
  const [err, setErr] = useState("");
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => api.runStart(g.id, command.trim(), cwd.trim()),
    onSuccess: (r) => {
      toast.info(`“${r.label}” is running contained (pid ${r.pid}); its output goes to ${r.log}`);
      onDone();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (command.trim() === "") return setErr("Give the agent's command, e.g. python3 agent.py");
    if (!cwd.trim().startsWith("/")) return setErr("Give the working dir as an absolute path, e.g. /home/you/project");
    setErr("");
    m.mutate();
  };
  return (
    <form className="topup run-agent" onSubmit={submit} noValidate data-testid="run-form">
      <label>
        Command{" "}
        <input value={command} onChange={(e) => setCommand(e.target.value)} placeholder="python3 agent.py" data-testid="run-command" autoFocus />
      </label>
      <label>
        Working dir{" "}
        <input value={cwd} onChange={(e) => setCwd(e.target.value)} placeholder="/home/you/project" data-testid="run-cwd" />
      </label>
      <button type="submit" className="primary small" disabled={m.isPending} data-testid="run-start">
        Run contained
      </button>
      {err && (
        <span className="field-error" data-testid="run-error">
          {err}
        </span>
      )}
      <InlineError error={m.error} />
    </form>
  );
}
