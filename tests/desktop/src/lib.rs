//! purser-desktop-e2e: drives the built desktop app (`tauri build` binary) in its real webview.
//!
//! One [`App`] is a private X display (Xvfb) and D-Bus session bus, a fresh data dir holding the
//! test wallet, a `tauri-driver` on free ports (which starts WebKitWebDriver, which starts the
//! app with `PURSER_DATA_DIR`, `PURSER_PORT=0`, `PURSER_PASSPHRASE`), and a fantoccini WebDriver
//! session on it. Everything is stopped on Drop. Nothing here skips: a missing app binary,
//! `tauri-driver` or `WebKitWebDriver` is a failure that says how to get it.
//!
//! * [`display`]: Xvfb on a free display number.
//! * [`driver`]: finding the binaries, free ports, the tauri-driver process.
//! * [`ui`]: waits, clicks, typing and screenshots on top of fantoccini.

pub mod display;
pub mod driver;
pub mod tray;
pub mod ui;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use fantoccini::Client;
use purser_testkit::SessionBus;
use serde_json::Value;

pub use display::Xvfb;
pub use driver::{app_binary, artifacts_dir};
pub use ui::{by_testid, Ui};

/// The passphrase the test wallet is sealed with (the app unlocks with it at start).
pub const PASSPHRASE: &str = "desktop-e2e-correct-horse-battery";

/// How long the app gets to show its UI (a cold debug webview on a busy 2-core machine is slow).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The control file the app writes in its data dir (same shape as `purser serve`'s).
#[derive(Clone, Debug)]
pub struct Control {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// The control API's Unix socket.
    pub socket: PathBuf,
    pub pid: u32,
}

impl Control {
    /// Calls the control API on its socket: `(status, JSON)`.
    pub async fn call(&self, method: &str, path: &str) -> (u16, Value) {
        let (socket, method, path) = (self.socket.clone(), method.to_string(), path.to_string());
        tokio::task::spawn_blocking(move || purser_testkit::purser::control_call(&socket, &method, &path, None)).await.expect("control call")
    }
}

/// The app under test, with its WebDriver session.
pub struct App {
    pub ui: Ui,
    pub data_dir: PathBuf,
    pub control: Control,
    /// The wallet address in the data dir (empty without a wallet).
    pub address: String,
    /// Time from starting the WebDriver session to the app's root UI being found.
    pub shown_after: Duration,
    /// `N` of the app's `purser-app: ready in N ms` line.
    pub ready_ms: Option<u64>,
    driver: Option<Child>,
    log: PathBuf,
    // Drop order: the session and driver first (above), then the bus and display.
    _bus: SessionBus,
    _xvfb: Xvfb,
    _work: tempfile::TempDir,
}

/// What the app is started with.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Private key (0x hex) imported as the app's wallet when the data dir has none; None: no
    /// wallet (e.g. a dir seeded with `purser dev seed-receipts`, which refuses wallets).
    pub key_hex: Option<String>,
    /// An existing data dir to use instead of a fresh one.
    pub data_dir: Option<PathBuf>,
    /// Pass `PURSER_PASSPHRASE` (unlock at start).
    pub unlock: bool,
    /// More environment for the app (after the harness's own, so it can override them).
    pub env: Vec<(&'static str, String)>,
}

impl AppOptions {
    pub fn with_key(key_hex: &str) -> Self {
        AppOptions { key_hex: Some(key_hex.to_string()), unlock: true, ..Default::default() }
    }
}

impl App {
    /// Starts everything and waits until the UI shows its navigation (panics with the app log
    /// and a screenshot of the display on failure).
    pub async fn start(opts: AppOptions) -> App {
        let bin = app_binary();
        let work = tempfile::Builder::new().prefix("purser-desktop-").tempdir().expect("tempdir");
        let data_dir = opts.data_dir.clone().unwrap_or_else(|| work.path().join("data"));
        purser_core::datadir::ensure_private_dir(&data_dir).expect("create the data dir");
        use purser_core::wallet::Wallet;
        let address = match &opts.key_hex {
            _ if Wallet::exists(&data_dir) => Wallet::address_of(&data_dir).expect("wallet address").to_string(),
            Some(key) => Wallet::import(&data_dir, key, PASSPHRASE).expect("import the test wallet").to_string(),
            None => String::new(),
        };
        let xvfb = Xvfb::start();
        let bus = SessionBus::start();
        let log = work.path().join("app.log");
        let mut env: Vec<(&str, String)> = vec![
            ("DISPLAY", xvfb.display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS", bus.address.clone()),
            ("PURSER_DATA_DIR", data_dir.display().to_string()),
            ("PURSER_PORT", "0".into()),
            ("PURSER_NO_NOTIFY", "1".into()),
            ("PURSER_NO_DIALOG", "1".into()),
            ("NO_AT_BRIDGE", "1".into()),
            ("XDG_DATA_HOME", work.path().join("xdg-data").display().to_string()),
            ("XDG_CONFIG_HOME", work.path().join("xdg-config").display().to_string()),
            ("XDG_CACHE_HOME", work.path().join("xdg-cache").display().to_string()),
        ];
        if opts.unlock {
            env.push(("PURSER_PASSPHRASE", PASSPHRASE.into()));
        }
        env.extend(opts.env.iter().cloned());
        let (driver, port) = driver::spawn_tauri_driver(&env, &log);
        let t0 = Instant::now();
        let client = driver::session(port, &bin).await.unwrap_or_else(|e| panic!("no WebDriver session for {} ({e}); app/driver log:\n{}", bin.display(), purser_testkit::proc::tail(&log, 60)));
        let ui = Ui::new(client, artifacts_dir(), xvfb.display.clone());
        let mut app = App {
            ui,
            data_dir: data_dir.clone(),
            control: Control { url: String::new(), socket: PathBuf::new(), pid: 0 },
            address,
            shown_after: Duration::ZERO,
            ready_ms: None,
            driver: Some(driver),
            log,
            _bus: bus,
            _xvfb: xvfb,
            _work: work,
        };
        if let Err(e) = app.ui.wait_for_testid("nav-timeline", START_TIMEOUT).await {
            app.fail(&format!("the app's UI did not appear: {e}")).await;
        }
        app.shown_after = t0.elapsed();
        app.control = app.wait_control().await;
        app.ready_ms = app.wait_ready_line(Duration::from_secs(10)).await;
        app
    }

    async fn wait_control(&self) -> Control {
        let path = self.data_dir.join("control.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| Some(Control { url: v["url"].as_str()?.trim_end_matches('/').to_string(), socket: PathBuf::from(v["socket"].as_str()?), pid: v["pid"].as_u64()? as u32 }))
            {
                return c;
            }
            if Instant::now() >= deadline {
                panic!("the app wrote no usable {} within 20 s; log:\n{}", path.display(), self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready_line(&self, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(ms) = text.lines().find_map(|l| l.split("purser-app: ready in ").nth(1)?.split(' ').next()?.parse().ok()) {
                return Some(ms);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The session bus the app is on (its tray menu and notifications are there).
    pub fn bus_address(&self) -> &str {
        &self._bus.address
    }

    /// The app's X display (`:N`).
    pub fn display(&self) -> &str {
        &self._xvfb.display
    }

    /// The last lines of the app's (and the drivers') output.
    pub fn log_tail(&self, n: usize) -> String {
        purser_testkit::proc::tail(&self.log, n)
    }

    /// The app's log file (stdout and stderr of tauri-driver, WebKitWebDriver and the app).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `http://127.0.0.1:PORT/<upstream_url>` (gateway mode) on the app's proxy.
    pub fn gateway_url(&self, upstream_url: &str) -> String {
        format!("{}/{}", self.control.url, upstream_url)
    }

    /// Saves a screenshot named `failure-<what>` and panics with `msg` and the log tail.
    pub async fn fail(&self, msg: &str) -> ! {
        let name = format!("failure-{}", msg.chars().filter(|c| c.is_ascii_alphanumeric()).take(40).collect::<String>());
        let shot = self.ui.screenshot(&name).await;
        panic!("{msg}\nscreenshot: {shot:?}\napp log (tail):\n{}", self.log_tail(60));
    }

    /// Ends the WebDriver session, the driver and the app (SIGTERM: the tray's Quit).
    pub async fn stop(mut self) {
        // WebKitWebDriver may never answer the close when WebKit paints on the CPU (compositing
        // off: machines without a GPU, like this one); the app gets SIGTERM below either way.
        if tokio::time::timeout(Duration::from_secs(3), self.ui.client().clone().close()).await.is_err() {
            eprintln!("WebDriver: no answer to closing the session in 3 s; stopping the app with SIGTERM");
        }
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        if let Some(mut d) = self.driver.take() {
            purser_testkit::proc::terminate(&mut d, Duration::from_secs(5));
        }
        // The app is a grandchild: make sure it does not outlive the test.
        if self.control.pid != 0 && driver::is_alive(self.control.pid) {
            purser_testkit::proc::signal(self.control.pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while driver::is_alive(self.control.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if driver::is_alive(self.control.pid) {
                purser_testkit::proc::signal(self.control.pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== app log (tail) ===\n{}", self.log_tail(40));
        }
        self.stop_driver();
    }
}

/// Client type used by the harness (plain HTTP to the local driver).
pub type WebDriver = Client;
