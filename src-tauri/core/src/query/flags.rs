//! Price memory: what each endpoint (host + path template) was paid before, and the flags a
//! receipt earns against it: `price_spike` (more than [`SPIKE_FACTOR`] times the endpoint's
//! usual price) and `new_payee` (a payee other than the one last paid for that host). Pure
//! functions; the ledger stores the memory and calls these inside the receipt's transaction.

use serde::Serialize;

/// A price more than this many times the endpoint's usual (median recent paid) price is a spike.
pub const SPIKE_FACTOR: u64 = 3;
/// Paid prices an endpoint needs before spikes are judged.
pub const MIN_HISTORY: usize = 3;
/// Recent paid prices remembered per endpoint.
pub const RECENT: usize = 16;

pub const PRICE_SPIKE: u32 = 1;
pub const NEW_PAYEE: u32 = 2;

/// The flags of one receipt (a bit set, stored as an integer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u32);

/// Flag names, as shown in search results and used by `flag:`.
pub const NAMES: [(u32, &str); 2] = [(PRICE_SPIKE, "price_spike"), (NEW_PAYEE, "new_payee")];

impl Flags {
    pub fn from_bits(bits: u32) -> Flags {
        Flags(bits & (PRICE_SPIKE | NEW_PAYEE))
    }

    pub fn bits(&self) -> u32 {
        self.0
    }

    pub fn names(&self) -> Vec<&'static str> {
        NAMES.iter().filter(|(b, _)| self.0 & b != 0).map(|(_, n)| *n).collect()
    }

    /// Judges a price and payee against the memory: `recent` paid prices of the endpoint and the
    /// payee (interned id, 0 = none) last paid for the host.
    pub fn judge(amount: Option<u64>, recent: &[u64], payee: i64, known_payee: Option<i64>) -> Flags {
        let mut bits = 0;
        if let (Some(a), Some(usual)) = (amount, usual_price(recent)) {
            if usual > 0 && a > usual.saturating_mul(SPIKE_FACTOR) {
                bits |= PRICE_SPIKE;
            }
        }
        if payee != 0 && known_payee.is_some_and(|k| k != payee) {
            bits |= NEW_PAYEE;
        }
        Flags(bits)
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// The usual price: the median of the remembered paid prices (lower median), once there are
/// enough of them.
pub fn usual_price(recent: &[u64]) -> Option<u64> {
    if recent.len() < MIN_HISTORY {
        return None;
    }
    let mut v = recent.to_vec();
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

/// Adds a paid price to the memory, forgetting the oldest beyond [`RECENT`].
pub fn remember(recent: &mut Vec<u64>, price: u64) {
    recent.push(price);
    if recent.len() > RECENT {
        recent.remove(0);
    }
}

pub fn parse_recent(s: &str) -> Vec<u64> {
    s.split(',').filter_map(|p| p.parse().ok()).collect()
}

pub fn format_recent(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// The path of a URL (no scheme, authority, query or fragment); `/` when there is none.
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// Whether a path segment is an identifier (numbers, UUIDs, hashes, long opaque tokens) that a
/// path template replaces with `:id`.
fn is_id(seg: &str) -> bool {
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if seg.is_empty() || digits == 0 {
        return false;
    }
    let hexish = seg.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
    digits == seg.len() || (seg.starts_with("0x") && seg.len() > 10) || (hexish && seg.len() >= 8) || (seg.len() >= 16 && digits * 4 >= seg.len())
}

/// The path template of a URL: identifier segments become `:id`. `/users/42/orders?x=1` ->
/// `/users/:id/orders`.
pub fn path_template(url: &str) -> String {
    let path = url_path(url);
    let segs: Vec<&str> = path.split('/').map(|s| if is_id(s) { ":id" } else { s }).collect();
    let t = segs.join("/");
    if t.is_empty() {
        "/".into()
    } else {
        t.chars().take(200).collect()
    }
}

/// The endpoint of a request: host and path template (`api.x.com/v1/quote/:id`).
pub fn endpoint_of(host: &str, url: &str) -> String {
    format!("{host}{}", path_template(url))
}

#[cfg(test)]
mod tests {
    // Table-driven: each case is one tuple, spelled out where it is read.
    #![allow(clippy::type_complexity)]
    use super::*;

    #[test]
    fn templates() {
        let cases = [
            ("https://api.x.com/v1/forecast?city=paris", "/v1/forecast"),
            ("https://api.x.com/users/12345/orders", "/users/:id/orders"),
            ("https://api.x.com/items/0193a5b2-7c1e-7d3a-9f1e-3b2c4d5e6f70", "/items/:id"),
            ("https://api.x.com/tx/0xabcdef0123456789", "/tx/:id"),
            ("https://api.x.com", "/"),
            ("https://api.x.com/v2/models/gpt4", "/v2/models/gpt4"),
            ("https://api.x.com/a/b#frag", "/a/b"),
            ("http://127.0.0.1:8080/paid/7", "/paid/:id"),
        ];
        for (url, want) in cases {
            assert_eq!(path_template(url), want, "{url}");
        }
        assert_eq!(endpoint_of("api.x.com", "https://api.x.com/u/1"), "api.x.com/u/:id");
    }

    #[test]
    fn spikes_and_payees() {
        let usual = [10_000u64, 10_000, 12_000, 9_000];
        assert_eq!(usual_price(&usual), Some(10_000));
        assert_eq!(usual_price(&usual[..2]), None, "too little history");
        let cases: &[(&str, Option<u64>, &[u64], i64, Option<i64>, u32)] = &[
            ("usual price", Some(10_000), &usual, 5, Some(5), 0),
            ("exactly 3x is not a spike", Some(30_000), &usual, 5, Some(5), 0),
            ("over 3x is a spike", Some(30_001), &usual, 5, Some(5), PRICE_SPIKE),
            ("no history, no spike", Some(1_000_000), &[], 5, None, 0),
            ("payee changed", Some(10_000), &usual, 6, Some(5), NEW_PAYEE),
            ("both", Some(100_000), &usual, 6, Some(5), PRICE_SPIKE | NEW_PAYEE),
            ("no amount", None, &usual, 0, Some(5), 0),
        ];
        for (name, amount, recent, payee, known, want) in cases {
            assert_eq!(Flags::judge(*amount, recent, *payee, *known).bits(), *want, "{name}");
        }
        let mut r = vec![];
        for i in 0..20 {
            remember(&mut r, i);
        }
        assert_eq!(r.len(), RECENT);
        assert_eq!(r[0], 4);
        assert_eq!(parse_recent(&format_recent(&r)), r);
        assert_eq!(Flags::from_bits(3).names(), ["price_spike", "new_payee"]);
    }
}
