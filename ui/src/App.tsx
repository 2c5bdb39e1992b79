/**
 * Owns the app's frame: header (proxy URL, wallet lock state, pause switch), the "All spending
 * paused" banner, the keyboard-accessible sidebar of the four screens (↑/↓ in the sidebar,
 * Alt+1…4 anywhere), navigation from a notification's Open action (`purser://open` or
 * `#/approvals/<id>`), live updates, the first-run welcome (in place of the screen until the
 * user sets something up, starts the demo, dismisses it or picks a screen) and the demo banner.
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from "react";
import { QueryClientProvider, useMutation, useQueryClient, type QueryClient } from "@tanstack/react-query";
import * as api from "./api";
import { DemoBanner } from "./components/DemoBanner";
import { ToastProvider, useToast } from "./components/toasts";
import { useLiveUpdates } from "./live";
import { keys, newQueryClient, useAppInfo, useApprovals, useDemo, useWallet, useWelcome } from "./queries";
import { Approvals } from "./screens/Approvals";
import { Grants } from "./screens/Grants";
import { Timeline } from "./screens/Timeline";
import { Wallet } from "./screens/Wallet";
import { Welcome } from "./screens/Welcome";

export const SCREENS = [
  { id: "grants", label: "Grants" },
  { id: "approvals", label: "Approvals" },
  { id: "timeline", label: "Timeline" },
  { id: "wallet", label: "Wallet" },
] as const;
export type Screen = (typeof SCREENS)[number]["id"];

function isScreen(s: string): s is Screen {
  return SCREENS.some((x) => x.id === s);
}

/** `#/approvals/<id>` → where to go. */
export function parseHash(hash: string): { screen: Screen; id: string | null } | null {
  const m = /^#\/?([a-z]+)(?:\/([A-Za-z0-9_-]{1,64}))?$/.exec(hash);
  if (!m || !isScreen(m[1]!)) return null;
  return { screen: m[1], id: m[2] ?? null };
}

export function App({ client }: { client?: QueryClient }) {
  const [qc] = useState(() => client ?? newQueryClient());
  return (
    <QueryClientProvider client={qc}>
      <ToastProvider>
        <Frame />
      </ToastProvider>
    </QueryClientProvider>
  );
}

function Frame() {
  const qc = useQueryClient();
  const initial = parseHash(window.location.hash);
  const [screen, setScreen] = useState<Screen>(initial?.screen ?? "grants");
  // Each Open is a new request to show (even the same id again after the user moved on).
  const [focusApproval, setFocusApproval] = useState<{ id: string | null; n: number }>({
    id: initial?.screen === "approvals" ? initial.id : null,
    n: 0,
  });
  const navRefs = useRef<Array<HTMLButtonElement | null>>([]);

  const go = useCallback((s: string, id: string | null) => {
    if (!isScreen(s)) return;
    setScreen(s);
    if (s === "approvals") setFocusApproval((f) => ({ id, n: f.n + 1 }));
  }, []);
  useLiveUpdates(qc, go);

  useEffect(() => {
    const onHash = () => {
      const h = parseHash(window.location.hash);
      if (h) go(h.screen, h.id);
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, [go]);

  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey) return;
      const n = Number(e.key);
      const s = SCREENS[n - 1];
      if (s) {
        e.preventDefault();
        setScreen(s.id);
        navRefs.current[n - 1]?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const onNavKey = (e: KeyboardEvent<HTMLElement>) => {
    const i = SCREENS.findIndex((s) => s.id === screen);
    const delta = e.key === "ArrowDown" ? 1 : e.key === "ArrowUp" ? -1 : 0;
    if (delta === 0) return;
    e.preventDefault();
    const n = (i + delta + SCREENS.length) % SCREENS.length;
    setScreen(SCREENS[n]!.id);
    navRefs.current[n]?.focus();
  };

  const approvals = useApprovals();
  const waiting = approvals.data?.length ?? 0;
  const welcome = useWelcome();
  const demo = useDemo();
  const demoOn = demo.data !== undefined && demo.data.phase !== "idle";
  // Picking a screen hides the welcome for this session; "Not now" hides it for good.
  const [welcomeHidden, setWelcomeHidden] = useState(false);
  const showWelcome = welcome.data?.show === true && !welcomeHidden && !demoOn;
  const pick = (s: Screen) => {
    setWelcomeHidden(true);
    setScreen(s);
  };

  return (
    <div className={`app ${demo.data?.showingDemo ? "demo-on" : ""}`}>
      <Header onWallet={() => pick("wallet")} />
      <PausedBanner />
      <DemoBanner />
      <div className="body">
        <nav className="sidebar" aria-label="Screens" onKeyDown={onNavKey}>
          {SCREENS.map((s, i) => (
            <button
              key={s.id}
              ref={(el) => {
                navRefs.current[i] = el;
              }}
              className={`nav ${screen === s.id ? "current" : ""}`}
              aria-current={screen === s.id ? "page" : undefined}
              tabIndex={screen === s.id ? 0 : -1}
              onClick={() => pick(s.id)}
              title={`${s.label} (Alt+${i + 1})`}
              data-testid={`nav-${s.id}`}
            >
              <span>{s.label}</span>
              {s.id === "approvals" && waiting > 0 && (
                <span className="pill" data-testid="nav-approvals-count">
                  {waiting}
                </span>
              )}
            </button>
          ))}
        </nav>
        <main className="content">
          {showWelcome ? (
            <Welcome onWalletReady={() => pick("wallet")} onDemoStarted={() => setScreen("timeline")} />
          ) : (
            <>
              {screen === "grants" && <Grants />}
          {screen === "approvals" && <Approvals focusId={focusApproval.id} focusNonce={focusApproval.n} />}
          {screen === "timeline" && <Timeline />}
              {screen === "wallet" && <Wallet />}
            </>
          )}
        </main>
      </div>
    </div>
  );
}

function Header({ onWallet }: { onWallet: () => void }) {
  const info = useAppInfo();
  const wallet = useWallet();
  const w = wallet.data;
  const walletText = !w ? "wallet …" : w.address === null ? "no wallet" : w.locked ? "wallet locked" : "wallet unlocked";
  const toast = useToast();
  const [copied, setCopied] = useState(false);
  return (
    <header className="topbar">
      <span className="brand">Purser</span>
      <span className="proxy" data-testid="proxy-url" title="Point agents at this proxy">
        proxy{" "}
        <code>{info.data?.proxyUrl ?? (info.error ? "unavailable" : "…")}</code>
        {info.data && (
          <button
            className="ghost small"
            onClick={() =>
              void navigator.clipboard.writeText(info.data.proxyUrl).then(
                () => {
                  setCopied(true);
                  setTimeout(() => setCopied(false), 1500);
                },
                (e) => toast.error(e, "Copy failed"),
              )
            }
            data-testid="copy-proxy"
          >
            {copied ? "copied" : "copy"}
          </button>
        )}
      </span>
      <span className="spacer" />
      <button className={`wallet-chip ${w && !w.locked ? "unlocked" : "locked"}`} onClick={onWallet} data-testid="header-wallet">
        {walletText}
      </button>
      <PauseSwitch />
      {info.data && <span className="muted version">v{info.data.version}</span>}
    </header>
  );
}

function usePause() {
  const qc = useQueryClient();
  const toast = useToast();
  return useMutation({
    mutationFn: (pause: boolean) => (pause ? api.spendingPause() : api.spendingResume()),
    onSuccess: (info) => qc.setQueryData(keys.app, info),
    onError: (e) => toast.error(e, "Could not change the pause"),
  });
}

function PauseSwitch() {
  const info = useAppInfo();
  const m = usePause();
  if (!info.data) return null;
  return info.data.paused ? null : (
    <button className="danger-outline small" onClick={() => m.mutate(true)} disabled={m.isPending} data-testid="pause-all">
      Pause all spending
    </button>
  );
}

function PausedBanner() {
  const info = useAppInfo();
  const m = usePause();
  if (!info.data?.paused) return null;
  return (
    <div className="banner" role="alert" data-testid="paused-banner">
      <strong>All spending paused</strong> — every payment is refused until you resume.
      <button className="primary small" onClick={() => m.mutate(false)} disabled={m.isPending} data-testid="resume">
        Resume
      </button>
    </div>
  );
}
