//! The wallet's funds: balances read over JSON-RPC and cached in the ledger with their time,
//! what active grants could still spend against them (over-allocation warning), the data to fund
//! the wallet (EIP-681 URI, plain instructions), and the pre-signing "insufficient funds" check.

use super::{http_client, ChainError, Result, Rpc};
use crate::api::ApiError;
use crate::ledger::{Ledger, StoredBalance};
use crate::networks::{self, Asset, Network, NetworkConfig};
use alloy_primitives::{Address, U256};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;

/// One network and asset of the wallet, as `purser wallet balance|fund` and the app show it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct NetworkFunds {
    pub network: String,
    pub network_name: String,
    pub chain_id: u64,
    pub testnet: bool,
    pub asset: String,
    pub symbol: String,
    pub decimals: u8,
    pub rpc: String,
    /// The last balance read (atomic units), if one was ever read.
    pub balance_atomic: Option<String>,
    /// The same as an exact decimal (`12.345678`).
    pub balance: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    /// Why this refresh could not read the balance (the cached one, if any, is still shown).
    pub refresh_error: Option<ApiError>,
    /// What active grants that may pay here could still spend (atomic units, exact decimal).
    pub allocated_atomic: String,
    pub allocated: String,
    /// Grants could spend more than the wallet holds.
    pub over_allocated: bool,
    pub warning: Option<String>,
    /// EIP-681 payment URI for a wallet app or a QR code.
    pub fund_uri: String,
    pub instructions: String,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Funds {
    pub address: String,
    pub networks: Vec<NetworkFunds>,
}

/// Micro-USD as atomic units of a dollar stablecoin with `decimals` (rounded up: conservative).
pub fn micros_to_atomic(micros: u64, decimals: u8) -> U256 {
    let m = U256::from(micros);
    if decimals >= 6 {
        m.saturating_mul(U256::from(10u64).pow(U256::from(decimals - 6)))
    } else {
        let d = U256::from(10u64).pow(U256::from(6 - decimals));
        m.div_ceil(d)
    }
}

/// `ethereum:<token>@<chain id>/transfer?address=<wallet>` (EIP-681).
pub fn fund_uri(network: &Network, asset: &Asset, address: Address) -> String {
    format!("ethereum:{}@{}/transfer?address={}", asset.address.to_checksum(None), network.chain_id, address.to_checksum(None))
}

/// Reads `address`'s balance of `asset` on `network` over JSON-RPC (chain id checked first) and
/// caches it in the ledger with the time it was read.
pub async fn refresh_balance(ledger: &Ledger, cfg: &NetworkConfig, network: &'static Network, asset: &Asset, address: Address, now: DateTime<Utc>) -> Result<StoredBalance> {
    let rpc = Rpc::connect(http_client(), network, cfg.rpc_url(network)).await?;
    let atomic = rpc.balance_of(asset.address, address).await?;
    let (l, net, token, owner) = (ledger.clone(), network.caip2, asset.address.to_checksum(None), address.to_checksum(None));
    l.blocking(move |l| l.store_balance(net, &token, &owner, atomic, None, now)).await??;
    Ok(StoredBalance { atomic, block: None, read_at: now })
}

/// The networks to show by default: those active grants may pay on (every one when none).
pub fn default_networks(ledger: &Ledger, now: DateTime<Utc>) -> Result<Vec<&'static Network>> {
    let out = active_networks(ledger, now)?;
    Ok(if out.is_empty() { networks::REGISTRY.iter().collect() } else { out })
}

/// The networks active grants may pay on (none when no grant is active).
pub fn active_networks(ledger: &Ledger, now: DateTime<Utc>) -> Result<Vec<&'static Network>> {
    let mut out: Vec<&'static Network> = Vec::new();
    for g in ledger.list_grants()? {
        if g.state(now) != crate::grants::GrantState::Active {
            continue;
        }
        let names: Vec<&'static Network> = if g.limits.networks.is_empty() { networks::REGISTRY.iter().collect() } else { g.limits.networks.iter().filter_map(|n| networks::by_name(n)).collect() };
        for n in names {
            if !out.iter().any(|o| o.caip2 == n.caip2) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// The wallet's funds on `nets`, refreshed from the chain first when `refresh` (reads run
/// concurrently; a failed read leaves the cached balance and says why).
pub async fn funds(ledger: &Ledger, dir: &Path, address: Address, nets: &[&'static Network], refresh: bool, now: DateTime<Utc>) -> Result<Funds> {
    let cfg = NetworkConfig::load(dir)?;
    let pairs: Vec<(&'static Network, &'static Asset)> = nets.iter().flat_map(|n| n.assets.iter().map(move |a| (*n, a))).collect();
    let errors: Vec<Option<ApiError>> = if refresh {
        let reads = pairs.iter().map(|(n, a)| refresh_balance(ledger, &cfg, n, a, address, now));
        futures_util::future::join_all(reads).await.into_iter().map(|r| r.err().map(|e| ApiError { code: e.code(), message: e.to_string() })).collect()
    } else {
        vec![None; pairs.len()]
    };
    let mut out = Vec::new();
    for ((n, a), refresh_error) in pairs.into_iter().zip(errors) {
        let (token, owner) = (a.address.to_checksum(None), address.to_checksum(None));
        let cached = ledger.stored_balance(n.caip2, &token, &owner)?;
        let allocated = micros_to_atomic(ledger.allocated_micros(n.caip2, now)?, a.decimals);
        let over = cached.as_ref().is_some_and(|b| allocated > b.atomic);
        let dec = |v: U256| crate::money::atomic_decimal(v, a.decimals);
        let warning = match &cached {
            Some(b) if over => {
                Some(format!("your active grants could spend {} {sym} on {} but the wallet holds {} {sym}: add funds or lower the grants", dec(allocated), n.v1_name, dec(b.atomic), sym = a.symbol))
            }
            None => Some(format!("the balance on {} is unknown (never read): payments are not checked against it until it is read", n.v1_name)),
            _ => None,
        };
        out.push(NetworkFunds {
            network: n.caip2.into(),
            network_name: n.v1_name.into(),
            chain_id: n.chain_id,
            testnet: n.testnet,
            asset: token,
            symbol: a.symbol.into(),
            decimals: a.decimals,
            rpc: cfg.rpc_url(n).to_string(),
            balance_atomic: cached.as_ref().map(|b| b.atomic.to_string()),
            balance: cached.as_ref().map(|b| dec(b.atomic)),
            read_at: cached.as_ref().map(|b| b.read_at),
            refresh_error,
            allocated_atomic: allocated.to_string(),
            allocated: dec(allocated),
            over_allocated: over,
            warning,
            fund_uri: fund_uri(n, a, address),
            instructions: format!(
                "Send {sym} on {net} (chain id {id}{kind}) to {addr}. Only {sym} at {token} on {net} counts: another token or another network is not seen by Purser.",
                sym = a.symbol,
                net = n.v1_name,
                id = n.chain_id,
                kind = if n.testnet { ", a testnet: test funds only" } else { "" },
                addr = address.to_checksum(None),
                token = a.address.to_checksum(None)
            ),
        });
    }
    Ok(Funds { address: address.to_checksum(None), networks: out })
}

/// Before signing (the payment's own reservation already made): `Some(message)` when the last
/// known balance cannot cover this payment plus every other payment in flight on that network.
/// An unknown balance checks nothing (`None`): a failed RPC never blocks a payment.
pub fn insufficient(ledger: &Ledger, network: &Network, asset: &Asset, payer: Address, amount: U256, own_micros: u64) -> std::result::Result<Option<String>, ChainError> {
    let Some(bal) = ledger.stored_balance(network.caip2, &asset.address.to_checksum(None), &payer.to_checksum(None))? else {
        return Ok(None);
    };
    let others = ledger.in_flight_micros(network.caip2)?.saturating_sub(own_micros);
    let others = micros_to_atomic(others, asset.decimals);
    let need = amount.saturating_add(others);
    if bal.atomic >= need {
        return Ok(None);
    }
    let dec = |v: U256| crate::money::atomic_decimal(v, asset.decimals);
    Ok(Some(format!(
        "insufficient funds: this payment needs {} {sym} but the wallet holds {} {sym} on {} (read {}){}; nothing was signed",
        dec(amount),
        dec(bal.atomic),
        network.v1_name,
        bal.read_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        if others.is_zero() { String::new() } else { format!(" and {} {} is already committed to payments in flight", dec(others), asset.symbol) },
        sym = asset.symbol
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_uri() {
        assert_eq!(micros_to_atomic(1_500_000, 6), U256::from(1_500_000u64));
        assert_eq!(micros_to_atomic(1, 18), U256::from(1_000_000_000_000u64));
        assert_eq!(micros_to_atomic(15, 5), U256::from(2u64), "rounded up");
        let n = networks::by_name("base-sepolia").unwrap();
        let addr: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap();
        assert_eq!(fund_uri(n, &n.assets[0], addr), "ethereum:0x036CbD53842c5426634e7929541eC2318f3dCF7e@84532/transfer?address=0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    }

    #[test]
    fn known_balance_covers_payments_in_flight_only() {
        use crate::grants::GrantSpec;
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open_in(dir.path()).unwrap();
        let now = Utc::now();
        let grant = |id: &str, nets: &[&str]| {
            let spec =
                GrantSpec { label: id.into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["x.com".into()], networks: nets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
            let (label, limits) = spec.validate(now).unwrap();
            l.create_grant(id, &label, &limits, &format!("h{id}"), now).unwrap();
        };
        grant("test", &[]);
        grant("main", &["base"]);
        let (n, payer) = (networks::by_name("base-sepolia").unwrap(), Address::repeat_byte(7));
        let a = &n.assets[0];
        // Unknown balance: nothing is checked.
        assert_eq!(insufficient(&l, n, a, payer, U256::from(5000u64), 5000).unwrap(), None);
        l.store_balance(n.caip2, &a.address.to_checksum(None), &payer.to_checksum(None), U256::from(10_000u64), None, now).unwrap();
        // Two reservations in flight on the testnet grant (this payment's own included), one on mainnet.
        l.reserve("r1", "test", 6000, 9_999_999_999, now).unwrap().unwrap();
        l.reserve("r2", "test", 4000, 9_999_999_999, now).unwrap().unwrap();
        l.reserve("r3", "main", 900_000, 9_999_999_999, now).unwrap().unwrap();
        assert_eq!(l.in_flight_micros(n.caip2).unwrap(), 10_000, "the mainnet grant's reservation is not counted");
        assert_eq!(insufficient(&l, n, a, payer, U256::from(4000u64), 4000).unwrap(), None, "6000 + 4000 <= 10000");
        l.reserve("r4", "test", 1, 9_999_999_999, now).unwrap().unwrap();
        let msg = insufficient(&l, n, a, payer, U256::from(4000u64), 4000).unwrap().expect("10001 > 10000");
        assert!(msg.contains("insufficient funds") && msg.contains("0.006001 USDC is already committed"), "{msg}");
        // Allocation: remaining budgets of grants that may pay here (the testnet grant only).
        assert_eq!(l.allocated_micros(n.caip2, now).unwrap(), 1_000_000 - 10_001);
    }
}
