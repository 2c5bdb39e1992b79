//! Finding what the tests drive (the built app, tauri-driver, WebKitWebDriver), free ports, the
//! tauri-driver process and the WebDriver session (capabilities `browserName: wry` plus
//! `tauri:options.application`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use purser_testkit::proc;
use serde_json::json;

/// The app binary: `PURSER_APP_BIN`, else `<target>/debug/purser-app` next to this test's own
/// target dir (what `npx --prefix ui tauri build --debug --no-bundle` produces). Panics when it
/// is missing: these tests never skip.
pub fn app_binary() -> PathBuf {
    let bin = match std::env::var_os("PURSER_APP_BIN").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            // <target>/<profile>/deps/<test-exe> or <target>/<profile>/<bin> → <target>/debug/purser-app
            let exe = std::env::current_exe().expect("current exe");
            let mut dir = exe.parent().expect("exe dir");
            if dir.file_name().is_some_and(|n| n == "deps") {
                dir = dir.parent().expect("profile dir");
            }
            dir.parent().expect("target dir").join("debug/purser-app")
        }
    };
    let bin = bin.canonicalize().unwrap_or_else(|_| {
        panic!(
            "the desktop app binary {} is missing: build it first with \
             `cd src-tauri && npx --prefix ../ui tauri build --debug --no-bundle` (or .ci/app.sh), \
             or point PURSER_APP_BIN at it",
            bin.display()
        )
    });
    assert!(bin.is_file(), "{} is not a file", bin.display());
    bin
}

/// `$PURSER_ARTIFACTS/desktop` (default `/tmp/purser-app/desktop`), created.
pub fn artifacts_dir() -> PathBuf {
    let base = std::env::var_os("PURSER_ARTIFACTS").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp/purser-app"));
    let dir = base.join("desktop");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// `tauri-driver`: `TAURI_DRIVER`, else `$CARGO_HOME/bin`, `~/.cargo/bin`, else PATH.
pub fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let homes = [std::env::var_os("CARGO_HOME").map(PathBuf::from), std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo"))];
    for h in homes.into_iter().flatten() {
        let p = h.join("bin/tauri-driver");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("tauri-driver")
}

/// A port nobody listens on now (bound to 0 and released; the driver's own bind then proves it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Whether a process id is still alive (signal 0).
pub fn is_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// `(parent pid, name)` of a process, from `/proc/PID/stat` (the name as the kernel keeps it:
/// at most 15 bytes, e.g. `WebKitWebProces`).
pub fn ppid_and_name(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (l, r) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat[l + 1..r].to_string();
    let ppid = stat[r + 2..].split_whitespace().nth(1)?.parse().ok()?;
    Some((ppid, name))
}

/// A process and all its descendants, root first: `(pid, name)`.
pub fn process_tree(root: u32) -> Vec<(u32, String)> {
    let all: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).filter_map(|p| ppid_and_name(p).map(|(pp, n)| (p, pp, n))).collect())
        .unwrap_or_default();
    let mut out: Vec<(u32, String)> = all.iter().filter(|(p, _, _)| *p == root).map(|(p, _, n)| (*p, n.clone())).collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].0;
        out.extend(all.iter().filter(|(_, pp, _)| *pp == parent).map(|(c, _, n)| (*c, n.clone())));
        i += 1;
    }
    out
}

/// The value of `var` in a process's environment (None: unset, or the process is gone).
pub fn env_of(pid: u32, var: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(var.as_bytes())?.strip_prefix(b"=").map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// Starts tauri-driver on two free ports with `env` (inherited by WebKitWebDriver and the app),
/// output appended to `log`; returns it once it answers `/status` on its port.
pub fn spawn_tauri_driver(env: &[(&str, String)], log: &Path) -> (Child, u16) {
    assert!(Path::new("/usr/bin/WebKitWebDriver").exists() || which("WebKitWebDriver"), "WebKitWebDriver is missing: install the Debian package `webkit2gtk-driver` (.ci/app.sh does)");
    let bin = tauri_driver();
    for _attempt in 0..5 {
        let (port, native) = (free_port(), free_port());
        // A stale driver keeping a port would serve this run on its old display: never share.
        if port == native || !port_is_free(port) || !port_is_free(native) {
            continue;
        }
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--native-port", &native.to_string()]).env_remove("WAYLAND_DISPLAY").stdin(Stdio::null()).stdout(proc::log_stdio(log)).stderr(proc::log_stdio(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("cannot run {} ({e}): install it with `cargo install tauri-driver --version '^2' --locked` (.ci/app.sh does), or set TAURI_DRIVER", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break; // lost a port race: try two other ports
            }
            if status_ok(port) {
                return (child, port);
            }
            if Instant::now() >= deadline {
                proc::terminate(&mut child, Duration::from_secs(2));
                panic!("tauri-driver did not answer on port {port} within 20 s; log:\n{}", proc::tail(log, 30));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("tauri-driver could not start on free ports; log:\n{}", proc::tail(log, 30));
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// A bare HTTP/1.0 `GET /status` (no client library needed for one probe).
fn status_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf[..n].starts_with(b"HTTP/1.") && &buf[9..12] == b"200")
}

/// A new WebDriver session: tauri-driver starts the app `bin` for it.
pub async fn session(port: u16, bin: &Path) -> Result<Client, fantoccini::error::NewSessionError> {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": bin.display().to_string() }));
    ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&format!("http://127.0.0.1:{port}")).await
}
