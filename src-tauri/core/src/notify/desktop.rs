//! The desktop notifier: prompts as freedesktop notifications (`org.freedesktop.Notifications`
//! on the session bus), built with notify-rust (app name `Purser`, critical urgency, no expiry,
//! resident: a press of "Open" leaves it up; the prompter closes each one when its request is
//! decided), shown and answered on one D-Bus connection of the notifier's own.
//!
//! Why not notify-rust's own `show` + `wait_for_action`: it subscribes to `ActionInvoked` only
//! after `Notify` has answered, on a fresh subscription each time it waits, so a press that comes
//! quickly (a loaded machine, a server that answers at once, a second press after "Open") could
//! be lost, and the payment then waited out its approval timeout. Here the connection subscribes
//! to `ActionInvoked` and `NotificationClosed` before it shows anything; one reader routes each
//! signal to the notification it names ([`Routes`]), and a signal that overtakes `Notify`'s
//! answer is kept for a few seconds until its id is known. Every notification is shown on that
//! same connection, so servers that send signals only to the connection that showed it reach it.
//!
//! Button presses are signals on the user's session bus; any process of the same user could send
//! one. That is no weaker than the control API, whose token file the same user can read: both
//! trust the user's own session, and neither can approve anything but the exact requirement
//! hash the prompt showed.

use super::{Capabilities, Note, NoteEvent, Notifier, NotifyError, APP_NAME};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use notify_rust::{Hint, Notification, Timeout, Urgency};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use zbus::Variant;

const SERVER: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// How long a signal for an id not known yet is kept (it overtook `Notify`'s answer).
const EARLY_KEEP: Duration = Duration::from_secs(10);
/// At most this many such signals are kept (other applications' notifications send them too).
const EARLY_MAX: usize = 64;

/// Desktop notifications over D-Bus (see the module docs).
#[derive(Default)]
pub struct DesktopNotifier {
    /// The connection, made on first use and again after it broke.
    bus: tokio::sync::Mutex<Option<Bus>>,
}

/// One session-bus connection, subscribed to the server's signals before anything is shown.
struct Bus {
    conn: zbus::Connection,
    routes: Arc<Mutex<Routes>>,
    reader: JoinHandle<()>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn unavailable(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Unavailable(e.to_string())
}

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

impl DesktopNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The live connection (made now if there is none, or the last one's reader has ended).
    async fn bus(&self) -> Result<(zbus::Connection, Arc<Mutex<Routes>>), NotifyError> {
        let mut slot = self.bus.lock().await;
        if let Some(b) = slot.as_ref().filter(|b| !b.reader.is_finished()) {
            return Ok((b.conn.clone(), b.routes.clone()));
        }
        let conn = zbus::Connection::session().await.map_err(unavailable)?;
        let mut streams = Vec::new();
        for member in ["ActionInvoked", "NotificationClosed"] {
            let rule = zbus::MatchRule::builder().msg_type(zbus::message::Type::Signal).interface(SERVER).member(member).build().map_err(unavailable)?;
            streams.push(zbus::MessageStream::for_match_rule(rule, &conn, None).await.map_err(unavailable)?);
        }
        let routes = Arc::new(Mutex::new(Routes::default()));
        let mut signals = futures_util::stream::select_all(streams);
        let to = routes.clone();
        let reader = tokio::spawn(async move {
            while let Some(msg) = signals.next().await {
                let Ok(msg) = msg else { continue };
                if let Some(ev) = event_of(&msg) {
                    lock(&to).deliver(ev, Instant::now());
                }
            }
        });
        *slot = Some(Bus { conn: conn.clone(), routes: routes.clone(), reader });
        Ok((conn, routes))
    }

    /// Forgets the connection after a failed call, so the next one connects afresh.
    async fn drop_bus(&self) {
        *self.bus.lock().await = None;
    }
}

/// The prompt event a server signal stands for (`None`: not one of ours to read).
fn event_of(msg: &zbus::Message) -> Option<NoteEvent> {
    let header = msg.header();
    match header.member()?.as_str() {
        "ActionInvoked" => {
            let (id, key): (u32, String) = msg.body().deserialize().ok()?;
            Some(NoteEvent::Action { id, key })
        }
        "NotificationClosed" => {
            let (id, _reason): (u32, u32) = msg.body().deserialize().ok()?;
            Some(NoteEvent::Closed { id })
        }
        _ => None,
    }
}

fn id_of(ev: &NoteEvent) -> u32 {
    match ev {
        NoteEvent::Action { id, .. } | NoteEvent::Closed { id } => *id,
    }
}

/// Where each shown notification's signals go, and the signals that came before their id was
/// known.
#[derive(Default)]
struct Routes {
    open: HashMap<u32, UnboundedSender<NoteEvent>>,
    early: VecDeque<(Instant, NoteEvent)>,
}

impl Routes {
    /// A signal arrived: to its notification's channel, or kept until `show` learns the id.
    fn deliver(&mut self, ev: NoteEvent, now: Instant) {
        let id = id_of(&ev);
        if let Some(tx) = self.open.get(&id) {
            let _ = tx.send(ev.clone());
            if matches!(ev, NoteEvent::Closed { .. }) {
                self.open.remove(&id);
            }
            return;
        }
        self.early.retain(|(t, _)| now.duration_since(*t) < EARLY_KEEP);
        if self.early.len() >= EARLY_MAX {
            self.early.pop_front();
        }
        self.early.push_back((now, ev));
    }

    /// `show` learned notification `id`: its early signals first, in order, then the rest.
    fn register(&mut self, id: u32, tx: UnboundedSender<NoteEvent>, now: Instant) {
        let mut closed = false;
        self.early.retain(|(t, ev)| {
            let fresh = now.duration_since(*t) < EARLY_KEEP;
            if fresh && id_of(ev) == id {
                let _ = tx.send(ev.clone());
                closed |= matches!(ev, NoteEvent::Closed { .. });
                return false;
            }
            fresh
        });
        if !closed {
            self.open.insert(id, tx);
        }
    }
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
            let hints: HashMap<&str, Variant<'_>> = n.hints.iter().map(<(&str, Variant<'_>)>::from).collect();
            let (conn, routes) = self.bus().await?;
            let args = (&n.appname, note.replaces.unwrap_or(0), &n.icon, &n.summary, &n.body, &n.actions, hints, i32::from(n.timeout));
            let reply = match conn.call_method(Some(SERVER), PATH, Some(SERVER), "Notify", &args).await {
                Ok(r) => r,
                Err(e) => {
                    if !matches!(e, zbus::Error::MethodError(..)) {
                        self.drop_bus().await;
                    }
                    return Err(unavailable(e));
                }
            };
            let id: u32 = reply.body().deserialize().map_err(unavailable)?;
            lock(&routes).register(id, events, Instant::now());
            Ok(id)
        })
    }

    fn close(&self, id: u32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Only on the connection that showed it (none: there is nothing of ours to close).
            let live = self.bus.lock().await.as_ref().map(|b| (b.conn.clone(), b.routes.clone()));
            let Some((conn, routes)) = live else { return };
            lock(&routes).open.remove(&id);
            if let Err(e) = conn.call_method(Some(SERVER), PATH, Some(SERVER), "CloseNotification", &(id,)).await {
                tracing::debug!(id, error = %e, "closing a notification failed");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    fn press(id: u32, key: &str) -> NoteEvent {
        NoteEvent::Action { id, key: key.into() }
    }

    #[test]
    fn a_press_that_overtakes_the_notify_answer_is_delivered_once_the_id_is_known() {
        let t = Instant::now();
        let mut r = Routes::default();
        r.deliver(press(7, "open"), t);
        r.deliver(press(8, "deny"), t);
        r.deliver(press(7, "approve"), t);
        let (tx, mut rx) = unbounded_channel();
        r.register(7, tx, t);
        assert_eq!(rx.try_recv().ok(), Some(press(7, "open")));
        assert_eq!(rx.try_recv().ok(), Some(press(7, "approve")));
        assert!(rx.try_recv().is_err(), "only notification 7's presses");
        r.deliver(press(7, "deny"), t);
        assert_eq!(rx.try_recv().ok(), Some(press(7, "deny")), "later presses go straight through");
        assert_eq!(r.early.len(), 1, "8 still waits for its show");
        r.deliver(NoteEvent::Closed { id: 7 }, t);
        assert_eq!(rx.try_recv().ok(), Some(NoteEvent::Closed { id: 7 }));
        assert!(!r.open.contains_key(&7), "a closed notification is forgotten");
    }

    #[test]
    fn early_signals_expire_and_are_bounded() {
        let t = Instant::now();
        let mut r = Routes::default();
        r.deliver(press(1, "approve"), t);
        let later = t + EARLY_KEEP + Duration::from_millis(1);
        let (tx, mut rx) = unbounded_channel();
        r.register(1, tx, later);
        assert!(rx.try_recv().is_err(), "a press older than {EARLY_KEEP:?} is not someone's answer to this prompt");
        for i in 0..(EARLY_MAX as u32 + 10) {
            r.deliver(press(1000 + i, "x"), later);
        }
        assert_eq!(r.early.len(), EARLY_MAX);
        assert_eq!(r.early.front().map(|(_, e)| id_of(e)), Some(1010), "the oldest go first");
    }

    #[test]
    fn a_notification_closed_before_its_id_was_known_is_not_routed() {
        let t = Instant::now();
        let mut r = Routes::default();
        r.deliver(NoteEvent::Closed { id: 3 }, t);
        let (tx, mut rx) = unbounded_channel();
        r.register(3, tx, t);
        assert_eq!(rx.try_recv().ok(), Some(NoteEvent::Closed { id: 3 }));
        assert!(r.open.is_empty());
    }
}
