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
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
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
