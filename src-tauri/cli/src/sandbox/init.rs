//! Owns `purser __sandbox-init`, the sandbox's PID 1: it binds 127.0.0.1:4020 (the agent's
//! only way out), starts the agent in its own process group once the listener is up, reports
//! `ok` or `err MESSAGE` on the launcher's pipe, bridges every TCP connection to Purser's Unix
//! socket, passes signals on to the agent's group, reaps orphans, and exits with the agent's
//! status (128+signal if a signal ended it). Its exit takes down the whole PID namespace.

use super::InitArgs;
use std::fs::File;
use std::io::Write;
use std::os::unix::io::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::signal::unix::{signal, SignalKind};

/// Passed on to the agent's process group (as a terminal does to its foreground job).
const FORWARDED: [libc::c_int; 7] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGWINCH, libc::SIGTSTP, libc::SIGCONT];
/// Bytes buffered per direction per connection.
const BUF: usize = 64 * 1024;

pub async fn main(args: InitArgs) -> anyhow::Result<()> {
    // SAFETY: the fd was handed to us for this (or is not ours: then writes just fail); setting
    // close-on-exec keeps it from the agent.
    let mut ready = args.ready_fd.map(|fd| unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        File::from_raw_fd(fd)
    });
    // A client hanging up must not kill the bridge (the agent gets SIGPIPE's default back).
    // SAFETY: setting a signal disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut children = signal(SignalKind::child())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for n in FORWARDED {
        let mut s = signal(SignalKind::from_raw(n))?;
        let tx = tx.clone();
        tokio::spawn(async move { while s.recv().await.is_some() && tx.send(n).is_ok() {} });
    }
    let listener = match TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => abort(&mut ready, 1, &format!("could not listen on 127.0.0.1:{}: {e}", args.port)),
    };
    let socket = Arc::new(args.socket);
    tokio::spawn(serve(listener, socket.clone()));
    if let Ok(v6) = TcpListener::bind(("::1", args.port)).await {
        tokio::spawn(serve(v6, socket));
    }
    if let Some(mask) = args.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    let (program, rest) = args.command.split_first().ok_or_else(|| anyhow::anyhow!("no command"))?;
    let agent = match std::process::Command::new(program).args(rest).process_group(0).spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            abort(&mut ready, code, &format!("{}: {e}", Path::new(program).display()))
        }
    };
    let pid = agent.id() as libc::pid_t;
    if let Some(mut r) = ready.take() {
        let _ = r.write_all(b"ok\n");
    }
    loop {
        tokio::select! {
            _ = children.recv() => if let Some(code) = reap(pid) {
                std::process::exit(code);
            },
            Some(sig) = rx.recv() => {
                // SAFETY: kill has no memory preconditions; the group may already be gone.
                if unsafe { libc::kill(-pid, sig) } < 0 {
                    unsafe { libc::kill(pid, sig) };
                }
            }
        }
    }
}

/// Reports the failure on the pipe (or stderr when there is none) and exits.
fn abort(ready: &mut Option<File>, code: i32, message: &str) -> ! {
    match ready.take() {
        Some(mut r) => {
            let _ = writeln!(r, "err {}", message.replace('\n', " "));
        }
        None => eprintln!("purser: {message}"),
    }
    std::process::exit(code)
}

/// Reaps every exited child; the agent's exit code once it is among them.
fn reap(agent: libc::pid_t) -> Option<i32> {
    let mut code = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return code;
        }
        if pid == agent {
            code = Some(exit_code(status));
        }
    }
}

/// A wait status as a shell reports it: the exit code, or 128+signal.
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Accepts connections for as long as the sandbox lives.
async fn serve(listener: TcpListener, socket: Arc<PathBuf>) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(bridge(tcp, socket.clone()));
            }
            Err(e) => {
                tracing::warn!("accepting on the sandbox bridge: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One TCP connection to one Unix socket connection, bytes both ways; an EOF on one side is
/// passed on as a half-close of the other.
pub(super) async fn bridge(mut tcp: TcpStream, socket: Arc<PathBuf>) {
    let _ = tcp.set_nodelay(true);
    match UnixStream::connect(&*socket).await {
        Ok(mut up) => {
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut tcp, &mut up, BUF, BUF).await;
        }
        Err(e) => {
            let body = serde_json::json!({"code": "proxy_unreachable", "message": format!("Purser's proxy for this run is unreachable: {e}")}).to_string();
            let head = format!("HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = tcp.write_all(head.as_bytes()).await;
            let _ = tcp.write_all(body.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn bridge_passes_bytes_and_half_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("p.sock"));
        let unix = UnixListener::bind(&*path).unwrap();
        // The upstream reads to EOF (the client's half-close), then answers and closes.
        let upstream = tokio::spawn(async move {
            let (mut s, _) = unix.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(format!("got {} bytes", got.len()).as_bytes()).await.unwrap();
        });
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(serve(tcp, path.clone()));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&vec![7u8; 300_000]).await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "got 300000 bytes");
        upstream.await.unwrap();

        std::fs::remove_file(&*path).unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 502") && answer.contains("proxy_unreachable"), "{answer}");
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code(7 << 8), 7);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM | 0x80), 143, "core dumped");
    }
}
