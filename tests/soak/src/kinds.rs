//! Owns the soak's traffic mix: the kinds of request an agent sends, the grant each kind's agent
//! works under, the request it sends, and what it must get back (status, error code, and the
//! receipt the ledger must hold for it).

use purser_testkit::{Peers, Purser, Reply};
use serde::Serialize;
use serde_json::{json, Value};

/// One kind of traffic; each kind is one agent with its own grant and token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Non-402 answers (`/free`): passed through unchanged.
    Pass,
    /// Auto-tier payments (`/cheap` v2 and v1, `POST /echo`).
    Paid,
    /// `/mid` ($0.05) under a $0.02 per-request cap: `over_per_request_cap`.
    RefusedCap,
    /// A 402 from a host the grant does not list: `host_not_allowed`.
    RefusedHost,
    /// `/cheap` ($0.001) under a $0.0005 budget: `over_budget`.
    RefusedBudget,
    /// `/mid` in the ask tier, approved by the user over the control API: paid, `user`.
    Approved,
    /// `/mid` in the ask tier, denied by the user: `user_denied`.
    Denied,
}

/// What an answer of a kind must look like, and the receipt behind it.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub status: u16,
    /// `code` of the 403 body.
    pub code: Option<&'static str>,
    /// The receipt's outcome; None: the answer carries no receipt.
    pub outcome: Option<&'static str>,
    /// The receipt's reason (refusals).
    pub reason: Option<&'static str>,
    pub decided_by: Option<&'static str>,
}

impl Kind {
    pub const ALL: [Kind; 7] = [Kind::Pass, Kind::Paid, Kind::RefusedCap, Kind::RefusedHost, Kind::RefusedBudget, Kind::Approved, Kind::Denied];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Pass => "pass",
            Kind::Paid => "paid",
            Kind::RefusedCap => "refused_cap",
            Kind::RefusedHost => "refused_host",
            Kind::RefusedBudget => "refused_budget",
            Kind::Approved => "approved",
            Kind::Denied => "denied",
        }
    }

    /// Share of the total request rate, in per mille (sums to 1000).
    pub fn per_mille(self) -> u32 {
        match self {
            Kind::Pass => 350,
            Kind::Paid => 300,
            Kind::RefusedCap => 50,
            Kind::RefusedHost => 50,
            Kind::RefusedBudget => 50,
            Kind::Approved => 120,
            Kind::Denied => 80,
        }
    }

    pub fn expect(self) -> Expect {
        let refused = |code| Expect { status: 403, code: Some(code), outcome: Some("refused"), reason: Some(code), decided_by: None };
        match self {
            Kind::Pass => Expect { status: 200, code: None, outcome: None, reason: None, decided_by: None },
            Kind::Paid => Expect { status: 200, code: None, outcome: Some("paid"), reason: None, decided_by: Some("auto") },
            Kind::RefusedCap => refused("over_per_request_cap"),
            Kind::RefusedHost => refused("host_not_allowed"),
            Kind::RefusedBudget => refused("over_budget"),
            Kind::Approved => Expect { status: 200, code: None, outcome: Some("paid"), reason: None, decided_by: Some("user") },
            Kind::Denied => Expect { decided_by: Some("user"), ..refused("user_denied") },
        }
    }

    /// `grant create` flags for this kind's agent (the budget last; `expires` is added).
    fn grant_args(self) -> Vec<&'static str> {
        let ask = ["--per-request-max", "0.10", "--auto-below", "0.01", "--ask-below", "0.10"];
        let mut a: Vec<&'static str> = match self {
            Kind::Pass => vec!["--budget", "1.00"],
            Kind::Paid => vec!["--budget", "10.00", "--per-request-max", "0.05", "--auto-below", "0.02", "--ask-below", "0.05"],
            Kind::RefusedCap => vec!["--budget", "1.00", "--per-request-max", "0.02", "--auto-below", "0.01", "--ask-below", "0.02"],
            Kind::RefusedHost => vec!["--budget", "1.00", "--host", "api.example.com"],
            Kind::RefusedBudget => vec!["--budget", "0.0005"],
            Kind::Approved => vec!["--budget", "20.00", "--approval-timeout", "120s"],
            Kind::Denied => vec!["--budget", "1.00", "--approval-timeout", "120s"],
        };
        if !a.contains(&"--per-request-max") {
            a.extend_from_slice(&ask);
        }
        a
    }

    /// Top-up (USD, and the remaining atomic units below which it is added) for the grants that
    /// spend all hour.
    pub fn top_up(self) -> Option<(&'static str, u64)> {
        match self {
            Kind::Paid => Some(("10.00", 2_000_000)),
            Kind::Approved => Some(("20.00", 5_000_000)),
            _ => None,
        }
    }

    /// The `n`th request of this kind: (method, upstream URL, JSON body).
    pub fn request(self, peers: &Urls, n: u64) -> (&'static str, String, Option<Value>) {
        let (v2, v1) = (&peers.v2, &peers.v1);
        let alt = |a: &str, b: &str, path: &str| format!("{}{path}", if n.is_multiple_of(2) { a } else { b });
        match self {
            Kind::Pass => ("GET", alt(v2, v1, "/free"), None),
            Kind::Paid => match n % 3 {
                0 => ("GET", format!("{v2}/cheap"), None),
                1 => ("GET", format!("{v1}/cheap"), None),
                _ => ("POST", format!("{v2}/echo"), Some(json!({"soak": n}))),
            },
            Kind::RefusedCap => ("GET", alt(v2, v1, "/mid"), None),
            Kind::RefusedHost | Kind::RefusedBudget => ("GET", alt(v2, v1, "/cheap"), None),
            Kind::Approved | Kind::Denied => ("GET", alt(v2, v1, "/mid"), None),
        }
    }

    /// None when `r` is what this kind must get; else what is wrong.
    pub fn check(self, r: &Reply, body: Option<&Value>, url: &str) -> Option<String> {
        let e = self.expect();
        if r.status != e.status {
            return Some(format!("want HTTP {}, got {r}", e.status));
        }
        if let Some(code) = e.code {
            if r.code().as_deref() != Some(code) {
                return Some(format!("want code {code}, got {r}"));
            }
            if r.json()["receipt"].as_str() != r.receipt().as_deref() {
                return Some(format!("the 403 body does not name its receipt: {r}"));
            }
        } else {
            let route = url.rsplit('/').next().unwrap_or_default();
            let j = r.json();
            if j["route"] != route {
                return Some(format!("want route {route}, got {r}"));
            }
            if let Some(b) = body {
                if &j["echo"] != b {
                    return Some(format!("echo carries another body than {b}: {r}"));
                }
            }
        }
        match (e.outcome.is_some(), r.receipt().is_some()) {
            (true, false) => Some(format!("no Purser-Receipt: {r}")),
            (false, true) => Some(format!("a pass-through answer with a receipt: {r}")),
            _ => None,
        }
    }
}

/// The upstream base URLs the agents call.
#[derive(Clone, Debug)]
pub struct Urls {
    pub v2: String,
    pub v1: String,
}

impl Urls {
    pub fn of(peers: &Peers) -> Urls {
        Urls { v2: peers.v2.clone(), v1: peers.v1.clone() }
    }
}

/// One agent: its kind and grant.
#[derive(Clone, Debug)]
pub struct Agent {
    pub kind: Kind,
    pub grant_id: String,
    pub token: String,
}

/// Creates one grant per kind, valid for `minutes` plus half an hour.
pub fn create_agents(p: &Purser, minutes: u64) -> Vec<Agent> {
    let expires = format!("{}m", minutes + 30);
    Kind::ALL
        .iter()
        .map(|&kind| {
            let label = format!("soak-{}", kind.name());
            let mut args = vec!["--label", label.as_str(), "--expires", expires.as_str()];
            args.extend(kind.grant_args());
            let (grant_id, token) = p.grant(&args);
            Agent { kind, grant_id, token }
        })
        .collect()
}
