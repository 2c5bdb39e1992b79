//! Owns knowing that the agent left: the proxy hands each governed request a [`ClientGone`]
//! that fires when the agent's connection drops the request (a client timeout, a killed agent),
//! so the payment road runs to its end anyway (its receipt is written, its reservation settled)
//! and says so (`delivery: client_gone`), and a request still held for the user is withdrawn at
//! once instead of waiting for an approval nobody can deliver.

use tokio::sync::watch;

/// Fires when the agent's side of a request is gone (`None`: a client that never leaves).
#[derive(Debug, Clone)]
pub struct ClientGone(Option<watch::Receiver<bool>>);

/// Held by the connection's side of a request: dropping it while armed (the connection dropped
/// the request's future) fires the [`ClientGone`].
#[derive(Debug)]
pub struct ClientGuard {
    tx: watch::Sender<bool>,
    armed: bool,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.tx.send(true);
        }
    }
}

impl ClientGuard {
    /// The request was answered: the agent did not leave early.
    pub fn delivered(mut self) {
        self.armed = false;
    }
}

/// A guard and the signal it fires.
pub fn pair() -> (ClientGuard, ClientGone) {
    let (tx, rx) = watch::channel(false);
    (ClientGuard { tx, armed: true }, ClientGone(Some(rx)))
}

impl ClientGone {
    /// A client that never leaves (in-process callers, tests).
    pub fn never() -> ClientGone {
        ClientGone(None)
    }

    pub fn is_gone(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Waits until the agent is gone (forever, if it never leaves).
    pub async fn gone(&mut self) {
        let Some(rx) = self.0.as_mut() else { return std::future::pending().await };
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                // The guard went without firing: the request was delivered.
                return std::future::pending().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_guard_fires_and_delivering_does_not() {
        let (guard, mut gone) = pair();
        assert!(!gone.is_gone());
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(1), gone.gone()).await.expect("fires");
        assert!(gone.is_gone());
        let (guard, mut gone) = pair();
        guard.delivered();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), gone.gone()).await.is_err(), "delivered: never fires");
        assert!(!gone.is_gone());
        let mut never = ClientGone::never();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), never.gone()).await.is_err());
    }
}
