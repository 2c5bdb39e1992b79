//! Owns who is on the other end of one agent connection, and the token check that depends on
//! it. A connection on a run's own socket is that run (its token works there and nowhere else);
//! a TCP connection is the local process that owns the client socket, found once per connection
//! and only when needed (see [`crate::agent`]). An `--only-run` grant's token is refused outside
//! a run, and an `--only-exe` grant's token outside a run works only for that executable. A run
//! reaches no address inside this machine or its networks (loopback, private, link-local)
//! through the proxy unless its grant lists that host: the sandbox's own network has none.

use crate::agent::AgentInfo;
use crate::auth;
use crate::engine::Engine;
use crate::grants::Grant;
use crate::upstream::{error_response, Body};
use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What the proxy knows of the run a connection belongs to.
#[derive(Debug)]
pub struct RunBinding {
    pub id: String,
    pub label: String,
    /// The command line, as the launcher gave it (shown, never run by Purser).
    pub command: String,
    pub grant_id: String,
    /// SHA-256 of the run's token.
    pub token_hash: String,
    pub started_at: DateTime<Utc>,
}

/// Where a connection came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Loopback TCP: the client's address and ours.
    Tcp { peer: SocketAddr, local: SocketAddr },
    /// A contained run's socket; `pid` is the peer's (the run's bridge) as the kernel says.
    Run { binding: Arc<RunBinding>, pid: Option<u32> },
    /// Nothing known (requests handed in without a socket, as unit tests do).
    Unknown,
}

/// One connection's caller.
#[derive(Debug)]
pub struct Caller {
    origin: Origin,
    agent: OnceCell<AgentInfo>,
}

/// Why a token was not accepted.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        return super::forward::auth_required(code, message);
    }
    error_response(status, code, message, None)
}

impl Caller {
    pub fn new(origin: Origin) -> Caller {
        Caller { origin, agent: OnceCell::new() }
    }

    pub fn unknown() -> Caller {
        Caller::new(Origin::Unknown)
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Who is asking: the run, the owning process, or unknown (never guessed). Found once.
    pub async fn agent(&self) -> AgentInfo {
        self.agent
            .get_or_init(|| async {
                let origin = self.origin.clone();
                let found = tokio::task::spawn_blocking(move || match origin {
                    Origin::Tcp { peer, local } => crate::agent::identify_tcp_peer(peer, local),
                    Origin::Run { binding, pid } => crate::agent::run(binding.id.clone(), binding.label.clone(), pid, binding.command.clone()),
                    Origin::Unknown => AgentInfo::unknown(),
                })
                .await;
                found.unwrap_or_else(|_| AgentInfo::unknown())
            })
            .await
            .clone()
    }

    /// The grant `token` opens for this caller, or the refusal to send.
    pub async fn authenticate(&self, engine: &Engine, token: Option<&str>) -> Result<Grant, Response<Body>> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(refuse(
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "missing_token",
                "send your grant token as Proxy-Authorization: Bearer <token>, X-Purser-Grant, or the proxy password: HTTPS_PROXY=http://grant:<token>@127.0.0.1:PORT",
            ));
        };
        let unavailable = |e: crate::engine::EngineError| error_response(StatusCode::SERVICE_UNAVAILABLE, e.code().as_str(), &e.to_string(), None);
        if let Origin::Run { binding, .. } = &self.origin {
            if !auth::ct_eq(auth::token_hash(token).as_bytes(), binding.token_hash.as_bytes()) {
                return Err(refuse(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "unknown_token", "this token is not this run's"));
            }
            return match engine.ledger.grant(&binding.grant_id) {
                Ok(g) => Ok(g),
                Err(e) if e.code() == "no_such_grant" => Err(refuse(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "unknown_token", "this run's grant no longer exists")),
                Err(e) => Err(unavailable(e.into())),
            };
        }
        let grant = match engine.authenticate(token) {
            Ok(Some(g)) => g,
            Ok(None) => return Err(refuse(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "unknown_token", "this grant token is not known to Purser")),
            Err(e) => return Err(unavailable(e)),
        };
        if grant.limits.only_run {
            let who = self.agent().await.chain();
            tracing::warn!(grant = %grant.id, who = %who, "a run-only grant's token was used outside a run");
            return Err(refuse(StatusCode::FORBIDDEN, "run_only", "this grant's token works only inside `purser run`"));
        }
        if let Some(exe) = &grant.limits.only_exe {
            let agent = self.agent().await;
            if agent.exe.as_deref() != Some(exe.as_str()) {
                let who = agent.exe.clone().unwrap_or_else(|| "an unidentified process".into());
                return Err(refuse(StatusCode::FORBIDDEN, "exe_not_allowed", &format!("this grant's token works only for {exe}, not {who}")));
            }
        }
        Ok(grant)
    }
}

/// Internal targets every grant of this daemon may reach (not pay: paying still takes the
/// grant's own hosts): `PURSER_INTERNAL_HOSTS`, a setting of the daemon (see `config`), not of a
/// grant: an agent inside `purser run` cannot change it.
pub fn internal_hosts() -> &'static [crate::grants::HostPattern] {
    &crate::config::Config::get().internal_hosts
}

/// Loopback, unspecified, private, shared (CGNAT), link-local (the cloud metadata address
/// included) and unique-local addresses: this machine and its networks.
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback() || v4.is_unspecified() || v4.is_private() || v4.is_link_local() || v4.is_broadcast() || (o[0] == 100 && (o[1] & 0xc0) == 64) || o[0] == 0
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                v6.is_loopback() || v6.is_unspecified() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

impl Caller {
    /// A target the grant does not list explicitly may not be an address inside this machine or
    /// its networks (by its literal, else by what it resolves to): `internal_target`. A grant
    /// reaches `localhost`, `127.0.0.1`, a LAN printer or the cloud metadata address only by
    /// naming it (`--host 127.0.0.1`); a wildcard (`*.example.com`) names nothing internal.
    /// The daemon's own `PURSER_INTERNAL_HOSTS` (see [`internal_hosts`]) names such targets for
    /// every grant.
    pub async fn check_target(&self, grant: &Grant, host: &str, port: u16) -> Result<(), Response<Body>> {
        if grant.limits.hosts.iter().chain(internal_hosts()).any(|p| p.names_exactly(host, port)) {
            return Ok(());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<std::net::IpAddr> = match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((bare, port))).await {
                Ok(Ok(a)) => a.map(|a| a.ip()).collect(),
                _ => vec![],
            },
        };
        match addrs.iter().find(|ip| is_internal(**ip)) {
            Some(ip) => {
                tracing::warn!(host, port, %ip, origin = ?self.origin, "an internal address the grant does not list; refused");
                Err(refuse(StatusCode::FORBIDDEN, "internal_target", &format!("{host}:{port} is inside this machine or its network ({ip}); a grant reaches it only if it lists it (--host {host})")))
            }
            None => Ok(()),
        }
    }
}

/// Does `host:port` reach this very listener (a request loop)? Compared as socket addresses:
/// the host's literal or what it resolves to (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`,
/// `localhost` and any name pointing at this machine's loopback or unspecified address) on the
/// listener's port.
pub async fn is_loop(host: &str, port: u16, own_port: u16) -> bool {
    if port != own_port {
        return false;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let local = |ip: std::net::IpAddr| {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        ip.is_loopback() || ip.is_unspecified()
    };
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return local(ip);
    }
    match tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((bare, port))).await {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).any(local),
        _ => false,
    }
}

/// 400 `proxy_loop`.
pub fn loop_refusal() -> Response<Body> {
    error_response(StatusCode::BAD_REQUEST, "proxy_loop", "the target is this proxy itself", None)
}

#[cfg(test)]
mod tests {
    use super::{is_internal, is_loop};

    #[tokio::test]
    async fn loops_by_any_spelling() {
        for host in ["127.0.0.1", "127.1", "127.0.0.2", "0.0.0.0", "localhost", "[::1]", "[::ffff:127.0.0.1]", "::ffff:7f00:1", "2130706433"] {
            assert!(is_loop(host, 4020, 4020).await, "{host}");
        }
        assert!(!is_loop("127.0.0.1", 4021, 4020).await, "another port");
        assert!(!is_loop("1.1.1.1", 4020, 4020).await, "another host");
    }

    #[test]
    fn internal_addresses() {
        for (ip, want) in [
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("10.0.0.1", true),
            ("172.16.0.1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::", true),
            ("1.1.1.1", false),
            ("8.8.8.8", false),
            ("172.32.0.1", false),
            ("2606:4700::1111", false),
            ("::ffff:1.1.1.1", false),
        ] {
            assert_eq!(is_internal(ip.parse().unwrap()), want, "{ip}");
        }
    }
}
