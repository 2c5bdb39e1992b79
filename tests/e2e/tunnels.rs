//! e2e (issue 20, tunnels stay under the limits): blind CONNECT tunnels through a real
//! `purser serve` to a local TCP echo server are capped per grant (`PURSER_TUNNELS_PER_GRANT`:
//! beyond it `429 too_many_tunnels`, while other agents are still served), are closed within a
//! second when their grant is revoked, idle out after `PURSER_TUNNEL_IDLE_SECS`, and hold their
//! connection slot (`PURSER_MAX_CONNECTIONS`) for as long as they are open; so do intercepted
//! CONNECTs (an `openssl s_client` trusting Purser's CA), which a revocation closes too. Past
//! what the daemon's open-file limit leaves room for, new tunnels get `503 tunnel_limit`.
//! `PURSER_TEST_BIN` runs them against another build of `purser` (e.g. before a change).

use std::time::{Duration, Instant};

use purser_testkit::{agent, send, Hostile402, Purser, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// A daemon with these environment overrides (no chain needed: tunnels never pay).
fn daemon(env: &[(&str, &str)]) -> Purser {
    // PURSER_TEST_BIN: run the same test against another build (e.g. the code before a change).
    let bin = std::env::var("PURSER_TEST_BIN").unwrap_or_else(|_| BIN.to_string());
    // The echo servers are on 127.0.0.1: the daemon lets every grant reach it (blind, unpaid).
    let env = env.iter().chain(&[("PURSER_INTERNAL_HOSTS", "127.0.0.1")]);
    let opts = ServeOptions { env: env.map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() };
    Purser::start_with(&bin, purser_testkit::ANVIL_PAYER_KEY, opts)
}

/// A TCP echo server on 127.0.0.1; returns its port.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// `CONNECT 127.0.0.1:<target>` through the proxy with the grant token as Basic password:
/// the status (0: closed without an answer), the answer's body, and the connection.
async fn connect(p: &Purser, target: u16, token: &str) -> (u16, String, TcpStream) {
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).await.expect("connect to purser");
    let auth = base64(format!("x:{token}").as_bytes());
    let head = format!("CONNECT 127.0.0.1:{target} HTTP/1.1\r\nHost: 127.0.0.1:{target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("send CONNECT");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !got.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => got.push(byte[0]),
                _ => return false,
            }
        }
        true
    };
    if !tokio::time::timeout(Duration::from_secs(10), read_head).await.expect("CONNECT answered in time") {
        return (0, String::new(), s);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len: usize = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))).unwrap_or(0);
    let mut body = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut body)).await.expect("body in time").expect("body");
    (status, String::from_utf8_lossy(&body).into_owned(), s)
}

/// Sends `msg` through an open tunnel and expects the echo back.
async fn echo(s: &mut TcpStream, msg: &str) {
    s.write_all(msg.as_bytes()).await.expect("write through the tunnel");
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back)).await.expect("echo in time").expect("echo");
    assert_eq!(String::from_utf8_lossy(&back), msg);
}

fn code_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| v["code"].as_str().map(str::to_string)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tunnels_are_capped_per_grant_and_closed_when_their_grant_is_revoked() {
    let p = daemon(&[("PURSER_TUNNELS_PER_GRANT", "20")]);
    let echo_port = echo_server().await;
    // The grant covers another host, so a CONNECT to the echo server is tunnelled blind.
    let (gid, token) = p.grant(&["--host", "api.example.com"]);
    let (_other_id, other) = p.grant(&["--host", "api.example.com", "--label", "other"]);

    let mut open = Vec::new();
    let mut refused = Vec::new();
    for i in 0..60 {
        let (status, body, mut s) = connect(&p, echo_port, &token).await;
        match status {
            200 => {
                echo(&mut s, &format!("hello {i}")).await;
                open.push(s);
            }
            _ => refused.push((status, code_of(&body))),
        }
    }
    assert_eq!(open.len(), 20, "exactly PURSER_TUNNELS_PER_GRANT tunnels open; refused: {refused:?}");
    assert_eq!(refused.len(), 40);
    assert!(refused.iter().all(|r| *r == (429, "too_many_tunnels".to_string())), "{refused:?}");

    // Meanwhile other agents are served: a gateway request, and another grant's tunnel.
    let free = Hostile402::start().await;
    let r = send(agent().get(p.gateway_url(&free.url_of("/free"))).header("Proxy-Authorization", format!("Bearer {other}"))).await;
    assert_eq!(r.status, 200, "{r}");
    let (status, body, mut s) = connect(&p, echo_port, &other).await;
    assert_eq!(status, 200, "another grant is not capped by this one: {body}");
    echo(&mut s, "other").await;
    for (i, s) in open.iter_mut().enumerate() {
        echo(s, &format!("still {i}")).await;
    }

    // Revoked: every tunnel of the grant is closed within a second, and no new one opens.
    p.cli_ok(&["grant", "revoke", &gid]);
    let revoked = Instant::now();
    for (i, s) in open.iter_mut().enumerate() {
        assert!(purser_testkit::agent::closed_within(s, Instant::now(), Duration::from_secs(3)).await.is_some(), "tunnel {i} still open 3 s after revoke");
    }
    let all_closed = revoked.elapsed();
    assert!(all_closed < Duration::from_secs(1), "the revoked grant's tunnels closed within 1 s, took {all_closed:?}");
    eprintln!("20 tunnels closed {all_closed:?} after `grant revoke` returned");
    let (status, body, _) = connect(&p, echo_port, &token).await;
    assert!((400..500).contains(&status), "a revoked token opens no tunnel: {status} {body}");
    echo(&mut s, "other still open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tunnels_hold_their_connection_slot_and_idle_out() {
    let p = daemon(&[("PURSER_MAX_CONNECTIONS", "4"), ("PURSER_TUNNEL_IDLE_SECS", "2")]);
    let echo_port = echo_server().await;
    let (_gid, token) = p.grant(&["--host", "api.example.com"]);

    // Four tunnels take the four connection slots...
    let mut tunnels = Vec::new();
    for i in 0..4 {
        let (status, body, mut s) = connect(&p, echo_port, &token).await;
        assert_eq!(status, 200, "tunnel {i}: {body}");
        echo(&mut s, "up").await;
        tunnels.push(s);
    }
    // ...so a fifth connection is closed at once, without an answer.
    let (status, body, _) = connect(&p, echo_port, &token).await;
    assert_eq!(status, 0, "a fifth connection while four tunnels are open gets no answer: {status} {body}");
    // Closing a tunnel gives its slot back.
    drop(tunnels.remove(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body, mut s) = connect(&p, echo_port, &token).await;
    assert_eq!(status, 200, "a closed tunnel frees its slot: {body}");
    echo(&mut s, "again").await;
    tunnels.push(s);

    // Idle: a silent tunnel is closed after 2 s; one that carries a byte every 0.5 s is not.
    let mut busy = tunnels.remove(0);
    let mut silent = tunnels.remove(0);
    echo(&mut silent, "last").await;
    let quiet_since = Instant::now();
    let keep_busy = tokio::spawn(async move {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            echo(&mut busy, "x").await;
        }
        busy
    });
    let after = purser_testkit::agent::closed_within(&mut silent, Instant::now(), Duration::from_secs(6)).await.map(|_| quiet_since.elapsed());
    let after = after.expect("an idle tunnel is closed");
    assert!(after >= Duration::from_millis(1900) && after < Duration::from_millis(3500), "closed {after:?} after its last byte (idle limit 2 s)");
    let mut busy = keep_busy.await.expect("busy tunnel kept echoing past the idle limit");
    echo(&mut busy, "still open").await;
    eprintln!("silent tunnel closed {after:?} after its last byte; busy one open after 4 s");
}

/// `openssl s_client` through the proxy to `target` (intercepted: it trusts only Purser's CA),
/// its stdin held open; returns once its TLS handshake with Purser is verified.
fn s_client(p: &Purser, target: u16, token: &str, ca: &std::path::Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{target}"),
            "-proxy",
            &format!("127.0.0.1:{}", p.port),
            "-proxy_user",
            "x",
            "-proxy_pass",
            &format!("pass:{token}"),
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-CAfile",
        ])
        .arg(ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Verify return code: 0") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("s_client ended before its handshake was verified: {seen}");
        }
        seen.push_str(&line);
    }
    // Keep reading (and discarding) so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intercepted_tunnels_hold_their_slot_and_close_when_their_grant_is_revoked() {
    let p = daemon(&[("PURSER_MAX_CONNECTIONS", "2")]);
    let echo_port = echo_server().await;
    let ca = p.work_dir().join("purser-ca.pem");
    p.cli_ok(&["ca", "export", "-o", ca.to_str().unwrap()]);
    // The grant covers 127.0.0.1, so CONNECTs to it are intercepted with Purser's CA.
    let (gid, token) = p.grant(&["--host", "127.0.0.1"]);
    let (_other_id, other) = p.grant(&["--host", "api.example.com", "--label", "other"]);
    let mut clients: Vec<_> = (0..2).map(|_| s_client(&p, echo_port, &token, &ca)).collect();

    let (status, body, _) = connect(&p, echo_port, &other).await;
    assert_eq!(status, 0, "both slots are held by the intercepted tunnels: {status} {body}");

    p.cli_ok(&["grant", "revoke", &gid]);
    let revoked = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        while c.try_wait().expect("s_client").is_none() {
            assert!(revoked.elapsed() < Duration::from_secs(3), "intercepted tunnel {i} still open 3 s after revoke");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let all_closed = revoked.elapsed();
    assert!(all_closed < Duration::from_secs(1), "closed within 1 s of the revoke, took {all_closed:?}");
    eprintln!("2 intercepted tunnels closed {all_closed:?} after `grant revoke` returned");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body, mut s) = connect(&p, echo_port, &other).await;
    assert_eq!(status, 200, "their slots are free again: {body}");
    echo(&mut s, "free").await;
}

/// Sets a running process's open-file limit (soft and hard).
fn set_nofile(pid: u32, n: u64) {
    let lim = libc::rlimit { rlim_cur: n as libc::rlim_t, rlim_max: n as libc::rlim_t };
    // SAFETY: prlimit reads one rlimit through a valid pointer and writes none (null old limit).
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tunnels_are_refused_before_the_open_file_limit() {
    let p = daemon(&[("PURSER_TUNNELS_PER_GRANT", "1000")]);
    // 400 files: room for (400 - 256) / 2 = 72 tunnels.
    set_nofile(p.pid().expect("daemon pid"), 400);
    let echo_port = echo_server().await;
    let (_gid, token) = p.grant(&["--host", "api.example.com"]);
    let mut open = Vec::new();
    let mut refused = Vec::new();
    // 200 tunnels would take 400 files: without the cap the daemon runs out of them.
    for _ in 0..200 {
        let (status, body, mut s) = connect(&p, echo_port, &token).await;
        match status {
            200 => {
                echo(&mut s, "up").await;
                open.push(s);
            }
            _ => refused.push((status, code_of(&body))),
        }
    }
    assert_eq!(open.len(), 72, "refused: {refused:?}");
    assert!(refused.iter().all(|r| *r == (503, "tunnel_limit".to_string())), "{refused:?}");
    // The daemon still has files to answer with.
    let free = Hostile402::start().await;
    let r = send(agent().get(p.gateway_url(&free.url_of("/free"))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!(r.status, 200, "{r}");
    for s in open.iter_mut() {
        echo(s, "still").await;
    }
}
