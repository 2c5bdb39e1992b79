// The UI's own source never turns text into markup and never injects styles at run time:
// agent and server text can only ever be rendered as text nodes.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "bindings" ? [] : sources(p);
    return /\.(ts|tsx)$/.test(name) && !/\.test\.tsx?$/.test(name) ? [p] : [];
  });
}

describe("source hygiene", () => {
  const files = sources(join(__dirname));
  it("finds the sources", () => {
    expect(files.length).toBeGreaterThan(10);
  });
  it.each(["dangerouslySetInnerHTML", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "<style", "eval("])(
    "no %s anywhere",
    (needle) => {
      const hits = files.filter((f) => readFileSync(f, "utf8").includes(needle));
      expect(hits).toEqual([]);
    },
  );
});
