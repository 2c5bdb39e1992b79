//! Standard-proxy-mode latency figures (prints them; never a test): a local HTTPS upstream (test
//! CA), reached directly, through Purser intercepting (TLS both sides, governed), through Purser
//! as a blind tunnel, and through mitmproxy intercepting (when `--mitmdump PATH` is given).
//! Requests go round-robin over the modes so that drift hits them all alike; each mode is
//! measured on a kept-alive connection and with a new connection (CONNECT + handshakes) per
//! request.
//!
//!     cargo build --release -p purser -p purser-testkit --bin purser --bin forward_bench
//!     target/release/forward_bench --purser target/release/purser [--mitmdump PATH] [--n 2000]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use purser_testkit::TestCa;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// A tiny HTTPS server answering `200 ok` to everything.
fn upstream(ca: &TestCa) -> u16 {
    let (chain, key) = ca.leaf(&["127.0.0.1"]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_no_client_auth().with_single_cert(chain, key).unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((tcp, _)) = l.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = hyper::service::service_fn(|_req| async { Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))) });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), svc).await;
                });
            }
        });
    });
    port
}

fn purser(bin: &str, dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin).arg("--data-dir").arg(dir).args(args).output().expect("run purser");
    assert!(out.status.success(), "purser {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client(proxy: Option<reqwest::Proxy>, ca_pem: &[u8], fresh: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder().http1_only().tls_built_in_root_certs(false).add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap());
    b = match proxy {
        Some(p) => b.proxy(p),
        None => b.no_proxy(),
    };
    if fresh {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = arg("--purser").unwrap_or_else(|| "target/release/purser".into());
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(2000);
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::new("bench upstream CA");
    let ca_pem = std::fs::read(ca.pem_path()).unwrap();
    let up = upstream(&ca);
    let url = format!("https://127.0.0.1:{up}/x");

    // Purser: one grant covering 127.0.0.1 (intercepted), one covering nothing here (blind).
    let dir = work.path().join("purser");
    let governed = purser(&bin, &dir, &["grant", "create", "--label", "bench", "--budget", "1", "--expires", "2h", "--host", "127.0.0.1", "--json"]);
    let blind = purser(&bin, &dir, &["grant", "create", "--label", "blind", "--budget", "1", "--expires", "2h", "--host", "elsewhere.invalid", "--json"]);
    let purser_ca_path = work.path().join("purser-ca.pem");
    purser(&bin, &dir, &["ca", "export", "-o", purser_ca_path.to_str().unwrap()]);
    let purser_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _serve = Kill(
        Command::new(&bin)
            .arg("--data-dir")
            .arg(&dir)
            .args(["serve", "--port", &purser_port.to_string()])
            .env("PURSER_UPSTREAM_CA", ca.pem_path())
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("purser serve"),
    );
    wait_port(purser_port);
    let purser_ca = std::fs::read(&purser_ca_path).unwrap();
    let proxy = |token: &serde_json::Value| reqwest::Proxy::https(format!("http://127.0.0.1:{purser_port}")).unwrap().basic_auth("grant", token.as_str().unwrap());

    // mitmproxy (optional), trusting the test CA upstream.
    let mut mitm: Option<(Kill, u16, Vec<u8>)> = None;
    if let Some(mitmdump) = arg("--mitmdump") {
        let conf = work.path().join("mitm");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(mitmdump)
            .args(["-q", "--listen-host", "127.0.0.1", "-p", &port.to_string(), "--set"])
            .arg(format!("confdir={}", conf.display()))
            .arg("--set")
            .arg(format!("ssl_verify_upstream_trusted_ca={}", ca.pem_path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mitmdump");
        let k = Kill(child);
        wait_port(port);
        let pem = std::fs::read(conf.join("mitmproxy-ca-cert.pem")).expect("mitmproxy CA");
        mitm = Some((k, port, pem));
    }

    let mut modes: Vec<(String, reqwest::Client)> = Vec::new();
    for fresh in [false, true] {
        let tag = if fresh { "new conn" } else { "keep-alive" };
        modes.push((format!("direct HTTPS ({tag})"), client(None, &ca_pem, fresh)));
        modes.push((format!("purser intercept ({tag})"), client(Some(proxy(&governed["token"])), &purser_ca, fresh)));
        modes.push((format!("purser blind tunnel ({tag})"), client(Some(proxy(&blind["token"])), &ca_pem, fresh)));
        if let Some((_, port, pem)) = &mitm {
            modes.push((format!("mitmproxy intercept ({tag})"), client(Some(reqwest::Proxy::https(format!("http://127.0.0.1:{port}")).unwrap()), pem, fresh)));
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(n); modes.len()];
    for i in 0..(n + n / 10) {
        for (m, (name, c)) in modes.iter().enumerate() {
            let t = Instant::now();
            let r = c.get(&url).send().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(r.status(), 200, "{name}");
            let _ = r.bytes().await.unwrap();
            if i >= n / 10 {
                samples[m].push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    println!("{n} requests per mode (after {} warm-up), sequential, round-robin; upstream answers 200 \"ok\"", n / 10);
    println!("{:<36} {:>9} {:>9} {:>14} {:>14}", "mode", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms");
    let per = modes.len() / 2;
    for (m, (name, _)) in modes.iter().enumerate() {
        let base = (m / per) * per;
        let (mut s, mut d) = (samples[m].clone(), samples[base].clone());
        let (p50, p99) = (pct(&mut s, 0.5), pct(&mut s, 0.99));
        let (b50, b99) = (pct(&mut d, 0.5), pct(&mut d, 0.99));
        println!("{:<36} {:>9.3} {:>9.3} {:>14.3} {:>14.3}", name, p50, p99, p50 - b50, p99 - b99);
    }
}
