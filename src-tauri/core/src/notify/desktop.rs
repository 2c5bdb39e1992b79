//! The notify-rust notifier: desktop notifications over D-Bus (`org.freedesktop.Notifications`
//! on the session bus), app name `Purser`, critical urgency, no expiry, resident (a press of
//! "Open" leaves it up; the prompter closes each one when its request is decided). Every shown
//! notification keeps its own connection, on which its button presses arrive (some servers send
//! them only to the connection that showed it).
//!
//! Button presses are signals on the user's session bus; any process of the same user could send
//! one. That is no weaker than the control API, whose token file the same user can read: both
//! trust the user's own session, and neither can approve anything but the exact requirement
//! hash the prompt showed.

use super::{Capabilities, Note, NoteEvent, Notifier, NotifyError, APP_NAME};
use futures_util::future::BoxFuture;
use notify_rust::{Hint, Notification, NotificationHandle, NotificationResponse, Timeout, Urgency};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// Desktop notifications through notify-rust.
#[derive(Default)]
pub struct DesktopNotifier {
    /// Shown notifications: their handle (connection) and the task waiting for their action.
    shown: Mutex<HashMap<u32, (Arc<NotificationHandle>, JoinHandle<()>)>>,
}

impl DesktopNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    fn shown(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (Arc<NotificationHandle>, JoinHandle<()>)>> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unavailable(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Unavailable(e.to_string())
}

impl Notifier for DesktopNotifier {
    fn capabilities(&self) -> BoxFuture<'_, Result<Capabilities, NotifyError>> {
        Box::pin(async {
            tokio::task::spawn_blocking(|| {
                let caps = notify_rust::get_capabilities().map_err(unavailable)?;
                let server = notify_rust::get_server_information().map(|i| format!("{} {}", i.name, i.version)).unwrap_or_default();
                Ok(Capabilities::from_list(&caps, server))
            })
            .await
            .map_err(unavailable)?
        })
    }

    fn show(&self, note: Note, events: UnboundedSender<NoteEvent>) -> BoxFuture<'_, Result<u32, NotifyError>> {
        Box::pin(async move {
            let mut n = Notification::new();
            n.appname(APP_NAME).summary(&note.summary).body(&note.body).urgency(Urgency::Critical).timeout(Timeout::Never).hint(Hint::Resident(true));
            for (key, label) in &note.actions {
                n.action(key, label);
            }
            if let Some(id) = note.replaces {
                n.id(id);
            }
            let handle = Arc::new(n.show_async().await.map_err(unavailable)?);
            let id = handle.id();
            let waiting = handle.clone();
            let task = tokio::spawn(async move {
                loop {
                    let mut got = None;
                    waiting
                        .wait_for_action_async(|response: &NotificationResponse| {
                            got = Some(match response {
                                NotificationResponse::Action(key) => NoteEvent::Action { id, key: key.clone() },
                                NotificationResponse::Default => NoteEvent::Action { id, key: super::ACTION_DEFAULT.into() },
                                _ => NoteEvent::Closed { id },
                            });
                        })
                        .await;
                    let Some(ev) = got else { break };
                    let _ = events.send(ev.clone());
                    // "Open" decides nothing: a resident notification stays up for the real answer.
                    match ev {
                        NoteEvent::Action { key, .. } if key == super::ACTION_OPEN || key == super::ACTION_DEFAULT => continue,
                        _ => break,
                    }
                }
            });
            // A replaced notification's old waiter would report its presses twice.
            if let Some((_, old)) = self.shown().insert(id, (handle, task)) {
                old.abort();
            }
            Ok(id)
        })
    }

    fn close(&self, id: u32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let entry = self.shown().remove(&id);
            if let Some((handle, task)) = entry {
                task.abort();
                handle.close_async().await;
            }
        })
    }
}
