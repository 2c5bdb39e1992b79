#!/usr/bin/env node
// Pays one x402 URL with the REFERENCE clients and prints JSON lines:
//   {"x402":2|1|null}   protocol version seen in the first answer (null: it was not a 402)
//   {"status":N}        final HTTP status
//   {"body":...}        final body (JSON when it parses)
//   {"settlement":...}  decoded PAYMENT-RESPONSE (v2) / X-PAYMENT-RESPONSE (v1), or null
//   {"elapsedMs":N}     time on the wire: the unpaid request, then the reference client's signing and
//                       paid request up to the final answer (loading the client modules is not counted)
// Exit code 0 iff the final status is 2xx.
//
//   node tests/peers/pay.mjs URL [--method POST --data JSON] [--key HEX] [--max-usd N] [--rpc URL]
//
// v2 (402 with a PAYMENT-REQUIRED header): @x402/fetch wrapFetchWithPayment + x402Client + the
//   @x402/evm ExactEvmScheme client. v1 (402 with an x402Version 1 body): x402-fetch 1.2.0.
// Default key: anvil account 1 (the peers' payer). The reference clients' own spending caps apply
// ($1 for v2, $0.10 for v1) unless --max-usd raises them. Signing EIP-3009 needs no chain access; the
// clients get an RPC only with --rpc (without it, any RPC attempt fails loudly).
// Only one unpaid request is made: the 402 that revealed the version is handed to the reference
// client as its own first answer, so the timing matches the reference client alone.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { DEV_ACCOUNTS, PAYER_INDEX } from "./lib/constants.mjs";

const usage = "usage: node tests/peers/pay.mjs URL [--method POST --data JSON] [--key HEX] [--max-usd N] [--rpc URL]";
const opts = { url: null, method: null, data: undefined, key: DEV_ACCOUNTS[PAYER_INDEX].privateKey, maxUsd: null, rpc: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s);
  const value = () => inline ?? argv[++i];
  if (flag === "--method") opts.method = value()?.toUpperCase();
  else if (flag === "--data") opts.data = value();
  else if (flag === "--key") opts.key = value();
  else if (flag === "--max-usd") opts.maxUsd = value();
  else if (flag === "--rpc") opts.rpc = value();
  else if (!flag.startsWith("--") && !opts.url) opts.url = flag;
  else {
    console.error(`unknown argument ${argv[i]}\n${usage}`);
    process.exit(2);
  }
}
if (!opts.url) {
  console.error(usage);
  process.exit(2);
}
if (!/^0x[0-9a-fA-F]{64}$/.test(opts.key ?? "")) {
  console.error("--key must be 0x + 64 hex digits");
  process.exit(2);
}

const print = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const init = { method: opts.method ?? (opts.data !== undefined ? "POST" : "GET"), headers: { accept: "application/json" } };
if (opts.data !== undefined) {
  init.body = opts.data;
  init.headers["content-type"] = "application/json";
}
const parse = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};
// Stopwatch that is paused while the client modules load.
const clock = { spent: 0, since: Date.now() };
const pause = () => (clock.spent += Date.now() - clock.since);
const resume = () => (clock.since = Date.now());
const elapsed = () => clock.spent + Date.now() - clock.since;

async function finish(res, settlement, version) {
  const text = await res.text();
  const elapsedMs = elapsed();
  print({ x402: version });
  print({ status: res.status });
  print({ body: parse(text) });
  print({ settlement });
  print({ elapsedMs });
  process.exit(res.status >= 200 && res.status < 300 ? 0 : 1);
}
function fail(version, err) {
  const elapsedMs = elapsed();
  print({ x402: version });
  print({ status: null, error: String(err?.message ?? err) });
  print({ elapsedMs });
  process.exit(1);
}

let first, firstText;
try {
  first = await fetch(opts.url, init);
  firstText = await first.text();
} catch (err) {
  fail(null, err.cause ?? err);
}
pause();
let version = null;
if (first.status === 402) {
  if (first.headers.get("payment-required")) version = 2;
  else if (parse(firstText)?.x402Version === 1) version = 1;
}
// A fetch that answers the wrapped client's first call with the 402 we already have.
let replay = new Response(firstText, { status: first.status, statusText: first.statusText, headers: first.headers });
const replayingFetch = (input, requestInit) => {
  if (replay) {
    const res = replay;
    replay = null;
    return Promise.resolve(res);
  }
  return fetch(input, requestInit);
};
if (version === null) {
  resume();
  await finish(new Response(firstText, { status: first.status, headers: first.headers }), null, null);
}

const noRpc = () => {
  throw new Error("pay.mjs: the client tried an RPC call; pass --rpc URL");
};

if (version === 2) {
  const { wrapFetchWithPayment, decodePaymentResponseHeader } = await import("@x402/fetch");
  const { x402Client } = await import("@x402/core/client");
  const { ExactEvmScheme } = await import("@x402/evm/exact/client");
  const { toClientEvmSigner } = await import("@x402/evm");
  const { privateKeyToAccount } = await import("viem/accounts");
  let publicClient;
  if (opts.rpc) {
    const { createPublicClient, http } = await import("viem");
    publicClient = createPublicClient({ transport: http(opts.rpc) });
  }
  const signer = toClientEvmSigner(privateKeyToAccount(opts.key), publicClient);
  const client = new x402Client().register("eip155:*", new ExactEvmScheme(signer));
  if (opts.maxUsd) client.setSpendControls({ maxAmountPerPayment: `$${opts.maxUsd}` });
  const pay = wrapFetchWithPayment(replayingFetch, client);
  let res;
  try {
    resume();
    res = await pay(opts.url, init);
  } catch (err) {
    fail(version, err);
  }
  const header = res.headers.get("payment-response");
  await finish(res, header ? decodePaymentResponseHeader(header) : null, version);
} else {
  const v1Dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "v1");
  const requireV1 = createRequire(path.join(v1Dir, "package.json"));
  const { wrapFetchWithPayment, decodeXPaymentResponse } = requireV1("x402-fetch");
  const { createWalletClient, http, custom } = requireV1("viem");
  const { baseSepolia } = requireV1("viem/chains");
  const { privateKeyToAccount } = requireV1("viem/accounts");
  const wallet = createWalletClient({
    account: privateKeyToAccount(opts.key),
    chain: baseSepolia, // x402-fetch maps chain id 84532 to "base-sepolia"
    transport: opts.rpc ? http(opts.rpc) : custom({ request: noRpc }),
  });
  // x402-fetch's default cap is 0.10 USDC (100000 atomic); --max-usd overrides it
  const maxValue = opts.maxUsd ? BigInt(Math.round(Number(opts.maxUsd) * 1e6)) : undefined;
  const pay = wrapFetchWithPayment(replayingFetch, wallet, maxValue);
  let res;
  try {
    resume();
    res = await pay(opts.url, init);
  } catch (err) {
    fail(version, err);
  }
  const header = res.headers.get("x-payment-response");
  await finish(res, header ? decodeXPaymentResponse(header) : null, version);
}
