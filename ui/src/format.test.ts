import { describe, expect, it } from "vitest";
import { askedBy, askedByFirst, atomic, countdown, microsFromUsd, share, shortAddr, usdFromMicros, usdText } from "./format";

describe("format", () => {
  it.each([
    ["0", "$0.00"],
    ["1", "$0.000001"],
    ["50000", "$0.05"],
    ["1234567", "$1.234567"],
    ["5000000", "$5.00"],
    ["1234567000000", "$1,234,567.00"],
    ["18446744073709551615", "$18,446,744,073,709.551615"],
  ])("micro-USD %s is %s, exactly", (m, want) => {
    expect(usdFromMicros(m)).toBe(want);
  });

  it("refuses what is not an atomic amount", () => {
    for (const bad of ["", "-1", "01", "1.5", "1e3", " 1", null]) expect(atomic(bad)).toBeNull();
    expect(usdFromMicros("1.5")).toBe("—");
  });

  it("formats decimal USD strings and parses strict input", () => {
    expect(usdText("0.05")).toBe("$0.05");
    expect(usdText("12")).toBe("$12.00");
    expect(usdText("0.123456")).toBe("$0.123456");
    expect(usdText("nope")).toBe("—");
    expect(microsFromUsd("0.05")).toBe(50000n);
    expect(microsFromUsd("5")).toBe(5000000n);
    expect(microsFromUsd("0.1234567")).toBeNull();
    expect(microsFromUsd("1,5")).toBeNull();
  });

  it("bar shares and countdowns", () => {
    expect(share(1n, 3n)).toBe(33.33);
    expect(share(5n, 0n)).toBe(0);
    expect(share(7n, 5n)).toBe(100);
    expect(countdown(59)).toBe("59s");
    expect(countdown(61)).toBe("1m 01s");
    expect(countdown(3725)).toBe("1h 2m");
    expect(countdown(90061)).toBe("1d 1h");
    expect(countdown(-5)).toBe("0s");
    expect(shortAddr("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")).toBe("0x3C44…93BC");
  });

  it("says who is asking as the OS said it, and never guesses", () => {
    expect(askedBy(null)).toBe("an unidentified process");
    expect(askedBy({ kind: "unknown", pid: null, exe: null, cmdline: null, parents: [], run_label: null })).toBe("an unidentified process");
    const curl = {
      kind: "process" as const,
      pid: 42,
      exe: "/usr/bin/curl",
      cmdline: "curl -s x",
      parents: [
        { pid: 41, exe: "/usr/bin/node", name: "node" },
        { pid: 40, exe: null, name: "claude" },
      ],
      run_label: null,
    };
    expect(askedBy(curl)).toBe("claude → node → curl, pid 42");
    expect(askedByFirst(curl)).toBe("curl, pid 42 (from claude → node)");
    expect(askedByFirst({ ...curl, parents: [] })).toBe("curl, pid 42");
    expect(askedBy({ ...curl, kind: "run", run_label: "research", cmdline: "claude --print", parents: [] })).toBe("run “research”: claude --print, pid 42");
  });
});
