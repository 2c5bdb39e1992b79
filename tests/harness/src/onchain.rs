//! Chain-side helpers for the balance and reconciliation tests: anvil's clock (time travel),
//! an unrelated transaction, submitting a payment's captured EIP-3009 authorization on chain
//! ourselves, and `SettlingPaywall`, a v1 paywall whose paid answer the test chooses (a lying
//! settlement header, or no settlement at all) and which keeps every `X-PAYMENT` it received.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::hostile::RawResponse;
use crate::USDC_BASE_SEPOLIA;

pub use crate::chain::rpc_call as rpc;

/// Moves anvil's clock `secs` ahead and mines a block stamped with it.
pub async fn time_travel(url: &str, secs: u64) {
    rpc(url, "evm_increaseTime", json!([secs])).await;
    rpc(url, "evm_mine", json!([])).await;
}

async fn mined(url: &str, hash: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = rpc(url, "eth_getTransactionReceipt", json!([hash])).await;
        if !r.is_null() {
            return r;
        }
        assert!(Instant::now() < deadline, "tx {hash} not mined in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain 1-wei ETH transfer between two anvil accounts (a real tx that moves no USDC).
pub async fn unrelated_tx(url: &str, from: &str, to: &str) -> String {
    let hash = rpc(url, "eth_sendTransaction", json!([{"from": from, "to": to, "value": "0x1"}])).await;
    let hash = hash.as_str().expect("tx hash").to_string();
    assert_eq!(mined(url, &hash).await["status"], "0x1");
    hash
}

fn word_hex(v: &Value) -> String {
    // a decimal string (value, times), a 0x address or a 0x bytes32
    let s = v.as_str().unwrap_or_else(|| panic!("authorization field {v} is not a string"));
    if let Some(h) = s.strip_prefix("0x") {
        format!("{:0>64}", h.to_ascii_lowercase())
    } else {
        format!("{:0>64x}", s.parse::<u128>().unwrap_or_else(|e| panic!("{s}: {e}")))
    }
}

/// Submits the EIP-3009 authorization carried by a captured x402 v1 `X-PAYMENT` header
/// (`transferWithAuthorization(..., v, r, s)`, sent by the unlocked anvil account `sender`) and
/// waits for it to be mined; returns the tx hash. The token contract checks the signature.
pub async fn submit_authorization(url: &str, x_payment: &str, sender: &str) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(x_payment.trim()).expect("X-PAYMENT is base64");
    let p: Value = serde_json::from_slice(&raw).expect("X-PAYMENT is JSON");
    let a = &p["payload"]["authorization"];
    let sig = p["payload"]["signature"].as_str().expect("signature").trim_start_matches("0x").to_string();
    assert_eq!(sig.len(), 130, "65-byte signature: {sig}");
    let sighash = rpc(url, "web3_sha3", json!([format!("0x{}", hex_of(b"transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"))])).await;
    let selector = &sighash.as_str().unwrap()[2..10];
    let (r, s, v) = (&sig[0..64], &sig[64..128], &sig[128..130]);
    let mut data = format!("0x{selector}");
    for k in ["from", "to", "value", "validAfter", "validBefore", "nonce"] {
        data.push_str(&word_hex(&a[k]));
    }
    data.push_str(&format!("{v:0>64}{r}{s}"));
    let hash = rpc(url, "eth_sendTransaction", json!([{"from": sender, "to": USDC_BASE_SEPOLIA, "data": data, "gas": "0x40000"}])).await;
    let hash = hash.as_str().expect("tx hash").to_string();
    let rec = mined(url, &hash).await;
    assert_eq!(rec["status"], "0x1", "transferWithAuthorization reverted: {rec}");
    hash
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A v1 `X-PAYMENT-RESPONSE` value claiming success with `tx`.
pub fn settlement_header(tx: &str, payer: &str) -> String {
    let v = json!({"success": true, "transaction": tx, "network": "base-sepolia", "payer": payer});
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&v).unwrap())
}

#[derive(Default)]
struct PaywallState {
    paid_answer: Option<RawResponse>,
    payments: Vec<String>,
}

/// A v1 paywall on 127.0.0.1:0: unpaid requests get a good 402 for `amount` atomic USDC to the
/// anvil payee; paid ones get the answer the test set (default: the same 402 again, i.e. no
/// settlement), and their `X-PAYMENT` is kept.
pub struct SettlingPaywall {
    pub url: String,
    state: Arc<Mutex<PaywallState>>,
    task: tokio::task::JoinHandle<()>,
}

impl SettlingPaywall {
    pub async fn start(amount: &str) -> SettlingPaywall {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind paywall");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state: Arc<Mutex<PaywallState>> = Arc::default();
        let (st, amount, base) = (state.clone(), amount.to_string(), url.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, amount, base) = (st.clone(), amount.clone(), base.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(st.clone(), amount.clone(), base.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        SettlingPaywall { url, state, task }
    }

    /// What paid requests get from now on.
    pub fn on_paid(&self, resp: RawResponse) {
        self.state.lock().unwrap().paid_answer = Some(resp);
    }

    /// Every `X-PAYMENT` value received, in order.
    pub fn payments(&self) -> Vec<String> {
        self.state.lock().unwrap().payments.clone()
    }
}

impl Drop for SettlingPaywall {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(st: Arc<Mutex<PaywallState>>, amount: String, base: String, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let payment = req.headers().get("x-payment").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let challenge = crate::challenge::v1_response(&crate::challenge::good_v1_body(&format!("{base}{path}"), &amount));
    let resp = match payment {
        Some(p) => {
            let mut s = st.lock().unwrap();
            s.payments.push(p);
            s.paid_answer.clone().unwrap_or(challenge)
        }
        None => challenge,
    };
    let mut b = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    Ok(b.body(Full::new(Bytes::from(resp.body))).expect("response"))
}
