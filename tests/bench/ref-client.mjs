#!/usr/bin/env node
// Owns the reference-client side of the bench's "Purser vs reference client" comparison: pays one
// x402 v2 URL sequentially N times in ONE node process with the reference client (@x402/fetch
// wrapFetchWithPayment + x402Client from @x402/core + the ExactEvmScheme client of @x402/evm), and
// prints ONE JSON line with per-request timings (ms, from the unpaid request to the paid answer's
// last byte):
//   {"n","ok","failed","warmup","p50Ms","p90Ms","p99Ms","meanMs","minMs","maxMs","elapsedS","firstError"}
//
//   node tests/bench/ref-client.mjs --url URL [--n 200] [--warmup 5] [--max-secs 120] [--key 0xHEX]
//
// The packages come from tests/peers/node_modules (run `bash tests/peers/setup.sh` first). The key
// defaults to anvil account 1, the account the peers fund. Signing needs no chain access. Every loop
// is bounded by --n and --max-secs; a failure is counted, never retried.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const here = path.dirname(fileURLToPath(import.meta.url));
const peersDir = path.join(here, "..", "peers");
const require = createRequire(path.join(peersDir, "package.json"));

const usage = "usage: node tests/bench/ref-client.mjs --url URL [--n 200] [--warmup 5] [--max-secs 120] [--key 0xHEX]";
const opts = {
  url: null,
  n: 200,
  warmup: 5,
  maxSecs: 120,
  key: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s);
  const value = () => inline ?? argv[++i];
  if (flag === "--url") opts.url = value();
  else if (flag === "--n") opts.n = Number(value());
  else if (flag === "--warmup") opts.warmup = Number(value());
  else if (flag === "--max-secs") opts.maxSecs = Number(value());
  else if (flag === "--key") opts.key = value();
  else {
    console.error(`unknown argument ${argv[i]}\n${usage}`);
    process.exit(2);
  }
}
if (!opts.url || !(opts.n > 0) || !(opts.maxSecs > 0) || !(opts.warmup >= 0)) {
  console.error(usage);
  process.exit(2);
}

let modules;
try {
  const { wrapFetchWithPayment, decodePaymentResponseHeader } = require("@x402/fetch");
  const { x402Client } = require("@x402/core/client");
  const { ExactEvmScheme } = require("@x402/evm/exact/client");
  const { toClientEvmSigner } = require("@x402/evm");
  const { privateKeyToAccount } = require("viem/accounts");
  modules = { wrapFetchWithPayment, decodePaymentResponseHeader, x402Client, ExactEvmScheme, toClientEvmSigner, privateKeyToAccount };
} catch (err) {
  console.error(`ref-client: cannot load the reference packages from ${peersDir}/node_modules (run bash tests/peers/setup.sh): ${err.message}`);
  process.exit(1);
}

const signer = modules.toClientEvmSigner(modules.privateKeyToAccount(opts.key));
const client = new modules.x402Client().register("eip155:*", new modules.ExactEvmScheme(signer));
const pay = modules.wrapFetchWithPayment(fetch, client);
const init = { method: "GET", headers: { accept: "application/json" } };

/** One paid request; resolves to null on success, or to why it failed. */
async function payOnce() {
  try {
    const res = await pay(opts.url, init);
    await res.arrayBuffer();
    const header = res.headers.get("payment-response");
    const settlement = header ? modules.decodePaymentResponseHeader(header) : null;
    if (res.status !== 200) return `HTTP ${res.status}`;
    if (!settlement?.success) return `no successful PAYMENT-RESPONSE (${header ?? "absent"})`;
    return null;
  } catch (err) {
    return String(err?.message ?? err);
  }
}

const started = performance.now();
const deadline = started + opts.maxSecs * 1000;
let firstError = null;
for (let i = 0; i < opts.warmup && performance.now() < deadline; i++) {
  const err = await payOnce();
  firstError ??= err;
}
const samples = [];
let failed = 0;
for (let i = 0; i < opts.n && performance.now() < deadline; i++) {
  const t0 = performance.now();
  const err = await payOnce();
  const dt = performance.now() - t0;
  if (err === null) samples.push(dt);
  else {
    failed += 1;
    firstError ??= err;
  }
}

const sorted = [...samples].sort((a, b) => a - b);
const rank = (p) => (sorted.length ? sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1] : null);
const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null;
const result = {
  n: samples.length + failed,
  ok: samples.length,
  failed,
  warmup: opts.warmup,
  p50Ms: round(rank(50)),
  p90Ms: round(rank(90)),
  p99Ms: round(rank(99)),
  meanMs: round(mean),
  minMs: round(sorted[0] ?? null),
  maxMs: round(sorted.at(-1) ?? null),
  elapsedS: round((performance.now() - started) / 1000),
  firstError,
  node: process.version,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(samples.length > 0 ? 0 : 1);
