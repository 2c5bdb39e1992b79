// Reference x402 v2 paywall server: @x402/express paymentMiddleware + x402ResourceServer with the
// reference "exact" EVM server scheme, network eip155:84532, settling through the local facilitator.
// Config (sent by peers.mjs over IPC): { facilitator, payTo, payToAlt }.
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { MAX_TIMEOUT_SECONDS, NETWORK_V2, PAID_ROUTES, mountRoutes } from "./constants.mjs";
import { childConfig, logger, serve } from "./child.mjs";

const { facilitator, payTo, payToAlt } = await childConfig();
const log = logger("v2");

const option = (price, to) => ({
  scheme: "exact",
  price,
  network: NETWORK_V2,
  payTo: to,
  maxTimeoutSeconds: MAX_TIMEOUT_SECONDS,
});
const routes = Object.fromEntries(
  PAID_ROUTES.map((r) => [
    `${r.method} ${r.path}`,
    {
      accepts: r.alt ? [option(r.price, payTo), option(r.alt, payToAlt)] : option(r.price, payTo),
      description: r.description,
      mimeType: "application/json",
    },
  ]),
);

const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitator }))
  .register(NETWORK_V2, new ExactEvmScheme());

const app = express();
app.use(express.json());
app.use((req, _res, next) => {
  const paid = req.get("payment-signature") ? " PAYMENT-SIGNATURE" : req.get("x-payment") ? " X-PAYMENT(ignored by v2)" : "";
  log(req.method, req.originalUrl + paid);
  next();
});
app.use(paymentMiddleware(routes, resourceServer, { appName: "purser x402 peers", testnet: true }));
mountRoutes(app, 2);

serve(app, "v2");
log(`payTo=${payTo} payToAlt=${payToAlt} facilitator=${facilitator}`);
