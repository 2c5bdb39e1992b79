import { describe, expect, it } from "vitest";
import type { QueryHelp } from "../bindings";
import { apply, suggest } from "./suggest";

const help: QueryHelp = {
  keys: [
    { key: "grant", description: "a grant, by label or id", values: ["research", "travel plans", "batch"], example: "grant:research" },
    { key: "host", description: "a host", values: ["api.weather.com", "api.maps.io"], example: "host:api.x.com" },
    { key: "payee", description: "a payee", values: ["0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"], example: "payee:0x…" },
    { key: "network", description: "a network", values: ["base-sepolia", "base"], example: "network:base" },
    { key: "by", description: "who decided", values: ["auto", "user", "timeout", "policy", "rule"], example: "by:user" },
  ],
};

const labels = (text: string, caret = text.length, h: QueryHelp | null = help) =>
  suggest(text, caret, h, "2026-11-25").items.map((i) => i.label);

describe("suggest", () => {
  const cases: Array<[string, string, number | undefined, string[]]> = [
    ["empty input offers every key", "", undefined, ["grant:", "outcome:", "host:", "payee:", "network:", "amount:", "since:", "until:", "decider:", "reason:", "flag:"]],
    ["key prefix", "gr", undefined, ["grant:"]],
    ["an alias in query_help is not a second key", "de", undefined, ["decider:"]],
    ["key prefix after a word", "weather ou", undefined, ["outcome:"]],
    ["negated key prefix", "-fl", undefined, ["flag:"]],
    ["outcome values", "outcome:", undefined, ["paid", "refused", "failed", "not_payable"]],
    ["outcome value prefix", "outcome:re", undefined, ["refused"]],
    ["outcome list skips chosen", "outcome:paid,", undefined, ["refused", "failed", "not_payable"]],
    ["grant labels from query_help", "grant:", undefined, ["research", "travel plans", "batch"]],
    ["grant label substring", "grant:plan", undefined, ["travel plans"]],
    ["alias by: → decider values", "by:u", undefined, ["user"]],
    ["decider values", "decider:", undefined, ["auto", "user", "timeout", "policy", "rule"]],
    ["hosts", "host:api.w", undefined, ["api.weather.com"]],
    ["networks", "network:base", undefined, ["base-sepolia"]],
    ["amount operators", "amount:", undefined, [">0.10", "<=1", "0.01..0.05", ">="]],
    ["amount typed", "amount:>0", undefined, [">0.10"]],
    ["since offers today and ages", "since:", undefined, ["2026-11-25", "24h", "7d", "30d"]],
    ["flags", "flag:", undefined, ["price_spike", "new_payee", "any"]],
    ["caret in the middle token", "grant:res outcome:paid", 9, ["research"]],
    ["plain word: no key matches", "weather", undefined, []],
    ["unknown key: nothing", "colour:", undefined, []],
    ["no help yet: builtin still work", "outcome:f", undefined, ["failed"]],
  ];
  it.each(cases)("%s", (_name, text, caret, want) => {
    expect(labels(text, caret)).toEqual(want);
  });

  it("without query_help, grant values are empty but keys are offered", () => {
    expect(labels("grant:", undefined, null)).toEqual([]);
    expect(labels("h", undefined, null)).toEqual(["host:"]);
  });

  it("offers every key once", () => {
    const all = labels("");
    expect(new Set(all).size).toBe(all.length);
  });

  it("applies a key, keeping the negation", () => {
    const s = suggest("weather -fl", 11, help);
    const r = apply("weather -fl", s, s.items[0]!);
    expect(r).toEqual({ text: "weather -flag:", caret: 14 });
  });

  it("applies a value with a trailing space and quotes values with spaces", () => {
    const s = suggest("grant:trav", 10, help);
    expect(apply("grant:trav", s, s.items[0]!)).toEqual({ text: 'grant:"travel plans" ', caret: 21 });
  });

  it("applies into a comma list", () => {
    const s = suggest("outcome:paid,f", 14, help);
    expect(apply("outcome:paid,f", s, s.items[0]!).text).toBe("outcome:paid,failed ");
  });

  it("replaces the whole token under the caret, not the rest of the query", () => {
    const text = "grant:re outcome:paid";
    const s = suggest(text, 8, help);
    expect(apply(text, s, s.items[0]!).text).toBe("grant:research outcome:paid");
  });

  it("an amount operator leaves the caret after it for the number", () => {
    const s = suggest("amount:>=", 9, help);
    expect(s.items.map((i) => i.label)).toEqual([]);
    const s2 = suggest("amount:>", 8, help);
    const op = s2.items.find((i) => i.label === ">=")!;
    expect(apply("amount:>", s2, op)).toEqual({ text: "amount:>=", caret: 9 });
  });
});
