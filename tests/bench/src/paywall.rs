//! Owns the bench's fast x402 v2 paywall, in Rust so that the paywall is not the bottleneck:
//! it answers 402 with a PAYMENT-REQUIRED challenge, and really verifies a PAYMENT-SIGNATURE
//! retry (echoed `accepted`, EIP-712 TransferWithAuthorization signer, value, payee, validity,
//! nonce never seen) before answering 200 with a synthetic PAYMENT-RESPONSE settlement.

use crate::net::{bind, json_response, serve};
use alloy_primitives::{address, keccak256, Address, Signature, B256, U256};
use alloy_sol_types::{eip712_domain, sol, Eip712Domain, SolStruct};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

sol! {
    /// EIP-3009's signed message.
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

const ASSET: Address = address!("036CbD53842c5426634e7929541eC2318f3dCF7e");
const PAY_TO: Address = address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
const AMOUNT: u64 = 1000;
const DOMAIN: Eip712Domain = eip712_domain! { name: "USDC", version: "2", chain_id: 84532, verifying_contract: ASSET, };
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Counters the report shows next to the figures.
#[derive(Default)]
pub struct Counters {
    pub challenges: AtomicU64,
    pub paid: AtomicU64,
    pub rejected: AtomicU64,
    pub first_rejection: Mutex<Option<String>>,
}

struct State {
    /// The option offered, compared with the retry's `accepted`.
    accepted: Value,
    /// The PAYMENT-REQUIRED header value.
    required_header: String,
    seen_nonces: Mutex<HashSet<B256>>,
    counters: Arc<Counters>,
}

/// A running paywall: every path is a $0.001 (1000 atomic USDC) paid route.
pub struct Paywall {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
}

impl Paywall {
    /// Starts on 127.0.0.1:0 on the current runtime.
    pub async fn start() -> Result<Paywall> {
        let listener = bind().await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::new(&format!("http://127.0.0.1:{port}/cheap")));
        let counters = state.counters.clone();
        let addr = serve(
            listener,
            Arc::new(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { state.answer(&req) }
            }),
        )?;
        Ok(Paywall { addr, counters })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl State {
    fn new(resource_url: &str) -> State {
        let accepted = json!({"scheme": "exact", "network": "eip155:84532", "amount": AMOUNT.to_string(),
            "asset": ASSET.to_checksum(None), "payTo": PAY_TO.to_checksum(None), "maxTimeoutSeconds": 300,
            "extra": {"name": "USDC", "version": "2"}});
        let required = json!({"x402Version": 2, "error": "Payment required",
            "resource": {"url": resource_url, "description": "purser-bench fast paywall", "mimeType": "application/json"},
            "accepts": [accepted.clone()]});
        State { accepted, required_header: B64.encode(required.to_string()), seen_nonces: Mutex::new(HashSet::new()), counters: Arc::new(Counters::default()) }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(sig) = req.headers().get("payment-signature") else {
            self.counters.challenges.fetch_add(1, Ordering::Relaxed);
            return self.challenge();
        };
        match self.verify(sig.as_bytes()) {
            Ok((payer, tx)) => {
                self.counters.paid.fetch_add(1, Ordering::Relaxed);
                let settlement = json!({"success": true, "transaction": tx, "network": "eip155:84532", "payer": payer.to_checksum(None)});
                json_response(StatusCode::OK, r#"{"route":"cheap","ok":true}"#, &[("payment-response", B64.encode(settlement.to_string()))])
            }
            Err(e) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                let mut first = self.counters.first_rejection.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
                self.challenge()
            }
        }
    }

    fn challenge(&self) -> Response<Full<Bytes>> {
        json_response(StatusCode::PAYMENT_REQUIRED, "{}", &[("payment-required", self.required_header.clone())])
    }

    /// Checks a PAYMENT-SIGNATURE value; the payer and a synthetic transaction hash if it pays.
    fn verify(&self, header: &[u8]) -> Result<(Address, String)> {
        let doc: Value = serde_json::from_slice(&B64.decode(header).context("not base64")?).context("not JSON")?;
        if doc["x402Version"] != json!(2) {
            bail!("x402Version is not 2");
        }
        if doc["accepted"] != self.accepted {
            bail!("accepted differs from the option offered: {}", doc["accepted"]);
        }
        let auth = &doc["payload"]["authorization"];
        let text = |k: &str| auth[k].as_str().ok_or_else(|| anyhow!("authorization.{k} is missing"));
        let from: Address = text("from")?.parse().context("from")?;
        let to: Address = text("to")?.parse().context("to")?;
        let value: U256 = text("value")?.parse().context("value")?;
        let valid_after: u64 = text("validAfter")?.parse().context("validAfter")?;
        let valid_before: u64 = text("validBefore")?.parse().context("validBefore")?;
        let nonce: B256 = text("nonce")?.parse().context("nonce")?;
        let sig_hex = doc["payload"]["signature"].as_str().ok_or_else(|| anyhow!("signature is missing"))?;
        let sig_bytes = hex::decode(sig_hex.trim_start_matches("0x")).context("signature is not hex")?;
        let signature = Signature::try_from(sig_bytes.as_slice()).map_err(|e| anyhow!("bad signature: {e}"))?;

        if to != PAY_TO || value != U256::from(AMOUNT) {
            bail!("pays {value} to {to}, not {AMOUNT} to {PAY_TO}");
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        if valid_before <= now || valid_after > now {
            bail!("not valid now (validAfter {valid_after}, validBefore {valid_before}, now {now})");
        }
        let msg = TransferWithAuthorization { from, to, value, validAfter: U256::from(valid_after), validBefore: U256::from(valid_before), nonce };
        let signer = signature.recover_address_from_prehash(&msg.eip712_signing_hash(&DOMAIN)).map_err(|e| anyhow!("cannot recover: {e}"))?;
        if signer != from {
            bail!("signed by {signer}, not by authorization.from {from}");
        }
        if !self.seen_nonces.lock().unwrap_or_else(|p| p.into_inner()).insert(nonce) {
            bail!("nonce {nonce} was already used");
        }
        Ok((from, keccak256(&sig_bytes).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_and_type_hash_are_eip3009_usdc() {
        let msg = TransferWithAuthorization { from: PAY_TO, to: PAY_TO, value: U256::ZERO, validAfter: U256::ZERO, validBefore: U256::ZERO, nonce: B256::ZERO };
        assert_eq!(hex::encode(msg.eip712_type_hash()), "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267");
        assert_eq!(DOMAIN.chain_id, Some(U256::from(84532u64)));
    }

    /// Purser's own signing and encoding pass verification once; a replay or tampering does not.
    #[test]
    fn verifies_what_purser_signs() {
        use purser_core::x402::{encode_payment, parse_challenge};
        let state = State::new("http://127.0.0.1:1/cheap");
        let challenge = parse_challenge(Some(state.required_header.as_bytes()), b"{}").result.expect("our challenge parses");
        let wallet = purser_core::wallet::Wallet::from_key_hex(crate::purser::KEY).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let (auth, sig) = wallet.sign_transfer(&challenge.accepts[0], now - 600, now + 300, B256::repeat_byte(7)).unwrap();
        let header = encode_payment(&challenge, &challenge.accepts[0], &auth, &sig);
        assert_eq!(header.name, "payment-signature");
        let (payer, tx) = state.verify(header.value.as_bytes()).expect("verifies");
        assert_eq!(payer, wallet.address());
        assert_eq!(tx.len(), 66);
        assert!(state.verify(header.value.as_bytes()).unwrap_err().to_string().contains("already used"));

        let mut doc: Value = serde_json::from_slice(&B64.decode(&header.value).unwrap()).unwrap();
        doc["payload"]["authorization"]["nonce"] = json!(B256::repeat_byte(8).to_string());
        assert!(state.verify(B64.encode(doc.to_string()).as_bytes()).unwrap_err().to_string().contains("signed by"));
        doc["accepted"]["amount"] = json!("1");
        assert!(state.verify(B64.encode(doc.to_string()).as_bytes()).unwrap_err().to_string().contains("accepted differs"));
    }
}
