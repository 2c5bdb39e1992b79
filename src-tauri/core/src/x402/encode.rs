//! Encoding of the paid retry's payment header and decoding of the settlement header.

use super::{decode_b64, parse_json, Challenge, Requirement, X402Error, H_PAYMENT_SIGNATURE, H_X_PAYMENT};
use alloy_primitives::{Address, B256, U256};
use base64::Engine;
use serde_json::{json, Value};

/// The EIP-3009 `TransferWithAuthorization` message that was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub valid_after: u64,
    pub valid_before: u64,
    pub nonce: B256,
}

impl Authorization {
    fn to_json(&self) -> Value {
        json!({
            "from": self.from.to_checksum(None),
            "to": self.to.to_checksum(None),
            "value": self.value.to_string(),
            "validAfter": self.valid_after.to_string(),
            "validBefore": self.valid_before.to_string(),
            "nonce": self.nonce.to_string(),
        })
    }
}

/// A header to add to the paid retry.
#[derive(Debug, Clone)]
pub struct PaymentHeader {
    pub name: &'static str,
    pub value: String,
}

/// Builds `X-PAYMENT` (v1) or `PAYMENT-SIGNATURE` (v2, with `accepted` echoed verbatim).
pub fn encode_payment(challenge: &Challenge, req: &Requirement, auth: &Authorization, signature: &[u8; 65]) -> PaymentHeader {
    let payload = json!({
        "signature": format!("0x{}", hex::encode(signature)),
        "authorization": auth.to_json(),
    });
    let (name, doc) = if challenge.version == 1 {
        let doc = json!({"x402Version": 1, "scheme": "exact", "network": req.network_name(), "payload": payload});
        (H_X_PAYMENT, doc)
    } else {
        let mut doc = json!({"x402Version": 2, "payload": payload});
        if let Some(resource) = &challenge.resource {
            doc["resource"] = resource.clone();
        }
        doc["accepted"] = req.raw.clone();
        (H_PAYMENT_SIGNATURE, doc)
    };
    PaymentHeader { name, value: base64::engine::general_purpose::STANDARD.encode(doc.to_string()) }
}

/// A decoded `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub success: bool,
    pub transaction: Option<String>,
    pub network: Option<String>,
    pub payer: Option<String>,
    pub error_reason: Option<String>,
    pub raw: Value,
}

/// Decodes a settlement header (base64 JSON, size and depth limited).
pub fn decode_settlement(value: &[u8]) -> Result<Settlement, X402Error> {
    let bad = |m: &str| X402Error::InvalidSettlement(m.to_string());
    let doc = parse_json(&decode_b64(value)?)?;
    let obj = doc.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let success = obj.get("success").and_then(Value::as_bool).ok_or_else(|| bad("success is missing"))?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(|s| s.chars().filter(|c| !c.is_control()).take(200).collect());
    Ok(Settlement { success, transaction: text("transaction"), network: text("network"), payer: text("payer"), error_reason: text("errorReason"), raw: doc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::parse_challenge;

    fn b64(v: &Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.encode(v.to_string()).into_bytes()
    }

    fn decode(h: &PaymentHeader) -> Value {
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&h.value).unwrap()).unwrap()
    }

    fn auth() -> Authorization {
        Authorization {
            from: Address::repeat_byte(1),
            to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".parse().unwrap(),
            value: U256::from(1000u64),
            valid_after: 0,
            valid_before: 1_795_635_397,
            nonce: B256::repeat_byte(7),
        }
    }

    #[test]
    fn v2_echoes_accepted_verbatim() {
        let option = json!({"scheme": "exact", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"}});
        let doc = json!({"x402Version": 2, "resource": {"url": "http://x/cheap"}, "accepts": [option.clone()]});
        let c = parse_challenge(Some(&b64(&doc)), b"{}").result.unwrap();
        let h = encode_payment(&c, &c.accepts[0], &auth(), &[9u8; 65]);
        assert_eq!(h.name, "payment-signature");
        let sent = decode(&h);
        assert_eq!(sent["accepted"], option);
        assert_eq!(sent["resource"], json!({"url": "http://x/cheap"}));
        assert_eq!(sent["payload"]["authorization"]["value"], "1000");
        assert_eq!(sent["payload"]["authorization"]["to"], "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
        assert_eq!(sent["payload"]["signature"].as_str().unwrap().len(), 132);
        assert!(sent.get("scheme").is_none());
    }

    /// Fuzz finding (`fuzz/regressions/x402_v2_challenge/float-in-extra-not-echoed-verbatim`):
    /// serde_json's default float parsing is not correctly rounded, so a float in `extra` came
    /// back as a neighbouring float and a strict server would not recognise its own option.
    #[test]
    fn v2_echoes_a_float_in_extra_bit_exactly() {
        let text = r#"{"x402Version":2,"resource":{"url":"http://x/cheap"},"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"1000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC","maxTimeoutSeconds":300,"extra":{"name":"USDC","version":"2","f":1.0000000148569061e27,"g":0.30000000000000004}}]}"#;
        let c = parse_challenge(Some(base64::engine::general_purpose::STANDARD.encode(text).as_bytes()), b"{}").result.unwrap();
        let h = encode_payment(&c, &c.accepts[0], &auth(), &[9u8; 65]);
        let sent = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&h.value).unwrap()).unwrap();
        assert!(sent.contains(r#""f":1.0000000148569061e+27"#), "{sent}");
        assert!(sent.contains(r#""g":0.30000000000000004"#), "{sent}");
    }

    #[test]
    fn v1_names_scheme_and_network() {
        let body = json!({"x402Version": 1, "accepts": [{"scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "maxTimeoutSeconds": 60, "resource": "http://x/cheap"}]});
        let c = parse_challenge(None, body.to_string().as_bytes()).result.unwrap();
        let sent = decode(&encode_payment(&c, &c.accepts[0], &auth(), &[9u8; 65]));
        assert_eq!((sent["x402Version"].as_u64(), sent["scheme"].as_str(), sent["network"].as_str()), (Some(1), Some("exact"), Some("base-sepolia")));
        assert_eq!(sent["payload"]["authorization"]["validBefore"], "1795635397");
    }

    #[test]
    fn settlement_headers() {
        let ok = decode_settlement(&b64(&json!({"success": true, "transaction": "0xabc", "network": "eip155:84532", "payer": "0x1"}))).unwrap();
        assert!(ok.success);
        assert_eq!(ok.transaction.as_deref(), Some("0xabc"));
        let failed = decode_settlement(&b64(&json!({"success": false, "errorReason": "unexpected_settle_error", "transaction": ""}))).unwrap();
        assert!(!failed.success);
        assert_eq!((failed.transaction, failed.error_reason.as_deref()), (None, Some("unexpected_settle_error")));
        for bad in [b"%%%".to_vec(), b64(&json!([1])), b64(&json!({"transaction": "0x"}))] {
            assert!(decode_settlement(&bad).is_err());
        }
    }
}
