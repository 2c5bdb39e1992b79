//! Owns the registry of networks and assets Purser can pay on: chain ids, CAIP-2 and x402 v1
//! names, asset addresses, decimals and the EIP-712 domains their signatures use.

use alloy_primitives::{address, Address};

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
        assets: &[Asset {
            symbol: "USDC",
            address: address!("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
            decimals: 6,
            eip712_name: "USD Coin",
            eip712_version: "2",
        }],
    },
    Network {
        caip2: "eip155:84532",
        v1_name: "base-sepolia",
        chain_id: 84532,
        testnet: true,
        assets: &[Asset {
            symbol: "USDC",
            address: address!("036CbD53842c5426634e7929541eC2318f3dCF7e"),
            decimals: 6,
            eip712_name: "USDC",
            eip712_version: "2",
        }],
    },
];

/// Looks a network up by its CAIP-2 id (`eip155:84532`) or its x402 v1 name (`base-sepolia`).
pub fn by_name(name: &str) -> Option<&'static Network> {
    REGISTRY.iter().find(|n| n.caip2 == name || n.v1_name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

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
