import { useEffect, useState } from "react";
import { invoke } from "@tauri-apps/api/core";

/** What the shell's `app_info` command returns (src-tauri/src/main.rs). */
interface AppInfo {
  version: string;
}

type VersionState =
  | { kind: "loading" }
  | { kind: "ready"; version: string }
  | { kind: "error"; message: string };

export function App() {
  const [state, setState] = useState<VersionState>({ kind: "loading" });

  useEffect(() => {
    let live = true;
    invoke<AppInfo>("app_info")
      .then((info) => live && setState({ kind: "ready", version: info.version }))
      .catch((err: unknown) => live && setState({ kind: "error", message: String(err) }));
    return () => {
      live = false;
    };
  }, []);

  return (
    <main className="shell">
      <h1 className="title">Purser</h1>
      <p className="tagline">Spending controls for your agents' payments.</p>
      <p className="version" data-testid="version" data-state={state.kind}>
        {state.kind === "loading" && "…"}
        {state.kind === "ready" && `Version ${state.version}`}
        {state.kind === "error" && `Version unavailable (${state.message})`}
      </p>
    </main>
  );
}
