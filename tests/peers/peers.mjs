#!/usr/bin/env node
// Real x402 reference peers for Purser's tests, on 127.0.0.1 ephemeral ports:
//   anvil (chain 84532) + test USDC + Multicall3 -> reference facilitator -> v2 and v1 paywall servers.
//
//   node tests/peers/peers.mjs --facilitator real|sigonly|failsettle [--fund 0xADDR:ATOMIC ...] [--log-dir DIR]
//                              [--ignore-stdin]
//
// When everything answers, prints ONE line of JSON on stdout (endpoints, accounts) and keeps running.
// Stops (killing every child) on SIGTERM, SIGINT, SIGHUP, or EOF on stdin (the parent died);
// --ignore-stdin disables the stdin watch for manual use. Errors go to stderr, exit code != 0.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Supervisor } from "./lib/procs.mjs";
import { anvilBinary, installContracts, rpc } from "./lib/chain.mjs";
import {
  CHAIN_ID, DEV_ACCOUNTS, FACILITATOR_INDEX, FUNDED_INDEXES, FUND_ATOMIC, PAYER_INDEX, PAY_TO_ALT_INDEX, PAY_TO_INDEX, USDC,
} from "./lib/constants.mjs";

const started = Date.now();
const here = path.dirname(fileURLToPath(import.meta.url));
const say = (msg) => process.stderr.write(`peers: ${msg}\n`);
const usage = "usage: node tests/peers/peers.mjs --facilitator real|sigonly|failsettle [--fund 0xADDR:ATOMIC ...] [--log-dir DIR] [--ignore-stdin]";

// ------------------------------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = { mode: "real", fund: [], logDir: null, watchStdin: true };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--facilitator") opts.mode = value();
    else if (flag === "--fund") opts.fund.push(value());
    else if (flag === "--log-dir") opts.logDir = path.resolve(value());
    else if (flag === "--ignore-stdin") opts.watchStdin = false;
    else if (flag === "--help" || flag === "-h") {
      console.error(usage);
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!["real", "sigonly", "failsettle"].includes(opts.mode)) throw new Error(`--facilitator must be real, sigonly or failsettle, not ${opts.mode}`);
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  say(`${err.message}\n${usage}`);
  process.exit(2);
}

const accounts = DEV_ACCOUNTS;
// address (lower case) -> atomic units; --fund adds to the default 1000 USDC of accounts 1, 3..8
const balances = new Map(FUNDED_INDEXES.map((i) => [accounts[i].address.toLowerCase(), FUND_ATOMIC]));
for (const entry of opts.fund) {
  const m = /^(0x[0-9a-fA-F]{40}):(\d+)$/.exec(entry);
  if (!m) {
    say(`bad --fund ${entry} (want 0xADDRESS:ATOMIC_UNITS, e.g. 0xabc...:5000000 for 5 USDC)`);
    process.exit(2);
  }
  const address = m[1].toLowerCase();
  balances.set(address, (balances.get(address) ?? 0n) + BigInt(m[2]));
}
if (opts.logDir) fs.mkdirSync(opts.logDir, { recursive: true });

// ------------------------------------------------------------------------------------- lifecycle
const sup = new Supervisor({ logDir: opts.logDir });
let stopping = null;
function stop(code, reason) {
  if (!stopping) {
    if (reason) say(reason);
    stopping = sup.stopAll().finally(() => process.exit(code));
  }
  return stopping;
}
process.on("SIGTERM", () => stop(0, "SIGTERM: stopping"));
process.on("SIGINT", () => stop(0, "SIGINT: stopping"));
process.on("SIGHUP", () => stop(0, "SIGHUP: stopping"));
process.on("uncaughtException", (err) => stop(1, `internal error: ${err?.stack ?? err}`));
process.on("unhandledRejection", (err) => stop(1, `internal error: ${err?.stack ?? err}`));
// a parent that stopped reading must not crash us
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});
// any child dying (during startup or later) takes the whole set down
sup.onCrash = (name, code, signal) => stop(1, `${name} exited (code ${code}, signal ${signal}); stopping the rest`);
if (opts.watchStdin) {
  process.stdin.on("end", () => stop(0, "stdin closed (parent gone): stopping"));
  process.stdin.on("error", () => stop(0, "stdin broken (parent gone): stopping"));
  process.stdin.on("data", () => {}); // whatever the parent writes is ignored
  process.stdin.resume();
}

const url = (port) => `http://127.0.0.1:${port}`;
const timings = {};
const lap = (name) => (timings[name] = Date.now() - started);

async function poll(what, probe, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  for (;;) {
    try {
      const verdict = await probe();
      if (verdict === true) return;
      last = verdict;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs / 1000} s: ${last}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const expectStatus = (target, status) => async () => {
  const res = await fetch(target, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status === status || `${target} answered ${res.status}, expected ${status}`;
};

// ------------------------------------------------------------------------------------- startup
async function main() {
  for (const dir of ["node_modules/@x402/core", "node_modules/express", "v1/node_modules/x402-express"]) {
    if (!fs.existsSync(path.join(here, dir))) throw new Error(`${path.join(here, dir)} is missing: run tests/peers/setup.sh`);
  }
  const script = (name) => path.join(here, "lib", name);
  const startTimeout = 60_000; // generous: several instances may start at once on a busy 2-core machine

  // The node peers load their modules (the slow part) while anvil starts; each one only gets its
  // settings, and starts listening, once the peer it depends on answers.
  const anvilBin = anvilBinary();
  const anvilReady = sup.startAnvil(anvilBin, ["--chain-id", String(CHAIN_ID), "--accounts", "10", "--balance", "10000"], startTimeout);
  const facilitatorProc = sup.preloadNode("facilitator", script("facilitator.mjs"));
  const v2Proc = sup.preloadNode("v2", script("paywall-v2.mjs"));
  const v1Proc = sup.preloadNode("v1", script("paywall-v1.mjs"));

  // 1. chain
  const rpcUrl = url(await anvilReady);
  await poll("anvil", async () => Number(await rpc(rpcUrl, "eth_chainId")) === CHAIN_ID || "wrong chain id");
  lap("anvil");
  await installContracts(rpcUrl, balances);
  lap("contracts");

  // 2. facilitator
  const facilitatorPort = await facilitatorProc.start({ rpc: rpcUrl, key: accounts[FACILITATOR_INDEX].privateKey, mode: opts.mode }, startTimeout);
  const facilitator = url(facilitatorPort);
  await poll("facilitator", expectStatus(`${facilitator}/supported`, 200));
  lap("facilitator");

  // 3. paywall servers (v2 and v1 side by side)
  const payTo = accounts[PAY_TO_INDEX].address;
  const payToAlt = accounts[PAY_TO_ALT_INDEX].address;
  const [v2Port, v1Port] = await Promise.all([
    v2Proc.start({ facilitator, payTo, payToAlt }, startTimeout),
    v1Proc.start({ facilitator, payTo }, startTimeout),
  ]);
  const v2 = url(v2Port);
  const v1 = url(v1Port);
  await Promise.all([
    poll("v2 server", expectStatus(`${v2}/cheap`, 402)),
    poll("v1 server", expectStatus(`${v1}/cheap`, 402)),
    poll("v2 server", expectStatus(`${v2}/free`, 200)),
    poll("v1 server", expectStatus(`${v1}/free`, 200)),
  ]);
  lap("servers");

  if (stopping) return;
  const payer = accounts[PAYER_INDEX];
  const ready = {
    rpc: rpcUrl,
    chainId: CHAIN_ID,
    facilitator,
    v2,
    v1,
    token: USDC,
    payTo,
    payToAlt,
    payer: { address: payer.address, privateKey: payer.privateKey },
    accounts,
    mode: opts.mode,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  say(`ready in ${Date.now() - started} ms (${Object.entries(timings).map(([k, v]) => `${k} ${v}`).join(", ")})`
    + (opts.logDir ? `; logs in ${opts.logDir}` : ""));
}

main().catch((err) => stop(1, `startup failed: ${err.message}`));
