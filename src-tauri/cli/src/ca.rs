//! `purser ca export|rotate`, `purser grant env ID` and `serve --upstream-ca`: the local CA of
//! standard proxy mode as the user handles it. Purser never installs its CA anywhere on its
//! own; `grant env` prints lines scoped to one agent's shell.

use crate::args::CaCmd;
use anyhow::{Context, Result};
use purser_core::ca::LocalCa;
use purser_core::engine::Engine;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The trust bundle agents using OpenSSL-style variables get: Purser's CA plus the system roots
/// (so that blind-tunnelled HTTPS keeps verifying against the real web roots).
const BUNDLE_FILE: &str = "ca-bundle.pem";
const SYSTEM_ROOTS: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

pub fn ca(dir: &Path, cmd: CaCmd) -> Result<()> {
    match cmd {
        CaCmd::Export { out } => {
            let pem = cert_pem(dir)?;
            let fingerprint = LocalCa::fingerprint_of(&pem)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &pem).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote the Purser CA certificate ({fingerprint}) to {}", path.display());
                }
                None => print!("{pem}"),
            }
            Ok(())
        }
        CaCmd::Rotate { json } => {
            let ca = LocalCa::rotate(dir, &*seal_key(dir)?)?;
            write_bundle(dir, ca.cert_pem())?;
            if json {
                return crate::print_json(&json!({"fingerprint": ca.fingerprint(), "cert": LocalCa::cert_path(dir)}));
            }
            println!("New local CA {}.", ca.fingerprint());
            println!("Restart `purser serve` (or lock and unlock the wallet) and give agents the new certificate (`purser ca export`, `purser grant env ID`).");
            Ok(())
        }
    }
}

/// The CA certificate (public), made first if Purser has none yet: its key is sealed with the
/// wallet, so making it takes the wallet's passphrase.
fn cert_pem(dir: &Path) -> Result<String> {
    match LocalCa::existing_cert(dir) {
        Ok(pem) => Ok(pem),
        Err(purser_core::ca::CaError::Missing) => {
            eprintln!("purser: no local CA yet; making one (its key is sealed with the wallet)");
            Ok(LocalCa::open(dir, &*seal_key(dir)?)?.cert_pem().to_string())
        }
        Err(e) => Err(e.into()),
    }
}

/// The wallet's seal for the CA's key (asks for the passphrase).
fn seal_key(dir: &Path) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    let pass = crate::passphrase(false)?;
    let wallet = purser_core::wallet::Wallet::unlock(dir, &pass).map_err(|e| anyhow::anyhow!("unlocking the wallet: {e} ({})", e.code()))?;
    Ok(wallet.seal_key(purser_core::ca::SEAL_PURPOSE)?)
}

/// Writes Purser's CA followed by the system roots to the data dir; returns its path.
fn write_bundle(dir: &Path, ca_pem: &str) -> Result<PathBuf> {
    let mut bundle = ca_pem.to_string();
    if let Some(roots) = SYSTEM_ROOTS.iter().find_map(|p| std::fs::read_to_string(p).ok()) {
        bundle.push('\n');
        bundle.push_str(&roots);
    }
    let path = dir.join(BUNDLE_FILE);
    purser_core::datadir::write_private(&path, bundle.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn grant_env(dir: &Path, e: &Engine, id: &str, token: Option<String>, json: bool) -> Result<()> {
    let g = e.grant(id)?;
    let pem = cert_pem(dir)?;
    let cert = LocalCa::cert_path(dir);
    let bundle = write_bundle(dir, &pem)?;
    let url = crate::proxy_url(dir);
    let authority = url.trim_start_matches("http://");
    let secret = token.unwrap_or_else(|| "${PURSER_GRANT}".into());
    let proxy = format!("http://grant:{secret}@{authority}");
    let (cert, bundle) = (cert.display().to_string(), bundle.display().to_string());
    let vars = [
        ("HTTPS_PROXY", proxy.as_str()),
        ("HTTP_PROXY", proxy.as_str()),
        ("https_proxy", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("SSL_CERT_FILE", bundle.as_str()),
        ("REQUESTS_CA_BUNDLE", bundle.as_str()),
        ("CURL_CA_BUNDLE", bundle.as_str()),
        ("NODE_EXTRA_CA_CERTS", cert.as_str()),
    ];
    if json {
        let env: serde_json::Map<String, serde_json::Value> = vars.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        return crate::print_json(&json!({"grant_id": g.id, "proxy": proxy, "ca_cert": cert, "ca_bundle": bundle, "env": env}));
    }
    println!("# Purser: this shell's agent goes through grant {} ({}). Paste into that agent's shell only.", g.id, g.label);
    if secret.starts_with("${") {
        println!("# Set PURSER_GRANT to the token `grant create` printed (or pass --token).");
    }
    for (k, v) in vars {
        println!("export {k}=\"{v}\"");
    }
    println!("unset NO_PROXY no_proxy");
    println!("# curl: curl --cacert {cert} https://api.example.com/...  (HTTPS_PROXY is honoured)");
    Ok(())
}

/// The pooled upstream client, also trusting the CA certificates in `path`.
pub fn upstream_with_ca(path: &Path) -> Result<purser_core::upstream::Upstream> {
    let pem = std::fs::read(path).with_context(|| format!("reading --upstream-ca {}", path.display()))?;
    purser_core::upstream::Upstream::with_extra_roots_pem(&pem).with_context(|| format!("--upstream-ca {}", path.display()))
}
