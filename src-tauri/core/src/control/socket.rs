//! Owns the control socket: a Unix socket in the user's private runtime dir (see
//! [`crate::datadir::runtime_dir`]), the file itself 0600, served with HTTP/1.1. Every
//! connection's peer credentials are read from the kernel: a peer of another uid is closed
//! unanswered, and the peer's pid names who asked in the audit log. Stops (and removes the
//! socket) on drop.

use super::Peer;
use crate::engine::Engine;
use crate::runs::Runs;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// A serving control socket.
pub struct ControlServer {
    path: PathBuf,
    stop: watch::Sender<bool>,
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// This process's effective uid.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Binds `path`: a socket left by a dead process is replaced; one that answers belongs to a
/// running Purser and is an `AddrInUse` error.
pub async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, format!("another Purser serves {}", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the control API on `path` until the returned server is dropped.
pub async fn serve(engine: Arc<Engine>, runs: Arc<Runs>, path: PathBuf) -> std::io::Result<ControlServer> {
    let listener = bind(&path).await?;
    let (stop, mut stopped) = watch::channel(false);
    let uid = my_uid();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                a = listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let cred = match stream.peer_cred() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: no peer credentials; closed");
                    continue;
                }
            };
            if cred.uid() != uid {
                tracing::warn!(peer_uid = cred.uid(), peer_pid = ?cred.pid(), "control socket: a peer of another user was refused");
                continue;
            }
            let peer = Arc::new(Peer { pid: cred.pid().and_then(|p| u32::try_from(p).ok()) });
            let (engine, runs) = (engine.clone(), runs.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (engine, runs, peer) = (engine.clone(), runs.clone(), peer.clone());
                    async move { Ok::<_, Infallible>(super::handle(&engine, &runs, &peer, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(ControlServer { path, stop })
}

/// Serves the control API for `data_dir` on its socket in the runtime dir and writes
/// `control.json` (the proxy's URL, the socket, this pid). The socket goes when the server is
/// dropped; the caller removes `control.json` at shutdown.
pub async fn publish(engine: Arc<Engine>, runs: Arc<Runs>, data_dir: &Path, proxy_url: &str) -> std::io::Result<ControlServer> {
    let path = crate::datadir::control_socket(data_dir)?;
    let server = serve(engine, runs, path.clone()).await?;
    super::ControlFile { url: proxy_url.to_string(), socket: path, pid: std::process::id() }.write(data_dir)?;
    Ok(server)
}
