// Reference x402 v1 paywall server: x402-express 1.2.0 (with its own express 4 from tests/peers/v1),
// network base-sepolia, settling through the local facilitator. x402 v1 takes one payTo per
// middleware and one price per route, so /multi offers only its first option here.
// Config (sent by peers.mjs over IPC): { facilitator, payTo }.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { MAX_TIMEOUT_SECONDS, NETWORK_V1, PAID_ROUTES, mountRoutes } from "./constants.mjs";
import { childConfig, logger, serve } from "./child.mjs";

const v1Dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "v1");
const requireV1 = createRequire(path.join(v1Dir, "package.json"));
const express = requireV1("express");
const { paymentMiddleware } = requireV1("x402-express");

const { facilitator, payTo } = await childConfig();
const log = logger("v1");

const routes = Object.fromEntries(
  PAID_ROUTES.map((r) => [
    `${r.method} ${r.path}`,
    {
      price: r.price,
      network: NETWORK_V1,
      config: { description: r.descriptionV1 ?? r.description, mimeType: "application/json", maxTimeoutSeconds: MAX_TIMEOUT_SECONDS },
    },
  ]),
);

const app = express();
app.use(express.json());
app.use((req, _res, next) => {
  const paid = req.get("x-payment") ? " X-PAYMENT" : req.get("payment-signature") ? " PAYMENT-SIGNATURE(ignored by v1)" : "";
  log(req.method, req.originalUrl + paid);
  next();
});
app.use(paymentMiddleware(payTo, routes, { url: facilitator }));
mountRoutes(app, 1);

serve(app, "v1");
log(`payTo=${payTo} facilitator=${facilitator}`);
