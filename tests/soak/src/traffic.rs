//! Owns the soak's moving parts while traffic flows: one steady-rate generator per agent (open
//! loop: a request starts on every tick, whatever the earlier ones are doing, up to a cap in
//! flight), the user who answers held payments over the control API, and the top-ups that keep
//! the all-hour grants funded.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purser_testkit::agent::try_send;
use purser_testkit::Purser;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::kinds::{Agent, Kind, Urls};

/// One request as its agent saw it.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Start, ms after traffic began.
    pub t_ms: u64,
    pub kind: Kind,
    pub latency_us: u64,
    pub status: u16,
    pub code: Option<String>,
    pub receipt: Option<String>,
    /// What was wrong with the answer (None: it was the expected one).
    pub problem: Option<String>,
}

/// What the running parts write to.
pub struct Shared {
    pub start: Instant,
    pub records: Mutex<Vec<Record>>,
    /// Ticks skipped because the agent had `max_in_flight` requests open.
    pub shed: Mutex<BTreeMap<Kind, u64>>,
    pub approved: AtomicU64,
    pub denied: AtomicU64,
    pub topups: AtomicU64,
    /// Problems outside any one request (approver, top-ups).
    pub problems: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            start: Instant::now(),
            records: Mutex::new(Vec::new()),
            shed: Mutex::new(BTreeMap::new()),
            approved: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            topups: AtomicU64::new(0),
            problems: Mutex::new(Vec::new()),
        })
    }

    fn problem(&self, p: String) {
        let mut v = self.problems.lock().unwrap();
        if v.len() < 200 {
            v.push(p);
        }
    }
}

/// Sends `agent`'s requests at `per_sec` until `until`, then waits for those in flight.
pub async fn generate(agent: Agent, proxy: String, urls: Urls, per_sec: f64, until: Instant, max_in_flight: usize, shared: Arc<Shared>) {
    let client = purser_testkit::agent();
    let period = Duration::from_secs_f64(1.0 / per_sec.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sem = Arc::new(Semaphore::new(max_in_flight));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            *shared.shed.lock().unwrap().entry(agent.kind).or_default() += 1;
            continue;
        };
        let (method, url, body) = agent.kind.request(&urls, n);
        n += 1;
        let mut rb = match method {
            "POST" => client.post(format!("{proxy}/{url}")),
            _ => client.get(format!("{proxy}/{url}")),
        };
        rb = rb.header("Proxy-Authorization", format!("Bearer {}", agent.token)).header("Accept", "application/json");
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        let (kind, shared) = (agent.kind, shared.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            let t_ms = t0.duration_since(shared.start).as_millis() as u64;
            let rec = match try_send(rb).await {
                Ok(r) => Record { t_ms, kind, latency_us: t0.elapsed().as_micros() as u64, status: r.status, code: r.code(), receipt: r.receipt(), problem: kind.check(&r, body.as_ref(), &url) },
                Err(e) => Record { t_ms, kind, latency_us: t0.elapsed().as_micros() as u64, status: 0, code: None, receipt: None, problem: Some(e) },
            };
            shared.records.lock().unwrap().push(rec);
            drop(permit);
        });
    }
    // Every request in flight answers (or times out after the agent's 180 s).
    let _all = sem.acquire_many(max_in_flight as u32).await;
}

/// The daemon's control API: its Unix socket, from `control.json`.
#[derive(Clone, Debug)]
pub struct Control {
    pub socket: std::path::PathBuf,
}

impl Control {
    pub fn read(data_dir: &Path) -> anyhow::Result<Control> {
        let v: Value = serde_json::from_slice(&std::fs::read(data_dir.join("control.json"))?)?;
        let socket = v["socket"].as_str().ok_or_else(|| anyhow::anyhow!("control.json has no socket"))?;
        Ok(Control { socket: socket.into() })
    }

    /// One call; an approval carries the passphrase the user typed (their presence).
    async fn call(&self, _c: &reqwest::Client, method: reqwest::Method, path: &str) -> Result<Value, String> {
        let (socket, path) = (self.socket.clone(), path.to_string());
        let body = path.ends_with("/approve").then(|| serde_json::json!({"passphrase": purser_testkit::purser::PASSPHRASE}));
        let (status, v) = tokio::task::spawn_blocking(move || purser_testkit::purser::control_call(&socket, method.as_str(), &path, body.as_ref())).await.map_err(|e| e.to_string())?;
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(format!("HTTP {status} {v}"))
        }
    }
}

/// The user: every 200 ms, approves what the `approve` grant holds and denies the rest, until
/// `stop` is set.
pub async fn approver(control: Control, approve_grant: String, deny_grant: String, stop: Arc<AtomicBool>, shared: Arc<Shared>) {
    let c = purser_testkit::agent();
    let mut decided: HashSet<String> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let list = match control.call(&c, reqwest::Method::GET, "approvals").await {
            Ok(Value::Array(a)) => a,
            Ok(other) => {
                shared.problem(format!("approvals list is not an array: {other}"));
                continue;
            }
            Err(e) => {
                shared.problem(format!("approvals list: {e}"));
                continue;
            }
        };
        for a in list {
            let (Some(id), Some(grant)) = (a["id"].as_str(), a["grant_id"].as_str()) else {
                shared.problem(format!("approval without id/grant_id: {a}"));
                continue;
            };
            // A decided approval may still be listed for a moment; decide each once.
            if !decided.insert(id.to_string()) {
                continue;
            }
            let approve = grant == approve_grant;
            if !approve && grant != deny_grant {
                shared.problem(format!("a payment held under a grant with no ask traffic: {a}"));
            }
            let verb = if approve { "approve" } else { "deny" };
            match control.call(&c, reqwest::Method::POST, &format!("approvals/{id}/{verb}")).await {
                Ok(_) if approve => drop(shared.approved.fetch_add(1, Ordering::Relaxed)),
                Ok(_) => drop(shared.denied.fetch_add(1, Ordering::Relaxed)),
                Err(e) => shared.problem(format!("{verb} {id}: {e}")),
            }
        }
    }
}

/// Every 10 s, tops up (with `purser grant top-up`, as a user would) each grant whose remaining
/// budget fell under its kind's threshold, until `stop` is set.
pub async fn topper(p: Arc<Purser>, control: Control, agents: Vec<Agent>, stop: Arc<AtomicBool>, shared: Arc<Shared>) {
    let c = purser_testkit::agent();
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..50 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for a in &agents {
            let Some((usd, below)) = a.kind.top_up() else { continue };
            let g = match control.call(&c, reqwest::Method::GET, &format!("grants/{}", a.grant_id)).await {
                Ok(g) => g,
                Err(e) => {
                    shared.problem(format!("grant {}: {e}", a.grant_id));
                    continue;
                }
            };
            let remaining: u64 = g["remaining_atomic"].as_str().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
            if remaining >= below {
                continue;
            }
            let (p, id) = (p.clone(), a.grant_id.clone());
            let out = tokio::task::spawn_blocking(move || p.cli(&["grant", "top-up", &id, usd, "--json"])).await;
            match out {
                Ok(o) if o.status.success() => drop(shared.topups.fetch_add(1, Ordering::Relaxed)),
                Ok(o) => shared.problem(format!("grant top-up {}: {}", a.grant_id, String::from_utf8_lossy(&o.stderr))),
                Err(e) => shared.problem(format!("grant top-up task: {e}")),
            }
        }
    }
}
