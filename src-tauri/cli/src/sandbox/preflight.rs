//! Owns the question "can this machine build Purser's sandbox?": finding bubblewrap (`bwrap` on
//! the PATH, or `PURSER_BWRAP`), a trial run with the namespaces a real run uses, and the named
//! errors ([`SandboxError`]) that say what to fix. There is no fallback to an uncontained run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Why the sandbox cannot be built or an agent could not be started in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No bubblewrap (the detail says where it was looked for).
    #[error("bubblewrap is not installed: sudo apt-get install bubblewrap ({0})")]
    BwrapMissing(String),
    /// The kernel (or AppArmor) refuses unprivileged user namespaces.
    #[error("{0}")]
    UsernsDisabled(String),
    /// bubblewrap failed for another reason, or the sandbox died before the agent started.
    #[error("the sandbox could not be set up: {0}")]
    Failed(String),
    /// The sandbox was built but CMD could not be executed in it.
    #[error("the agent could not be started in the sandbox: {0}")]
    Spawn(String),
    /// The spec itself is unusable (a missing working dir, a writable path inside a hidden one…).
    #[error("{0}")]
    BadSpec(String),
}

impl SandboxError {
    pub fn code(&self) -> purser_core::api::ErrorCode {
        match self {
            SandboxError::BwrapMissing(_) => purser_core::api::ErrorCode::BwrapMissing,
            SandboxError::UsernsDisabled(_) => purser_core::api::ErrorCode::UsernsDisabled,
            SandboxError::Failed(_) => purser_core::api::ErrorCode::SandboxFailed,
            SandboxError::Spawn(_) => purser_core::api::ErrorCode::SandboxSpawnFailed,
            SandboxError::BadSpec(_) => purser_core::api::ErrorCode::SandboxBadSpec,
        }
    }
}

/// A bubblewrap that passed the trial run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bwrap {
    pub path: PathBuf,
    /// Knows `--disable-userns` (0.8+): the agent cannot make nested user namespaces.
    pub disable_userns: bool,
}

static CHECKED: Mutex<Option<Bwrap>> = Mutex::new(None);

/// Checks that bubblewrap is installed and can build the sandbox here; returns its path.
pub fn preflight() -> Result<PathBuf, SandboxError> {
    probe().map(|b| b.path)
}

/// [`preflight`] with what the trial run learnt; a success is remembered for the process.
pub(crate) fn probe() -> Result<Bwrap, SandboxError> {
    let path = find()?;
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = checked.as_ref().filter(|b| b.path == path) {
        return Ok(b.clone());
    }
    let bwrap = match trial(&path, true) {
        Ok(()) => Bwrap { path, disable_userns: true },
        Err(text) if text.contains("disable-userns") => match trial(&path, false) {
            Ok(()) => Bwrap { path, disable_userns: false },
            Err(text) => return Err(classify(&text, &sysctls())),
        },
        Err(text) => return Err(classify(&text, &sysctls())),
    };
    *checked = Some(bwrap.clone());
    Ok(bwrap)
}

fn find() -> Result<PathBuf, SandboxError> {
    if let Some(p) = std::env::var_os("PURSER_BWRAP").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return match p.is_file() {
            true => Ok(p),
            false => Err(SandboxError::BwrapMissing(format!("PURSER_BWRAP={} is not a file", p.display()))),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join("bwrap"))
        .find(|p| is_executable(p))
        .ok_or_else(|| SandboxError::BwrapMissing("no bwrap on the PATH".into()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A trivial sandbox with the namespaces and mounts a real run uses; `Err(stderr)` on failure.
fn trial(bwrap: &Path, disable_userns: bool) -> Result<(), String> {
    let mut cmd = Command::new(bwrap);
    cmd.args(super::plan::namespace_args(disable_userns));
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"]);
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(if text.is_empty() { format!("bwrap exited with {}", out.status) } else { text })
        }
        Err(e) => Err(format!("could not execute {}: {e}", bwrap.display())),
    }
}

/// The user-namespace switches as this machine has them (`None`: not there).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sysctls {
    pub unprivileged_userns_clone: Option<u64>,
    pub max_user_namespaces: Option<u64>,
    pub apparmor_restrict: Option<u64>,
}

fn sysctls() -> Sysctls {
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok());
    Sysctls {
        unprivileged_userns_clone: read("/proc/sys/kernel/unprivileged_userns_clone"),
        max_user_namespaces: read("/proc/sys/user/max_user_namespaces"),
        apparmor_restrict: read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
    }
}

/// What bubblewrap's failure means: user namespaces refused, or something else.
pub(crate) fn classify(stderr: &str, sys: &Sysctls) -> SandboxError {
    let lower = stderr.to_ascii_lowercase();
    let userns = ["uid map", "gid map", "new namespace", "unprivileged_userns", "user namespace", "rtm_newaddr", "no permissions to create"];
    let said = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or(stderr).trim();
    if !userns.iter().any(|p| lower.contains(p)) {
        return SandboxError::Failed(format!("bubblewrap failed its trial run: {said}"));
    }
    let mut fixes = Vec::new();
    if sys.apparmor_restrict == Some(1) {
        fixes.push("AppArmor restricts them (Ubuntu 23.10+): sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile allowing userns for bwrap)");
    }
    if sys.unprivileged_userns_clone == Some(0) {
        fixes.push("Debian's switch is off: sudo sysctl -w kernel.unprivileged_userns_clone=1");
    }
    if sys.max_user_namespaces == Some(0) {
        fixes.push("none are allowed: sudo sysctl -w user.max_user_namespaces=15000");
    }
    let fixes = match fixes.is_empty() {
        false => fixes.join("; "),
        true => "set kernel.unprivileged_userns_clone=1 (Debian), user.max_user_namespaces above 0, or kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu's AppArmor), with sudo sysctl -w".into(),
    };
    SandboxError::UsernsDisabled(format!(
        "unprivileged user namespaces are disabled, so bubblewrap cannot build the sandbox ({said}). To enable them: {fixes}; keep it across reboots in /etc/sysctl.d/"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userns_failures_name_the_switch() {
        let none = Sysctls::default();
        let e = classify("bwrap: setting up uid map: Permission denied\n", &none);
        assert_eq!(e.code(), "userns_disabled");
        let text = e.to_string();
        assert!(text.contains("kernel.unprivileged_userns_clone=1") && text.contains("user.max_user_namespaces"), "{text}");
        assert!(text.contains("apparmor_restrict_unprivileged_userns=0") && text.contains("setting up uid map"), "{text}");

        let debian = Sysctls { unprivileged_userns_clone: Some(0), max_user_namespaces: Some(1000), apparmor_restrict: None };
        let text = classify("bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.", &debian).to_string();
        assert!(text.contains("kernel.unprivileged_userns_clone=1") && !text.contains("apparmor"), "{text}");

        let ubuntu = Sysctls { unprivileged_userns_clone: Some(1), max_user_namespaces: Some(1000), apparmor_restrict: Some(1) };
        let text = classify("bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted", &ubuntu).to_string();
        assert!(text.contains("apparmor_restrict_unprivileged_userns=0") && !text.contains("unprivileged_userns_clone"), "{text}");

        let zero = Sysctls { max_user_namespaces: Some(0), ..Sysctls::default() };
        let e = classify("bwrap: Creating new namespace failed: No space left on device", &zero);
        assert!(e.to_string().contains("user.max_user_namespaces=15000"), "{e}");
    }

    #[test]
    fn other_failures_are_sandbox_failed() {
        let e = classify("bwrap: Can't mount proc on /newroot/proc: Operation not permitted", &Sysctls::default());
        assert_eq!(e.code(), "sandbox_failed");
        assert!(e.to_string().contains("Can't mount proc"), "{e}");
        assert_eq!(SandboxError::BwrapMissing("x".into()).to_string(), "bubblewrap is not installed: sudo apt-get install bubblewrap (x)");
    }
}
