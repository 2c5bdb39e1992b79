//! Owns held requests: the queue of payments waiting for the user, each bound to the exact
//! requirement hash it was shown for, resolved by a decision, a timeout, a revocation of its
//! grant, or shutdown. It never pays; it only answers "may this go ahead?". The countdown to the
//! default denial pauses while the user has the request open in the approval window.

use crate::events::{Event, Events};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

/// Longest the countdown stays paused for one request (then it runs on, so a window left open
/// never holds an agent forever).
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// What the user (or the clock) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Denied,
    TimedOut,
    Revoked,
    ShuttingDown,
    /// The agent left while it waited: withdrawn, nothing paid.
    ClientGone,
}

/// Where a user's decision came from (recorded in the receipt as `decided_via`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// An action button of the desktop notification.
    Notification,
    /// The desktop app's window (receipts before wave 3 said `window`).
    #[serde(alias = "window")]
    App,
    /// The `purser` CLI at a terminal (receipts before wave 3 said `control`, for the control
    /// API).
    #[serde(alias = "control")]
    Terminal,
}

/// A held request, with the facts the user decides on.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PendingApproval {
    pub id: String,
    pub grant_id: String,
    pub grant_label: String,
    pub method: String,
    pub url: String,
    pub host: String,
    pub amount_atomic: String,
    pub amount_usd: String,
    pub network: String,
    pub asset: String,
    pub pay_to: String,
    pub requirement_hash: String,
    /// The amount in the asset's own units, e.g. `0.05 USDC`.
    pub amount_asset: String,
    /// The network's short name, e.g. `base-sepolia`.
    pub network_name: String,
    /// The name the user gave this payee, if any.
    pub payee_label: Option<String>,
    /// The agent's own words (`Purser-Intent`), sanitised; never a verified fact.
    pub intent: Option<String>,
    /// The server's description of the resource, sanitised; never a verified fact.
    pub description: Option<String>,
    /// What the agent calls itself (`Purser-Agent`, else `User-Agent`), sanitised; unverified.
    pub agent: Option<String>,
    /// Who is asking, as the OS says: the contained run, or the local process that owns the
    /// connection (with its parent chain), or unknown. Shown first.
    pub who: crate::agent::AgentInfo,
    pub remaining_before_atomic: String,
    pub remaining_after_atomic: String,
    pub created_at: DateTime<Utc>,
    /// When it is denied by default (moves later after a pause).
    pub expires_at: DateTime<Utc>,
    /// The countdown is paused (the user has it open in the approval window).
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no pending approval {0} (already decided, timed out, or never existed)")]
    NotFound(String),
    #[error("approval {0} was shown for a different requirement; refusing to approve it")]
    HashMismatch(String),
}

impl ApprovalError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            ApprovalError::NotFound(_) => crate::api::ErrorCode::NoSuchApproval,
            ApprovalError::HashMismatch(_) => crate::api::ErrorCode::RequirementChanged,
        }
    }
}

struct Entry {
    view: PendingApproval,
    reply: oneshot::Sender<(Verdict, Option<Via>)>,
    /// When the waiter denies it by default (set when `wait` starts).
    deadline: Option<Instant>,
    paused_since: Option<Instant>,
    /// Wakes the waiter when the countdown is paused or resumed.
    wake: Arc<Notify>,
}

/// The pending queue.
#[derive(Default)]
pub struct Approvals {
    pending: Mutex<HashMap<String, Entry>>,
    events: Events,
    closed: std::sync::atomic::AtomicBool,
}

/// A request on hold; `wait` resolves it.
pub struct Held {
    id: String,
    rx: oneshot::Receiver<(Verdict, Option<Via>)>,
}

impl Held {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Approvals {
    pub fn new(events: Events) -> Self {
        Approvals { pending: Mutex::default(), events, closed: Default::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a request on hold.
    pub fn hold(&self, view: PendingApproval) -> Held {
        let (reply, rx) = oneshot::channel();
        let id = view.id.clone();
        let mut pending = self.lock();
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = reply.send((Verdict::ShuttingDown, None));
            return Held { id, rx };
        }
        pending.insert(id.clone(), Entry { view, reply, deadline: None, paused_since: None, wake: Arc::default() });
        drop(pending);
        self.events.publish(Event::ApprovalPending { id: id.clone() });
        Held { id, rx }
    }

    /// Waits for the verdict, denying by timeout after `timeout`.
    pub async fn wait(&self, held: Held, timeout: Duration) -> Verdict {
        self.wait_decision(held, timeout).await.0
    }

    /// Waits for the verdict and where a user's decision came from. The countdown of `timeout`
    /// stands still while the request is paused (at most [`MAX_PAUSE`] in all).
    pub async fn wait_decision(&self, held: Held, timeout: Duration) -> (Verdict, Option<Via>) {
        let Held { id, mut rx } = held;
        let wake = match self.lock().get_mut(&id) {
            Some(e) => {
                e.deadline = Some(Instant::now() + timeout);
                e.wake.clone()
            }
            None => Arc::default(),
        };
        let decision = loop {
            // The moment the countdown runs out, as things stand (far away while paused).
            let until = self.lock().get(&id).map(|e| effective_deadline(e, timeout)).unwrap_or_else(Instant::now);
            tokio::select! {
                r = &mut rx => break r.unwrap_or((Verdict::ShuttingDown, None)),
                _ = wake.notified() => continue,
                _ = tokio::time::sleep_until(until) => {
                    // Whoever removes the entry owns the verdict.
                    let mut pending = self.lock();
                    match pending.get(&id) {
                        Some(e) if Instant::now() >= effective_deadline(e, timeout) => {
                            pending.remove(&id);
                            break (Verdict::TimedOut, None);
                        }
                        Some(_) => continue,
                        None => {
                            drop(pending);
                            break rx.try_recv().unwrap_or((Verdict::TimedOut, None));
                        }
                    }
                }
            }
        };
        self.events.publish(Event::ApprovalResolved { id });
        decision
    }

    /// The user's decision on `id`, made through `via`.
    pub fn decide_via(&self, id: &str, approve: bool, requirement_hash: Option<&str>, via: Via) -> Result<PendingApproval, ApprovalError> {
        let mut pending = self.lock();
        let entry = pending.get(id).ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        if approve && requirement_hash.is_some_and(|h| h != entry.view.requirement_hash) {
            return Err(ApprovalError::HashMismatch(id.to_string()));
        }
        let entry = pending.remove(id).expect("checked above");
        let _ = entry.reply.send((if approve { Verdict::Approved } else { Verdict::Denied }, Some(via)));
        Ok(entry.view)
    }

    /// The pending request `id`, if it is still waiting.
    pub fn get(&self, id: &str) -> Option<PendingApproval> {
        self.lock().get(id).map(|e| e.view.clone())
    }

    /// Pauses `id`'s countdown (the user opened it in the approval window). Idempotent.
    pub fn pause(&self, id: &str) -> Result<PendingApproval, ApprovalError> {
        let mut pending = self.lock();
        let e = pending.get_mut(id).ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        if e.paused_since.is_none() {
            e.paused_since = Some(Instant::now());
            e.view.paused = true;
            e.wake.notify_one();
        }
        Ok(e.view.clone())
    }

    /// Lets `id`'s countdown run on from where it paused (the window closed). Idempotent.
    pub fn resume(&self, id: &str) -> Result<PendingApproval, ApprovalError> {
        let mut pending = self.lock();
        let e = pending.get_mut(id).ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        if let Some(since) = e.paused_since.take() {
            let paused = since.elapsed().min(MAX_PAUSE);
            if let Some(d) = e.deadline.as_mut() {
                *d += paused;
            }
            e.view.expires_at += chrono::Duration::from_std(paused).unwrap_or_default();
            e.view.paused = false;
            e.wake.notify_one();
        }
        Ok(e.view.clone())
    }

    /// Pending approvals, oldest first.
    pub fn list(&self) -> Vec<PendingApproval> {
        let mut v: Vec<_> = self.lock().values().map(|e| e.view.clone()).collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// Resolves every request held under `grant_id` with `verdict`; returns how many.
    pub fn cancel_grant(&self, grant_id: &str, verdict: Verdict) -> usize {
        self.cancel_where(|v| v.grant_id == grant_id, verdict)
    }

    /// The agent behind `id` left: the request is withdrawn (its prompt closes), if still held.
    pub fn withdraw(&self, id: &str) -> bool {
        self.cancel_where(|v| v.id == id, Verdict::ClientGone) == 1
    }

    /// Shutdown: resolves every held request as `ShuttingDown`, and every later one at once.
    pub fn close(&self) -> usize {
        let _guard = self.lock();
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(_guard);
        self.cancel_where(|_| true, Verdict::ShuttingDown)
    }

    fn cancel_where(&self, pred: impl Fn(&PendingApproval) -> bool, verdict: Verdict) -> usize {
        let mut pending = self.lock();
        let ids: Vec<String> = pending.values().filter(|e| pred(&e.view)).map(|e| e.view.id.clone()).collect();
        for id in &ids {
            if let Some(e) = pending.remove(id) {
                let _ = e.reply.send((verdict, None));
            }
        }
        ids.len()
    }
}

/// When the countdown of an entry runs out: its deadline, or, while paused, the deadline moved by
/// the longest pause allowed (the pause's own length is only known when it ends).
fn effective_deadline(e: &Entry, timeout: Duration) -> Instant {
    let deadline = e.deadline.unwrap_or_else(|| Instant::now() + timeout);
    match e.paused_since {
        Some(_) => deadline + MAX_PAUSE,
        None => deadline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn view(id: &str, grant: &str) -> PendingApproval {
        PendingApproval {
            id: id.into(),
            grant_id: grant.into(),
            grant_label: "g".into(),
            method: "GET".into(),
            url: "http://x/".into(),
            host: "x".into(),
            amount_atomic: "1".into(),
            amount_usd: "0.000001".into(),
            network: "eip155:84532".into(),
            asset: "0x".into(),
            pay_to: "0x".into(),
            requirement_hash: "h".into(),
            amount_asset: "0.000001 USDC".into(),
            network_name: "base-sepolia".into(),
            payee_label: None,
            intent: None,
            description: None,
            agent: None,
            who: crate::agent::AgentInfo::unknown(),
            remaining_before_atomic: "1".into(),
            remaining_after_atomic: "0".into(),
            created_at: Utc::now(),
            expires_at: Utc::now(),
            paused: false,
        }
    }

    #[tokio::test]
    async fn verdicts() {
        let a = Arc::new(Approvals::default());
        let held = a.hold(view("1", "g"));
        assert_eq!(a.list().len(), 1);
        assert_eq!(a.decide_via("1", true, Some("other"), Via::Terminal).unwrap_err().code(), "requirement_changed");
        a.decide_via("1", true, Some("h"), Via::Terminal).unwrap();
        assert_eq!(a.wait(held, Duration::from_secs(5)).await, Verdict::Approved);
        assert_eq!(a.decide_via("1", false, None, Via::Terminal).unwrap_err().code(), "no_such_approval");

        let held = a.hold(view("2", "g"));
        assert_eq!(a.wait(held, Duration::from_millis(20)).await, Verdict::TimedOut);
        assert!(a.list().is_empty(), "a timed-out request leaves the queue");

        let (h3, h4, h5) = (a.hold(view("3", "g")), a.hold(view("4", "g")), a.hold(view("5", "other")));
        assert_eq!(a.cancel_grant("g", Verdict::Revoked), 2);
        assert_eq!(a.wait(h3, Duration::from_secs(5)).await, Verdict::Revoked);
        assert_eq!(a.wait(h4, Duration::from_secs(5)).await, Verdict::Revoked);
        a.decide_via("5", false, None, Via::Terminal).unwrap();
        assert_eq!(a.wait(h5, Duration::from_secs(5)).await, Verdict::Denied);
    }

    #[tokio::test(start_paused = true)]
    async fn countdown_pauses_while_the_window_is_open() {
        let a = Arc::new(Approvals::default());
        let held = a.hold(view("p", "g"));
        let (a2, t0) = (a.clone(), Instant::now());
        let waiter = tokio::spawn(async move { (a2.wait_decision(held, Duration::from_secs(10)).await, t0.elapsed()) });
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(a.pause("p").unwrap().paused);
        // Paused for a minute: far past the 10 s timeout, still pending.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished() && a.get("p").is_some(), "a paused request does not time out");
        let before = a.get("p").unwrap().expires_at;
        let resumed = a.resume("p").unwrap();
        assert!(!resumed.paused);
        assert_eq!((resumed.expires_at - before).num_seconds(), 60, "the shown deadline moves by the pause");
        // 6 s were left on the countdown.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished());
        let ((verdict, via), took) = waiter.await.unwrap();
        assert_eq!((verdict, via), (Verdict::TimedOut, None));
        assert_eq!(took.as_secs(), 70, "4 s + 60 s paused + 6 s");
        assert_eq!(a.pause("p").unwrap_err().code(), "no_such_approval");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_capped() {
        let a = Arc::new(Approvals::default());
        let held = a.hold(view("c", "g"));
        let a2 = a.clone();
        let t0 = Instant::now();
        let waiter = tokio::spawn(async move { a2.wait_decision(held, Duration::from_secs(10)).await });
        tokio::task::yield_now().await;
        a.pause("c").unwrap();
        let (verdict, _) = waiter.await.unwrap();
        assert_eq!(verdict, Verdict::TimedOut);
        assert_eq!(t0.elapsed(), MAX_PAUSE + Duration::from_secs(10), "a window left open holds the agent at most MAX_PAUSE longer");
    }

    #[tokio::test]
    async fn decisions_carry_where_they_came_from() {
        let a = Approvals::default();
        let held = a.hold(view("n", "g"));
        a.decide_via("n", true, Some("h"), Via::Notification).unwrap();
        assert_eq!(a.wait_decision(held, Duration::from_secs(5)).await, (Verdict::Approved, Some(Via::Notification)));
        let held = a.hold(view("w", "g"));
        a.decide_via("w", false, None, Via::App).unwrap();
        assert_eq!(a.wait_decision(held, Duration::from_secs(5)).await, (Verdict::Denied, Some(Via::App)));
        let held = a.hold(view("r", "g"));
        a.cancel_grant("g", Verdict::Revoked);
        assert_eq!(a.wait_decision(held, Duration::from_secs(5)).await, (Verdict::Revoked, None));
    }
}
