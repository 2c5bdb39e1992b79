//! The agents: a steady stream of concurrent requests through Purser's gateway, each logical
//! request tagged with a unique id (`?req=N`, kept in the receipt's URL) and sent exactly once
//! (never retried), every answer recorded as the agent saw it (status, `Purser-Receipt`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The paywall routes the agents call (tests/peers/lib/constants.mjs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    /// $0.001, paid at once.
    Cheap,
    /// $0.001, answered (and settled) 2 s after the paid request: kills land mid-settlement.
    Slow,
    /// $2.00, above the grants' ask ceiling: refused.
    Pricey,
    /// No payment: passes through (no receipt).
    Free,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Cheap => "/cheap",
            Route::Slow => "/slow",
            Route::Pricey => "/pricey",
            Route::Free => "/free",
        }
    }
    fn pick(rng: &mut StdRng) -> Route {
        match rng.gen_range(0..100) {
            0..=69 => Route::Cheap,
            70..=84 => Route::Slow,
            85..=94 => Route::Pricey,
            _ => Route::Free,
        }
    }
}

/// One logical request as its agent saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub req: u64,
    pub route: Route,
    pub grant: usize,
    /// The HTTP status, None when no answer came (connection refused or cut by the kill).
    pub status: Option<u16>,
    /// The `Purser-Receipt` id of the answer's head, if it had one.
    pub receipt: Option<String>,
    /// The body was cut after the head arrived.
    pub body_cut: bool,
    /// No answer because nothing listened (the daemon was dead or not yet up), as opposed to a
    /// request cut in flight.
    pub refused_connect: bool,
}

/// What the agents share with the loop: where Purser listens now, whether they may send.
pub struct Traffic {
    url: RwLock<String>,
    open: AtomicBool,
    stop: AtomicBool,
    inflight: AtomicUsize,
    next: AtomicU64,
    answers: Mutex<Vec<Answer>>,
}

impl Traffic {
    pub fn new() -> Arc<Traffic> {
        Arc::new(Traffic {
            url: RwLock::new(String::new()),
            open: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            next: AtomicU64::new(1),
            answers: Mutex::new(Vec::new()),
        })
    }

    pub fn set_url(&self, url: &str) {
        *self.url.write().unwrap() = url.to_string();
    }

    pub fn open(&self) {
        self.open.store(true, SeqCst);
    }

    /// Stops new requests and waits until none is in flight (they end fast: the daemon is dead).
    pub async fn close(&self) {
        self.open.store(false, SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.inflight.load(SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn shutdown(&self) {
        self.stop.store(true, SeqCst);
    }

    /// Logical requests sent so far.
    pub fn sent(&self) -> u64 {
        self.next.load(SeqCst) - 1
    }

    pub fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }
}

/// Spawns `n` agents; agent `i` uses grant `i % tokens.len()`. `v2`: the paywall's base URL.
pub fn spawn(traffic: &Arc<Traffic>, n: usize, seed: u64, tokens: &[String], v2: &str) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).pool_max_idle_per_host(0).build().expect("reqwest client");
    (0..n)
        .map(|i| {
            let (t, c, v2) = (traffic.clone(), client.clone(), v2.to_string());
            let (grant, token) = (i % tokens.len(), tokens[i % tokens.len()].clone());
            let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            tokio::spawn(async move {
                while !t.stop.load(SeqCst) {
                    // In flight first, then the gate: `close` never misses a request that passed it.
                    t.inflight.fetch_add(1, SeqCst);
                    if !t.open.load(SeqCst) {
                        t.inflight.fetch_sub(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    let req = t.next.fetch_add(1, SeqCst);
                    let route = Route::pick(&mut rng);
                    let base = t.url.read().unwrap().clone();
                    let answer = one(&c, &base, &v2, &token, req, route, grant).await;
                    let failed = answer.status.is_none();
                    t.answers.lock().unwrap().push(answer);
                    t.inflight.fetch_sub(1, SeqCst);
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

async fn one(c: &reqwest::Client, base: &str, v2: &str, token: &str, req: u64, route: Route, grant: usize) -> Answer {
    let url = format!("{base}/{v2}{}?req={req}", route.path());
    let mut a = Answer { req, route, grant, status: None, receipt: None, body_cut: false, refused_connect: false };
    let resp = match c.get(url).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json").send().await {
        Ok(r) => r,
        Err(e) => {
            a.refused_connect = e.is_connect();
            return a;
        }
    };
    a.status = Some(resp.status().as_u16());
    a.receipt = resp.headers().get("purser-receipt").and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string());
    a.body_cut = resp.bytes().await.is_err();
    a
}
