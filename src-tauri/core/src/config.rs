//! Owns Purser's tuning knobs: one typed [`Config`] with its defaults, each overridable by one
//! environment variable of the daemon (or the app), read once per process and parsed strictly
//! into valid types. A value that does not parse is a named error at start
//! ([`Config::load`]), never a silent default. [`KNOBS`] is the documented table: the
//! README's is checked against it (`cargo test -p purser-core --test config_table`).

use crate::grants::HostPattern;
use std::sync::OnceLock;
use std::time::Duration;

/// Every tuning knob, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// A connection's first byte, then each request head, must arrive within it.
    pub header_read: Duration,
    /// An agent's request body must arrive whole within it (`408 request_body_timeout`).
    pub request_body: Duration,
    /// Agent connections open at once; beyond it new ones are closed at accept.
    pub max_connections: usize,
    /// An upstream's answer head must arrive within it (`504 upstream_timeout`).
    pub upstream_head: Duration,
    /// An upstream's body may pause this long (`504 upstream_timeout`).
    pub upstream_idle: Duration,
    /// A 402's body must be read within it.
    pub challenge_read: Duration,
    /// A blind tunnel carrying no byte either way this long is closed.
    pub tunnel_idle: Duration,
    /// Tunnels one grant may have open (`429 too_many_tunnels`).
    pub tunnels_per_grant: usize,
    /// Routine receipts one grant writes a minute before the rest are folded into a summary.
    pub receipts_per_minute: u32,
    /// How often balances are read and receipts reconciled with the chain.
    pub chain_interval: Duration,
    /// Internal hosts every grant may reach (not pay): `127.0.0.1:8545,printer.lan`.
    pub internal_hosts: Vec<HostPattern>,
    /// Query parameter names redacted in receipts besides the built-in ones.
    pub redact_params: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            header_read: Duration::from_secs(30),
            request_body: Duration::from_secs(60),
            max_connections: 8192,
            upstream_head: Duration::from_secs(120),
            upstream_idle: Duration::from_secs(120),
            challenge_read: Duration::from_secs(10),
            tunnel_idle: Duration::from_secs(300),
            tunnels_per_grant: 64,
            receipts_per_minute: 60,
            chain_interval: Duration::from_secs(60),
            internal_hosts: Vec::new(),
            redact_params: Vec::new(),
        }
    }
}

/// One knob as the README documents it.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    pub env: &'static str,
    /// The default as the README shows it (`30 s`, `8,192`, `none`).
    pub default: &'static str,
}

/// Every knob's variable and its default, in the README's words.
pub const KNOBS: &[Knob] = &[
    Knob { env: "PURSER_HEADER_READ_TIMEOUT_SECS", default: "30 s" },
    Knob { env: "PURSER_REQUEST_BODY_TIMEOUT_SECS", default: "60 s" },
    Knob { env: "PURSER_MAX_CONNECTIONS", default: "8,192" },
    Knob { env: "PURSER_UPSTREAM_HEAD_TIMEOUT_SECS", default: "120 s" },
    Knob { env: "PURSER_UPSTREAM_IDLE_TIMEOUT_SECS", default: "120 s" },
    Knob { env: "PURSER_CHALLENGE_READ_TIMEOUT_SECS", default: "10 s" },
    Knob { env: "PURSER_TUNNEL_IDLE_SECS", default: "300 s" },
    Knob { env: "PURSER_TUNNELS_PER_GRANT", default: "64" },
    Knob { env: "PURSER_RECEIPTS_PER_MINUTE", default: "60" },
    Knob { env: "PURSER_CHAIN_INTERVAL_SECS", default: "60 s" },
    Knob { env: "PURSER_INTERNAL_HOSTS", default: "none" },
    Knob { env: "PURSER_REDACT_PARAMS", default: "none" },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {want}")]
    Invalid { name: &'static str, value: String, want: &'static str },
}

impl ConfigError {
    pub fn code(&self) -> crate::api::ErrorCode {
        crate::api::ErrorCode::InvalidConfig
    }
}

impl Config {
    /// The defaults, each replaced by its variable as `get` gives it (`None`: unset).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let d = Config::default();
        let raw = |name: &'static str| get(name).filter(|v| !v.trim().is_empty()).map(|v| (name, v));
        let whole = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            match raw(name) {
                None => Ok(None),
                Some((name, v)) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(ConfigError::Invalid { name, value: v, want: "a whole number greater than 0" }),
                },
            }
        };
        let secs = |name: &'static str, default: Duration| whole(name).map(|n| n.map(Duration::from_secs).unwrap_or(default));
        let count = |name: &'static str, default: usize| whole(name).map(|n| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)).unwrap_or(default));
        let list = |name: &'static str| raw(name).map(|(_, v)| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>()).unwrap_or_default();
        let internal_hosts = list("PURSER_INTERNAL_HOSTS")
            .into_iter()
            .map(|h| h.parse::<HostPattern>().map_err(|_| ConfigError::Invalid { name: "PURSER_INTERNAL_HOSTS", value: h.clone(), want: "host patterns (host, host:port), comma-separated" }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            header_read: secs("PURSER_HEADER_READ_TIMEOUT_SECS", d.header_read)?,
            request_body: secs("PURSER_REQUEST_BODY_TIMEOUT_SECS", d.request_body)?,
            max_connections: count("PURSER_MAX_CONNECTIONS", d.max_connections)?,
            upstream_head: secs("PURSER_UPSTREAM_HEAD_TIMEOUT_SECS", d.upstream_head)?,
            upstream_idle: secs("PURSER_UPSTREAM_IDLE_TIMEOUT_SECS", d.upstream_idle)?,
            challenge_read: secs("PURSER_CHALLENGE_READ_TIMEOUT_SECS", d.challenge_read)?,
            tunnel_idle: secs("PURSER_TUNNEL_IDLE_SECS", d.tunnel_idle)?,
            tunnels_per_grant: count("PURSER_TUNNELS_PER_GRANT", d.tunnels_per_grant)?,
            receipts_per_minute: whole("PURSER_RECEIPTS_PER_MINUTE")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(d.receipts_per_minute),
            chain_interval: secs("PURSER_CHAIN_INTERVAL_SECS", d.chain_interval)?,
            internal_hosts,
            redact_params: list("PURSER_REDACT_PARAMS").into_iter().map(|p| p.to_ascii_lowercase()).collect(),
        })
    }

    /// The process's environment, parsed (what `purser serve` and the app check at start).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the process's environment once and keeps it: what `purser serve` and the app call
    /// at start, refusing to start on an error. Later calls return the kept configuration.
    pub fn load() -> Result<&'static Config, ConfigError> {
        if let Some(c) = CONFIG.get() {
            return Ok(c);
        }
        let parsed = Self::from_env()?;
        Ok(CONFIG.get_or_init(|| parsed))
    }

    /// The process's configuration: the one [`Config::load`] kept (read now when nothing called
    /// it, as in tests; a knob that does not parse is then logged and its default used).
    pub fn get() -> &'static Config {
        Self::load().unwrap_or_else(|e| {
            tracing::error!(error = %e, "configuration: the defaults are used");
            CONFIG.get_or_init(Config::default)
        })
    }
}

/// The configuration [`Config::load`] read.
static CONFIG: OnceLock<Config> = OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_overrides_and_named_errors() {
        assert_eq!(Config::from_vars(vars(&[])).unwrap(), Config::default());
        let c = Config::from_vars(vars(&[
            ("PURSER_TUNNELS_PER_GRANT", "20"),
            ("PURSER_TUNNEL_IDLE_SECS", " 2 "),
            ("PURSER_INTERNAL_HOSTS", "127.0.0.1:8545, printer.lan"),
            ("PURSER_REDACT_PARAMS", "X-Sig,,session"),
        ]))
        .unwrap();
        assert_eq!((c.tunnels_per_grant, c.tunnel_idle), (20, Duration::from_secs(2)));
        assert_eq!(c.internal_hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(), ["127.0.0.1:8545", "printer.lan"]);
        assert_eq!(c.redact_params, ["x-sig", "session"]);
        for (name, bad) in [("PURSER_MAX_CONNECTIONS", "0"), ("PURSER_CHAIN_INTERVAL_SECS", "1m"), ("PURSER_RECEIPTS_PER_MINUTE", "-5"), ("PURSER_INTERNAL_HOSTS", "not a host!")] {
            let e = Config::from_vars(vars(&[(name, bad)])).unwrap_err();
            assert!(e.to_string().starts_with(name), "{e}");
            assert_eq!(e.code(), crate::api::ErrorCode::InvalidConfig);
        }
    }

    #[test]
    fn every_knob_is_read_and_documented_with_its_default() {
        // Each knob changes the parsed config when set (none is listed but ignored).
        for k in KNOBS {
            let v = if k.env.ends_with("_HOSTS") {
                "10.0.0.1"
            } else if k.env.ends_with("_PARAMS") {
                "x"
            } else {
                "7"
            };
            assert_ne!(Config::from_vars(vars(&[(k.env, v)])).unwrap(), Config::default(), "{} is not read", k.env);
        }
        let d = Config::default();
        let shown = |d: Duration| format!("{} s", d.as_secs());
        let want = [
            shown(d.header_read),
            shown(d.request_body),
            "8,192".to_string(),
            shown(d.upstream_head),
            shown(d.upstream_idle),
            shown(d.challenge_read),
            shown(d.tunnel_idle),
            d.tunnels_per_grant.to_string(),
            d.receipts_per_minute.to_string(),
            shown(d.chain_interval),
            "none".into(),
            "none".into(),
        ];
        assert_eq!(KNOBS.iter().map(|k| k.default.to_string()).collect::<Vec<_>>(), want, "KNOBS says what Default is");
        // The modules' own constants (their docs name them) are these defaults.
        assert_eq!((d.header_read, d.request_body, d.max_connections), (crate::proxy::limits::HEADER_READ_TIMEOUT, crate::proxy::limits::REQUEST_BODY_TIMEOUT, crate::proxy::limits::MAX_CONNECTIONS));
        assert_eq!((d.upstream_head, d.upstream_idle, d.challenge_read), (crate::upstream::HEAD_TIMEOUT, crate::upstream::BODY_IDLE_TIMEOUT, crate::upstream::CHALLENGE_READ_TIMEOUT));
        assert_eq!((d.tunnel_idle, d.tunnels_per_grant), (crate::proxy::tunnels::TUNNEL_IDLE, crate::proxy::tunnels::TUNNELS_PER_GRANT));
        assert_eq!((d.receipts_per_minute, d.chain_interval), (crate::folding::RECEIPTS_PER_MINUTE, crate::background::DEFAULT_INTERVAL));
    }
}
