//! Owns keeping secrets out of the record: query parameters that look like credentials
//! (`api_key`, `key`, `token`, `access_token`, `sig`, `signature`, `secret`, `password`, …, plus
//! any named in `PURSER_REDACT_PARAMS`, comma-separated) are replaced by `REDACTED` in the URL a
//! receipt, the search index, exports and prompts keep. The receipt also keeps a hash of the
//! real URL, so requests to the same URL still group.

use sha2::{Digest, Sha256};

/// The parameter names redacted by default (compared case-insensitively).
pub const DEFAULT_PARAMS: &[&str] = &["api_key", "apikey", "api-key", "key", "token", "access_token", "auth", "sig", "signature", "secret", "client_secret", "password", "passwd", "x-api-key"];

/// What a redacted value is replaced with.
pub const MARK: &str = "REDACTED";

fn extra_params() -> &'static [String] {
    &crate::config::Config::get().redact_params
}

fn secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    DEFAULT_PARAMS.contains(&n.as_str()) || extra_params().contains(&n)
}

/// `raw` with secret-looking query values replaced, and whether anything was.
pub fn url(raw: &str) -> (String, bool) {
    let Ok(mut u) = reqwest::Url::parse(raw) else { return (raw.to_string(), false) };
    if u.query().is_none() || !u.query_pairs().any(|(k, _)| secret(&k)) {
        return (raw.to_string(), false);
    }
    let pairs: Vec<(String, String)> = u.query_pairs().map(|(k, v)| (k.to_string(), if secret(&k) { MARK.to_string() } else { v.to_string() })).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    (u.to_string(), true)
}

/// Redacts every URL string inside a JSON value (a challenge's `resource.url`, a v1
/// requirement's `resource`): a server echoes the URL it was asked for.
pub fn json_urls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
            let (shown, changed) = url(s);
            if changed {
                *s = shown;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(json_urls),
        serde_json::Value::Object(o) => o.values_mut().for_each(json_urls),
        _ => {}
    }
}

/// The hash a receipt keeps of a URL it redacted (hex SHA-256 of the real URL).
pub fn url_hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_query_strings_are_redacted_and_nothing_else() {
        for (raw, want, changed) in [
            ("https://api.x.com/v1?q=paris&api_key=sk_live_123", "https://api.x.com/v1?q=paris&api_key=REDACTED", true),
            ("https://api.x.com/v1?Token=abc&sig=xyz&page=2", "https://api.x.com/v1?Token=REDACTED&sig=REDACTED&page=2", true),
            ("https://api.x.com/v1?q=paris", "https://api.x.com/v1?q=paris", false),
            ("https://api.x.com/key/token", "https://api.x.com/key/token", false),
            ("not a url?api_key=1", "not a url?api_key=1", false),
        ] {
            assert_eq!(url(raw), (want.to_string(), changed), "{raw}");
        }
        assert_eq!(url_hash("a").len(), 64);
        let mut v = serde_json::json!({"resource": {"url": "https://a.com/x?key=s3cret&q=1"}, "accepts": [{"resource": "https://a.com/x?token=t"}], "n": 1});
        json_urls(&mut v);
        assert_eq!(v, serde_json::json!({"resource": {"url": "https://a.com/x?key=REDACTED&q=1"}, "accepts": [{"resource": "https://a.com/x?token=REDACTED"}], "n": 1}));
        assert_ne!(url_hash("https://x/?key=1"), url_hash("https://x/?key=2"));
    }
}
