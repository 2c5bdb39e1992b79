// The reference x402 facilitator: x402Facilitator (@x402/core) with the reference "exact" EVM
// facilitator schemes (@x402/evm) for v2 on eip155:84532 and v1 on base-sepolia, behind express.
//
// Config (sent by peers.mjs over IPC): { rpc, key, mode } with mode
//   real       reference verify + settle: transferWithAuthorization is sent and its receipt awaited
//   sigonly    reference verify, then a successful settlement WITHOUT any transaction
//              (synthetic tx hash, extra.sigonly = true)
//   failsettle settle always answers success:false, errorReason "unexpected_settle_error"
// Routes: POST /verify, POST /settle, GET /supported, GET /stats, GET /health.
import express from "express";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { createPublicClient, defineChain, encodeFunctionData, http, keccak256, concatHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { CHAIN_ID, MULTICALL3, NETWORK_V1, NETWORK_V2 } from "./constants.mjs";
import { childConfig, logger, serve } from "./child.mjs";

const { rpc, key, mode = "real" } = await childConfig();
const log = logger("facilitator");
if (!rpc || !key || !["real", "sigonly", "failsettle"].includes(mode)) {
  console.error("facilitator: X402_PEER_CONFIG needs rpc, key and mode real|sigonly|failsettle");
  process.exit(2);
}

const chain = defineChain({
  id: CHAIN_ID,
  name: "local Base Sepolia",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [rpc] } },
  contracts: { multicall3: { address: MULTICALL3 } },
});
const account = privateKeyToAccount(key);
const pub = createPublicClient({ chain, transport: http(rpc, { retryCount: 0, timeout: 30_000 }) });

// ---------------------------------------------------------------------------------------------
// Transactions. Settlements arrive concurrently (benchmarks send 100+ at once), so nonces are
// handed out by one serialized sender: estimate gas in parallel (a revert surfaces here, before any
// nonce is taken), then sign + eth_sendRawTransaction one at a time with a locally tracked nonce.
// A failed send re-reads the nonce from the chain, so a rejected transaction never leaves a gap.
const GAS_FEES = { maxFeePerGas: 100_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n }; // anvil's base fee stays ~1 gwei
let nextNonce; // undefined: read from the chain on the next send
let sendQueue = Promise.resolve();

function serialized(task) {
  const run = sendQueue.then(task, task);
  sendQueue = run.catch(() => {});
  return run;
}

async function sendTx({ to, data, gas }) {
  const limit = gas ?? ((await pub.estimateGas({ account: account.address, to, data, blockTag: "pending" })) * 5n) / 4n + 10_000n;
  const attempt = async () => {
    nextNonce ??= await pub.getTransactionCount({ address: account.address, blockTag: "pending" });
    const raw = await account.signTransaction({
      type: "eip1559", chainId: CHAIN_ID, to, data, gas: limit, nonce: nextNonce, ...GAS_FEES,
    });
    const hash = await pub.request({ method: "eth_sendRawTransaction", params: [raw] });
    nextNonce += 1;
    return hash;
  };
  return serialized(async () => {
    try {
      return await attempt();
    } catch (err) {
      nextNonce = undefined;
      // someone else used this account (a test may): re-read the nonce and try once more
      if (!/nonce/i.test(String(err?.details ?? err?.message))) throw err;
      try {
        return await attempt();
      } catch (again) {
        nextNonce = undefined;
        throw again;
      }
    }
  });
}

async function waitForReceipt({ hash, timeout = 60_000 }) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await pub.getTransactionReceipt({ hash });
    } catch (err) {
      if (err?.name !== "TransactionReceiptNotFoundError" || Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 25)); // anvil automines: the receipt is there almost at once
  }
}

// Reads and gas estimates run against the PENDING block. anvil only mines when a transaction
// arrives, so "latest" can be minutes old (or the genesis block, whose EVM timestamp is 1), and the
// reference v1 client signs validAfter = now - 600: simulating that at a stale "latest" fails with
// "authorization is not yet valid" although the transaction itself would succeed. On a real chain
// "latest" is at most a block time old; "pending" (timestamp = now) is what matches that here.
const signer = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (a) => pub.getCode(a),
  readContract: (a) => pub.readContract({ ...a, args: a.args ?? [], blockTag: "pending" }),
  verifyTypedData: (a) => pub.verifyTypedData(a),
  getTransactionCount: (a) => pub.getTransactionCount(a),
  writeContract: (a) =>
    sendTx({
      to: a.address,
      data: a.dataSuffix
        ? concatHex([encodeFunctionData({ abi: a.abi, functionName: a.functionName, args: a.args }), a.dataSuffix])
        : encodeFunctionData({ abi: a.abi, functionName: a.functionName, args: a.args }),
      gas: a.gas,
    }),
  sendTransaction: (a) => sendTx({ to: a.to, data: a.data }),
  waitForTransactionReceipt: waitForReceipt,
});

const facilitator = new x402Facilitator()
  .register(NETWORK_V2, new ExactEvmScheme(signer))
  .registerV1(NETWORK_V1, new ExactEvmSchemeV1(signer));

// ---------------------------------------------------------------------------------------------
// HTTP
const stats = { verify: 0, settle: 0, settleOk: 0, settleFail: 0 };
const app = express();
app.use(express.json({ limit: "1mb" }));

function summary({ paymentPayload: p, paymentRequirements: r }) {
  const auth = p?.payload?.authorization ?? {};
  return `v${p?.x402Version} ${r?.network} ${r?.amount ?? r?.maxAmountRequired} from=${auth.from} to=${r?.payTo} nonce=${auth.nonce}`;
}

function readBody(req, res) {
  const { paymentPayload, paymentRequirements } = req.body ?? {};
  if (!paymentPayload || !paymentRequirements) {
    res.status(400).json({ error: "body must have paymentPayload and paymentRequirements" });
    return null;
  }
  return { paymentPayload, paymentRequirements };
}

app.post("/verify", async (req, res) => {
  stats.verify += 1;
  const body = readBody(req, res);
  if (!body) return;
  try {
    const result = await facilitator.verify(body.paymentPayload, body.paymentRequirements);
    log("verify", summary(body), "->", JSON.stringify(result));
    res.json(result);
  } catch (err) {
    log("verify", summary(body), "threw", err?.stack ?? err);
    res.status(500).json({ error: String(err?.message ?? err) });
  }
});

async function settle({ paymentPayload, paymentRequirements }) {
  const network = paymentRequirements.network;
  const payer = paymentPayload.payload?.authorization?.from;
  if (mode === "failsettle") {
    return {
      success: false,
      errorReason: "unexpected_settle_error",
      errorMessage: "failsettle mode: this facilitator refuses every settlement",
      transaction: "",
      network,
      payer,
    };
  }
  if (mode === "sigonly") {
    const verdict = await facilitator.verify(paymentPayload, paymentRequirements);
    if (!verdict.isValid) {
      return {
        success: false,
        errorReason: verdict.invalidReason,
        errorMessage: verdict.invalidMessage,
        transaction: "",
        network,
        payer: verdict.payer ?? payer,
      };
    }
    // No transaction: a stable fake hash derived from the signature.
    const transaction = keccak256(paymentPayload.payload.signature);
    return { success: true, transaction, network, payer: verdict.payer ?? payer, extra: { sigonly: true } };
  }
  return facilitator.settle(paymentPayload, paymentRequirements);
}

app.post("/settle", async (req, res) => {
  stats.settle += 1;
  const body = readBody(req, res);
  if (!body) {
    stats.settleFail += 1;
    return;
  }
  try {
    const result = await settle(body);
    if (result.success) stats.settleOk += 1;
    else stats.settleFail += 1;
    log(`settle[${mode}]`, summary(body), "->", JSON.stringify(result));
    res.json(result);
  } catch (err) {
    stats.settleFail += 1;
    log(`settle[${mode}]`, summary(body), "threw", err?.stack ?? err);
    res.status(500).json({ error: String(err?.message ?? err) });
  }
});

app.get("/supported", (_req, res) => res.json(facilitator.getSupported()));
app.get("/stats", (_req, res) => res.json(stats));
app.get("/health", (_req, res) => res.json({ ok: true, mode, signer: account.address, rpc }));

serve(app, "facilitator");
log(`mode=${mode} signer=${account.address} rpc=${rpc}`);
