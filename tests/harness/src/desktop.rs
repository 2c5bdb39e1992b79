//! The user's desktop, for prompt tests: a private D-Bus session bus started by
//! `dbus-run-session` (with a config that activates no service, so no installed notification
//! daemon can ever claim the name), and [`NotifyServer`], a notification server on it that owns
//! `org.freedesktop.Notifications`, answers `GetCapabilities`, records every `Notify` and
//! `CloseNotification`, and emits `ActionInvoked` when the test presses a button.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::object_server::SignalEmitter;

use crate::proc;

const BUS_NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// A private session bus; stops (and its daemon with it) on Drop.
pub struct SessionBus {
    /// `DBUS_SESSION_BUS_ADDRESS` for the processes that should use it.
    pub address: String,
    child: Child,
    stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

impl SessionBus {
    /// Starts `dbus-run-session` holding a private bus until Drop (panics with a hint when
    /// `dbus-run-session` is missing: `./dev test` installs it).
    pub fn start() -> SessionBus {
        let dir = tempfile::Builder::new().prefix("purser-bus-").tempdir().expect("tempdir");
        let conf = dir.path().join("session.conf");
        // A session bus that listens in our own dir, lets the user's processes talk, and has no
        // <servicedir>: nothing is ever started by activation.
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().display()
            ),
        )
        .expect("write bus config");
        // The child prints the address it was given and then waits on stdin: closing our end
        // ends it, and dbus-run-session then stops the bus daemon.
        let mut child = Command::new("dbus-run-session")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--", "sh", "-c", "printf '%s\\n' \"$DBUS_SESSION_BUS_ADDRESS\"; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(proc::log_stdio(&dir.path().join("bus.stderr")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dbus-run-session ({e}): install the `dbus-daemon` package (./dev test does)"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default().trim().to_string();
        if address.is_empty() {
            let st = proc::terminate(&mut child, Duration::from_secs(3));
            panic!("dbus-run-session printed no bus address ({st:?}): {}", proc::tail(&dir.path().join("bus.stderr"), 20));
        }
        SessionBus { address, child, stdin, _dir: dir }
    }

    /// Whether `name` has an owner on this bus (asked without touching the name itself).
    pub async fn has_owner(&self, name: &str) -> bool {
        let conn = zbus::connection::Builder::address(self.address.as_str()).build().await.expect("connect to the test bus");
        let dbus = zbus::fdo::DBusProxy::new(&conn).await.expect("bus proxy");
        dbus.name_has_owner(name.try_into().expect("bus name")).await.unwrap_or(false)
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if proc::wait_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
            proc::terminate(&mut self.child, Duration::from_secs(3));
        }
    }
}

/// One `Notify` call as the server received it (with the id it answered).
#[derive(Clone, Debug)]
pub struct Notification {
    pub id: u32,
    pub app_name: String,
    pub replaces_id: u32,
    pub summary: String,
    pub body: String,
    /// (key, label) pairs.
    pub actions: Vec<(String, String)>,
    pub hints: Vec<String>,
    pub expire_timeout: i32,
}

impl Notification {
    pub fn action_keys(&self) -> Vec<&str> {
        self.actions.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[derive(Default)]
struct State {
    next: u32,
    capabilities: Vec<String>,
    notifications: Vec<Notification>,
    closed: Vec<u32>,
    capability_calls: usize,
    /// Pressed on every new notification before `Notify` answers (see [`NotifyServer::press_at_once`]).
    press_at_once: Option<String>,
}

struct Server(Arc<Mutex<State>>);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    async fn get_capabilities(&self) -> Vec<String> {
        let mut s = self.0.lock().unwrap();
        s.capability_calls += 1;
        s.capabilities.clone()
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        ("purser-test-notifyd".into(), "purser".into(), "1".into(), "1.2".into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, zbus::OwnedVariant>,
        expire_timeout: i32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> u32 {
        let (id, press) = self.record(app_name, replaces_id, summary, body, actions, hints, expire_timeout);
        if let Some(key) = press {
            // Sent before the reply: the client sees the press before it knows the id.
            emitter.emit(BUS_NAME, "ActionInvoked", &(id, key.as_str())).await.expect("emit ActionInvoked");
        }
        id
    }

    async fn close_notification(&self, id: u32, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) {
        self.0.lock().unwrap().closed.push(id);
        let _ = emitter.emit(BUS_NAME, "NotificationClosed", &(id, 3u32)).await;
    }
}

impl Server {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        app_name: String,
        replaces_id: u32,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, zbus::OwnedVariant>,
        expire_timeout: i32,
    ) -> (u32, Option<String>) {
        let mut s = self.0.lock().unwrap();
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            s.next += 1;
            s.next
        };
        let mut hint_keys: Vec<String> = hints.into_keys().collect();
        hint_keys.sort();
        let actions = actions.chunks(2).map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default())).collect();
        s.notifications.push(Notification { id, app_name, replaces_id, summary, body, actions, hints: hint_keys, expire_timeout });
        (id, if replaces_id == 0 { s.press_at_once.clone() } else { None })
    }
}

/// The test notification server (see the module docs).
pub struct NotifyServer {
    conn: zbus::Connection,
    state: Arc<Mutex<State>>,
}

impl NotifyServer {
    /// Owns `org.freedesktop.Notifications` on `bus`, answering `GetCapabilities` with `caps`.
    pub async fn start(bus: &SessionBus, caps: &[&str]) -> NotifyServer {
        let state = Arc::new(Mutex::new(State { capabilities: caps.iter().map(|c| c.to_string()).collect(), ..Default::default() }));
        let conn = zbus::connection::Builder::address(bus.address.as_str()).name(BUS_NAME).serve_at(PATH, Server(state.clone())).build().await.expect("start the test notification server");
        assert!(bus.has_owner(BUS_NAME).await, "the test notification server does not own {BUS_NAME}");
        NotifyServer { conn, state }
    }

    /// From now on, the server presses `key` on each new notification at once: the
    /// `ActionInvoked` signal goes out before the answer to `Notify` (a fast user, a fast server,
    /// or a loaded machine can make that order happen; the client must not lose the press).
    pub fn press_at_once(&self, key: &str) {
        self.state.lock().unwrap().press_at_once = Some(key.to_string());
    }

    /// Every `Notify` call so far, in order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.state.lock().unwrap().notifications.clone()
    }

    /// Ids passed to `CloseNotification`, in order.
    pub fn closed(&self) -> Vec<u32> {
        self.state.lock().unwrap().closed.clone()
    }

    pub fn capability_calls(&self) -> usize {
        self.state.lock().unwrap().capability_calls
    }

    /// Waits until at least `n` `Notify` calls were made; returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Notification> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.notifications();
            if all.len() >= n {
                return all;
            }
            if Instant::now() >= deadline {
                panic!("waited {timeout:?} for {n} notifications, got {}: {all:#?}", all.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `id` was closed through `CloseNotification`.
    pub async fn wait_closed(&self, id: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.closed().contains(&id) {
            if Instant::now() >= deadline {
                panic!("notification {id} was not closed within {timeout:?}; closed: {:?}", self.closed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The user presses `key` on notification `id`: `ActionInvoked`, then, unless it asked to
    /// stay (`resident` hint), `NotificationClosed` (reason 2), as real servers do.
    pub async fn invoke(&self, id: u32, key: &str) {
        let resident = self.notifications().iter().rev().find(|n| n.id == id).is_some_and(|n| n.hints.iter().any(|h| h == "resident"));
        let emitter = SignalEmitter::new(&self.conn, PATH).expect("signal emitter");
        emitter.emit(BUS_NAME, "ActionInvoked", &(id, key)).await.expect("emit ActionInvoked");
        if !resident {
            emitter.emit(BUS_NAME, "NotificationClosed", &(id, 2u32)).await.expect("emit NotificationClosed");
        }
    }
}
