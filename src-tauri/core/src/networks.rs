//! Owns the registry of networks and assets Purser can pay on: chain ids, CAIP-2 and x402 v1
//! names, asset addresses, decimals, the EIP-712 domains their signatures use, and the JSON-RPC
//! URL each network is read through (a default, or the user's override in `networks.json`).

use alloy_primitives::{address, Address};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// An ERC-20 asset that supports EIP-3009 `transferWithAuthorization`.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    pub symbol: &'static str,
    pub address: Address,
    pub decimals: u8,
    /// EIP-712 domain name and version of the token contract.
    pub eip712_name: &'static str,
    pub eip712_version: &'static str,
}

/// An EVM network, named as x402 v2 (CAIP-2) and v1 name it.
#[derive(Debug, PartialEq, Eq)]
pub struct Network {
    pub caip2: &'static str,
    pub v1_name: &'static str,
    pub chain_id: u64,
    pub testnet: bool,
    pub assets: &'static [Asset],
    /// The public JSON-RPC endpoint used unless the user sets another (`purser network set-rpc`).
    pub default_rpc: &'static str,
}

impl Network {
    /// The registry's asset at `address`, if any.
    pub fn asset(&self, address: &Address) -> Option<&'static Asset> {
        // Assets live in a 'static registry; search the static table again to keep the lifetime.
        REGISTRY.iter().find(|n| n.caip2 == self.caip2)?.assets.iter().find(|a| &a.address == address)
    }
}

pub static REGISTRY: &[Network] = &[
    Network {
        caip2: "eip155:8453",
        v1_name: "base",
        chain_id: 8453,
        testnet: false,
        default_rpc: "https://mainnet.base.org",
        assets: &[Asset { symbol: "USDC", address: address!("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), decimals: 6, eip712_name: "USD Coin", eip712_version: "2" }],
    },
    Network {
        caip2: "eip155:84532",
        v1_name: "base-sepolia",
        chain_id: 84532,
        testnet: true,
        default_rpc: "https://sepolia.base.org",
        assets: &[Asset { symbol: "USDC", address: address!("036CbD53842c5426634e7929541eC2318f3dCF7e"), decimals: 6, eip712_name: "USDC", eip712_version: "2" }],
    },
];

/// Looks a network up by its CAIP-2 id (`eip155:84532`) or its x402 v1 name (`base-sepolia`).
pub fn by_name(name: &str) -> Option<&'static Network> {
    REGISTRY.iter().find(|n| n.caip2 == name || n.v1_name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0:?} is not in the registry (known: base, base-sepolia, or their eip155 ids)")]
    Unknown(String),
    #[error("RPC URL {url:?} is not valid: {why}")]
    BadUrl { url: String, why: String },
    #[error("could not read or write {path}: {why}")]
    Io { path: String, why: String },
    #[error("{path} is not a valid network configuration: {why}")]
    Corrupt { path: String, why: String },
}

impl NetworkError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            NetworkError::Unknown(_) => crate::api::ErrorCode::UnknownNetwork,
            NetworkError::BadUrl { .. } => crate::api::ErrorCode::InvalidRpcUrl,
            NetworkError::Io { .. } => crate::api::ErrorCode::NetworkConfigUnreadable,
            NetworkError::Corrupt { .. } => crate::api::ErrorCode::NetworkConfigCorrupt,
        }
    }
}

/// The user's overrides, in `<data dir>/networks.json`: `{"rpc": {"eip155:84532": "http://..."}}`.
pub const CONFIG_FILE: &str = "networks.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    rpc: BTreeMap<String, String>,
}

/// The RPC URL of every registry network, parsed and validated once.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    rpc: BTreeMap<&'static str, (reqwest::Url, bool)>,
}

/// One network as `purser network list` and the app show it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct NetworkInfo {
    pub name: String,
    pub caip2: String,
    pub chain_id: u64,
    pub testnet: bool,
    pub rpc: String,
    /// The user set this URL (else it is the registry's default).
    pub rpc_overridden: bool,
    pub assets: Vec<String>,
}

/// Parses an RPC URL: http or https, with a host, no credentials shown anywhere.
pub fn parse_rpc_url(raw: &str) -> Result<reqwest::Url, NetworkError> {
    let bad = |why: &str| NetworkError::BadUrl { url: raw.chars().take(200).collect(), why: why.into() };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("want an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    Ok(url)
}

impl NetworkConfig {
    /// The registry's defaults with the overrides in `dir/networks.json` (absent file: none).
    pub fn load(dir: &Path) -> Result<NetworkConfig, NetworkError> {
        let path = dir.join(CONFIG_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<ConfigFile>(&bytes).map_err(|e| NetworkError::Corrupt { path: path.display().to_string(), why: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(NetworkError::Io { path: path.display().to_string(), why: e.to_string() }),
        };
        let mut rpc = BTreeMap::new();
        for n in REGISTRY {
            rpc.insert(n.caip2, (parse_rpc_url(n.default_rpc)?, false));
        }
        for (name, url) in &file.rpc {
            let n = by_name(name).ok_or_else(|| NetworkError::Unknown(name.clone()))?;
            rpc.insert(n.caip2, (parse_rpc_url(url)?, true));
        }
        Ok(NetworkConfig { rpc })
    }

    /// Sets (or with `None` removes) the override of one network and saves the file (0600).
    pub fn set_rpc(dir: &Path, network: &str, url: Option<&str>) -> Result<NetworkInfo, NetworkError> {
        let n = by_name(network.trim()).ok_or_else(|| NetworkError::Unknown(network.to_string()))?;
        let parsed = url.map(parse_rpc_url).transpose()?;
        // Re-read so a broken file is reported, not overwritten.
        Self::load(dir)?;
        let path = dir.join(CONFIG_FILE);
        let io = |e: std::io::Error| NetworkError::Io { path: path.display().to_string(), why: e.to_string() };
        let mut file: ConfigFile = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => ConfigFile::default(),
        };
        file.rpc.retain(|k, _| by_name(k).is_none_or(|x| x.caip2 != n.caip2));
        if let Some(u) = &parsed {
            file.rpc.insert(n.caip2.to_string(), u.to_string());
        }
        let text = serde_json::to_vec_pretty(&file).map_err(|e| NetworkError::Corrupt { path: path.display().to_string(), why: e.to_string() })?;
        crate::datadir::write_private(&path, &text).map_err(io)?;
        Ok(Self::load(dir)?.info(n))
    }

    /// The URL `network` is read through.
    pub fn rpc_url(&self, network: &Network) -> reqwest::Url {
        self.rpc.get(network.caip2).map(|(u, _)| u.clone()).unwrap_or_else(|| parse_rpc_url(network.default_rpc).expect("registry URLs are valid"))
    }

    pub fn info(&self, n: &Network) -> NetworkInfo {
        let (url, overridden) = self.rpc.get(n.caip2).cloned().unwrap_or_else(|| (self.rpc_url(n), false));
        NetworkInfo {
            name: n.v1_name.to_string(),
            caip2: n.caip2.to_string(),
            chain_id: n.chain_id,
            testnet: n.testnet,
            rpc: url.to_string(),
            rpc_overridden: overridden,
            assets: n.assets.iter().map(|a| format!("{} {}", a.symbol, a.address.to_checksum(None))).collect(),
        }
    }

    pub fn list(&self) -> Vec<NetworkInfo> {
        REGISTRY.iter().map(|n| self.info(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_overrides_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = NetworkConfig::load(dir.path()).unwrap();
        let sepolia = by_name("base-sepolia").unwrap();
        assert_eq!(cfg.rpc_url(sepolia).as_str(), "https://sepolia.base.org/");
        let info = NetworkConfig::set_rpc(dir.path(), "base-sepolia", Some("http://127.0.0.1:8545")).unwrap();
        assert!(info.rpc_overridden);
        let cfg = NetworkConfig::load(dir.path()).unwrap();
        assert_eq!(cfg.rpc_url(sepolia).as_str(), "http://127.0.0.1:8545/");
        assert_eq!(cfg.rpc_url(by_name("base").unwrap()).as_str(), "https://mainnet.base.org/");
        for bad in ["ftp://x", "not a url", "http://", "file:///etc/passwd"] {
            assert_eq!(NetworkConfig::set_rpc(dir.path(), "base", Some(bad)).unwrap_err().code(), "invalid_rpc_url", "{bad}");
        }
        assert_eq!(NetworkConfig::set_rpc(dir.path(), "eip155:1", Some("http://x")).unwrap_err().code(), "unknown_network");
        let info = NetworkConfig::set_rpc(dir.path(), "eip155:84532", None).unwrap();
        assert!(!info.rpc_overridden);
        std::fs::write(dir.path().join(CONFIG_FILE), br#"{"rpc":{"base":"gopher://x"}}"#).unwrap();
        assert_eq!(NetworkConfig::load(dir.path()).unwrap_err().code(), "invalid_rpc_url");
        std::fs::write(dir.path().join(CONFIG_FILE), b"{").unwrap();
        assert_eq!(NetworkConfig::load(dir.path()).unwrap_err().code(), "network_config_corrupt");
    }

    #[test]
    fn lookups() {
        let n = by_name("base-sepolia").unwrap();
        assert_eq!(n.chain_id, 84532);
        assert_eq!(by_name("eip155:84532").unwrap(), n);
        assert!(by_name("eip155:1").is_none());
        let usdc = n.asset(&address!("036cbd53842c5426634e7929541ec2318f3dcf7e")).unwrap();
        assert_eq!((usdc.decimals, usdc.eip712_name), (6, "USDC"));
        assert!(n.asset(&address!("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")).is_none());
        assert_eq!(by_name("base").unwrap().assets[0].eip712_name, "USD Coin");
    }
}
