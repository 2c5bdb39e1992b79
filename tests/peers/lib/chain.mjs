// The local chain: locate anvil, install the contracts at their Base Sepolia addresses, seed balances.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { CHAIN_ID, MULTICALL3, USDC } from "./constants.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const PEERS_DIR = path.join(here, "..");

/** The anvil binary: $X402_ANVIL, else the one shipped in @foundry-rs/anvil's platform package. */
export function anvilBinary() {
  const bin = process.env.X402_ANVIL || bundledAnvil();
  if (!fs.existsSync(bin)) throw new Error(`no anvil binary at ${bin} (run tests/peers/setup.sh, or set X402_ANVIL=/path/to/anvil)`);
  return bin;
}

function bundledAnvil() {
  const os = { linux: "linux", darwin: "darwin", win32: "win32" }[process.platform];
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch];
  const pkg = `@foundry-rs/anvil-${os}-${arch}`;
  let pkgJson;
  try {
    pkgJson = createRequire(path.join(PEERS_DIR, "package.json")).resolve(`${pkg}/package.json`);
  } catch {
    throw new Error(`${pkg} is not installed: run tests/peers/setup.sh (or set X402_ANVIL=/path/to/anvil)`);
  }
  return path.join(path.dirname(pkgJson), "bin", os === "win32" ? "anvil.exe" : "anvil");
}

export function artifact(name) {
  return JSON.parse(fs.readFileSync(path.join(PEERS_DIR, "contracts", "build", `${name}.json`), "utf8"));
}

let rpcId = 0;
/** One JSON-RPC call, or a batch when given an array of [method, params]. */
export async function rpc(url, method, params = []) {
  const batch = Array.isArray(method);
  const calls = batch ? method : [[method, params]];
  const body = calls.map(([m, p]) => ({ jsonrpc: "2.0", id: ++rpcId, method: m, params: p }));
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(batch ? body : body[0]),
    signal: AbortSignal.timeout(10_000),
  });
  const json = await res.json();
  const answers = batch ? json : [json];
  for (const a of answers) if (a.error) throw new Error(`${url} ${JSON.stringify(a.error)}`);
  if (!batch) return answers[0].result;
  const byId = new Map(answers.map((a) => [a.id, a.result]));
  return body.map((b) => byId.get(b.id));
}

// ABI words by hand (32-byte, hex without 0x): enough for a few fixed calls, and it keeps
// peers.mjs free of viem, whose loading would sit on the startup path.
const word = (value) => BigInt(value).toString(16).padStart(64, "0");
const utf8Hex = (text) => `0x${Buffer.from(text, "utf8").toString("hex")}`;

/**
 * Installs TestUsdc at the USDC address and Multicall3Lite at the Multicall3 address (runtime code
 * only: no constructor runs) and seeds balances by writing storage. `balances` maps address (any
 * case) -> atomic units. anvil itself hashes (web3_sha3) the mapping slots and the EIP-712 domain.
 */
export async function installContracts(url, balances) {
  const usdc = artifact("TestUsdc");
  const multicall = artifact("Multicall3Lite");
  const entries = [...balances];
  const supply = entries.reduce((sum, [, atomic]) => sum + atomic, 0n);

  // balanceOf[address] lives at keccak256(address ‖ slot of balanceOf)
  const hashes = await rpc(url, [
    ...entries.map(([address]) => ["web3_sha3", [`0x${word(address)}${word(usdc.storage.balanceOf)}`]]),
    ["web3_sha3", [utf8Hex("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")]],
    ["web3_sha3", [utf8Hex("USDC")]],
    ["web3_sha3", [utf8Hex("2")]],
  ]);
  const [domainType, nameHash, versionHash] = hashes.slice(entries.length);
  const [expectedDomain] = await rpc(url, [
    ["web3_sha3", [`0x${[domainType, nameHash, versionHash, CHAIN_ID, USDC].map(word).join("")}`]],
  ]);

  await rpc(url, [
    ["anvil_setCode", [USDC, usdc.runtimeBytecode]],
    ["anvil_setCode", [MULTICALL3, multicall.runtimeBytecode]],
    ...entries.map(([, atomic], i) => ["anvil_setStorageAt", [USDC, hashes[i], `0x${word(atomic)}`]]),
    ["anvil_setStorageAt", [USDC, `0x${word(usdc.storage.totalSupply)}`, `0x${word(supply)}`]],
    // one block on top of genesis, so "latest" carries a real timestamp (anvil runs eth_call on the
    // genesis block with block.timestamp = 1)
    ["evm_mine", []],
  ]);

  // Check what the reference code relies on: the EIP-712 domain, a seeded balance, Multicall3.
  const call = (to, artifact, signature, args = "") =>
    ["eth_call", [{ to, data: `0x${artifact.selectors[signature]}${args}` }, "latest"]];
  const [firstAddress, firstAtomic] = entries[0];
  const [domain, balance, chainId] = await rpc(url, [
    call(USDC, usdc, "DOMAIN_SEPARATOR()"),
    call(USDC, usdc, "balanceOf(address)", word(firstAddress)),
    call(MULTICALL3, multicall, "getChainId()"),
  ]);
  if (domain !== expectedDomain) throw new Error(`token DOMAIN_SEPARATOR ${domain} != expected ${expectedDomain}`);
  if (BigInt(balance) !== firstAtomic) throw new Error(`seeded balance of ${firstAddress} reads ${BigInt(balance)}, not ${firstAtomic}`);
  if (BigInt(chainId) !== BigInt(CHAIN_ID)) throw new Error(`Multicall3 getChainId() answered ${chainId}`);
}
