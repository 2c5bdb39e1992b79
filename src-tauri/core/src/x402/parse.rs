//! Parsing of x402 challenges (the 402 answer) into typed, validated [`Requirement`]s.

use super::{decode_b64, parse_json, X402Error, MAX_ACCEPTS, MAX_CHALLENGE_BYTES};
use crate::money;
use crate::networks::{self, Asset, Network};
use alloy_primitives::{Address, U256};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// One payment option Purser knows how to pay: scheme `exact`, a registry network and asset.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Position in the challenge's `accepts`.
    pub index: usize,
    pub network: &'static Network,
    pub asset: &'static Asset,
    pub amount: U256,
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    /// The option exactly as the server sent it (v2 echoes it verbatim as `accepted`).
    pub raw: Value,
}

impl Requirement {
    /// The network name as the server wrote it (v1 payloads echo it).
    pub fn network_name(&self) -> &str {
        self.raw.get("network").and_then(Value::as_str).unwrap_or(self.network.caip2)
    }

    /// Hex SHA-256 of the option as sent: what an approval is bound to.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.raw.to_string().as_bytes()))
    }
}

/// A valid challenge with at least one payable option.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub version: u8,
    /// v2 `resource` object as sent (echoed in the payment); v1 has it per option.
    pub resource: Option<Value>,
    pub description: Option<String>,
    pub accepts: Vec<Requirement>,
}

/// The decoded document (when it decoded at all) and what it means.
#[derive(Debug)]
pub struct Parsed {
    pub raw: Option<Value>,
    pub result: Result<Challenge, X402Error>,
}

/// Parses a 402 answer: v2 when a `PAYMENT-REQUIRED` header is present, else a v1 JSON body.
pub fn parse_challenge(payment_required: Option<&[u8]>, body: &[u8]) -> Parsed {
    let doc = match payment_required {
        Some(h) => decode_b64(h).and_then(|bytes| parse_json(&bytes)),
        None if body.trim_ascii().first() != Some(&b'{') => Err(X402Error::NotX402("no PAYMENT-REQUIRED header and no JSON body")),
        None if body.len() > MAX_CHALLENGE_BYTES => Err(X402Error::TooLarge),
        None => parse_json(body).map_err(|e| match e {
            X402Error::InvalidJson(_) => X402Error::NotX402("402 body is not JSON"),
            other => other,
        }),
    };
    let doc = match doc {
        Ok(d) => d,
        Err(e) => return Parsed { raw: None, result: Err(e) },
    };
    let result = challenge_from_doc(&doc, payment_required.is_some());
    Parsed { raw: Some(doc), result }
}

fn challenge_from_doc(doc: &Value, from_header: bool) -> Result<Challenge, X402Error> {
    let obj = match doc.as_object() {
        Some(o) => o,
        None if from_header => return Err(X402Error::InvalidField("PAYMENT-REQUIRED is not a JSON object".into())),
        None => return Err(X402Error::NotX402("challenge is not a JSON object")),
    };
    let version = match obj.get("x402Version") {
        None if !from_header => return Err(X402Error::NotX402("JSON body without x402Version")),
        None => return Err(X402Error::InvalidField("x402Version is missing".into())),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => 1u8,
        Some(Value::Number(n)) if n.as_u64() == Some(2) => 2u8,
        Some(other) => return Err(X402Error::UnsupportedVersion(clip(&other.to_string()))),
    };
    check_extensions(obj.get("extensions"))?;
    let accepts = match obj.get("accepts") {
        Some(Value::Array(a)) if a.is_empty() => return Err(X402Error::EmptyAccepts),
        Some(Value::Array(a)) if a.len() > MAX_ACCEPTS => return Err(X402Error::InvalidField("too many accepts".into())),
        Some(Value::Array(a)) => a,
        _ => return Err(X402Error::InvalidField("accepts is not an array".into())),
    };
    // Every option must be well formed (a malformed one makes the whole challenge suspect);
    // options Purser does not support are set aside.
    let mut payable = Vec::new();
    let mut unsupported = None;
    for (index, option) in accepts.iter().enumerate() {
        let checked = check_format(version, option)?;
        match support(index, option, checked) {
            Ok(req) => payable.push(req),
            Err(e) if e.is_not_payable() => unsupported = unsupported.or(Some(e)),
            Err(e) => return Err(e),
        }
    }
    if payable.is_empty() {
        return Err(unsupported.unwrap_or(X402Error::EmptyAccepts));
    }
    let resource = if version == 2 { obj.get("resource").cloned() } else { None };
    let description = resource.as_ref().and_then(|r| r.get("description")).or_else(|| accepts[0].get("description")).and_then(Value::as_str).map(clip);
    Ok(Challenge { version, resource, description, accepts: payable })
}

/// The fields of one option, checked for form but not yet for support.
struct Checked {
    amount: U256,
    pay_to: Address,
    asset: Address,
    max_timeout_seconds: u64,
}

fn check_format(version: u8, option: &Value) -> Result<Checked, X402Error> {
    let o = option.as_object().ok_or_else(|| X402Error::InvalidField("option is not an object".into()))?;
    for key in ["scheme", "network"] {
        if !matches!(o.get(key), Some(Value::String(_))) {
            return Err(X402Error::InvalidField(format!("{key} is missing or not a string")));
        }
    }
    let amount_key = if version == 1 { "maxAmountRequired" } else { "amount" };
    let amount = match o.get(amount_key) {
        Some(Value::String(s)) => money::parse_atomic(s).map_err(|e| match e {
            money::MoneyError::Overflow(_) => X402Error::AmountOverflow,
            _ => X402Error::InvalidAmount(clip(s)),
        })?,
        Some(other) => return Err(X402Error::InvalidAmount(clip(&other.to_string()))),
        None => return Err(X402Error::InvalidAmount(format!("{amount_key} is missing"))),
    };
    if amount.is_zero() {
        return Err(X402Error::ZeroAmount);
    }
    let pay_to = address_field(o, "payTo").map_err(X402Error::InvalidPayTo)?;
    if pay_to.is_zero() {
        return Err(X402Error::ZeroPayTo);
    }
    let asset = address_field(o, "asset").map_err(X402Error::InvalidAsset)?;
    let max_timeout_seconds = match o.get("maxTimeoutSeconds") {
        Some(Value::Number(n)) => n.as_u64().filter(|v| *v > 0),
        _ => None,
    }
    .ok_or_else(|| X402Error::InvalidMaxTimeout(clip(&o.get("maxTimeoutSeconds").map(|v| v.to_string()).unwrap_or_default())))?;
    match o.get("extra") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err(X402Error::InvalidField("extra is not an object".into())),
    }
    Ok(Checked { amount, pay_to, asset, max_timeout_seconds })
}

fn support(index: usize, option: &Value, c: Checked) -> Result<Requirement, X402Error> {
    let scheme = option["scheme"].as_str().unwrap_or_default();
    if scheme != "exact" {
        return Err(X402Error::UnsupportedScheme(clip(scheme)));
    }
    let name = option["network"].as_str().unwrap_or_default();
    let network = networks::by_name(name).ok_or_else(|| X402Error::UnsupportedNetwork(clip(name)))?;
    let asset = network.asset(&c.asset).ok_or_else(|| X402Error::UnsupportedAsset(c.asset.to_string()))?;
    let empty = Map::new();
    let extra = option.get("extra").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(method) = extra.get("assetTransferMethod") {
        if method.as_str() != Some("eip3009") {
            return Err(X402Error::UnsupportedTransferMethod(clip(&method.to_string())));
        }
    }
    check_extensions(Some(&Value::Object(extra.clone())))?;
    let (name_got, version_got) = (extra.get("name"), extra.get("version"));
    let matches = |got: Option<&Value>, want: &str| got.is_none() || got.and_then(Value::as_str) == Some(want);
    if !matches(name_got, asset.eip712_name) || !matches(version_got, asset.eip712_version) {
        return Err(X402Error::DomainMismatch { got: clip(&format!("{}/{}", fmt_opt(name_got), fmt_opt(version_got))), want: format!("{}/{}", asset.eip712_name, asset.eip712_version) });
    }
    Ok(Requirement { index, network, asset, amount: c.amount, pay_to: c.pay_to, max_timeout_seconds: c.max_timeout_seconds, raw: option.clone() })
}

/// Refuses any extension that would have Purser sign an approval, a permit or an allowance.
fn check_extensions(ext: Option<&Value>) -> Result<(), X402Error> {
    let Some(Value::Object(map)) = ext else { return Ok(()) };
    for key in map.keys() {
        let k = key.to_ascii_lowercase();
        if ["approv", "permit", "allowance", "2612", "gassponsor"].iter().any(|p| k.contains(p)) {
            return Err(X402Error::UnsupportedExtension(clip(key)));
        }
    }
    Ok(())
}

fn address_field(o: &Map<String, Value>, key: &str) -> Result<Address, String> {
    let s = o.get(key).and_then(Value::as_str).ok_or_else(|| format!("{key} is missing or not a string"))?;
    let hex = s.strip_prefix("0x").filter(|h| h.len() == 40 && h.bytes().all(|c| c.is_ascii_hexdigit()));
    hex.and_then(|h| h.parse::<Address>().ok()).ok_or_else(|| clip(s))
}

fn fmt_opt(v: Option<&Value>) -> String {
    v.map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_else(|| "-".into())
}

/// The server's description, made safe to show (the prompt caps it further, marking the cut).
fn clip(s: &str) -> String {
    crate::text::clean(s, 200)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
