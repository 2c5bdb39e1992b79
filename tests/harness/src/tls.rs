//! TLS for the standard-proxy-mode tests: a test CA (rcgen) written to a PEM file, and a TLS
//! front that terminates TLS with a certificate from a given CA and relays the plaintext to a
//! local HTTP server (the reference paywalls). Each front runs on its own thread and runtime and
//! counts its connections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority for tests, its certificate written to `pem_path`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_der: CertificateDer<'static>,
    pub pem_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = p.self_signed(&key).expect("CA cert");
        let dir = tempfile::Builder::new().prefix("purser-testca-").tempdir().expect("tempdir");
        let pem_path = dir.path().join("ca.pem");
        std::fs::write(&pem_path, cert.pem()).expect("write CA pem");
        TestCa { issuer: Issuer::new(p, key), cert_der: cert.der().clone(), pem_path, _dir: dir }
    }

    /// A leaf for `names` (IP addresses or DNS names) and its key.
    pub fn leaf(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("dns name")),
            })
            .collect();
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.issuer).expect("leaf");
        (vec![cert.der().clone(), self.cert_der.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }

    pub fn pem_path(&self) -> &Path {
        &self.pem_path
    }
}

/// A TLS front on 127.0.0.1: TLS from clients, plaintext to `backend`.
pub struct TlsFront {
    pub addr: SocketAddr,
    connections: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TlsFront {
    /// Serves a leaf for 127.0.0.1 and localhost from `ca`, relaying to `backend` (`http://127.0.0.1:PORT`
    /// or `127.0.0.1:PORT`).
    pub fn start(ca: &TestCa, backend: &str) -> TlsFront {
        let backend: SocketAddr = backend.trim_start_matches("http://").trim_end_matches('/').parse().expect("backend 127.0.0.1:PORT");
        let (chain, key) = ca.leaf(&["127.0.0.1", "localhost"]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_no_client_auth().with_single_cert(chain, key).expect("server config");
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        acc = listener.accept() => {
                            let Ok((tcp, _)) = acc else { continue };
                            let _ = tcp.set_nodelay(true);
                            count.fetch_add(1, Ordering::SeqCst);
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let Ok(mut back) = tokio::net::TcpStream::connect(backend).await else { return };
                                let _ = back.set_nodelay(true);
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                            });
                        }
                    }
                }
            });
        });
        TlsFront { addr, connections, stop: Some(stop) }
    }

    /// A TLS server that answers any request with `101 Switching Protocols` (`Upgrade: echo`)
    /// and then echoes every byte: an upgrade (WebSocket-like) upstream.
    pub fn start_upgrade_echo(ca: &TestCa) -> TlsFront {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (chain, key) = ca.leaf(&["127.0.0.1", "localhost"]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_no_client_auth().with_single_cert(chain, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        acc = listener.accept() => {
                            let Ok((tcp, _)) = acc else { continue };
                            count.fetch_add(1, Ordering::SeqCst);
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let mut head = Vec::new();
                                let mut byte = [0u8; 1];
                                while !head.ends_with(b"\r\n\r\n") {
                                    if tls.read(&mut byte).await.unwrap_or(0) == 0 { return }
                                    head.push(byte[0]);
                                }
                                let _ = tls.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").await;
                                let mut buf = [0u8; 4096];
                                loop {
                                    let n = tls.read(&mut buf).await.unwrap_or(0);
                                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() { break }
                                    let _ = tls.flush().await;
                                }
                            });
                        }
                    }
                }
            });
        });
        TlsFront { addr, connections, stop: Some(stop) }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// An agent doing an HTTP/1.1 upgrade (`Upgrade: echo`) through Purser: `CONNECT target` with
/// Basic credentials, TLS trusting `ca_pem` only, the upgrade request, then `payload` both ways.
/// Returns the upgrade answer's status line and the bytes echoed back.
pub async fn upgrade_through_proxy(proxy_port: u16, token: &str, target: SocketAddr, ca_pem: &Path, payload: &[u8]) -> Result<(String, Vec<u8>), String> {
    use base64::Engine as _;
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Result<String, String> {
        let mut h = Vec::new();
        let mut b = [0u8; 1];
        while !h.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.map_err(|e| e.to_string())? == 0 {
                return Err(format!("closed after {:?}", String::from_utf8_lossy(&h)));
            }
            h.push(b[0]);
        }
        Ok(String::from_utf8_lossy(&h).into_owned())
    }
    let run = async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy_port)).await.map_err(|e| e.to_string())?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("agent:{token}"));
        tcp.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {auth}\r\n\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        let connect = head(&mut tcp).await?;
        if !connect.starts_with("HTTP/1.1 200") {
            return Err(format!("CONNECT answered {connect}"));
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(ca_pem).map_err(|e| format!("{e:?}"))? {
            roots.add(c.map_err(|e| format!("{e:?}"))?).map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots).with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls::pki_types::ServerName::try_from(target.ip().to_string()).map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        tls.write_all(format!("GET /socket HTTP/1.1\r\nHost: {target}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        let answer = head(&mut tls).await?;
        let status = answer.lines().next().unwrap_or_default().to_string();
        if !status.contains(" 101 ") {
            return Ok((status, Vec::new()));
        }
        tls.write_all(payload).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut echoed = vec![0u8; payload.len()];
        tls.read_exact(&mut echoed).await.map_err(|e| e.to_string())?;
        Ok((status, echoed))
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), run).await.map_err(|_| "timed out".to_string())?
}
