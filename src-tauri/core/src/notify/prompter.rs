//! The prompter: one task that watches the approvals queue and keeps the user's screen in step
//! with it. Each held request gets one notification (approve / deny / open), closed as soon as
//! the request is decided, times out or is revoked; past [`FLOOD_THRESHOLD`] notifications for one
//! grant, further requests share a single summary that counts them (they wait in the window's
//! queue). A button press becomes a decision bound to the requirement hash the prompt showed.
//! Without a notification server it logs one warning and stays out of the way: approvals keep
//! working through the control API, the CLI and the window.

use super::{Capabilities, Note, NoteEvent, Notifier, Opener, ACTION_APPROVE, ACTION_DEFAULT, ACTION_DENY, ACTION_OPEN};
use crate::approvals::PendingApproval;
use crate::engine::Engine;
use crate::events::Event;
use crate::prompt::{self, Style};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

/// Most notifications one grant has on screen at once: the first `FLOOD_THRESHOLD - 1` held
/// requests get one each, the rest share one summary.
pub const FLOOD_THRESHOLD: usize = 5;
/// Longest a notification server gets to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the prompter on the current runtime. It subscribes before returning, so nothing held
/// after this call is missed; requests already held are shown too.
pub fn spawn(engine: Arc<Engine>, notifier: Arc<dyn Notifier>, opener: Arc<dyn Opener>) -> PrompterHandle {
    let events = engine.events.subscribe();
    let prompter = Prompter::new(engine, notifier, opener, FLOOD_THRESHOLD);
    let (stop, stopped) = oneshot::channel();
    PrompterHandle { stop: Some(stop), task: tokio::spawn(prompter.run(events, stopped)) }
}

/// The running prompter (dropping the handle leaves it running, like a task's).
pub struct PrompterHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl PrompterHandle {
    /// Takes every prompt off the screen (none may outlive the daemon) and stops.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(CALL_TIMEOUT, &mut self.task).await;
    }
}

enum Target {
    Approval(String),
    Queue(String),
}

#[derive(Default)]
struct GrantQueue {
    label: String,
    /// Requests of this grant with their own notification.
    shown: usize,
    /// Requests past the threshold, oldest first (counted by the summary).
    waiting: Vec<String>,
    summary: Option<u32>,
}

pub(crate) struct Prompter {
    engine: Arc<Engine>,
    notifier: Arc<dyn Notifier>,
    opener: Arc<dyn Opener>,
    threshold: usize,
    caps: Option<Capabilities>,
    warned: bool,
    /// Notification id → what it stands for.
    notes: HashMap<u32, Target>,
    /// Approval id → its notification and the request exactly as shown.
    shown: HashMap<String, (u32, PendingApproval)>,
    /// Approval id → grant id, for requests counted in a summary.
    queued: HashMap<String, String>,
    grants: HashMap<String, GrantQueue>,
    tx: mpsc::UnboundedSender<NoteEvent>,
    rx: Option<mpsc::UnboundedReceiver<NoteEvent>>,
}

impl Prompter {
    pub(crate) fn new(engine: Arc<Engine>, notifier: Arc<dyn Notifier>, opener: Arc<dyn Opener>, threshold: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Prompter {
            engine,
            notifier,
            opener,
            threshold: threshold.max(1),
            caps: None,
            warned: false,
            notes: HashMap::new(),
            shown: HashMap::new(),
            queued: HashMap::new(),
            grants: HashMap::new(),
            tx,
            rx: Some(rx),
        }
    }

    pub(crate) async fn run(mut self, mut events: tokio::sync::broadcast::Receiver<Event>, mut stopped: oneshot::Receiver<()>) {
        let mut rx = self.rx.take().expect("run once");
        let mut detached = false;
        self.available().await;
        self.resync().await;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(Event::ApprovalPending { id }) => self.pending(&id).await,
                    Ok(Event::ApprovalResolved { id }) => self.resolved(&id).await,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => self.resync().await,
                    Err(RecvError::Closed) => break,
                },
                Some(ev) = rx.recv() => self.on_note(ev).await,
                r = &mut stopped, if !detached => {
                    if r.is_err() {
                        // The handle was dropped, not shut down: keep prompting.
                        detached = true;
                        continue;
                    }
                    let ids: Vec<u32> = self.notes.keys().copied().collect();
                    for id in ids {
                        self.notifier.close(id).await;
                    }
                    break;
                }
            }
        }
    }

    /// Whether a notification server answers; asks it once, and again while it has not. The
    /// first failure is the one warning the log gets.
    async fn available(&mut self) -> bool {
        if self.caps.is_some() {
            return true;
        }
        let res = match tokio::time::timeout(CALL_TIMEOUT, self.notifier.capabilities()).await {
            Ok(r) => r,
            Err(_) => Err(super::NotifyError::Unavailable("the notification server did not answer".into())),
        };
        match res {
            Ok(c) => {
                tracing::info!(server = %c.server, actions = c.actions, markup = c.markup, "desktop prompts on");
                if !c.actions {
                    tracing::info!("the notification server shows no buttons: prompts say how to decide with the CLI");
                }
                self.caps = Some(c);
                true
            }
            Err(e) => {
                self.unavailable(&e.to_string());
                false
            }
        }
    }

    fn unavailable(&mut self, why: &str) {
        if self.warned {
            tracing::debug!(error = %why, "no desktop prompt");
        } else {
            tracing::warn!(error = %why, "desktop prompts unavailable (no notification server on the session bus); held payments wait for `purser approvals list` / approve / deny, or the app's window");
            self.warned = true;
        }
    }

    fn style(&self) -> Style {
        self.caps.as_ref().map(|c| Style { markup: c.markup, actions: c.actions }).unwrap_or_default()
    }

    /// Shows what is held and not shown yet; forgets what is no longer held.
    async fn resync(&mut self) {
        let now: Vec<PendingApproval> = self.engine.approvals.list();
        let gone: Vec<String> = self.shown.keys().chain(self.queued.keys()).filter(|id| !now.iter().any(|a| &&a.id == id)).cloned().collect();
        for id in gone {
            self.resolved(&id).await;
        }
        for a in now {
            self.pending(&a.id).await;
        }
    }

    async fn pending(&mut self, id: &str) {
        if self.shown.contains_key(id) || self.queued.contains_key(id) {
            return;
        }
        let Some(view) = self.engine.approvals.get(id) else { return };
        if !self.available().await {
            return;
        }
        let q = self.grants.entry(view.grant_id.clone()).or_default();
        q.label = view.grant_label.clone();
        if q.shown + 1 < self.threshold && q.waiting.is_empty() {
            self.show_one(view).await;
        } else {
            q.waiting.push(id.to_string());
            self.queued.insert(id.to_string(), view.grant_id.clone());
            self.update_queue(&view.grant_id).await;
        }
    }

    async fn show_one(&mut self, view: PendingApproval) {
        let style = self.style();
        let mut text = prompt::approval(&view, style, self.engine.clock.now());
        if self.engine.wallet().is_none() {
            text = prompt::wallet_locked(text);
        }
        let actions = if style.actions { vec![(ACTION_APPROVE.into(), "Approve once".into()), (ACTION_DENY.into(), "Deny".into()), (ACTION_OPEN.into(), "Open".into())] } else { Vec::new() };
        let note = Note { replaces: None, summary: text.summary, body: text.body, actions };
        if let Some(nid) = self.show(note).await {
            self.notes.insert(nid, Target::Approval(view.id.clone()));
            if let Some(q) = self.grants.get_mut(&view.grant_id) {
                q.shown += 1;
            }
            self.shown.insert(view.id.clone(), (nid, view));
        }
    }

    async fn show(&mut self, note: Note) -> Option<u32> {
        match tokio::time::timeout(CALL_TIMEOUT, self.notifier.show(note, self.tx.clone())).await {
            Ok(Ok(id)) => Some(id),
            Ok(Err(e)) => {
                self.unavailable(&e.to_string());
                None
            }
            Err(_) => {
                self.unavailable("the notification server did not answer");
                None
            }
        }
    }

    /// Puts the grant's summary in step with its waiting requests (closed when none wait).
    async fn update_queue(&mut self, grant_id: &str) {
        let Some(q) = self.grants.get(grant_id) else { return };
        let (waiting, label, summary) = (q.waiting.len(), q.label.clone(), q.summary);
        if waiting == 0 {
            if let Some(nid) = summary {
                self.notes.remove(&nid);
                if let Some(q) = self.grants.get_mut(grant_id) {
                    q.summary = None;
                }
                self.notifier.close(nid).await;
            }
            return;
        }
        let style = self.style();
        let text = prompt::queue(&label, waiting, style);
        let actions = if style.actions { vec![(ACTION_OPEN.into(), "Open".into())] } else { Vec::new() };
        let note = Note { replaces: summary, summary: text.summary, body: text.body, actions };
        if let Some(nid) = self.show(note).await {
            if let Some(old) = summary.filter(|o| *o != nid) {
                self.notes.remove(&old);
            }
            self.notes.insert(nid, Target::Queue(grant_id.to_string()));
            if let Some(q) = self.grants.get_mut(grant_id) {
                q.summary = Some(nid);
            }
        }
    }

    async fn resolved(&mut self, id: &str) {
        if let Some((nid, view)) = self.shown.remove(id) {
            self.notes.remove(&nid);
            if let Some(q) = self.grants.get_mut(&view.grant_id) {
                q.shown = q.shown.saturating_sub(1);
            }
            self.notifier.close(nid).await;
        } else if let Some(gid) = self.queued.remove(id) {
            if let Some(q) = self.grants.get_mut(&gid) {
                q.waiting.retain(|w| w != id);
            }
            self.update_queue(&gid).await;
        }
    }

    async fn on_note(&mut self, ev: NoteEvent) {
        match ev {
            NoteEvent::Action { id, key } => match self.notes.get(&id) {
                Some(Target::Approval(aid)) => {
                    let Some((_, view)) = self.shown.get(aid) else { return };
                    let view = view.clone();
                    match key.as_str() {
                        ACTION_APPROVE | ACTION_DENY => {
                            let approve = key == ACTION_APPROVE;
                            // Bound to exactly what the notification showed.
                            let d = crate::decisions::Decision { approve, requirement_hash: Some(view.requirement_hash.clone()), ..Default::default() };
                            match self.engine.decide(&view.id, &d, crate::presence::Presence::notification_click()) {
                                Ok(_) => tracing::info!(approval = %view.id, approve, "decided from the notification"),
                                Err(e) => tracing::info!(approval = %view.id, error = %e, "a notification's decision came too late"),
                            }
                        }
                        ACTION_OPEN | ACTION_DEFAULT => self.opener.open_approval(&view),
                        other => tracing::debug!(action = other, "unknown notification action ignored"),
                    }
                }
                Some(Target::Queue(gid)) => {
                    if let Some(q) = self.grants.get(gid) {
                        if key == ACTION_OPEN || key == ACTION_DEFAULT {
                            self.opener.open_queue(gid, &q.label, q.waiting.len());
                        }
                    }
                }
                None => {}
            },
            NoteEvent::Closed { id } => {
                // Dismissed without a decision: the request keeps waiting (window, CLI).
                if let Some(Target::Queue(gid)) = self.notes.remove(&id) {
                    if let Some(q) = self.grants.get_mut(&gid) {
                        q.summary = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::NotifyError;
    use super::*;
    use crate::approvals::{Verdict, Via};
    use crate::clock::{ManualClock, OsNonces};
    use crate::ledger::Ledger;
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;

    /// A notifier that records (unit tests only; the end-to-end tests use a real D-Bus server).
    #[derive(Default)]
    struct Recorder {
        shown: Mutex<Vec<(u32, Note)>>,
        closed: Mutex<Vec<u32>>,
        next: Mutex<u32>,
        tx: Mutex<Option<mpsc::UnboundedSender<NoteEvent>>>,
        down: bool,
        opened: Mutex<Vec<String>>,
    }

    impl Notifier for Recorder {
        fn capabilities(&self) -> BoxFuture<'_, Result<Capabilities, NotifyError>> {
            Box::pin(async move {
                if self.down {
                    Err(NotifyError::Unavailable("org.freedesktop.Notifications was not provided by any .service files".into()))
                } else {
                    Ok(Capabilities { actions: true, markup: false, server: "recorder".into() })
                }
            })
        }
        fn show(&self, note: Note, events: mpsc::UnboundedSender<NoteEvent>) -> BoxFuture<'_, Result<u32, NotifyError>> {
            Box::pin(async move {
                if self.down {
                    return Err(NotifyError::Unavailable("down".into()));
                }
                *self.tx.lock().unwrap() = Some(events);
                let id = match note.replaces {
                    Some(id) => id,
                    None => {
                        let mut n = self.next.lock().unwrap();
                        *n += 1;
                        *n
                    }
                };
                self.shown.lock().unwrap().push((id, note));
                Ok(id)
            })
        }
        fn close(&self, id: u32) -> BoxFuture<'_, ()> {
            Box::pin(async move { self.closed.lock().unwrap().push(id) })
        }
    }

    impl Opener for Recorder {
        fn open_approval(&self, a: &PendingApproval) {
            self.opened.lock().unwrap().push(a.id.clone());
        }
        fn open_queue(&self, gid: &str, _: &str, n: usize) {
            self.opened.lock().unwrap().push(format!("{gid}:{n}"));
        }
    }

    impl Recorder {
        fn distinct(&self) -> usize {
            let mut ids: Vec<u32> = self.shown.lock().unwrap().iter().map(|(id, _)| *id).collect();
            ids.sort();
            ids.dedup();
            ids.len()
        }
        fn press(&self, id: u32, key: &str) {
            self.tx.lock().unwrap().as_ref().unwrap().send(NoteEvent::Action { id, key: key.into() }).unwrap();
        }
    }

    fn engine() -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open_in(&dir.path().join("d")).unwrap();
        // An unlocked wallet: prompts raised while it is locked say so (see `a_locked_wallet_is_said_in_the_prompt`).
        let wallet = crate::wallet::Wallet::from_key_hex("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d").unwrap();
        let e = Engine::with_sources(ledger, Some(wallet), Arc::new(ManualClock::new(chrono::Utc::now())), Arc::new(OsNonces)).unwrap();
        (dir, Arc::new(e))
    }

    #[tokio::test]
    async fn a_locked_wallet_is_said_in_the_prompt() {
        let (_d, e) = engine();
        e.set_wallet(None);
        let rec = Arc::new(Recorder::default());
        let prompter = spawn(e.clone(), rec.clone(), rec.clone());
        let _held = e.approvals.hold(view("l1", "g"));
        settle(|| rec.shown.lock().unwrap().len() == 1).await;
        let (_, note) = rec.shown.lock().unwrap()[0].clone();
        assert_eq!(note.summary, "unknown: pay $0.05 to 127.0.0.1:4021? (wallet locked)");
        assert_eq!(note.body.lines().next(), Some(crate::prompt::WALLET_LOCKED));
        prompter.shutdown().await;
    }

    fn view(id: &str, grant: &str) -> PendingApproval {
        let mut v = crate::prompt::tests::view();
        v.id = id.into();
        v.grant_id = grant.into();
        v.requirement_hash = format!("hash-{id}");
        v
    }

    async fn settle<F: Fn() -> bool>(cond: F) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("condition never held");
    }

    #[tokio::test]
    async fn one_prompt_per_request_and_buttons_decide_bound_to_the_hash() {
        let (_d, e) = engine();
        let rec = Arc::new(Recorder::default());
        let prompter = spawn(e.clone(), rec.clone(), rec.clone());
        let held = e.approvals.hold(view("a1", "g"));
        settle(|| rec.shown.lock().unwrap().len() == 1).await;
        let (nid, note) = rec.shown.lock().unwrap()[0].clone();
        assert_eq!(note.summary, "unknown: pay $0.05 to 127.0.0.1:4021?");
        assert_eq!(note.actions.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["approve", "deny", "open"]);
        rec.press(nid, "open");
        settle(|| rec.opened.lock().unwrap().len() == 1).await;
        assert!(e.approvals.get("a1").is_some(), "open decides nothing");
        rec.press(nid, "approve");
        assert_eq!(e.approvals.wait_decision(held, Duration::from_secs(5)).await, (Verdict::Approved, Some(Via::Notification)));
        settle(|| rec.closed.lock().unwrap().as_slice() == [nid]).await;

        // Denied from the notification; a late press changes nothing.
        let held = e.approvals.hold(view("a2", "g"));
        settle(|| rec.shown.lock().unwrap().len() == 2).await;
        let nid = rec.shown.lock().unwrap()[1].0;
        rec.press(nid, "deny");
        assert_eq!(e.approvals.wait_decision(held, Duration::from_secs(5)).await, (Verdict::Denied, Some(Via::Notification)));
        rec.press(nid, "approve");

        // Timed out: the notification is closed.
        let held = e.approvals.hold(view("a3", "g"));
        settle(|| rec.shown.lock().unwrap().len() == 3).await;
        let nid = rec.shown.lock().unwrap()[2].0;
        assert_eq!(e.approvals.wait(held, Duration::from_millis(10)).await, Verdict::TimedOut);
        settle(|| rec.closed.lock().unwrap().contains(&nid)).await;

        // Shutting down takes what is still up off the screen.
        let _held = e.approvals.hold(view("a4", "g"));
        settle(|| rec.shown.lock().unwrap().len() == 4).await;
        let nid = rec.shown.lock().unwrap()[3].0;
        prompter.shutdown().await;
        assert!(rec.closed.lock().unwrap().contains(&nid));
    }

    #[tokio::test]
    async fn a_flood_shows_at_most_the_threshold() {
        let (_d, e) = engine();
        let rec = Arc::new(Recorder::default());
        let _prompter = spawn(e.clone(), rec.clone(), rec.clone());
        let helds: Vec<_> = (0..50).map(|i| e.approvals.hold(view(&format!("f{i:02}"), "flood"))).collect();
        let other = e.approvals.hold(view("o1", "other"));
        settle(|| rec.shown.lock().unwrap().iter().any(|(_, n)| n.summary == "46 more payments waiting for you")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let shown = rec.shown.lock().unwrap().clone();
        let individual: Vec<_> = shown.iter().filter(|(_, n)| n.summary.contains(": pay ")).collect();
        assert_eq!(individual.len(), FLOOD_THRESHOLD - 1 + 1, "4 for the flooded grant, 1 for the other grant");
        assert_eq!(rec.distinct(), FLOOD_THRESHOLD + 1, "the flooded grant has at most the threshold on screen");
        let summary_id = shown.iter().find(|(_, n)| n.summary.contains("more")).unwrap().0;
        assert_eq!(shown.iter().filter(|(_, n)| n.summary.contains("more")).map(|(id, _)| *id).max(), Some(summary_id), "one summary, replaced in place");
        rec.press(summary_id, "open");
        settle(|| rec.opened.lock().unwrap().as_slice() == ["flood:46"]).await;

        // Deciding queued requests (window, CLI) counts the summary down, then closes it.
        for i in 4..49 {
            e.approvals.decide_via(&format!("f{i:02}"), false, None, Via::Terminal).unwrap();
        }
        let mut helds = helds.into_iter();
        for h in helds.by_ref().take(49) {
            let _ = e.approvals.wait(h, Duration::from_millis(1)).await;
        }
        settle(|| rec.shown.lock().unwrap().last().is_some_and(|(_, n)| n.summary == "1 more payment waiting for you")).await;
        e.approvals.decide_via("f49", false, None, Via::Terminal).unwrap();
        let _ = e.approvals.wait(helds.next().unwrap(), Duration::from_millis(1)).await;
        settle(|| rec.closed.lock().unwrap().contains(&summary_id)).await;
        assert_eq!(rec.distinct(), FLOOD_THRESHOLD + 1, "no new notification while the flood drains");
        drop(other);
    }

    #[tokio::test]
    async fn without_a_server_it_stays_quiet() {
        let (_d, e) = engine();
        let rec = Arc::new(Recorder { down: true, ..Default::default() });
        let _prompter = spawn(e.clone(), rec.clone(), rec.clone());
        let held = e.approvals.hold(view("q1", "g"));
        tokio::time::sleep(Duration::from_millis(30)).await;
        e.approvals.decide_via("q1", true, Some("hash-q1"), Via::Terminal).unwrap();
        assert_eq!(e.approvals.wait_decision(held, Duration::from_secs(5)).await, (Verdict::Approved, Some(Via::Terminal)));
        assert!(rec.shown.lock().unwrap().is_empty());
    }
}
