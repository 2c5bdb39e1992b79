//! Owns the demo's sample agent: a small reqwest client that sends its calls through Purser's
//! proxy (gateway mode, the grant token as `Proxy-Authorization`), in a fixed order, so the
//! receipts it leaves are exact. It holds no key and never pays by itself.
//!
//! The script, against the reference v2 paywall (demo grant: $1.00, auto below $0.01, ask
//! below $0.25):
//! 1. `GET /cheap` ($0.001) three times: paid at once (auto tier).
//! 2. `GET /mid` ($0.05): in the ask tier, so it waits for your answer.
//! 3. `GET /pricey` ($2.00): at or above the ask ceiling, refused without asking.
//! 4. Only when step 2 was paid: `GET /mid` again and again until Purser refuses; with the
//!    approval's rule ("this host up to $0.05 for 10 minutes") these are paid without asking
//!    until the budget cannot cover one more: refused, `over_budget`.

use std::time::Duration;
use tokio::sync::watch;

/// Calls in step 4 at most (the $1.00 budget runs out after 19 at $0.05; this only bounds a
/// misconfigured paywall).
const MAX_EXHAUST_CALLS: usize = 40;

/// What the agent saw (the demo's lines come from the ledger, not from this).
#[derive(Debug, Clone, Default)]
pub struct AgentRun {
    pub requests: usize,
    pub ok: usize,
}

pub struct Agent {
    http: reqwest::Client,
    proxy: String,
    token: String,
    paywall: String,
}

impl Agent {
    pub fn new(proxy: &str, token: &str, paywall: &str) -> Result<Agent, reqwest::Error> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(300)).build()?;
        Ok(Agent { http, proxy: proxy.trim_end_matches('/').to_string(), token: token.to_string(), paywall: paywall.trim_end_matches('/').to_string() })
    }

    /// One GET through Purser; `true` when the paywall answered 2xx (paid or free).
    async fn get(&self, path: &str, intent: &str, run: &mut AgentRun) -> bool {
        run.requests += 1;
        let url = format!("{}/{}{}", self.proxy, self.paywall, path);
        let sent = self
            .http
            .get(url)
            .header("Proxy-Authorization", format!("Bearer {}", self.token))
            .header("Purser-Intent", intent)
            .header("Purser-Agent", "purser demo agent")
            .header("Accept", "application/json")
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let ok = resp.status().is_success();
                // Read the whole answer, as an agent would (and so the connection is reused).
                let _ = resp.bytes().await;
                run.ok += usize::from(ok);
                ok
            }
            Err(e) => {
                tracing::warn!(error = %e, path, "demo agent request failed");
                false
            }
        }
    }

    /// Runs the script above; once `stop` turns true it makes no further call (the one in
    /// flight finishes, so Purser records its decision).
    pub async fn run(&self, stop: watch::Receiver<bool>) -> AgentRun {
        let mut run = AgentRun::default();
        let go = || !*stop.borrow();
        for i in 1..=3 {
            if go() {
                self.get("/cheap", &format!("demo: cheap lookup {i} of 3"), &mut run).await;
            }
        }
        let mid_paid = go() && self.get("/mid", "demo: one mid-priced report", &mut run).await;
        if go() {
            self.get("/pricey", "demo: the premium dataset", &mut run).await;
        }
        if mid_paid {
            for i in 1..=MAX_EXHAUST_CALLS {
                if !go() || !self.get("/mid", &format!("demo: more reports until the budget runs out ({i})"), &mut run).await {
                    break;
                }
            }
        }
        run
    }
}
