/**
 * Owns transient messages: errors from Rust ({code, message}) in plain words and short
 * confirmations. One region at the bottom of the window, announced to screen readers.
 */
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import { toApiError } from "../api";

export interface Toast {
  id: number;
  kind: "error" | "info";
  text: string;
  code?: string;
}

interface ToastApi {
  error: (err: unknown, what?: string) => void;
  info: (text: string) => void;
}

const Ctx = createContext<ToastApi>({ error: () => {}, info: () => {} });

export const useToast = () => useContext(Ctx);

/** How long a toast stays up. */
export const TOAST_MS = 6000;

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const drop = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const push = useCallback(
    (t: Omit<Toast, "id">) => {
      const id = next.current++;
      setToasts((all) => [...all.slice(-3), { ...t, id }]);
      setTimeout(() => drop(id), TOAST_MS);
    },
    [drop],
  );
  const api = useMemo<ToastApi>(
    () => ({
      error: (err, what) => {
        const e = toApiError(err);
        push({ kind: "error", text: what ? `${what}: ${e.message}` : e.message, code: e.code });
      },
      info: (text) => push({ kind: "info", text }),
    }),
    [push],
  );
  return (
    <Ctx.Provider value={api}>
      {children}
      <div className="toasts" role="status" aria-live="polite" data-testid="toasts">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} data-testid={`toast-${t.kind}`}>
            <span className="toast-text">{t.text}</span>
            {t.code && <code className="toast-code">{t.code}</code>}
            <button className="ghost small" aria-label="Dismiss" onClick={() => drop(t.id)} data-testid="toast-dismiss">
              ×
            </button>
          </div>
        ))}
      </div>
    </Ctx.Provider>
  );
}
