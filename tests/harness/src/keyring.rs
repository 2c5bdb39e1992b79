//! The user's secret store, for keychain tests: a real `gnome-keyring-daemon` (Secret Service,
//! `org.freedesktop.secrets`) on a private [`SessionBus`], its login keyring created and
//! unlocked with a throwaway password in a throwaway `XDG_DATA_HOME`, so nothing touches the
//! developer's own keyring. `secret-tool` (libsecret) reads the same store independently of
//! Purser's `keyring` crate. Missing tools fail the test with what to install; never a skip.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::desktop::SessionBus;
use crate::proc;

const SECRETS_NAME: &str = "org.freedesktop.secrets";

/// A running, unlocked gnome-keyring on a private bus; stops on Drop.
pub struct Keyring {
    /// `DBUS_SESSION_BUS_ADDRESS` of the bus it serves.
    pub bus_address: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    assert!(found, "`{tool}` is not installed: the keychain tests need the `{package}` package (./dev test installs it)");
}

impl Keyring {
    /// Starts `gnome-keyring-daemon --foreground --unlock --components=secrets` on `bus` and
    /// waits until it owns `org.freedesktop.secrets`.
    pub async fn start(bus: &SessionBus) -> Keyring {
        need("gnome-keyring-daemon", "gnome-keyring");
        need("secret-tool", "libsecret-tools");
        let dir = tempfile::Builder::new().prefix("purser-keyring-").tempdir().expect("tempdir");
        for sub in ["data", "run", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("keyring dirs");
        }
        let mut child = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .envs(Self::env_in(dir.path(), &bus.address))
            .stdin(Stdio::piped())
            .stdout(proc::log_stdio(&dir.path().join("daemon.stdout")))
            .stderr(proc::log_stdio(&dir.path().join("daemon.stderr")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run gnome-keyring-daemon ({e}): install `gnome-keyring`"));
        // --unlock reads the login keyring's password from stdin until EOF.
        {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"purser-test-keyring").expect("keyring password");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !bus.has_owner(SECRETS_NAME).await {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let st = proc::terminate(&mut child, Duration::from_secs(3));
                panic!("gnome-keyring-daemon never owned {SECRETS_NAME} ({st:?}): {}", proc::tail(&dir.path().join("daemon.stderr"), 20));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Keyring { bus_address: bus.address.clone(), child, dir }
    }

    fn env_in(dir: &std::path::Path, bus: &str) -> Vec<(&'static str, OsString)> {
        vec![("DBUS_SESSION_BUS_ADDRESS", bus.into()), ("XDG_DATA_HOME", dir.join("data").into()), ("XDG_RUNTIME_DIR", dir.join("run").into()), ("HOME", dir.join("home").into())]
    }

    /// The environment a process needs to use this keyring (and not the user's).
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        Self::env_in(self.dir.path(), &self.bus_address)
    }

    /// Where the keyring keeps its files (the test scans them: only ciphertext may be there).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `secret-tool ARGS` against this keyring.
    pub fn secret_tool(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("secret-tool");
        cmd.args(args).envs(self.env()).stdin(Stdio::null());
        proc::run_with_timeout(cmd, Duration::from_secs(20))
    }

    /// The secret stored under `service`/`username` by the `keyring` crate, read with libsecret.
    pub fn lookup(&self, service: &str, username: &str) -> Option<String> {
        let out = self.secret_tool(&["lookup", "service", service, "username", username]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string()).filter(|s| !s.is_empty())
    }

    /// `secret-tool search --all service SERVICE` (it prints the attributes on stderr and the
    /// rest on stdout: both, in that order).
    pub fn search(&self, service: &str) -> String {
        let out = self.secret_tool(&["search", "--all", "service", service]);
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    /// How many items carry `service` (any user).
    pub fn count(&self, service: &str) -> usize {
        self.search(service).lines().filter(|l| l.starts_with("attribute.service = ")).count()
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        proc::terminate(&mut self.child, Duration::from_secs(3));
    }
}
