//! Running a command on a real pseudo-terminal, answering its prompts as a person would.
//!
//! Purser reads the wallet passphrase from the controlling terminal (`/dev/tty`, echo off), never
//! from the environment, so "user presence" can only be tested through a real pty:
//!
//! * [`run_in_pty`]: a fresh pty becomes the child's controlling terminal and its stdin; stdout and
//!   stderr stay pipes (JSON on stdout stays clean). Prompts seen on the terminal are answered
//!   from a script, in order.
//! * [`run_without_tty`]: the child has no controlling terminal at all (new session, stdin
//!   `/dev/null`), so anything that needs a person at a terminal must be refused.
//!
//! Linux only (like the rest of the harness).

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a command run by [`run_in_pty`] produced.
#[derive(Debug)]
pub struct PtyOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Everything the program wrote to the terminal (prompts, echoed input, `\r\n` line ends),
    /// lossily decoded as UTF-8.
    pub tty: String,
    /// How many answers were typed (all of them, for [`run_in_pty`]).
    pub answered: usize,
}

/// After the child exits, how long to keep draining the terminal while something else (a
/// descendant) still holds it open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// After a prompt is seen, how long to wait for the program to turn echo off before typing
/// anyway (a person takes longer than this to start typing).
const ECHO_OFF_WAIT: Duration = Duration::from_millis(250);

/// Runs `cmd` with a new pty as its controlling terminal and stdin; stdout and stderr stay pipes
/// (so JSON on stdout is clean). Each time the terminal output (since the last answer) contains
/// `answers[i].0`, writes `answers[i].1` followed by `"\n"` — answers are used in order, each once.
///
/// * An answer is typed only once the program has turned terminal echo off, or after a short
///   wait ([`ECHO_OFF_WAIT`]) when it never does (a visible prompt): a password prompt that
///   writes its prompt before disabling echo (like `rpassword`) thus never sees its answer
///   echoed on the terminal.
/// * Panics (after the program exits) if some answers were never used: the prompt a test
///   expected never appeared.
/// * Kills the process (its whole process group) and panics with what it saw after `timeout`.
/// * When the program exits, whatever is left of its process group (background children still
///   holding the terminal or the pipes) is killed: nothing is left behind.
///
/// The caller's stdin/stdout/stderr settings on `cmd` are replaced.
pub fn run_in_pty(cmd: Command, answers: &[(&str, &str)], timeout: Duration) -> PtyOutput {
    run_pty(cmd, answers, timeout, true)
}

/// [`run_in_pty`] as a person at a terminal: each answer is typed if its prompt comes, and a
/// program that never asks is no error (`PtyOutput::answered` says how many were typed).
pub fn run_at_terminal(cmd: Command, answers: &[(&str, &str)], timeout: Duration) -> PtyOutput {
    run_pty(cmd, answers, timeout, false)
}

fn run_pty(mut cmd: Command, answers: &[(&str, &str)], timeout: Duration, require_all: bool) -> PtyOutput {
    let deadline = Instant::now() + timeout;
    let desc = format!("{cmd:?}");
    let (master, slave) = open_pty().unwrap_or_else(|e| panic!("cannot open a pty: {e}"));

    cmd.stdin(Stdio::from(slave)).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (setsid, ioctl); it touches no locks and allocates nothing (errors are built
    // from errno via `from_raw_os_error`, which does not allocate).
    // std has already dup2'ed the pty slave onto fd 0, so: become a session leader (no
    // controlling terminal), then make the slave on fd 0 the controlling terminal. The master
    // and our own copy of the slave are O_CLOEXEC, so the child keeps only fd 0 on the pty.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    // Drop the parent's copy of the slave (held by `cmd`'s Stdio): from now on only the child
    // (and what it spawns) holds it, so the master sees EOF/EIO once they are all gone.
    drop(cmd);
    let pid = child.id() as libc::pid_t;
    let stdout = spawn_collector(child.stdout.take().expect("piped stdout"));
    let stderr = spawn_collector(child.stderr.take().expect("piped stderr"));

    let mut tty: Vec<u8> = Vec::new();
    let mut since = 0usize; // tty offset after the last answer
    let mut next = 0usize; // next answer to use
    let mut exited_at: Option<Instant> = None;
    let mut buf = [0u8; 4096];

    loop {
        // Read whatever the terminal has (wait up to 50 ms for it).
        let mut hung_up = false;
        let mut pfd = libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r > 0 {
            loop {
                // SAFETY: reading into a live buffer of its own length.
                let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    tty.extend_from_slice(&buf[..n as usize]);
                    continue;
                }
                let err = std::io::Error::last_os_error();
                if n == 0 || err.raw_os_error() == Some(libc::EIO) {
                    // EIO (Linux) / 0: no process holds the slave right now. That's EOF once
                    // the child is gone; while it lives it may still open /dev/tty again.
                    hung_up = true;
                } else if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                } else if err.kind() != std::io::ErrorKind::WouldBlock {
                    panic!("reading the pty master of {desc}: {err}");
                }
                break;
            }
        }

        // Answer the next prompt if it has appeared since the last answer.
        if let Some((prompt, answer)) = answers.get(next) {
            if String::from_utf8_lossy(&tty[since..]).contains(prompt) {
                wait_echo_off(&master, deadline);
                let mut line = answer.as_bytes().to_vec();
                line.push(b'\n');
                if let Err(e) = write_all(&master, &line, deadline) {
                    kill_group(pid);
                    let _ = child.wait();
                    panic!("cannot type the answer to {prompt:?} for {desc}: {e}\n--- tty:\n{}", String::from_utf8_lossy(&tty));
                }
                next += 1;
                since = tty.len();
                continue;
            }
        }

        // Has the child exited? (WNOWAIT: leave it a zombie so its pid, and thus its process
        // group id, cannot be reused while we may still signal the group.)
        if exited_at.is_none() && has_exited(pid) {
            exited_at = Some(Instant::now());
        }
        if let Some(t) = exited_at {
            if hung_up || t.elapsed() >= DRAIN_GRACE {
                break;
            }
        }
        if hung_up && r > 0 {
            // poll reports POLLHUP at once while nobody holds the slave: don't spin.
            std::thread::sleep(Duration::from_millis(20));
        }

        if Instant::now() >= deadline {
            kill_group(pid);
            let _ = child.wait();
            let out = stdout.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
            let err = stderr.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
            let waiting = match answers.get(next) {
                Some((p, _)) => format!("waiting for prompt {p:?} (answer {next})"),
                None => "all answers given, waiting for exit".to_string(),
            };
            panic!(
                "command did not finish within {timeout:?} ({waiting}): {desc}\n\
                 --- tty since last answer:\n{}\n--- whole tty:\n{}\n--- stdout:\n{}\n--- stderr:\n{}",
                String::from_utf8_lossy(&tty[since..]),
                String::from_utf8_lossy(&tty),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err),
            );
        }
    }

    // The child is a zombie: kill what's left of its process group (background children that
    // would otherwise hold the pipes open forever), then collect the pipes and reap it.
    kill_group(pid);
    let grace = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
    let out = stdout.recv_timeout(grace);
    let err = stderr.recv_timeout(grace);
    let status = child.wait().unwrap_or_else(|e| panic!("waiting for {desc}: {e}"));
    drop(master);
    let tail = String::from_utf8_lossy(&tty[since..]).into_owned();
    let tty = String::from_utf8_lossy(&tty).into_owned();
    let (Ok(stdout), Ok(stderr)) = (out, err) else {
        panic!("stdout/stderr of {desc} still open after it exited ({status})\n--- tty:\n{tty}");
    };
    if require_all && next < answers.len() {
        panic!(
            "{desc} exited ({status}) before prompting for {:?} (answer {next} of {})\n\
             --- tty since last answer:\n{}\n--- whole tty:\n{tty}\n--- stdout:\n{}\n--- stderr:\n{}",
            answers[next].0,
            answers.len(),
            tail,
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr),
        );
    }
    PtyOutput { status, stdout, stderr, tty, answered: next }
}

/// Runs `cmd` with NO controlling terminal at all (a new session via `setsid`, stdin
/// `/dev/null`, stdout/stderr captured) — for asserting that a prompt-needing command is
/// refused when nobody is at a terminal. Kills it and panics after `timeout`.
pub fn run_without_tty(mut cmd: Command, timeout: Duration) -> Output {
    // SAFETY: runs in the forked child before exec; setsid is async-signal-safe and the closure
    // allocates nothing. A new session has no controlling terminal, and none is acquired later
    // because stdin is /dev/null and `open("/dev/tty")` fails with ENXIO.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Sets stdin null and pipes stdout/stderr.
    crate::proc::run_with_timeout(cmd, timeout)
}

/// A new pty pair, both ends O_CLOEXEC from the start (no window in which a process spawned by
/// a concurrently running test could inherit them), sized 80x24.
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let last = std::io::Error::last_os_error;
    // SAFETY: plain libc calls on fds we own; ptsname_r writes into a buffer of the given size.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return Err(last());
        }
        let master = OwnedFd::from_raw_fd(m);
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return Err(last());
        }
        let mut name = [0 as libc::c_char; 128];
        let rc = libc::ptsname_r(m, name.as_mut_ptr(), name.len());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if s < 0 {
            return Err(last());
        }
        let slave = OwnedFd::from_raw_fd(s);
        let ws = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        libc::ioctl(m, libc::TIOCSWINSZ, &ws);
        let flags = libc::fcntl(m, libc::F_GETFL);
        if flags < 0 || libc::fcntl(m, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(last());
        }
        Ok((master, slave))
    }
}

/// Reads a pipe to its end on a thread; the whole content arrives on the channel.
fn spawn_collector<R: Read + Send + 'static>(mut src: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = src.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

/// Whether `pid` (our child) has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: zeroed siginfo_t is valid; waitid fills it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        rc == 0 && info.si_pid() == pid
    }
}

/// SIGKILL to the child's process group (it is a session and group leader: its pgid is its pid).
/// Only called while the child is unreaped, so the id cannot belong to anyone else.
fn kill_group(pid: libc::pid_t) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Waits (up to [`ECHO_OFF_WAIT`]) for the terminal's ECHO flag to go off. On Linux, termios
/// requests on a pty master act on the slave's settings.
fn wait_echo_off(master: &OwnedFd, deadline: Instant) {
    let until = (Instant::now() + ECHO_OFF_WAIT).min(deadline);
    loop {
        // SAFETY: zeroed termios is valid; tcgetattr fills it.
        let echo = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(master.as_raw_fd(), &mut t) == 0 && t.c_lflag & libc::ECHO != 0
        };
        if !echo || Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes all of `data` to the (nonblocking) master.
fn write_all(master: &OwnedFd, mut data: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a live slice of its own length.
        let n = unsafe { libc::write(master.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            data = &data[n as usize..];
            continue;
        }
        let err = std::io::Error::last_os_error();
        match err.kind() {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    const T: Duration = Duration::from_secs(20);

    /// Reads a passphrase the way a password prompt does (/dev/tty, echo off), prints it.
    const GETPASS: &str = "import getpass, sys\nsys.stdout.write(getpass.getpass('Wallet passphrase: ') + '\\n')\n";

    fn py(src: &str) -> Command {
        let mut c = Command::new("python3");
        c.arg("-c").arg(src);
        c
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    /// True when `pid` no longer runs (gone, or a zombie waiting for a reaper that isn't us).
    fn gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => {
                let state = s.rsplit_once(") ").map(|(_, r)| &r[..1]);
                matches!(state, Some("Z") | Some("X"))
            }
        }
    }

    #[test]
    fn pty_getpass_reads_the_answer_from_the_terminal_without_echo() {
        let out = run_in_pty(py(GETPASS), &[("passphrase", "s3cret")], T);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "s3cret\n", "{out:?}");
        assert!(out.tty.contains("Wallet passphrase: "), "{out:?}");
        // Echo was off: the terminal never showed the secret, and the prompt was not on stderr.
        assert!(!out.tty.contains("s3cret"), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
    }

    /// Like `rpassword::prompt_password`: writes the prompt to /dev/tty *first*, and only then
    /// turns echo off (ECHONL kept) and reads the line from /dev/tty. The sleep widens the gap.
    const PROMPT_THEN_ECHO_OFF: &str = "\
import os, sys, termios, time
fd = os.open('/dev/tty', os.O_RDWR | os.O_NOCTTY)
os.write(fd, b'Wallet passphrase: ')
time.sleep(0.05)
old = termios.tcgetattr(fd)
new = old[:]
new[3] = (new[3] & ~termios.ECHO) | termios.ECHONL
termios.tcsetattr(fd, termios.TCSANOW, new)
line = b''
while not line.endswith(b'\\n'):
    line += os.read(fd, 1)
termios.tcsetattr(fd, termios.TCSANOW, old)
sys.stdout.write(line.decode())
";

    #[test]
    fn pty_answer_waits_for_echo_off_after_the_prompt() {
        let out = run_in_pty(py(PROMPT_THEN_ECHO_OFF), &[("passphrase", "s3cret")], T);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "s3cret\n", "{out:?}");
        assert!(out.tty.starts_with("Wallet passphrase: "), "{out:?}");
        assert!(!out.tty.contains("s3cret"), "the secret was echoed: {out:?}");
    }

    #[test]
    fn pty_getpass_is_refused_without_a_terminal() {
        let out = run_without_tty(py(GETPASS), T);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // No /dev/tty: getpass warns, falls back to stdin (/dev/null), hits EOF and raises.
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(stderr.contains("GetPassWarning"), "{stderr}");
        assert!(stderr.trim_end().ends_with("EOFError"), "{stderr}");
    }

    #[test]
    fn pty_is_the_controlling_terminal_and_stdin() {
        let out = run_in_pty(sh("test -t 0 && tty && exec 3</dev/tty && echo ctty-ok"), &[], T);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let tty = lines.next().unwrap_or_default();
        assert!(tty.starts_with("/dev/pts/"), "{stdout:?}");
        assert_eq!(lines.next(), Some("ctty-ok"), "{stdout:?}");
        // stdout stayed a pipe: nothing went to the terminal.
        assert_eq!(out.tty, "", "{out:?}");
    }

    #[test]
    fn pty_leftover_background_children_are_killed_at_exit() {
        // The shell exits at once, leaving a SIGHUP-immune child holding the pty and stdout.
        let out = run_in_pty(sh("trap '' HUP; sleep 300 & echo $!"), &[], T);
        assert!(out.status.success(), "{out:?}");
        let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let t = Instant::now();
        while !gone(pid) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(pid), "background child {pid} survived");
    }

    #[test]
    fn pty_without_tty_has_no_controlling_terminal() {
        let out = run_without_tty(sh("exec 3</dev/tty"), T);
        assert!(!out.status.success(), "{out:?}");
        // It is a session leader (setsid), so it cannot inherit the test runner's terminal.
        let out = run_without_tty(py("import os; assert os.getsid(0) == os.getpid()"), T);
        assert!(out.status.success(), "{out:?}");
        let out = run_without_tty(sh("test -t 0"), T);
        assert!(!out.status.success(), "{out:?}");
        // The same shell can open it under a pty (so the failure above is the missing terminal).
        let out = run_in_pty(sh("exec 3</dev/tty"), &[], T);
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn pty_answers_are_used_in_order_each_once() {
        // Visible (echoing) prompts on the terminal, answers read from stdin (the pty); the same
        // prompt text twice gets two answers.
        let script = "printf 'Name: ' >/dev/tty; read a; printf 'Name: ' >/dev/tty; read b; \
                      printf 'Confirm: ' >/dev/tty; read c; echo \"$a|$b|$c\"";
        let out = run_in_pty(sh(script), &[("Name:", "alice"), ("Name:", "bob"), ("Confirm", "yes")], T);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "alice|bob|yes\n");
        // Echo on: a person sees what they type.
        assert!(out.tty.contains("Name: alice\r\nName: bob\r\nConfirm: yes"), "{out:?}");
    }

    #[test]
    fn pty_unused_answer_panics() {
        let r = catch_unwind(AssertUnwindSafe(|| run_in_pty(sh("echo done"), &[("passphrase", "x")], T)));
        let msg = r.expect_err("an answer that was never asked for must panic");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("before prompting for \"passphrase\""), "{msg}");
    }

    #[test]
    fn pty_timeout_panics_and_leaves_no_process_behind() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // A prompt that never matches the scripted one; a background child (immune to the
        // SIGHUP the terminal hangup would send) also holds the pty and the pipes.
        let script = format!(
            "trap '' HUP; sleep 300 & echo $$ $! > '{}'; printf 'Enter PIN: ' >/dev/tty; read x; \
             echo got $x",
            pids.display()
        );
        let started = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| run_in_pty(sh(&script), &[("passphrase", "s3cret")], Duration::from_secs(2))));
        let elapsed = started.elapsed();
        let msg = r.expect_err("a prompt that never comes must panic");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("did not finish within 2s"), "{msg}");
        assert!(msg.contains("waiting for prompt \"passphrase\""), "{msg}");
        assert!(msg.contains("Enter PIN: "), "the panic shows what it saw: {msg}");
        assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
        let ids = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<i32> = ids.split_whitespace().map(|s| s.parse().unwrap()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        let t = Instant::now();
        while !ids.iter().all(|&p| gone(p)) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in ids {
            assert!(gone(p), "process {p} survived the timeout");
        }
    }
}
