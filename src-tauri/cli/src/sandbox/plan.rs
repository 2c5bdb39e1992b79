//! Owns what the sandbox is made of, as data: the checked paths of a [`SandboxSpec`]
//! ([`resolve`]), the dirs hidden by default ([`default_hidden`]), bubblewrap's arguments
//! ([`bwrap_args`]) and the agent's environment ([`agent_env`]). Pure apart from reading the
//! file system in `resolve`, so each rule is unit-tested here.

use super::preflight::SandboxError;
use super::SandboxSpec;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};

/// The port the bridge listens on inside (127.0.0.1).
pub const PORT: u16 = 4020;
/// Where things appear inside the sandbox.
pub const SOCKET_IN: &str = "/run/purser/proxy.sock";
pub const EXE_IN: &str = "/run/purser/purser";
pub const CA_IN: &str = "/run/purser/ca.pem";
pub const BUNDLE_IN: &str = "/run/purser/ca-bundle.pem";
/// What `/run` keeps under its private tmpfs: NixOS's system profile and wrappers.
const RUN_KEEP: &[&str] = &["/run/current-system", "/run/booted-system", "/run/wrappers", "/run/opengl-driver"];

/// A spec whose paths exist and are absolute, canonical and consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub socket: PathBuf,
    pub exe: PathBuf,
    pub cwd: PathBuf,
    pub writable: Vec<PathBuf>,
    pub hidden: Vec<Hidden>,
    pub command: Vec<OsString>,
}

/// A path replaced inside: a dir by an empty read-only tmpfs, a file by /dev/null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hidden {
    Dir(PathBuf),
    File(PathBuf),
}

impl Hidden {
    fn path(&self) -> &Path {
        match self {
            Hidden::Dir(p) | Hidden::File(p) => p,
        }
    }
}

/// The file descriptors bubblewrap inherits.
#[derive(Debug, Clone, Copy)]
pub struct Fds {
    pub info: RawFd,
    pub ready: RawFd,
    /// Purser's CA and the combined bundle (memfds).
    pub ca: Option<(RawFd, RawFd)>,
}

/// Hidden by default, when they exist: Purser's own data and config, the session's runtime dir
/// (sockets: D-Bus, keyring, agents), the desktop keyrings, and the user's SSH, GnuPG and pass
/// secrets. `var` reads the caller's environment.
pub fn default_hidden(var: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let abs = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let home = abs(var("HOME"));
    let data = abs(var("XDG_DATA_HOME")).or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    let config = abs(var("XDG_CONFIG_HOME")).or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut out = Vec::new();
    if let Some(d) = data {
        out.extend(["purser", "keyrings", "kwalletd"].map(|n| d.join(n)));
    }
    out.extend(config.map(|c| c.join("purser")));
    out.extend(abs(var("XDG_RUNTIME_DIR")));
    if let Some(h) = home {
        out.extend([".ssh", ".gnupg", ".password-store"].map(|n| h.join(n)));
    }
    out
}

/// Checks a spec against the file system: the socket is a socket, the working dir and writable
/// paths exist, none of them is `/` or inside a hidden path, and CMD is not empty. Hidden paths
/// that do not exist are dropped.
pub fn resolve(spec: &SandboxSpec, default_hidden: &[PathBuf], exe: &Path) -> Result<Resolved, SandboxError> {
    let bad = |m: String| SandboxError::BadSpec(m);
    if spec.command.is_empty() {
        return Err(bad("no command to run".into()));
    }
    let socket = canonical(&spec.proxy_socket).map_err(|e| bad(format!("the proxy socket {}: {e}", spec.proxy_socket.display())))?;
    let is_socket = socket.metadata().map(|m| m.file_type().is_socket()).unwrap_or(false);
    if !is_socket {
        return Err(bad(format!("{} is not a Unix socket", socket.display())));
    }
    let mut hidden = Vec::new();
    for p in spec.hide.iter().chain(default_hidden) {
        let Ok(c) = canonical(p) else { continue };
        let h = if c.is_dir() { Hidden::Dir(c) } else { Hidden::File(c) };
        if !hidden.contains(&h) {
            hidden.push(h);
        }
    }
    let writable_path = |p: &Path, what: &str| -> Result<PathBuf, SandboxError> {
        let c = canonical(p).map_err(|e| bad(format!("{what} {}: {e}", p.display())))?;
        if c == Path::new("/") {
            return Err(bad(format!("{what} may not be / (the whole file system)")));
        }
        if let Some(h) = hidden.iter().find(|h| c.starts_with(h.path())) {
            return Err(bad(format!("{what} {} is inside the hidden {}", c.display(), h.path().display())));
        }
        Ok(c)
    };
    let cwd = writable_path(&spec.cwd, "the working dir")?;
    if !cwd.is_dir() {
        return Err(bad(format!("the working dir {} is not a directory", cwd.display())));
    }
    let mut writable = Vec::new();
    for p in &spec.allow_write {
        let c = writable_path(p, "--allow-write")?;
        if c != cwd && !writable.contains(&c) {
            writable.push(c);
        }
    }
    let exe = canonical(exe).map_err(|e| bad(format!("the purser binary {}: {e}", exe.display())))?;
    Ok(Resolved { socket, exe, cwd, writable, hidden, command: spec.command.clone() })
}

fn canonical(p: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(p)
}

/// The namespaces and process switches (also used by the trial run).
pub fn namespace_args(disable_userns: bool) -> Vec<&'static str> {
    let mut a = vec!["--unshare-user"];
    if disable_userns {
        a.push("--disable-userns");
    }
    a.extend(["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session"]);
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root keeps uid 0 in the new user namespace, which maps to the host's root: without
        // this it would hold every capability there.
        a.extend(["--cap-drop", "ALL"]);
    }
    a
}

/// bubblewrap's whole command line after its path.
pub fn bwrap_args(r: &Resolved, fds: &Fds, disable_userns: bool, umask: u32) -> Vec<OsString> {
    let mut a: Vec<OsString> = namespace_args(disable_userns).into_iter().map(OsString::from).collect();
    let mut push = |items: &[&OsStr]| a.extend(items.iter().map(|s| s.to_os_string()));
    let s = |x: &'static str| OsStr::new(x);
    let info = fds.info.to_string();
    push(&[s("--as-pid-1"), s("--info-fd"), info.as_ref()]);
    push(&[s("--ro-bind"), s("/"), s("/"), s("--dev"), s("/dev"), s("--proc"), s("/proc"), s("--tmpfs"), s("/tmp"), s("--tmpfs"), s("/run")]);
    for keep in RUN_KEEP {
        push(&[s("--ro-bind-try"), s(keep), s(keep)]);
    }
    push(&[s("--ro-bind"), r.exe.as_os_str(), s(EXE_IN), s("--bind"), r.socket.as_os_str(), s(SOCKET_IN)]);
    if let Some((ca, bundle)) = fds.ca {
        let (ca, bundle) = (ca.to_string(), bundle.to_string());
        push(&[s("--ro-bind-data"), ca.as_ref(), s(CA_IN), s("--ro-bind-data"), bundle.as_ref(), s(BUNDLE_IN)]);
    }
    for w in std::iter::once(&r.cwd).chain(&r.writable) {
        push(&[s("--bind"), w.as_os_str(), w.as_os_str()]);
    }
    for h in &r.hidden {
        match h {
            Hidden::Dir(p) => push(&[s("--tmpfs"), p.as_os_str(), s("--remount-ro"), p.as_os_str()]),
            Hidden::File(p) => push(&[s("--ro-bind"), s("/dev/null"), p.as_os_str()]),
        }
    }
    let (port, ready, umask) = (PORT.to_string(), fds.ready.to_string(), format!("{umask:04o}"));
    push(&[s("--remount-ro"), s("/run"), s("--chdir"), r.cwd.as_os_str(), s("--")]);
    push(&[s(EXE_IN), s("__sandbox-init"), s("--socket"), s(SOCKET_IN), s("--port"), port.as_ref()]);
    push(&[s("--ready-fd"), ready.as_ref(), s("--umask"), umask.as_ref(), s("--")]);
    a.extend(r.command.iter().cloned());
    a
}

/// The agent's environment: the caller's without Purser's variables, session bus and agent
/// sockets, display addresses and proxy settings; then the proxy, the grant and (with a CA)
/// the trust files.
pub fn agent_env(vars: impl IntoIterator<Item = (OsString, OsString)>, token: &str, with_ca: bool) -> Vec<(OsString, OsString)> {
    const DROP: &[&str] = &[
        "DBUS_SESSION_BUS_ADDRESS",
        "DBUS_SYSTEM_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "GPG_AGENT_INFO",
        "GNOME_KEYRING_CONTROL",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
    ];
    let dropped = |k: &OsStr| {
        let b = k.as_bytes();
        b.starts_with(b"PURSER_") || b.to_ascii_lowercase().ends_with(b"_proxy") || DROP.iter().any(|d| d.as_bytes() == b)
    };
    let mut env: Vec<(OsString, OsString)> = vars.into_iter().filter(|(k, _)| !dropped(k)).collect();
    let gateway = format!("http://127.0.0.1:{PORT}");
    let proxy = format!("http://purser:{}@127.0.0.1:{PORT}", userinfo_escape(token));
    // Loopback stays direct: inside it is the sandbox's own (the bridge, the agent's servers),
    // and `$PURSER_PROXY/https://…` must reach the bridge as a gateway request, not be proxied
    // to itself (Purser refuses that as `proxy_loop`).
    let no_proxy = "localhost,127.0.0.1,::1";
    let mut set = vec![("PURSER_RUN", "1".to_string()), ("PURSER_PROXY", gateway), ("PURSER_GRANT", token.to_string())];
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        set.push((k, proxy.clone()));
    }
    set.extend([("NO_PROXY", no_proxy.to_string()), ("no_proxy", no_proxy.to_string())]);
    if with_ca {
        for k in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"] {
            set.push((k, BUNDLE_IN.to_string()));
        }
        set.push(("NODE_EXTRA_CA_CERTS", CA_IN.to_string()));
    }
    for (k, v) in set {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
    }
    env
}

/// Percent-encodes what may not stand in a URL's userinfo (grant tokens are base64url, so
/// normally nothing).
fn userinfo_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
