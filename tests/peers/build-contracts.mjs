#!/usr/bin/env node
// Compiles contracts/*.sol with the pinned solc-js (0.8.26) and writes contracts/build/<Name>.json
// ({ name, compiler, abi, selectors, runtimeBytecode, storage }). The artifacts are committed: the harness only
// ever installs runtime bytecode with anvil_setCode, so tests never need a compiler.
//
//   node tests/peers/build-contracts.mjs          (developer action, after editing a .sol file)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const srcDir = path.join(here, "contracts");
const outDir = path.join(srcDir, "build");
const solc = createRequire(import.meta.url)("solc");

const sources = {};
for (const file of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(srcDir, file), "utf8") };
}
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.deployedBytecode.object", "evm.methodIdentifiers", "storageLayout"] } },
};
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings })));

let failed = false;
for (const msg of output.errors ?? []) {
  console.error(msg.formattedMessage);
  if (msg.severity === "error") failed = true;
}
if (failed) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      name,
      source: `contracts/${file}`,
      compiler: `solc-js ${solc.version()}`,
      settings: { optimizer: settings.optimizer, evmVersion: settings.evmVersion },
      abi: c.abi,
      selectors: c.evm.methodIdentifiers,
      runtimeBytecode: `0x${c.evm.deployedBytecode.object}`,
      // slot of every state variable, so the harness can seed balances with anvil_setStorageAt
      storage: Object.fromEntries(c.storageLayout.storage.map((s) => [s.label, Number(s.slot)])),
    };
    const out = path.join(outDir, `${name}.json`);
    fs.writeFileSync(out, `${JSON.stringify(artifact, null, 2)}\n`);
    console.log(`${path.relative(process.cwd(), out)}: ${c.evm.deployedBytecode.object.length / 2} bytes of runtime code`);
  }
}
