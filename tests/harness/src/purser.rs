//! One Purser under test: a fresh data dir, an imported wallet, a `purser serve --port 0` daemon
//! and the CLI pointed at the same data dir. Stops the daemon (SIGTERM, then kill) on Drop.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::peers::Peers;
use crate::proc;

pub const PASSPHRASE: &str = "e2e-correct-horse-battery-staple";

/// How `purser serve` runs. By default it raises no desktop prompts (`--no-notify`), so tests
/// never pop notifications on a developer's desktop.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Raise desktop prompts (no `--no-notify`) on this session bus address.
    pub session_bus: Option<String>,
    /// Extra environment for `serve` (e.g. the limits' `PURSER_*_SECS` overrides).
    pub env: Vec<(String, String)>,
    /// Use this data dir (e.g. on a small filesystem the test mounted) instead of a fresh one
    /// inside the private tempdir. It must exist and be empty (or hold a Purser data dir).
    pub data_dir: Option<PathBuf>,
}

pub struct Purser {
    pub bin: PathBuf,
    /// `http://127.0.0.1:PORT` (no trailing slash), from the daemon's first stdout line.
    pub proxy_url: String,
    pub port: u16,
    /// The data dir (created by purser itself, inside a private tempdir).
    pub data_dir: PathBuf,
    /// The wallet address `purser wallet address` printed.
    pub address: String,
    child: Option<Child>,
    work: tempfile::TempDir,
    opts: ServeOptions,
}

fn text(out: &Output) -> String {
    format!("status {}\n--- stdout\n{}\n--- stderr\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Purser {
    /// Purser paying with the peers' payer key.
    pub fn start(bin: &str, peers: &Peers) -> Purser {
        let p = Self::start_with_key(bin, &peers.payer_key);
        assert!(p.address.eq_ignore_ascii_case(&peers.payer_address), "wallet address {} != peers' payer {}", p.address, peers.payer_address);
        p
    }

    /// Purser with any private key (tests that need no chain use the anvil payer key).
    pub fn start_with_key(bin: &str, key_hex: &str) -> Purser {
        Self::start_with(bin, key_hex, ServeOptions::default())
    }

    /// Purser with any private key, served as `opts` says.
    pub fn start_with(bin: &str, key_hex: &str, opts: ServeOptions) -> Purser {
        let work = tempfile::Builder::new().prefix("purser-e2e-").tempdir().expect("tempdir");
        let data_dir = opts.data_dir.clone().unwrap_or_else(|| work.path().join("data"));
        let mut p = Purser { bin: PathBuf::from(bin), proxy_url: String::new(), port: 0, data_dir, address: String::new(), child: None, work, opts };
        let key_file = p.work.path().join("payer.key");
        std::fs::write(&key_file, format!("{key_hex}\n")).expect("write key file");
        let out = p.cli_raw(["wallet", "import", "--key-file"].iter().map(OsStr::new).chain([key_file.as_os_str()]));
        assert!(out.status.success(), "purser wallet import failed: {}", text(&out));
        let _ = std::fs::remove_file(&key_file);
        let out = p.cli(&["wallet", "address"]);
        assert!(out.status.success(), "purser wallet address failed: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        p.address = stdout.split_whitespace().find(|w| w.starts_with("0x") && w.len() == 42).unwrap_or_else(|| panic!("no 0x address in `wallet address` output: {}", text(&out))).to_string();
        p.spawn_serve();
        p
    }

    fn base_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .env("PURSER_DATA_DIR", &self.data_dir)
            .env("PURSER_PASSPHRASE", PASSPHRASE)
            .env("NO_COLOR", "1")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy");
        cmd
    }

    fn spawn_serve(&mut self) {
        let mut cmd = self.base_cmd();
        cmd.args(["serve", "--port", "0"]);
        match &self.opts.session_bus {
            Some(address) => cmd.env("DBUS_SESSION_BUS_ADDRESS", address),
            None => cmd.arg("--no-notify"),
        };
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(proc::log_stdio(&self.stderr_log()));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn purser serve: {e}"));
        let lines = proc::line_reader(child.stdout.take().unwrap(), &self.work.path().join("serve.stdout"));
        let first = match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let st = proc::terminate(&mut child, Duration::from_secs(3));
                panic!("purser serve printed no first line within 30 s (exit {st:?}); stderr:\n{}", proc::tail(&self.stderr_log(), 40));
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first stdout line of serve is {first:?}, want `listening on http://127.0.0.1:PORT`"))
            .trim()
            .trim_end_matches('/')
            .to_string();
        let port: u16 = url.strip_prefix("http://127.0.0.1:").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("listening URL {url:?} is not http://127.0.0.1:PORT"));
        self.proxy_url = url;
        self.port = port;
        self.child = Some(child);
        // The CLI's `approvals` commands need control.json; give the daemon a moment to write it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.data_dir.join("control.json").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything `serve` printed on stdout (its first line included).
    pub fn stdout_log(&self) -> PathBuf {
        self.work.path().join("serve.stdout")
    }

    pub fn stderr_log(&self) -> PathBuf {
        self.work.path().join("serve.stderr")
    }

    pub fn serve_log_tail(&self, n: usize) -> String {
        proc::tail(&self.stderr_log(), n)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Is the daemon process still running?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGTERM to the daemon (does not wait).
    pub fn sigterm(&self) {
        if let Some(c) = &self.child {
            proc::sigterm(c);
        }
    }

    /// Waits for the daemon to exit; None if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let st = proc::wait_timeout(c, timeout);
        if st.is_some() {
            self.child = None;
        }
        st
    }

    /// Stops the daemon (SIGTERM, 10 s grace, then kill); the data dir stays for the CLI.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        proc::terminate(&mut c, Duration::from_secs(10))
    }

    /// Restarts `serve` on the same data dir (new port).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_serve();
    }

    /// Runs the CLI. A command that widens spending asks for the wallet passphrase at the
    /// terminal (never from the environment): it runs on a pseudo-terminal and the harness types
    /// [`PASSPHRASE`] when asked, as the user would.
    pub fn cli_raw<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let mut cmd = self.base_cmd();
        cmd.args(&args);
        if asks_presence(&args) {
            let out = crate::pty::run_at_terminal(cmd, &[("passphrase", PASSPHRASE)], Duration::from_secs(60));
            return Output { status: out.status, stdout: out.stdout, stderr: out.stderr };
        }
        proc::run_with_timeout(cmd, Duration::from_secs(60))
    }

    /// Runs the CLI with no terminal at all (nobody there to type), `PURSER_PASSPHRASE` still in
    /// its environment: a widening command must be refused (`presence_required`).
    pub fn cli_without_tty(&self, args: &[&str]) -> Output {
        let mut cmd = self.base_cmd();
        cmd.args(args);
        crate::pty::run_without_tty(cmd, Duration::from_secs(60))
    }

    /// Runs the CLI on a terminal where `typed` is typed at the passphrase prompt.
    pub fn cli_typing(&self, args: &[&str], typed: &str) -> crate::pty::PtyOutput {
        let mut cmd = self.base_cmd();
        cmd.args(args);
        crate::pty::run_at_terminal(cmd, &[("passphrase", typed)], Duration::from_secs(60))
    }

    /// Runs `purser --data-dir DIR ARGS...` and returns its output (whatever the exit status).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_raw(args)
    }

    /// Runs the CLI, asserts success and parses stdout as JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(out.status.success(), "purser {args:?} failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("purser {args:?} printed no JSON ({e}): {}", text(&out)))
    }

    /// Runs the CLI and asserts success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "purser {args:?} failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `grant create ... --json`; adds `--label e2e --budget 1.00 --expires 2h --host 127.0.0.1`
    /// for whichever of those flags `args` lacks.
    pub fn grant_create(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = vec!["grant", "create"];
        all.extend_from_slice(args);
        for (flag, default) in [("--label", "e2e"), ("--budget", "1.00"), ("--expires", "2h"), ("--host", "127.0.0.1")] {
            if !args.contains(&flag) {
                all.push(flag);
                all.push(default);
            }
        }
        all.push("--json");
        let g = self.cli_json(&all);
        assert!(g["token"].is_string() && g["id"].is_string(), "grant create JSON lacks id/token: {g}");
        g
    }

    /// `grant_create`, returning just (id, token).
    pub fn grant(&self, args: &[&str]) -> (String, String) {
        let g = self.grant_create(args);
        (g["id"].as_str().unwrap().to_string(), g["token"].as_str().unwrap().to_string())
    }

    pub fn grant_show(&self, id: &str) -> Value {
        self.cli_json(&["grant", "show", id, "--json"])
    }

    /// All receipts, newest first (`receipts list --json --limit 10000`).
    pub fn receipts(&self) -> Vec<Value> {
        self.receipts_limit(10000)
    }

    pub fn receipts_limit(&self, n: usize) -> Vec<Value> {
        let n = n.to_string();
        match self.cli_json(&["receipts", "list", "--json", "--limit", &n]) {
            Value::Array(a) => a,
            other => panic!("receipts list --json is not an array: {other}"),
        }
    }

    /// The receipt with this id (panics with the last receipts when absent).
    pub fn receipt(&self, id: &str) -> Value {
        let all = self.receipts();
        all.iter().find(|r| r["id"].as_str() == Some(id)).cloned().unwrap_or_else(|| panic!("no receipt {id}; last receipts:\n{}", pretty(&all[..all.len().min(5)])))
    }

    /// Pending approvals (`approvals list --json`).
    pub fn approvals(&self) -> Vec<Value> {
        match self.cli_json(&["approvals", "list", "--json"]) {
            Value::Array(a) => a,
            other => panic!("approvals list --json is not an array: {other}"),
        }
    }

    /// Polls `approvals list` until at least `n` entries satisfy `pred` (panics after `timeout`).
    pub fn wait_approvals(&self, n: usize, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let list: Vec<Value> = self.approvals().into_iter().filter(|a| pred(a)).collect();
            if list.len() >= n {
                return list;
            }
            if Instant::now() >= deadline {
                panic!("waited {timeout:?} for {n} pending approvals, have: {}", pretty(&list));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT/<upstream_url>` (gateway mode).
    pub fn gateway_url(&self, upstream_url: &str) -> String {
        format!("{}/{}", self.proxy_url, upstream_url)
    }

    /// Calls the running Purser's control API on its Unix socket (from `control.json`), as a
    /// local tool of the user's would: `(status, JSON answer)`.
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let c: Value = serde_json::from_slice(&std::fs::read(self.data_dir.join("control.json")).expect("control.json")).expect("control.json is JSON");
        control_call(Path::new(c["socket"].as_str().expect("control.json names its socket")), method, path, body)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("purser.db")
    }

    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }
}

/// One HTTP/1.1 request on a control socket (`/_purser/v1/<path>`), `Connection: close`.
pub fn control_call(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap_or_else(|e| panic!("control socket {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!("{method} /_purser/v1/{path} HTTP/1.1\r\nHost: purser\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).expect("write control request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read control answer");
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {text}"));
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // A chunked answer: the JSON is between the chunk sizes.
    let json = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut r = rest;
        while let Some((size, tail)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n.min(tail.len())]);
            r = tail.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&json).unwrap_or(Value::Null))
}

/// Does this command line widen spending (so the CLI asks for the passphrase at the terminal)?
pub fn asks_presence(args: &[std::ffi::OsString]) -> bool {
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let has = |w: &str| words.contains(&w);
    match words.first().copied() {
        Some("grant") => matches!(words.get(1).copied(), Some("create" | "top-up")),
        Some("approvals") => words.get(1) == Some(&"approve"),
        Some("resume") | Some("run") => true,
        Some("rules") => words.get(1) == Some(&"add") && has("--allow"),
        Some("wallet") => matches!(words.get(1).copied(), Some("unlock" | "export")),
        _ => false,
    }
}

pub fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

impl Drop for Purser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== purser serve stderr (tail) ===\n{}", self.serve_log_tail(40));
            let mut cmd = self.base_cmd();
            cmd.args(["receipts", "list", "--json", "--limit", "5"]);
            match proc::try_run_with_timeout(cmd, Duration::from_secs(20)) {
                Ok(out) => eprintln!("=== last receipts ===\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
                Err(e) => eprintln!("=== last receipts: {e}"),
            }
        }
        if let Some(mut c) = self.child.take() {
            proc::terminate(&mut c, Duration::from_secs(10));
        }
    }
}
