/**
 * Owns the list of auto-approve and block rules (made from the approval prompt or the CLI)
 * under the approval queue, with a Remove button for each active rule.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import { InlineError } from "../components/bits";
import { useToast } from "../components/toasts";
import { countdown, secondsUntil } from "../format";
import { keys, useRules } from "../queries";

export function Rules({ now }: { now: number }) {
  const rules = useRules();
  const qc = useQueryClient();
  const toast = useToast();
  const remove = useMutation({
    mutationFn: (id: string) => api.ruleDelete(id),
    onSuccess: () => {
      toast.info("Rule removed");
      void qc.invalidateQueries({ queryKey: keys.rules });
    },
    onError: (e) => toast.error(e, "Could not remove the rule"),
  });
  const active = (rules.data ?? []).filter((r) => r.active);
  return (
    <section className="rules" aria-labelledby="rules-title" data-testid="rules">
      <h2 id="rules-title">Rules</h2>
      <InlineError error={rules.error} />
      {active.length === 0 ? (
        <p className="muted" data-testid="rules-empty">
          No rules. “Approve with rule” on a waiting payment lets that host be paid without asking, up to a price, for a while.
        </p>
      ) : (
        <ul className="rule-list">
          {active.map((r) => (
            <li key={r.id} data-testid={`rule-${r.id}`}>
              <span className={`badge ${r.kind === "allow" ? "state-active" : "state-revoked"}`}>{r.kind}</span>
              <span className="rule-text">{r.description}</span>
              <span className="muted countdown">{r.expires_at ? `ends in ${countdown(secondsUntil(r.expires_at, now))}` : "no end"}</span>
              <button className="ghost small" onClick={() => remove.mutate(r.id)} disabled={remove.isPending} data-testid="rule-delete">
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
