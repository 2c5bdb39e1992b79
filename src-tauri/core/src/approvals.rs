//! Owns held requests: the queue of payments waiting for the user, each bound to the exact
//! requirement hash it was shown for, resolved by a decision, a timeout, a revocation of its
//! grant, or shutdown. It never pays; it only answers "may this go ahead?".

use crate::events::{Event, Events};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// What the user (or the clock) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Denied,
    TimedOut,
    Revoked,
    ShuttingDown,
}

/// A held request, with the facts the user decides on.
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
    /// The agent's own words (`Purser-Intent`), sanitised; never a verified fact.
    pub intent: Option<String>,
    pub remaining_before_atomic: String,
    pub remaining_after_atomic: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no pending approval {0} (already decided, timed out, or never existed)")]
    NotFound(String),
    #[error("approval {0} was shown for a different requirement; refusing to approve it")]
    HashMismatch(String),
}

impl ApprovalError {
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::NotFound(_) => "no_such_approval",
            ApprovalError::HashMismatch(_) => "requirement_changed",
        }
    }
}

struct Entry {
    view: PendingApproval,
    reply: oneshot::Sender<Verdict>,
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
    rx: oneshot::Receiver<Verdict>,
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
            let _ = reply.send(Verdict::ShuttingDown);
            return Held { id, rx };
        }
        pending.insert(id.clone(), Entry { view, reply });
        drop(pending);
        self.events.publish(Event::ApprovalPending { id: id.clone() });
        Held { id, rx }
    }

    /// Waits for the verdict, denying by timeout after `timeout`.
    pub async fn wait(&self, held: Held, timeout: Duration) -> Verdict {
        let Held { id, mut rx } = held;
        let verdict = match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => Verdict::ShuttingDown,
            // Timed out: whoever removes the entry owns the verdict.
            Err(_) => match self.lock().remove(&id) {
                Some(_) => Verdict::TimedOut,
                None => rx.try_recv().unwrap_or(Verdict::TimedOut),
            },
        };
        self.events.publish(Event::ApprovalResolved { id });
        verdict
    }

    /// The user's decision on `id`. With `requirement_hash`, approves only if it is exactly the
    /// requirement the request is held for.
    pub fn decide(&self, id: &str, approve: bool, requirement_hash: Option<&str>) -> Result<PendingApproval, ApprovalError> {
        let mut pending = self.lock();
        let entry = pending.get(id).ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        if approve && requirement_hash.is_some_and(|h| h != entry.view.requirement_hash) {
            return Err(ApprovalError::HashMismatch(id.to_string()));
        }
        let entry = pending.remove(id).expect("checked above");
        let _ = entry.reply.send(if approve { Verdict::Approved } else { Verdict::Denied });
        Ok(entry.view)
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
                let _ = e.reply.send(verdict);
            }
        }
        ids.len()
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
            intent: None,
            remaining_before_atomic: "1".into(),
            remaining_after_atomic: "0".into(),
            created_at: Utc::now(),
            expires_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn verdicts() {
        let a = Arc::new(Approvals::default());
        let held = a.hold(view("1", "g"));
        assert_eq!(a.list().len(), 1);
        assert_eq!(a.decide("1", true, Some("other")).unwrap_err().code(), "requirement_changed");
        a.decide("1", true, Some("h")).unwrap();
        assert_eq!(a.wait(held, Duration::from_secs(5)).await, Verdict::Approved);
        assert_eq!(a.decide("1", false, None).unwrap_err().code(), "no_such_approval");

        let held = a.hold(view("2", "g"));
        assert_eq!(a.wait(held, Duration::from_millis(20)).await, Verdict::TimedOut);
        assert!(a.list().is_empty(), "a timed-out request leaves the queue");

        let (h3, h4, h5) = (a.hold(view("3", "g")), a.hold(view("4", "g")), a.hold(view("5", "other")));
        assert_eq!(a.cancel_grant("g", Verdict::Revoked), 2);
        assert_eq!(a.wait(h3, Duration::from_secs(5)).await, Verdict::Revoked);
        assert_eq!(a.wait(h4, Duration::from_secs(5)).await, Verdict::Revoked);
        a.decide("5", false, None).unwrap();
        assert_eq!(a.wait(h5, Duration::from_secs(5)).await, Verdict::Denied);
    }
}
