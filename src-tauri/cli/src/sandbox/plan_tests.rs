//! Unit tests of the sandbox plan: default hidden paths, the spec checks, bwrap's arguments and
//! the agent's environment.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).map(OsString::from)
}

#[test]
fn default_hidden_follows_home_and_xdg() {
    let h = default_hidden(&env_of(&[("HOME", "/home/a"), ("XDG_RUNTIME_DIR", "/run/user/1000")]));
    let want = [
        "/home/a/.local/share/purser",
        "/home/a/.local/share/keyrings",
        "/home/a/.local/share/kwalletd",
        "/home/a/.config/purser",
        "/run/user/1000",
        "/home/a/.ssh",
        "/home/a/.gnupg",
        "/home/a/.password-store",
    ];
    assert_eq!(h, want.map(PathBuf::from));
    let h = default_hidden(&env_of(&[("HOME", "/h"), ("XDG_DATA_HOME", "/d"), ("XDG_CONFIG_HOME", "/c"), ("XDG_RUNTIME_DIR", "relative")]));
    assert!(h.contains(&PathBuf::from("/d/purser")) && h.contains(&PathBuf::from("/c/purser")) && !h.iter().any(|p| p.ends_with("relative")));
    assert!(default_hidden(&env_of(&[])).is_empty());
}

#[test]
fn agent_env_drops_secrets_and_points_at_the_bridge() {
    let vars = [
        ("PATH", "/usr/bin"),
        ("PURSER_PASSPHRASE", "hunter2"),
        ("PURSER_DATA_DIR", "/d"),
        ("SSH_AUTH_SOCK", "/run/a"),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x"),
        ("https_proxy", "http://corp:3128"),
        ("FTP_PROXY", "x"),
        ("No_Proxy", "corp"),
        ("XDG_RUNTIME_DIR", "/run/user/1"),
        ("DISPLAY", ":0"),
        ("WAYLAND_DISPLAY", "w"),
        ("GPG_AGENT_INFO", "g"),
        ("SSL_CERT_FILE", "/mine"),
    ];
    let env: HashMap<String, String> = agent_env(vars.map(|(k, v)| (k.into(), v.into())), "pgt_abc", false).into_iter().map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap())).collect();
    let proxy = "http://purser:pgt_abc@127.0.0.1:4020";
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        assert_eq!(env[k], proxy, "{k}");
    }
    assert_eq!((env["PURSER_PROXY"].as_str(), env["PURSER_GRANT"].as_str(), env["PURSER_RUN"].as_str()), ("http://127.0.0.1:4020", "pgt_abc", "1"));
    assert_eq!((env["NO_PROXY"].as_str(), env["no_proxy"].as_str()), ("localhost,127.0.0.1,::1", "localhost,127.0.0.1,::1"));
    assert_eq!((env["PATH"].as_str(), env["SSL_CERT_FILE"].as_str()), ("/usr/bin", "/mine"), "kept; no CA: trust untouched");
    for k in ["PURSER_PASSPHRASE", "PURSER_DATA_DIR", "SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS", "FTP_PROXY", "No_Proxy", "XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY", "GPG_AGENT_INFO"] {
        assert!(!env.contains_key(k), "{k} leaked");
    }
    assert_eq!(env.len(), 1 + 1 + 3 + 6 + 2);

    let env: HashMap<OsString, OsString> = agent_env([("SSL_CERT_FILE".into(), "/mine".into())], "a b", true).into_iter().collect();
    let get = |k: &str| env[OsStr::new(k)].to_str().unwrap().to_string();
    assert_eq!(get("HTTPS_PROXY"), "http://purser:a%20b@127.0.0.1:4020");
    for k in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
        assert_eq!(get(k), BUNDLE_IN);
    }
    assert_eq!(get("NODE_EXTRA_CA_CERTS"), CA_IN);
}

struct Fixture {
    dir: tempfile::TempDir,
    _listener: std::os::unix::net::UnixListener,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("s.sock")).unwrap();
        for d in ["work", "work/secret", "other", "hidden"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("exe"), b"").unwrap();
        Fixture { dir, _listener: listener }
    }
    fn p(&self, rel: &str) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap().join(rel)
    }
    fn spec(&self) -> SandboxSpec {
        SandboxSpec {
            proxy_socket: self.p("s.sock"),
            token: "pgt_t".into(),
            ca_pem: None,
            cwd: self.p("work"),
            allow_write: vec![self.p("other"), self.p("work")],
            hide: vec![self.p("work/secret"), self.p("nope"), self.p("work/secret")],
            command: vec!["sh".into(), "-c".into(), "true".into()],
        }
    }
    fn resolve(&self, spec: &SandboxSpec) -> Result<Resolved, SandboxError> {
        resolve(spec, &[self.p("hidden")], &self.p("exe"))
    }
}

#[test]
fn resolve_checks_the_spec() {
    let f = Fixture::new();
    let r = f.resolve(&f.spec()).unwrap();
    assert_eq!((r.cwd.clone(), r.writable.clone()), (f.p("work"), vec![f.p("other")]), "cwd once, others deduplicated");
    assert_eq!(r.hidden, vec![Hidden::Dir(f.p("work/secret")), Hidden::Dir(f.p("hidden"))], "missing dropped, duplicates once");

    let code_of = |spec: SandboxSpec| f.resolve(&spec).unwrap_err();
    let e = code_of(SandboxSpec { cwd: f.p("hidden"), ..f.spec() });
    assert!(e.code() == "sandbox_bad_spec" && e.to_string().contains("inside the hidden"), "{e}");
    let e = code_of(SandboxSpec { allow_write: vec![f.p("work/secret/x/..")], ..f.spec() });
    assert!(e.to_string().contains("does not exist") || e.to_string().contains("No such file"), "{e}");
    let e = code_of(SandboxSpec { allow_write: vec!["/".into()], ..f.spec() });
    assert!(e.to_string().contains("may not be /"), "{e}");
    let e = code_of(SandboxSpec { proxy_socket: f.p("exe"), ..f.spec() });
    assert!(e.to_string().contains("not a Unix socket"), "{e}");
    let e = code_of(SandboxSpec { command: vec![], ..f.spec() });
    assert!(e.to_string().contains("no command"), "{e}");
}

#[test]
fn bwrap_args_in_order() {
    let f = Fixture::new();
    let r = f.resolve(&f.spec()).unwrap();
    let fds = Fds { info: 5, ready: 6, ca: Some((7, 8)) };
    let args: Vec<String> = bwrap_args(&r, &fds, true, 0o022).into_iter().map(|a| a.into_string().unwrap()).collect();
    let at = |needle: &[&str]| args.windows(needle.len()).position(|w| w == needle).unwrap_or_else(|| panic!("{needle:?} not in {args:?}"));
    for flag in ["--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session", "--as-pid-1"] {
        at(&[flag]);
    }
    let root = at(&["--ro-bind", "/", "/"]);
    let tmp = at(&["--tmpfs", "/tmp"]);
    let socket = at(&["--bind", f.p("s.sock").to_str().unwrap(), SOCKET_IN]);
    let work = at(&["--bind", f.p("work").to_str().unwrap(), f.p("work").to_str().unwrap()]);
    let secret = at(&["--tmpfs", f.p("work/secret").to_str().unwrap(), "--remount-ro", f.p("work/secret").to_str().unwrap()]);
    assert!(root < tmp && tmp < work && work < secret && socket < work, "{args:?}");
    at(&["--ro-bind", f.p("exe").to_str().unwrap(), EXE_IN]);
    at(&["--ro-bind-data", "7", CA_IN, "--ro-bind-data", "8", BUNDLE_IN]);
    at(&["--info-fd", "5"]);
    let tail = ["--", EXE_IN, "__sandbox-init", "--socket", SOCKET_IN, "--port", "4020", "--ready-fd", "6", "--umask", "0022", "--", "sh", "-c", "true"];
    assert!(args.ends_with(&tail.map(String::from)), "{args:?}");
    assert_eq!(args.contains(&"--cap-drop".to_string()), unsafe { libc::geteuid() } == 0);
    let args = bwrap_args(&r, &Fds { ca: None, ..fds }, false, 0o077);
    assert!(!args.iter().any(|a| a == "--disable-userns" || a == "--ro-bind-data"));
}
