//! Owns one contained run from the host's side: the trust files handed in as memfds, spawning
//! bubblewrap (in its own process group, so a Ctrl-C at the terminal reaches Purser alone), the
//! sandbox init's host PID (bwrap's `--info-fd`), its `ok`/`err` report, forwarding Purser's
//! signals to it, and the agent's exit status.
//!
//! bwrap is spawned from the calling thread with `--die-with-parent` (PR_SET_PDEATHSIG, which
//! fires when that *thread* ends): call [`run`] from a task on the runtime, never from
//! `spawn_blocking`.

use super::plan::{self, Fds};
use super::preflight::{self, SandboxError};
use super::SandboxSpec;
use std::ffi::CString;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Signals passed on to the agent. The agent is in a session of its own, so what the terminal
/// sends to its foreground job (Purser) must be relayed: Ctrl-C, Ctrl-\, a resize, Ctrl-Z (the
/// agent is stopped, then Purser stops itself) and the SIGCONT of `fg`.
const FORWARDED: [libc::c_int; 7] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGWINCH, libc::SIGTSTP, libc::SIGCONT];
/// System trust bundles, first found is used.
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"];

/// Runs `spec.command` in the sandbox and returns its exit status (128+signal if a signal ended
/// it). Errors are [`SandboxError`]s (downcast to read the code). Once the agent has started,
/// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGTSTP and SIGCONT to this process are passed on
/// to it (their handlers stay installed afterwards). The terminal's settings are put back when
/// the agent is done. Nothing the run started is left when this returns.
pub async fn run(spec: &SandboxSpec) -> anyhow::Result<i32> {
    let bwrap = preflight::probe()?;
    let exe = std::env::current_exe().map_err(|e| SandboxError::Failed(format!("where is the purser binary? {e}")))?;
    let hidden = plan::default_hidden(&|k| std::env::var_os(k));
    let resolved = plan::resolve(spec, &hidden, &exe)?;
    let trust = match &spec.ca_pem {
        Some(p) => Some(trust_files(p)?),
        None => None,
    };
    let failed = |what: &str, e: std::io::Error| SandboxError::Failed(format!("{what}: {e}"));
    let (info_r, info_w) = pipe_pair().map_err(|e| failed("pipe", e))?;
    let (ready_r, ready_w) = pipe_pair().map_err(|e| failed("pipe", e))?;
    let fds = Fds { info: info_w.as_raw_fd(), ready: ready_w.as_raw_fd(), ca: trust.as_ref().map(|(a, b)| (a.as_raw_fd(), b.as_raw_fd())) };
    let args = plan::bwrap_args(&resolved, &fds, bwrap.disable_userns, super::caller_umask());
    let env = plan::agent_env(std::env::vars_os(), &spec.token, trust.is_some());
    let mut signals = Vec::new();
    for sig in FORWARDED {
        signals.push((sig, signal(SignalKind::from_raw(sig)).map_err(|e| failed("signal handler", e))?));
    }
    let mut inherit = vec![fds.info, fds.ready];
    inherit.extend(fds.ca.map(|(a, b)| [a, b]).into_iter().flatten());
    let mut cmd = tokio::process::Command::new(&bwrap.path);
    cmd.args(&args).env_clear().envs(env).process_group(0).kill_on_drop(true);
    // SAFETY: fcntl is async-signal-safe and `inherit` is not allocated in the child.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &inherit {
                if libc::fcntl(*fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let _terminal = Terminal::save();
    let child = cmd.spawn().map_err(|e| failed(&format!("could not execute {}", bwrap.path.display()), e))?;
    drop((info_w, ready_w, trust));
    supervise(child, info_r, ready_r, signals).await
}

/// Waits for bwrap while learning the init's PID and its report, and forwards signals once the
/// agent is running (before that, they wait: PID 1 ignores signals it has no handler for yet).
async fn supervise(mut child: tokio::process::Child, info: OwnedFd, ready: OwnedFd, signals: Vec<(libc::c_int, Signal)>) -> anyhow::Result<i32> {
    let failed = |e: std::io::Error| SandboxError::Failed(format!("pipe: {e}"));
    let mut info = pipe::Receiver::from_owned_fd(info).map_err(failed)?;
    let mut ready = BufReader::new(pipe::Receiver::from_owned_fd(ready).map_err(failed)?).lines();
    let info_text = async move {
        let mut text = String::new();
        info.read_to_string(&mut text).await.ok().and_then(|_| child_pid(&text))
    };
    tokio::pin!(info_text);
    // One task per signal feeding a channel; dropping the set stops them.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut pumps = tokio::task::JoinSet::new();
    for (n, mut s) in signals {
        let tx = tx.clone();
        pumps.spawn(async move { while s.recv().await.is_some() && tx.send(n).is_ok() {} });
    }
    let (mut info_done, mut ready_done) = (false, false);
    let (mut init, mut report): (Option<Target>, Option<String>) = (None, None);
    let mut pending = Vec::new();
    let status = loop {
        tokio::select! {
            biased;
            pid = &mut info_text, if !info_done => {
                info_done = true;
                init = pid.map(Target::new);
            }
            line = ready.next_line(), if !ready_done => match line {
                Ok(Some(l)) => { report.get_or_insert(l); }
                _ => ready_done = true,
            },
            status = child.wait() => break status.map_err(|e| SandboxError::Failed(format!("waiting for bwrap: {e}")))?,
            Some(sig) = rx.recv() => pending.push(sig),
        }
        if let (Some(t), Some("ok")) = (&init, report.as_deref()) {
            for sig in pending.drain(..) {
                t.signal(sig);
                if sig == libc::SIGTSTP {
                    // SAFETY: stopping ourselves, as SIGTSTP's default action would have.
                    unsafe { libc::raise(libc::SIGSTOP) };
                }
            }
        }
    };
    if report.is_none() {
        // bwrap is gone and so is every writer of the pipe: the rest is there or never comes.
        if let Ok(Ok(Some(l))) = tokio::time::timeout(Duration::from_secs(1), ready.next_line()).await {
            report = Some(l);
        }
    }
    match report.as_deref() {
        Some("ok") => Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))),
        Some(l) => Err(SandboxError::Spawn(l.strip_prefix("err ").unwrap_or(l).to_string()).into()),
        None => Err(SandboxError::Failed(format!("bubblewrap ended ({status}) before the agent started; its message, if any, is above")).into()),
    }
}

/// `"child-pid": N` from bwrap's info JSON.
fn child_pid(info: &str) -> Option<libc::pid_t> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    v.get("child-pid")?.as_i64().and_then(|p| libc::pid_t::try_from(p).ok()).filter(|p| *p > 0)
}

/// The sandbox init, by pidfd when the kernel has them (no PID reuse race), else by PID.
struct Target {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
}

impl Target {
    fn new(pid: libc::pid_t) -> Target {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a non-negative return is a fresh fd that we own.
        let pidfd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        Target { pid, pidfd }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain syscalls on a pid/pidfd we own; failures (the init already gone) are moot.
        unsafe {
            match &self.pidfd {
                Some(fd) => libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0),
                None => libc::kill(self.pid, sig) as libc::c_long,
            };
        }
    }
}

/// The terminal's settings on stdin, put back on drop (an agent killed in raw mode would leave
/// the terminal unusable), only while Purser is its foreground job (else that would stop us).
struct Terminal(Option<libc::termios>);

impl Terminal {
    fn save() -> Terminal {
        // SAFETY: tcgetattr fills the termios on success; zeroed is a valid starting value.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            Terminal((libc::isatty(0) == 1 && libc::tcgetattr(0, &mut t) == 0).then_some(t))
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: plain calls on fd 0 with a termios tcgetattr gave us.
            unsafe {
                if libc::tcgetpgrp(0) == libc::getpgrp() {
                    libc::tcsetattr(0, libc::TCSANOW, t);
                }
            }
        }
    }
}

/// A pipe, both ends close-on-exec (the write end is let through to bwrap alone).
fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh fds that we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Purser's CA and the system bundle plus it, each in a sealed-off memfd bwrap copies in.
fn trust_files(ca: &Path) -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let pem = std::fs::read(ca).map_err(|e| SandboxError::BadSpec(format!("Purser's CA {}: {e}", ca.display())))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(SandboxError::BadSpec(format!("{} holds no PEM certificate", ca.display())));
    }
    let mut bundle = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read(p).ok()).unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with(b"\n") {
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(&pem);
    let mem = |name: &str, bytes: &[u8]| memfd(name, bytes).map_err(|e| SandboxError::Failed(format!("memfd for {name}: {e}")));
    Ok((mem("purser-ca", &pem)?, mem("purser-ca-bundle", &bundle)?))
}

fn memfd(name: &str, bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let cname = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: a valid C string and flags; returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that we own.
    let mut f = unsafe { File::from_raw_fd(fd) };
    f.write_all(bytes)?;
    f.rewind()?;
    Ok(f.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn child_pid_from_info() {
        assert_eq!(child_pid("{\n    \"child-pid\": 8719,\n    \"net-namespace\": 4026532180\n}"), Some(8719));
        assert_eq!(child_pid("{}"), None);
        assert_eq!(child_pid("garbage"), None);
    }

    #[test]
    fn trust_files_bundle_ends_with_purser_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::fs::write(&ca, pem).unwrap();
        let (a, b) = trust_files(&ca).unwrap();
        let read = |fd: OwnedFd| {
            let mut s = Vec::new();
            File::from(fd).read_to_end(&mut s).unwrap();
            s
        };
        assert_eq!(read(a), pem);
        let bundle = read(b);
        assert!(bundle.ends_with(pem) && bundle.len() >= pem.len());
        std::fs::write(&ca, b"not a cert").unwrap();
        assert_eq!(trust_files(&ca).unwrap_err().code(), "sandbox_bad_spec");
    }
}
