//! Owns the data dir's privacy: the directory is 0700 and every file Purser writes in it 0600
//! (the ledger is a record of someone's spending; the keystore holds their key).

use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` (and parents) if needed and makes it 0700.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to `path` atomically (temp file + rename), 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, path)
}

/// Makes an existing file 0600 (SQLite's -wal and -shm files, for instance).
pub fn make_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The platform data dir (`~/.local/share/purser` on Linux) unless overridden.
pub fn default_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))).unwrap_or_else(|| PathBuf::from(".")).join("purser")
}

/// The private runtime dir for sockets: `$XDG_RUNTIME_DIR/purser`, else `/tmp/purser-<uid>`.
/// Created 0700; an existing one must be a directory owned by this user with no group or other
/// access, or it is refused (someone else may have made it to catch the socket).
pub fn runtime_dir() -> std::io::Result<PathBuf> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_absolute() && d.is_dir()) {
        Some(d) => d.join("purser"),
        None => std::env::temp_dir().join(format!("purser-{uid}")),
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(&dir)?;
    use std::os::unix::fs::MetadataExt;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a private directory of this user (owner uid {}, mode {:o}); remove it", dir.display(), meta.uid(), meta.mode() & 0o7777),
        ));
    }
    Ok(dir)
}

/// A short name for a data dir, stable across runs (the first 12 hex digits of the SHA-256 of
/// its canonical path): sockets of two data dirs never collide.
pub fn dir_key(data_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let path = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    hex::encode(Sha256::digest(path.as_os_str().as_encoded_bytes()))[..12].to_string()
}

/// The control socket of the Purser serving `data_dir`.
pub fn control_socket(data_dir: &Path) -> std::io::Result<PathBuf> {
    Ok(runtime_dir()?.join(format!("control-{}.sock", dir_key(data_dir))))
}

/// The lock file: whoever holds an exclusive lock on it owns the data dir (the proxy, the
/// control file, the pending approvals), `purser serve` or the desktop app, never both.
pub const LOCK_FILE: &str = "purser.lock";

/// Who owns a data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Daemon,
    App,
}

impl Owner {
    fn as_str(&self) -> &'static str {
        match self {
            Owner::Daemon => "daemon",
            Owner::App => "app",
        }
    }
    fn describe(s: &str) -> &'static str {
        match s {
            "app" => "the desktop app",
            "daemon" => "the daemon",
            _ => "another Purser",
        }
    }
}

/// Why the data dir could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("Purser is already running ({who}, pid {pid}{at}); stop it first, or use another data dir")]
    Held { who: &'static str, pid: String, at: String },
    #[error("cannot lock {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl LockError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            LockError::Held { .. } => crate::api::ErrorCode::AlreadyRunning,
            LockError::Io { .. } => crate::api::ErrorCode::LockFailed,
        }
    }
}

/// The data dir, owned by this process until dropped (or until it exits: the kernel releases
/// the lock of a dead process, so a crash never leaves a stale lock behind).
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

/// Takes the data dir for `owner`, or says who holds it ("Purser is already running (the
/// daemon, pid 4711, at http://127.0.0.1:4020)"). Never waits.
pub fn lock_exclusive(dir: &Path, owner: Owner) -> Result<DirLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| LockError::Io { path: path.display().to_string(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut held = String::new();
            let _ = std::io::Read::read_to_string(&mut file, &mut held);
            let (kind, pid) = held.trim().split_once(' ').unwrap_or(("", "?"));
            let url = ControlFile::read(dir).filter(|c| c.pid.to_string() == pid).map(|c| format!(", at {}", c.url)).unwrap_or_default();
            return Err(LockError::Held { who: Owner::describe(kind), pid: pid.chars().filter(char::is_ascii_digit).take(10).collect(), at: url });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.write_all(format!("{} {}\n", owner.as_str(), std::process::id()).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(DirLock { _file: file })
}

/// File in the data dir that tells local clients where the running Purser is.
pub const CONTROL_FILE: &str = "control.json";

/// Contents of `control.json`: the proxy's URL (for agents), the control socket (for the CLI)
/// and the serving process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlFile {
    pub url: String,
    pub socket: PathBuf,
    pub pid: u32,
}

impl ControlFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONTROL_FILE)
    }
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        write_private(&Self::path(data_dir), serde_json::to_string(self)?.as_bytes())
    }
    pub fn read(data_dir: &Path) -> Option<ControlFile> {
        serde_json::from_slice(&std::fs::read(Self::path(data_dir)).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time_and_the_loser_is_told_who() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_exclusive(dir.path(), Owner::App).unwrap();
        let mode = fs::metadata(dir.path().join(LOCK_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        ControlFile { url: "http://127.0.0.1:4999".into(), socket: dir.path().join("c.sock"), pid: std::process::id() }.write(dir.path()).unwrap();
        let e = lock_exclusive(dir.path(), Owner::Daemon).unwrap_err();
        assert_eq!(e.code(), "already_running");
        let want = format!("Purser is already running (the desktop app, pid {}, at http://127.0.0.1:4999); stop it first, or use another data dir", std::process::id());
        assert_eq!(e.to_string(), want);
        drop(held);
        let again = lock_exclusive(dir.path(), Owner::Daemon).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), format!("daemon {}\n", std::process::id()));
        drop(again);
    }
}
