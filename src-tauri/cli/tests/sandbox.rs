//! End-to-end tests of the sandbox `purser run` puts agents in, through the built binary's
//! hidden `purser __sandbox-exec` (preflight + run, the sandbox's PID 1 being `purser
//! __sandbox-init`): the bridge to a real Unix-socket HTTP responder with the grant token, no
//! other network, the file system rules, private PIDs, the environment, exit statuses, signals,
//! nothing left running, and the named preflight errors. Tests that need bubblewrap say SKIPPED
//! only when it is not installed. `PURSER_TEST_BIN` overrides the binary (to run these as
//! another user from a copy). A module of the `e2e` test (tests/e2e/main.rs):
//! `cargo test -p purser --test e2e sandbox::`.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "pgt_sandboxtesttoken";

fn bin() -> PathBuf {
    std::env::var_os("PURSER_TEST_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_purser")))
}

fn bwrap_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).any(|d| d.join("bwrap").is_file())
}

macro_rules! need_bwrap {
    () => {
        if !bwrap_installed() {
            eprintln!("SKIPPED: bubblewrap is not installed (sudo apt-get install bubblewrap)");
            return;
        }
    };
}

/// A Unix-socket HTTP/1.1 responder standing in for Purser's per-run proxy: it answers every
/// request with its own head as the body.
fn responder(socket: &Path) {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || answer(stream));
        }
    });
}

fn answer(mut s: UnixStream) {
    let (mut head, mut buf) = (Vec::new(), [0u8; 4096]);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&head).into_owned();
    let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
}

/// One run's surroundings: a proxy socket, a working dir with a hidden `secret/`, a home.
struct World {
    root: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let root = tempfile::tempdir().unwrap();
        let p = |r: &str| root.path().join(r);
        for d in ["work/secret", "home/.ssh", "extra", "elsewhere"] {
            std::fs::create_dir_all(p(d)).unwrap();
        }
        std::fs::write(p("work/secret/key"), "s3cret").unwrap();
        std::fs::write(p("home/.ssh/id_ed25519"), "private key").unwrap();
        responder(&p("proxy.sock"));
        World { root }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn command(&self, extra: &[&str], script: &str) -> Command {
        let mut c = Command::new(bin());
        c.arg("__sandbox-exec").arg("--socket").arg(self.p("proxy.sock")).args(["--token", TOKEN]);
        c.arg("--cwd").arg(self.p("work")).arg("--hide").arg(self.p("work/secret")).args(extra);
        c.args(["--", "sh", "-c", script]).env("HOME", self.p("home")).env("PURSER_PASSPHRASE", "hunter2");
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, extra: &[&str], script: &str) -> Output {
        self.command(extra, script).output().unwrap()
    }

    fn spawn(&self, script: &str) -> Launched {
        Launched(self.command(&[], script).stdout(Stdio::null()).spawn().unwrap())
    }

    fn wait_for(&self, rel: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.p(rel).exists() {
            assert!(Instant::now() < deadline, "{rel} never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A launcher that is killed (and so its sandbox) if the test fails before it ends.
struct Launched(Child);

impl Drop for Launched {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "status {:?}\nstdout: {}\nstderr: {}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Host processes whose command line starts with `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.starts_with(marker) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn the_bridge_reaches_purser_with_the_token() {
    need_bwrap!();
    let w = World::new();
    let script = "curl -s http://127.0.0.1:4020/x; echo '|'; curl -s http://example.invalid/y; echo '|'; curl -s -x \"$HTTPS_PROXY\" http://example.invalid/z";
    let out = stdout(&w.run(&[], script));
    let parts: Vec<&str> = out.split('|').collect();
    assert!(parts[0].starts_with("GET /x HTTP/1.1\r\n") && parts[0].contains("Host: 127.0.0.1:4020"), "{out}");
    // base64("purser:pgt_sandboxtesttoken")
    let basic = "Proxy-Authorization: Basic cHVyc2VyOnBndF9zYW5kYm94dGVzdHRva2Vu";
    assert!(parts[1].trim_start().starts_with("GET http://example.invalid/y HTTP/1.1\r\n") && parts[1].contains(basic), "http_proxy from the env: {out}");
    assert!(parts[2].trim_start().starts_with("GET http://example.invalid/z HTTP/1.1\r\n") && parts[2].contains(basic), "-x $HTTPS_PROXY: {out}");
}

#[test]
fn the_environment_is_clean_and_points_at_purser() {
    need_bwrap!();
    let w = World::new();
    let out = stdout(&w.run(&[], "env"));
    for line in ["PURSER_RUN=1", "PURSER_PROXY=http://127.0.0.1:4020", &format!("PURSER_GRANT={TOKEN}"), &format!("HTTPS_PROXY=http://purser:{TOKEN}@127.0.0.1:4020")] {
        assert!(out.lines().any(|l| l == line), "{line} missing:\n{out}");
    }
    assert!(!out.contains("hunter2") && !out.contains("PURSER_PASSPHRASE"), "the passphrase leaked:\n{out}");
    assert!(!out.lines().any(|l| l.starts_with("SSH_AUTH_SOCK=") || l.starts_with("DBUS_SESSION_BUS_ADDRESS=")), "{out}");
}

#[test]
fn no_other_network_not_even_the_hosts_loopback() {
    need_bwrap!();
    let w = World::new();
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let script = format!("curl -s --noproxy '*' --max-time 5 http://127.0.0.1:{port}/; echo loop=$?; curl -s --noproxy '*' --max-time 5 http://1.1.1.1/; echo out=$?");
    let out = stdout(&w.run(&[], &script));
    assert!(out.contains("loop=7"), "the host's 127.0.0.1:{port} must be unreachable: {out}");
    assert!(!out.contains("out=0"), "no route out: {out}");
    host.set_nonblocking(true).unwrap();
    assert!(host.accept().is_err(), "the host listener saw a connection");
}

#[test]
fn the_file_system_is_read_only_but_for_the_working_dirs() {
    need_bwrap!();
    let w = World::new();
    let marker = format!("purser-sandbox-test-{}", std::process::id());
    std::fs::write(Path::new("/tmp").join(&marker), "host").unwrap();
    let extra = w.p("extra");
    let script = format!(
        "echo hi > mine && cat mine; touch /etc/purser-sandbox-x 2>/dev/null; echo etc=$?; touch {elsewhere}/x 2>/dev/null; echo elsewhere=$?; \
         echo ok > {extra}/x && echo extra=ok; cat secret/key 2>/dev/null; echo secret=$? entries=$(ls -A secret | wc -l); \
         cat ~/.ssh/id_ed25519 2>/dev/null; echo ssh=$?; ls /tmp/{marker} 2>/dev/null; echo tmp=$?; echo t > /tmp/inside; \
         touch /run/purser/x 2>/dev/null; echo run=$?; grep CapEff /proc/self/status",
        elsewhere = w.p("elsewhere").display(),
        extra = extra.display()
    );
    let out = stdout(&w.run(&["--allow-write", extra.to_str().unwrap()], &script));
    std::fs::remove_file(Path::new("/tmp").join(&marker)).unwrap();
    for want in ["hi\n", "etc=1", "elsewhere=1", "extra=ok", "secret=1 entries=0", "ssh=1", "tmp=2", "run=1", "CapEff:\t0000000000000000"] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    assert_eq!(std::fs::read_to_string(w.p("work/mine")).unwrap(), "hi\n");
    assert!(!Path::new("/tmp/inside").exists(), "the sandbox's /tmp is its own");
    assert_eq!(std::fs::read_to_string(w.p("work/secret/key")).unwrap(), "s3cret", "hidden, untouched");
}

#[test]
fn only_the_sandboxes_processes_are_visible() {
    need_bwrap!();
    let w = World::new();
    let out = stdout(&w.run(&[], "cat /proc/1/comm; ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '"));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("purser"), "PID 1 is the sandbox init: {out}");
    let pids: Vec<u32> = lines.next().unwrap_or("").split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(!pids.is_empty() && pids.iter().all(|p| *p < 50), "only the sandbox's few PIDs: {pids:?}");
    assert!(!pids.contains(&std::process::id()) || std::process::id() < 50);
}

#[test]
fn exit_statuses_come_back() {
    need_bwrap!();
    let w = World::new();
    assert_eq!(w.run(&[], "exit 7").status.code(), Some(7));
    assert_eq!(w.run(&[], "exit 0").status.code(), Some(0));
    assert_eq!(w.run(&[], "kill -KILL $$").status.code(), Some(128 + 9));
}

#[test]
fn sigterm_reaches_the_agent_and_nothing_is_left() {
    need_bwrap!();
    let w = World::new();
    let mut launcher = w.spawn("trap 'echo term > got; exit 9' TERM; sleep 987651 & echo up > ready; wait");
    w.wait_for("work/ready");
    // `ready` is written right after the fork: on a busy machine the sleep may not have exec'd yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with("sleep 987651").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_with("sleep 987651").len(), 1, "the agent's sleep runs");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(launcher.0.id() as i32, libc::SIGTERM) };
    let status = launcher.0.wait().unwrap();
    assert_eq!(status.code(), Some(9), "the agent's trap decided the status");
    assert_eq!(std::fs::read_to_string(w.p("work/got")).unwrap(), "term\n");
    assert_eq!(processes_with("sleep 987651"), Vec::<String>::new());
}

#[test]
fn background_children_die_with_the_agent() {
    need_bwrap!();
    let w = World::new();
    let out = w.run(&[], "sleep 987652 & echo started");
    assert_eq!(stdout(&out), "started\n");
    assert_eq!(processes_with("sleep 987652"), Vec::<String>::new(), "nothing left once run() returned");
}

#[test]
fn a_killed_launcher_takes_the_sandbox_with_it() {
    need_bwrap!();
    let w = World::new();
    let mut launcher = w.spawn("sleep 987653 & echo up > ready; wait");
    w.wait_for("work/ready");
    launcher.0.kill().unwrap();
    launcher.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with("sleep 987653").is_empty() {
        assert!(Instant::now() < deadline, "left running: {:?}", processes_with("sleep 987653"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn purser_ca_and_the_bundle_are_inside() {
    need_bwrap!();
    let w = World::new();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBsandboxtest\n-----END CERTIFICATE-----\n";
    std::fs::write(w.p("ca.pem"), pem).unwrap();
    let script =
        "cat /run/purser/ca.pem; tail -n 3 /run/purser/ca-bundle.pem; echo \"$SSL_CERT_FILE $REQUESTS_CA_BUNDLE $CURL_CA_BUNDLE $NODE_EXTRA_CA_CERTS\"; head -c 27 /run/purser/ca-bundle.pem; echo";
    let out = stdout(&w.run(&["--ca", w.p("ca.pem").to_str().unwrap()], script));
    let bundle = "/run/purser/ca-bundle.pem";
    assert!(out.starts_with(&format!("{pem}{pem}{bundle} {bundle} {bundle} /run/purser/ca.pem\n-----BEGIN CERTIFICATE-----")), "{out}");
}

#[test]
fn a_missing_command_is_a_named_error() {
    need_bwrap!();
    let w = World::new();
    let mut c = Command::new(bin());
    c.arg("__sandbox-exec").arg("--socket").arg(w.p("proxy.sock")).args(["--token", TOKEN, "--cwd"]).arg(w.p("work"));
    let out = c.args(["--", "no-such-agent-xyz"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("no-such-agent-xyz") && err.contains("(sandbox_spawn_failed)"), "{err}");
}

/// A fake bwrap printing `message` and failing, as on a machine without user namespaces.
fn preflight_error(message: Option<&str>) -> (String, bool) {
    let w = World::new();
    let fake = w.p("fake-bwrap");
    if let Some(m) = message {
        std::fs::write(&fake, format!("#!/bin/sh\ncat >&2 <<'MSG'\n{m}\nMSG\nexit 1\n")).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let out = w.command(&[], "touch ran").env("PURSER_BWRAP", &fake).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    (String::from_utf8_lossy(&out.stderr).into_owned(), w.p("work/ran").exists())
}

#[test]
fn preflight_names_what_is_missing() {
    let (err, ran) = preflight_error(Some("bwrap: setting up uid map: Permission denied"));
    assert!(!ran, "never an uncontained run");
    assert!(err.contains("(userns_disabled)") && err.contains("setting up uid map"), "{err}");
    assert!(err.contains("unprivileged_userns_clone=1") || err.contains("apparmor_restrict_unprivileged_userns=0") || err.contains("max_user_namespaces"), "{err}");
    let (err, ran) = preflight_error(Some("bwrap: Can't mount proc on /newroot/proc: Operation not permitted"));
    assert!(!ran && err.contains("(sandbox_failed)") && err.contains("Can't mount proc"), "{err}");
    let (err, ran) = preflight_error(None);
    assert!(!ran && err.contains("bubblewrap is not installed: sudo apt-get install bubblewrap") && err.contains("(bwrap_missing)"), "{err}");
}
