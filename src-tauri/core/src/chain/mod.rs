//! Owns Purser's view of the chain: a small JSON-RPC client (chain id, `balanceOf`,
//! `authorizationState`, transaction receipts and their `Transfer` logs, ABI by alloy-sol-types),
//! the wallet's balances and funding data, and the reconciliation of receipts with the chain.

pub mod funds;
pub mod reconcile;

use crate::networks::{Network, NetworkError};
use alloy_primitives::{Address, Bytes, B256, U256, U64};
use alloy_sol_types::{sol, SolCall, SolEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

sol! {
    function balanceOf(address owner) external view returns (uint256);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    event Transfer(address indexed from, address indexed to, uint256 value);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the RPC at {url} could not be reached: {why}")]
    Unreachable { url: String, why: String },
    #[error("the RPC at {url} answered an error to {method}: {message}")]
    Rpc { url: String, method: &'static str, message: String },
    #[error("the RPC at {url} gave an unreadable answer to {method}: {why}")]
    BadAnswer { url: String, method: &'static str, why: String },
    #[error("the RPC at {url} serves chain {got}, but {network} is chain {expected}: fix it with `purser network set-rpc`")]
    ChainMismatch { url: String, network: String, expected: u64, got: u64 },
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("there is no wallet in this data dir (`purser wallet new` or `purser wallet import`)")]
    NoWallet,
}

impl ChainError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            ChainError::Unreachable { .. } => crate::api::ErrorCode::RpcUnreachable,
            ChainError::Rpc { .. } => crate::api::ErrorCode::RpcError,
            ChainError::BadAnswer { .. } => crate::api::ErrorCode::RpcBadAnswer,
            ChainError::ChainMismatch { .. } => crate::api::ErrorCode::RpcChainMismatch,
            ChainError::Network(e) => e.code(),
            ChainError::Ledger(e) => e.code(),
            ChainError::NoWallet => crate::api::ErrorCode::NoWallet,
        }
    }
}

pub type Result<T> = std::result::Result<T, ChainError>;

/// One `Transfer` log of a transaction receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLog {
    pub token: Address,
    pub from: Address,
    pub to: Address,
    pub value: U256,
}

/// What the chain says of a mined transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxReceipt {
    pub success: bool,
    pub block: u64,
    pub transfers: Vec<TransferLog>,
}

#[derive(Deserialize)]
struct RawLog {
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReceipt {
    status: Option<U64>,
    block_number: Option<U64>,
    #[serde(default)]
    logs: Vec<RawLog>,
}

#[derive(Deserialize)]
struct RawBlock {
    number: U64,
    timestamp: U64,
}

/// A JSON-RPC client for one network whose chain id was checked against the registry.
#[derive(Clone)]
pub struct Rpc {
    http: reqwest::Client,
    url: reqwest::Url,
    pub network: &'static Network,
}

/// The HTTP client chain reads use: no env proxies, short timeouts (a dead RPC never stalls).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(10)).build().unwrap_or_default()
}

impl Rpc {
    /// Connects to `network` through `url` and checks `eth_chainId` against the registry
    /// (`rpc_chain_mismatch` otherwise): nothing read from a wrong chain is ever trusted.
    pub async fn connect(http: reqwest::Client, network: &'static Network, url: reqwest::Url) -> Result<Rpc> {
        let rpc = Rpc { http, url, network };
        let got: U64 = rpc.call("eth_chainId", json!([])).await?;
        let got = got.to::<u64>();
        if got != network.chain_id {
            return Err(ChainError::ChainMismatch { url: rpc.url_shown(), network: network.v1_name.into(), expected: network.chain_id, got });
        }
        Ok(rpc)
    }

    /// The URL without credentials or query, for messages.
    fn url_shown(&self) -> String {
        format!("{}://{}{}", self.url.scheme(), self.url.host_str().unwrap_or(""), self.url.port().map(|p| format!(":{p}")).unwrap_or_default())
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, method: &'static str, params: Value) -> Result<T> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let unreachable = |e: reqwest::Error| ChainError::Unreachable { url: self.url_shown(), why: e.to_string() };
        let resp = self.http.post(self.url.clone()).json(&body).send().await.map_err(unreachable)?;
        let bad = |why: String| ChainError::BadAnswer { url: self.url_shown(), method, why };
        if !resp.status().is_success() {
            return Err(bad(format!("HTTP {}", resp.status())));
        }
        let v: Value = resp.json().await.map_err(|e| bad(e.to_string()))?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let message = err.get("message").and_then(Value::as_str).unwrap_or("(no message)").chars().take(300).collect();
            return Err(ChainError::Rpc { url: self.url_shown(), method, message });
        }
        serde_json::from_value(v.get("result").cloned().unwrap_or(Value::Null)).map_err(|e| bad(e.to_string()))
    }

    async fn eth_call(&self, to: Address, data: Vec<u8>) -> Result<Bytes> {
        self.call("eth_call", json!([{"to": to, "data": Bytes::from(data)}, "latest"])).await
    }

    /// `balanceOf(owner)` of the ERC-20 at `token`, in its atomic units.
    pub async fn balance_of(&self, token: Address, owner: Address) -> Result<U256> {
        let out = self.eth_call(token, balanceOfCall { owner }.abi_encode()).await?;
        balanceOfCall::abi_decode_returns(&out).map_err(|e| ChainError::BadAnswer { url: self.url_shown(), method: "eth_call", why: e.to_string() })
    }

    /// EIP-3009 `authorizationState(authorizer, nonce)`: true once the nonce was used (or cancelled).
    pub async fn authorization_used(&self, token: Address, authorizer: Address, nonce: B256) -> Result<bool> {
        let out = self.eth_call(token, authorizationStateCall { authorizer, nonce }.abi_encode()).await?;
        authorizationStateCall::abi_decode_returns(&out).map_err(|e| ChainError::BadAnswer { url: self.url_shown(), method: "eth_call", why: e.to_string() })
    }

    /// The latest block's number and timestamp (the chain's own clock).
    pub async fn latest_block(&self) -> Result<(u64, u64)> {
        let b: RawBlock = self.call("eth_getBlockByNumber", json!(["latest", false])).await?;
        Ok((b.number.to::<u64>(), b.timestamp.to::<u64>()))
    }

    /// Block `number`'s number and timestamp (`None`: past the chain's head).
    pub async fn block(&self, number: u64) -> Result<Option<(u64, u64)>> {
        let b: Option<RawBlock> = self.call("eth_getBlockByNumber", json!([U64::from(number), false])).await?;
        Ok(b.map(|b| (b.number.to::<u64>(), b.timestamp.to::<u64>())))
    }

    /// The nonces of every EIP-3009 `AuthorizationUsed(authorizer, nonce)` event the token at
    /// `token` emitted for `authorizer` in blocks `from..=to` (read in chunks of `chunk` blocks,
    /// halved down to 100 while the RPC refuses a range as too large).
    pub async fn authorizations_used_by(&self, token: Address, authorizer: Address, from: u64, to: u64, chunk: u64) -> Result<Vec<B256>> {
        let mut out = Vec::new();
        let (mut start, mut chunk) = (from, chunk.max(1));
        while start <= to {
            let end = to.min(start.saturating_add(chunk - 1));
            let filter = json!([{
                "address": token,
                "fromBlock": U64::from(start),
                "toBlock": U64::from(end),
                "topics": [AuthorizationUsed::SIGNATURE_HASH, B256::left_padding_from(authorizer.as_slice())],
            }]);
            let logs: Vec<RawLog> = match self.call("eth_getLogs", filter).await {
                Err(ChainError::Rpc { .. }) if chunk > 100 => {
                    chunk /= 2;
                    continue;
                }
                r => r?,
            };
            for l in logs {
                if l.address == token && l.topics.first() == Some(&AuthorizationUsed::SIGNATURE_HASH) {
                    if let Ok(ev) = AuthorizationUsed::decode_raw_log(l.topics.iter().copied(), &l.data) {
                        if ev.authorizer == authorizer {
                            out.push(ev.nonce);
                        }
                    }
                }
            }
            start = end + 1;
        }
        Ok(out)
    }

    /// The receipt of a mined transaction (`None`: not on chain, or not mined yet), with every
    /// `Transfer(address,address,uint256)` log it emitted.
    pub async fn tx_receipt(&self, hash: B256) -> Result<Option<TxReceipt>> {
        let raw: Option<RawReceipt> = self.call("eth_getTransactionReceipt", json!([hash])).await?;
        Ok(raw.map(|r| TxReceipt {
            success: r.status.is_some_and(|s| s.to::<u64>() == 1),
            block: r.block_number.map(|b| b.to::<u64>()).unwrap_or(0),
            transfers: r
                .logs
                .iter()
                .filter(|l| l.topics.first() == Some(&Transfer::SIGNATURE_HASH))
                .filter_map(|l| Transfer::decode_raw_log(l.topics.iter().copied(), &l.data).ok().map(|t| TransferLog { token: l.address, from: t.from, to: t.to, value: t.value }))
                .collect(),
        }))
    }
}
