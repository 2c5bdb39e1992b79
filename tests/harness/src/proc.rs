//! Child-process plumbing shared by the harness: commands with timeouts, SIGTERM, stdout line
//! readers that also log to a file, and log tails for failure context.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `cmd` to completion, capturing stdout/stderr; kills it and panics after `timeout`.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Output {
    try_run_with_timeout(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run_with_timeout`] but never panics (safe in Drop while unwinding).
pub fn try_run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("cannot spawn {desc}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(format!("waiting for {desc}: {e}")),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            Err(format!("command did not finish within {timeout:?}: {desc}"))
        }
    }
}

/// Sends `sig` to one process id (never a group, never by name).
pub fn signal(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

pub fn sigterm(child: &Child) {
    signal(child.id(), libc::SIGTERM);
}

/// Polls `try_wait` until the child exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL and reap.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    sigterm(child);
    if let Some(st) = wait_timeout(child, grace) {
        return Some(st);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Reads `src` line by line on a thread: every line is appended to `log` and sent on the channel.
pub fn line_reader<R: Read + Send + 'static>(src: R, log: &Path) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
    std::thread::spawn(move || {
        let mut r = BufReader::new(src);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = file.write_all(line.as_bytes());
                    let _ = tx.send(line.trim_end_matches(['\r', '\n']).to_string());
                }
            }
        }
    });
    rx
}

/// The last `n` lines of a text file (empty when missing).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Stdio that appends to a file (for stderr of long-running children).
pub fn log_stdio(path: &Path) -> Stdio {
    let f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    Stdio::from(f)
}
