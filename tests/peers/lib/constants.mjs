// Fixed facts shared by the harness processes (no dependencies: the v1 server imports this too).

export const CHAIN_ID = 84532; // Base Sepolia
export const NETWORK_V2 = "eip155:84532"; // CAIP-2 name used by x402 v2
export const NETWORK_V1 = "base-sepolia"; // legacy name used by x402 v1

// The real Base Sepolia addresses: the reference packages have these built in.
export const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
export const MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11";

// anvil's default accounts: mnemonic "test test test test test test test test test test test junk",
// m/44'/60'/0'/0/i, 10000 ETH each.
export const DEV_ACCOUNTS = [
  ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"], // facilitator
  ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"], // payer
  ["0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"], // payTo
  ["0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"],
  ["0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"],
  ["0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"],
  ["0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"],
  ["0x14dC79964da2C08b23698B3D3cc7Ca32193d9955", "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"],
  ["0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"],
  ["0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"], // payToAlt
].map(([address, privateKey], index) => ({ index, address, privateKey }));
export const FACILITATOR_INDEX = 0;
export const PAYER_INDEX = 1;
export const PAY_TO_INDEX = 2;
export const PAY_TO_ALT_INDEX = 9;
export const FUNDED_INDEXES = [1, 3, 4, 5, 6, 7, 8];
export const FUND_ATOMIC = 1_000_000_000n; // 1000 USDC (6 decimals)

// Paid routes of both paywall servers. `alt` is a second option (v2 only: x402 v1 has one payTo per
// route, so the v1 server uses `price` alone and `descriptionV1` when given).
export const PAID_ROUTES = [
  { method: "GET", path: "/cheap", price: "$0.001", description: "Cheap test resource ($0.001)" },
  { method: "GET", path: "/mid", price: "$0.05", description: "Mid-priced test resource ($0.05)" },
  { method: "GET", path: "/pricey", price: "$2.00", description: "Pricey test resource ($2.00, above the reference clients' default caps)" },
  {
    method: "GET", path: "/multi", price: "$0.01", alt: "$0.02",
    description: "Two payment options: $0.01 to payTo or $0.02 to payToAlt",
    descriptionV1: "One payment option, $0.01 to payTo (x402 v1 has one payTo per route)",
  },
  { method: "POST", path: "/echo", price: "$0.01", description: "Echoes the JSON request body ($0.01)" },
  { method: "GET", path: "/slow", price: "$0.001", description: "Answers 2 s after the paid request ($0.001)" },
];
export const MAX_TIMEOUT_SECONDS = 300;

/** Mounts the route handlers (after the paywall middleware) on an express 4 or 5 app. */
export function mountRoutes(app, x402) {
  const answer = (route, more = {}) => ({ route, ok: true, x402, ...more });
  app.get("/free", (_req, res) => res.json(answer("free")));
  app.get("/cheap", (_req, res) => res.json(answer("cheap")));
  app.get("/mid", (_req, res) => res.json(answer("mid")));
  app.get("/pricey", (_req, res) => res.json(answer("pricey")));
  app.get("/multi", (_req, res) => res.json(answer("multi")));
  app.post("/echo", (req, res) => res.json(answer("echo", { echo: req.body ?? null })));
  app.get("/slow", (_req, res) => setTimeout(() => res.json(answer("slow")), 2000));
}
