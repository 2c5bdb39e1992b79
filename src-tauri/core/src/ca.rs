//! Owns Purser's local certificate authority for standard proxy mode: the CA key, sealed at rest
//! with a key only the unlocked wallet gives (so it is in memory only while the wallet is
//! unlocked, and a copy of the data dir alone is no CA), its certificate (what `purser ca export`
//! writes and the user's agent trusts), rotation, and the leaf certificates it issues, one per
//! intercepted host, naming only that host, cached in memory.
//!
//! `ca-key.sealed` (0600): `PRSCAKY1` ‖ 24-byte nonce ‖ XChaCha20-Poly1305 of the key's PKCS#8
//! DER, the magic as associated data, under `Wallet::seal_key(SEAL_PURPOSE)`. A key left in the
//! clear by an older version (`ca-key.pem`) is sealed at the next unlock and removed.

use crate::datadir;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The CA's private key, sealed (see the module docs), 0600.
pub const SEALED_KEY_FILE: &str = "ca-key.sealed";
/// Where versions before sealing kept the key in the clear; sealed and removed at unlock.
pub const LEGACY_KEY_FILE: &str = "ca-key.pem";
/// The CA's certificate (PEM), also 0600 inside the data dir; `ca export` copies it out.
pub const CERT_FILE: &str = "ca-cert.pem";
/// What the wallet's seal key for the CA is derived for (`Wallet::seal_key`).
pub const SEAL_PURPOSE: &str = "local CA key";
const SEAL_MAGIC: &[u8; 8] = b"PRSCAKY1";
const SEAL_NONCE: usize = 24;
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
    #[error("the local CA's key does not open with this wallet's seal ({0})")]
    Sealed(String),
    #[error("Purser has no local CA yet: unlock the wallet (`purser serve`, `purser wallet unlock` or the app) to make one")]
    Missing,
}

impl CaError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            CaError::Io { .. } => crate::api::ErrorCode::CaIo,
            CaError::Cert(_) => crate::api::ErrorCode::CaInvalid,
            CaError::Sealed(_) => crate::api::ErrorCode::CaSealed,
            CaError::Missing => crate::api::ErrorCode::CaMissing,
        }
    }
}

/// Seals `der` (the CA key's PKCS#8) under `key`.
fn seal(der: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, CaError> {
    let mut nonce = [0u8; SEAL_NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.into());
    let ct = cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg: der, aad: SEAL_MAGIC }).map_err(|_| CaError::Sealed("sealing failed".into()))?;
    Ok([SEAL_MAGIC.as_slice(), &nonce, &ct].concat())
}

/// Opens a sealed key: its PKCS#8 DER, or `Sealed` (another wallet's seal, or a damaged file).
fn unseal(bytes: &[u8], key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, CaError> {
    if bytes.len() < SEAL_MAGIC.len() + SEAL_NONCE + 16 || &bytes[..SEAL_MAGIC.len()] != SEAL_MAGIC {
        return Err(CaError::Sealed("not a sealed CA key".into()));
    }
    let (nonce, ct) = bytes[SEAL_MAGIC.len()..].split_at(SEAL_NONCE);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: SEAL_MAGIC }).map(Zeroizing::new).map_err(|_| CaError::Sealed("sealed by another wallet, or damaged".into()))
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
    /// Opens the CA of `dir` with `seal` (the unlocked wallet's `seal_key(SEAL_PURPOSE)`),
    /// creating it on first use. A key an older version left in the clear is sealed and its
    /// clear file removed. A key sealed by another wallet (the wallet was replaced) cannot be
    /// opened: it is set aside (`ca-key.sealed.other-wallet`) and a new CA made, which agents
    /// must trust anew.
    pub fn open(dir: &Path, seal: &[u8; 32]) -> Result<LocalCa, CaError> {
        let sealed = dir.join(SEALED_KEY_FILE);
        let legacy = dir.join(LEGACY_KEY_FILE);
        if sealed.exists() {
            let bytes = std::fs::read(&sealed).map_err(io(&sealed))?;
            return match unseal(&bytes, seal) {
                Ok(der) => Self::with_key(dir, KeyPair::try_from(der.as_slice()).map_err(cert_err)?),
                Err(err) => {
                    let aside = dir.join(format!("{SEALED_KEY_FILE}.other-wallet"));
                    tracing::warn!(error = %err, aside = %aside.display(), "the local CA was sealed by another wallet; a new CA is made (agents must trust its certificate)");
                    std::fs::rename(&sealed, &aside).map_err(io(&sealed))?;
                    Self::create(dir, seal)
                }
            };
        }
        if legacy.exists() {
            datadir::make_private(&legacy).map_err(io(&legacy))?;
            let pem = Zeroizing::new(std::fs::read_to_string(&legacy).map_err(io(&legacy))?);
            let key = KeyPair::from_pem(&pem).map_err(cert_err)?;
            datadir::write_private(&sealed, &seal_key_of(&key, seal)?).map_err(io(&sealed))?;
            // The clear copy is overwritten before it is removed.
            std::fs::write(&legacy, vec![0u8; pem.len()]).map_err(io(&legacy))?;
            std::fs::remove_file(&legacy).map_err(io(&legacy))?;
            tracing::info!("the local CA's key is now sealed with the wallet (ca-key.pem removed)");
            return Self::with_key(dir, key);
        }
        Self::create(dir, seal)
    }

    /// Replaces the CA in `dir` with a new one. Agents must trust the new certificate; a running
    /// daemon keeps the old CA until its wallet is next unlocked.
    pub fn rotate(dir: &Path, seal: &[u8; 32]) -> Result<LocalCa, CaError> {
        Self::create(dir, seal)
    }

    fn create(dir: &Path, seal: &[u8; 32]) -> Result<LocalCa, CaError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = ca_params(&key).self_signed(&key).map_err(cert_err)?;
        let sealed = dir.join(SEALED_KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        datadir::write_private(&sealed, &seal_key_of(&key, seal)?).map_err(io(&sealed))?;
        datadir::write_private(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
        Self::from_parts(key, cert.pem())
    }

    /// The CA of `key`, with the certificate on disk when it is this key's (else a new one).
    fn with_key(dir: &Path, key: KeyPair) -> Result<LocalCa, CaError> {
        let cert_path = dir.join(CERT_FILE);
        if let Ok(pem) = std::fs::read_to_string(&cert_path) {
            let der = pem_to_der(&pem)?;
            let raw = key.public_key_raw();
            if der.as_ref().windows(raw.len()).any(|w| w == raw) {
                return Self::from_parts(key, pem);
            }
        }
        let cert = ca_params(&key).self_signed(&key).map_err(cert_err)?;
        datadir::write_private(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
        Self::from_parts(key, cert.pem())
    }

    /// The certificate of the CA in `dir` (public: no wallet needed), if it has one.
    pub fn existing_cert(dir: &Path) -> Result<String, CaError> {
        let path = dir.join(CERT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(pem) => Ok(pem),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CaError::Missing),
            Err(e) => Err(CaError::Io { path, source: e }),
        }
    }

    /// SHA-256 of a certificate (PEM), hex with colons, for display.
    pub fn fingerprint_of(pem: &str) -> Result<String, CaError> {
        Ok(colon_hex(&Sha256::digest(pem_to_der(pem)?.as_ref())))
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
        colon_hex(&Sha256::digest(self.cert_der.as_ref()))
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

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// `key` sealed under `seal`.
fn seal_key_of(key: &KeyPair, seal: &[u8; 32]) -> Result<Vec<u8>, CaError> {
    let der = Zeroizing::new(key.serialize_der());
    self::seal(&der, seal)
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

    const SEAL: [u8; 32] = [7u8; 32];

    #[test]
    fn create_load_rotate_and_issue() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open(dir.path(), &SEAL).unwrap();
        let sealed = dir.path().join(SEALED_KEY_FILE);
        let mode = std::fs::metadata(&sealed).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bytes = std::fs::read(&sealed).unwrap();
        assert!(bytes.starts_with(SEAL_MAGIC) && !String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"), "sealed, never PEM");
        assert!(!dir.path().join(LEGACY_KEY_FILE).exists());
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(LocalCa::fingerprint_of(&LocalCa::existing_cert(dir.path()).unwrap()).unwrap(), ca.fingerprint(), "the certificate is readable without the wallet");
        let again = LocalCa::open(dir.path(), &SEAL).unwrap();
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
        let rotated = LocalCa::rotate(dir.path(), &SEAL).unwrap();
        assert_ne!(rotated.fingerprint(), ca.fingerprint());
        assert_eq!(LocalCa::open(dir.path(), &SEAL).unwrap().fingerprint(), rotated.fingerprint());
    }

    #[test]
    fn a_clear_key_is_sealed_and_another_wallets_seal_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // What an older version left: the key in the clear, and its certificate.
        let key = KeyPair::generate().unwrap();
        let cert = ca_params(&key).self_signed(&key).unwrap();
        std::fs::write(dir.path().join(LEGACY_KEY_FILE), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join(CERT_FILE), cert.pem()).unwrap();
        let ca = LocalCa::open(dir.path(), &SEAL).unwrap();
        assert_eq!(ca.cert_pem(), cert.pem(), "the same CA: agents keep trusting it");
        assert!(!dir.path().join(LEGACY_KEY_FILE).exists(), "the clear key is gone");
        assert_eq!(LocalCa::open(dir.path(), &SEAL).unwrap().fingerprint(), ca.fingerprint());
        // The unsealed bytes are the key: a flipped byte or another seal opens nothing.
        let bytes = std::fs::read(dir.path().join(SEALED_KEY_FILE)).unwrap();
        assert!(unseal(&bytes, &[8u8; 32]).is_err());
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(unseal(&flipped, &SEAL).is_err());
        // Another wallet: the old sealed key is set aside, a new CA made.
        let other = LocalCa::open(dir.path(), &[8u8; 32]).unwrap();
        assert_ne!(other.fingerprint(), ca.fingerprint());
        assert!(dir.path().join(format!("{SEALED_KEY_FILE}.other-wallet")).exists());
    }

    /// Read back by openssl (installed with the test tools): at most two years, CA-only usage.
    #[test]
    fn the_ca_lives_two_years_and_only_signs_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open(dir.path(), &SEAL).unwrap();
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
