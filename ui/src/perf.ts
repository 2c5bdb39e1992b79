/**
 * Owns the timeline's performance figure: the time from the keystroke that changed the query
 * to the results being on screen, as `performance` marks/measures (`purser:search`) and as
 * `window.__purserPerf` for WebDriver (`execute_script("return window.__purserPerf")`).
 */

export interface PurserPerf {
  /** Keystroke → results committed and painted, ms. */
  lastSearchMs: number | null;
  /** Keystroke → results committed to the DOM (before the browser paints them), ms. */
  lastCommitMs: number | null;
  /** The query that figure belongs to. */
  lastQuery: string | null;
  /** All measured searches this session (the last 100), ms. */
  searches: number[];
  /** Rows rendered in the last frame of the timeline list (virtualised: ~a screenful). */
  renderedRows: number;
}

declare global {
  interface Window {
    __purserPerf?: PurserPerf;
  }
}

function perf(): PurserPerf {
  window.__purserPerf ??= { lastSearchMs: null, lastCommitMs: null, lastQuery: null, searches: [], renderedRows: 0 };
  return window.__purserPerf;
}

let started: { query: string; at: number } | null = null;

/** A keystroke changed the query to `query`. */
export function searchStarted(query: string): void {
  started = { query, at: performance.now() };
  performance.mark("purser:search:start");
}

/** Results for `query` are committed; measured at the next frame (when they are painted). */
export function searchRendered(query: string): void {
  const s = started;
  if (!s || s.query !== query) return;
  started = null;
  perf().lastCommitMs = Math.round((performance.now() - s.at) * 10) / 10;
  const done = () => {
    const ms = Math.round((performance.now() - s.at) * 10) / 10;
    performance.mark("purser:search:end");
    try {
      performance.measure("purser:search", "purser:search:start", "purser:search:end");
    } catch {
      // a cleared mark: the figure below still stands
    }
    const p = perf();
    p.lastSearchMs = ms;
    p.lastQuery = query;
    p.searches = [...p.searches.slice(-99), ms];
  };
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(done);
  else done();
}

export function rowsRendered(n: number): void {
  perf().renderedRows = n;
}
