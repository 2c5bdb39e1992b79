/**
 * Owns the receipt detail drawer: every field of one receipt from `receipt_get` — request,
 * decision, payment, challenge, requirement, settlement, transaction, grant snapshot, ledger
 * after, and its place in the hash chain — all rendered as text.
 */
import { useEffect, type ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import type { JsonValue } from "../bindings";
import { Flags, InlineError, OutcomeBadge, Skeleton } from "../components/bits";
import { usdFromMicros, usdText, whenFull, words } from "../format";
import { keys } from "../queries";

function Row({ k, children }: { k: string; children: ReactNode }) {
  if (children === null || children === undefined || children === "") return null;
  return (
    <>
      <dt>{k}</dt>
      <dd>{children}</dd>
    </>
  );
}

function Json({ value, testid }: { value: JsonValue | null; testid: string }) {
  if (value === null) return <span className="muted">none</span>;
  return (
    <pre className="json" data-testid={testid}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function ReceiptDrawer({ id, onClose }: { id: string; onClose: () => void }) {
  const detail = useQuery({ queryKey: keys.receipt(id), queryFn: () => api.receiptGet(id), staleTime: Infinity });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  const d = detail.data;
  const r = d?.receipt;
  return (
    <aside className="drawer" role="dialog" aria-label="Receipt" data-testid="receipt-drawer">
      <header className="panel-head">
        <h2>Receipt {d ? <span className="muted">#{d.seq}</span> : null}</h2>
        <button className="ghost" onClick={onClose} data-testid="drawer-close" autoFocus>
          Close <kbd>Esc</kbd>
        </button>
      </header>
      <InlineError error={detail.error} />
      {!r ? (
        detail.isPending && <Skeleton rows={6} height={28} />
      ) : (
        <div className="drawer-body">
          <section>
            <h3>Request</h3>
            <dl className="facts">
              <Row k="Time">{whenFull(r.time)}</Row>
              <Row k="Request">
                <code data-testid="drawer-url">
                  {r.method} {r.url}
                </code>
              </Row>
              <Row k="Host">{r.host}</Row>
              <Row k="Grant">{r.grant ? `${r.grant.label} (${r.grant_id})` : r.grant_id}</Row>
              <Row k="Agent says">
                {r.intent && (
                  <>
                    <q className="agent-words" data-testid="drawer-intent">
                      {r.intent}
                    </q>{" "}
                    <span className="tag">the agent's words</span>
                  </>
                )}
              </Row>
            </dl>
          </section>
          <section>
            <h3>Decision</h3>
            <dl className="facts">
              <Row k="Outcome">
                <OutcomeBadge outcome={r.outcome} /> <Flags flags={d.flags} />
              </Row>
              <Row k="Reason">
                <code>{r.reason}</code>
                {r.detail ? (
                  <>
                    {" "}
                    / <code>{r.detail}</code>
                  </>
                ) : null}
              </Row>
              <Row k="In words">{r.message}</Row>
              <Row k="Decided by">
                {words(r.decided_by)}
                {r.decided_via ? ` via ${r.decided_via}` : ""}
                {r.rule_id ? ` (rule ${r.rule_id})` : ""}
              </Row>
              <Row k="Upstream status">{r.upstream_status?.toString()}</Row>
            </dl>
          </section>
          <section>
            <h3>Payment</h3>
            <dl className="facts">
              <Row k="Amount">
                {r.amount_usd ? `${usdText(r.amount_usd)} (${r.amount_atomic ?? "?"} atomic)` : null}
              </Row>
              <Row k="Network">{r.network}</Row>
              <Row k="Asset">
                <code className="addr">{r.asset}</code>
              </Row>
              <Row k="Payee">
                <code className="addr">{r.pay_to}</code>
              </Row>
              <Row k="Requirement hash">
                <code className="hash">{r.requirement_hash}</code>
              </Row>
              <Row k="Payload hash">
                <code className="hash">{r.payload_hash}</code>
              </Row>
              <Row k="Valid before">{r.valid_before?.toString()}</Row>
              <Row k="Reservation">{r.reservation_id}</Row>
              <Row k="Transaction">
                <code className="hash" data-testid="drawer-tx">
                  {r.tx}
                </code>
              </Row>
              <Row k="Payer">
                <code className="addr">{r.payer}</code>
              </Row>
              <Row k="x402 version">{r.x402_version?.toString()}</Row>
            </dl>
          </section>
          {(r.grant || r.ledger_after) && (
            <section>
              <h3>Grant at decision time</h3>
              <dl className="facts">
                {r.grant && (
                  <>
                    <Row k="Budget">{usdFromMicros(r.grant.budget_atomic)}</Row>
                    <Row k="Spent / reserved">
                      {usdFromMicros(r.grant.spent_atomic)} / {usdFromMicros(r.grant.reserved_atomic)}
                    </Row>
                    <Row k="Tiers">
                      auto below {usdFromMicros(r.grant.auto_below_atomic)}
                      {r.grant.ask_below_atomic ? `, refuse from ${usdFromMicros(r.grant.ask_below_atomic)}` : ""}
                      {r.grant.per_request_max_atomic ? `, cap ${usdFromMicros(r.grant.per_request_max_atomic)}` : ""}
                    </Row>
                    <Row k="Hosts">{r.grant.hosts.join(", ")}</Row>
                  </>
                )}
                {r.ledger_after && (
                  <Row k="After">
                    {usdFromMicros(r.ledger_after.spent_atomic)} spent, {usdFromMicros(r.ledger_after.reserved_atomic)} reserved,{" "}
                    {usdFromMicros(r.ledger_after.remaining_atomic)} left
                  </Row>
                )}
              </dl>
            </section>
          )}
          <section>
            <h3>Challenge</h3>
            <Json value={r.challenge} testid="drawer-challenge" />
          </section>
          <section>
            <h3>Requirement</h3>
            <Json value={r.requirement} testid="drawer-requirement" />
          </section>
          <section>
            <h3>Settlement</h3>
            <Json value={r.settlement} testid="drawer-settlement" />
          </section>
          <section>
            <h3>Chain</h3>
            <dl className="facts">
              <Row k="Sequence">{d.seq.toString()}</Row>
              <Row k="Previous hash">
                <code className="hash">{r.prev_hash}</code>
              </Row>
              <Row k="Hash">
                <code className="hash" data-testid="drawer-hash">
                  {r.hash}
                </code>
              </Row>
              <Row k="Id">
                <code>{r.id}</code>
              </Row>
            </dl>
          </section>
        </div>
      )}
    </aside>
  );
}
