//! Owns Purser's local certificate authority for standard proxy mode: the CA key (0600 in the
//! data dir, like the wallet), its certificate (what `purser ca export` writes and the user's
//! agent trusts), rotation, and the leaf certificates it issues, one per intercepted host,
//! naming only that host, cached in memory.

use crate::datadir;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The CA's private key (PKCS#8 PEM), 0600.
pub const KEY_FILE: &str = "ca-key.pem";
/// The CA's certificate (PEM), also 0600 inside the data dir; `ca export` copies it out.
pub const CERT_FILE: &str = "ca-cert.pem";
/// Leaf certificates are valid this long and reissued after half of it.
const LEAF_DAYS: i64 = 30;
/// The CA is valid this long (rotate any time with `purser ca rotate`).
const CA_YEARS: i64 = 2;
/// Most leaf configurations kept in memory.
const MAX_CACHED: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("the local CA in {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the local CA: {0}")]
    Cert(String),
}

impl CaError {
    pub fn code(&self) -> &'static str {
        match self {
            CaError::Io { .. } => "ca_io",
            CaError::Cert(_) => "ca_invalid",
        }
    }
}

fn cert_err(e: impl std::fmt::Display) -> CaError {
    CaError::Cert(e.to_string())
}

/// The loaded CA: signs leaves for intercepted hosts.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    leaves: Mutex<HashMap<String, (Instant, Arc<ServerConfig>)>>,
}

/// The CA's distinguished name, derived from its public key so that a CA loaded from disk is
/// the same issuer as the one written there (no parsing of our own certificate needed).
fn ca_params(key: &KeyPair) -> CertificateParams {
    let tag = hex::encode(&Sha256::digest(key.public_key_raw())[..6]);
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, format!("Purser local CA {tag}"));
    p.distinguished_name.push(DnType::OrganizationName, "Purser (this computer only)");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // What a CA needs, and nothing else: it signs certificates (and would sign CRLs), never data.
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time_now();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365 * CA_YEARS);
    p
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io { path: path.to_path_buf(), source }
}

impl LocalCa {
    /// Loads the CA from `dir`, creating it (key 0600) on first use.
    pub fn load_or_create(dir: &Path) -> Result<LocalCa, CaError> {
        let key_path = dir.join(KEY_FILE);
        if key_path.exists() {
            Self::load(dir)
        } else {
            Self::create(dir)
        }
    }

    /// Replaces the CA in `dir` with a new one. Agents must trust the new certificate; a running
    /// daemon keeps the old CA until it restarts.
    pub fn rotate(dir: &Path) -> Result<LocalCa, CaError> {
        Self::create(dir)
    }

    fn create(dir: &Path) -> Result<LocalCa, CaError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = ca_params(&key).self_signed(&key).map_err(cert_err)?;
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        datadir::write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io(&key_path))?;
        datadir::write_private(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
        Self::from_parts(key, cert.pem())
    }

    fn load(dir: &Path) -> Result<LocalCa, CaError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        datadir::make_private(&key_path).map_err(io(&key_path))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(cert_err)?;
        Self::from_parts(key, cert_pem)
    }

    fn from_parts(key: KeyPair, cert_pem: String) -> Result<LocalCa, CaError> {
        let cert_der = pem_to_der(&cert_pem)?;
        let issuer = Issuer::new(ca_params(&key), key);
        Ok(LocalCa { issuer, cert_pem, cert_der, leaves: Mutex::new(HashMap::new()) })
    }

    /// The CA certificate in PEM (what agents trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 of the CA certificate (DER), hex with colons, for display.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(self.cert_der.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }

    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join(CERT_FILE)
    }

    /// A TLS server configuration presenting a leaf for `host` (a DNS name or an IP address),
    /// with ALPN h2 and http/1.1. Cached per host.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let fresh = Duration::from_secs((LEAF_DAYS as u64) * 86400 / 2);
        {
            let cache = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((made, cfg)) = cache.get(&host) {
                if made.elapsed() < fresh {
                    return Ok(cfg.clone());
                }
            }
        }
        let cfg = Arc::new(self.issue(&host)?);
        let mut cache = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(host, (Instant::now(), cfg.clone()));
        Ok(cfg)
    }

    /// The leaf certificate (DER) and its key for `host`: the host is its only name.
    pub fn issue_leaf(&self, host: &str) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), CaError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, host);
        p.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into().map_err(cert_err)?),
        }];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let now = time_now();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(LEAF_DAYS);
        let cert = p.signed_by(&key, &self.issuer).map_err(cert_err)?;
        Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))))
    }

    fn issue(&self, host: &str) -> Result<ServerConfig, CaError> {
        let (leaf, key) = self.issue_leaf(host)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(cert_err)?
            .with_no_client_auth()
            .with_single_cert(vec![leaf, self.cert_der.clone()], key)
            .map_err(cert_err)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, CaError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| CaError::Cert(format!("the CA certificate is not PEM: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_load_rotate_and_issue() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let again = LocalCa::load_or_create(dir.path()).unwrap();
        assert_eq!(ca.fingerprint(), again.fingerprint(), "loading keeps the CA");
        // A leaf from the reloaded CA chains to the original certificate.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let now = rustls::pki_types::UnixTime::now();
        for host in ["api.example.com", "127.0.0.1"] {
            let (leaf, _) = again.issue_leaf(host).unwrap();
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
            verifier.verify_server_cert(&leaf, &[], &name, &[], now).unwrap();
            // Only the requested host: any other name fails.
            for other in ["example.com", "evil.example.com", "localhost", "127.0.0.2"] {
                let n = rustls::pki_types::ServerName::try_from(other.to_string()).unwrap();
                assert!(verifier.verify_server_cert(&leaf, &[], &n, &[], now).is_err(), "{host} leaf accepted for {other}");
            }
        }
        assert!(Arc::ptr_eq(&again.server_config("a.example").unwrap(), &again.server_config("A.example").unwrap()), "cached");
        let rotated = LocalCa::rotate(dir.path()).unwrap();
        assert_ne!(rotated.fingerprint(), ca.fingerprint());
        assert_eq!(LocalCa::load_or_create(dir.path()).unwrap().fingerprint(), rotated.fingerprint());
    }

    /// Read back by openssl (installed with the test tools): at most two years, CA-only usage.
    #[test]
    fn the_ca_lives_two_years_and_only_signs_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        let cert = dir.path().join("ca.pem");
        std::fs::write(&cert, ca.cert_pem()).unwrap();
        let openssl = |args: &[&str]| std::process::Command::new("openssl").arg("x509").arg("-in").arg(&cert).args(args).output().expect("openssl");
        let days = |d: u64| (d * 86_400).to_string();
        assert!(openssl(&["-noout", "-checkend", &days(700)]).status.success(), "still valid in 700 days");
        assert!(!openssl(&["-noout", "-checkend", &days(731)]).status.success(), "expired within 731 days");
        let text = String::from_utf8(openssl(&["-noout", "-ext", "keyUsage,basicConstraints"]).stdout).unwrap();
        assert!(text.contains("Certificate Sign, CRL Sign") && !text.contains("Digital Signature") && text.contains("CA:TRUE"), "{text}");
    }
}
