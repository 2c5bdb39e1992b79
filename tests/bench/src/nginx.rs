//! Owns the nginx baseline: finds the nginx binary, writes a minimal reverse-proxy config in a
//! temp dir (`daemon off`, 127.0.0.1:free port, `proxy_pass` to the bench upstream through a
//! keepalive pool), starts it as the bench's own child, and stops it (SIGQUIT, then SIGKILL).

use anyhow::{anyhow, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get nginx when it is missing.
pub const INSTALL_HINT: &str = "nginx is not installed: `apt-get install -y nginx-light` (or `apt-get install -y nginx`), then run the bench again";

/// A running nginx, stopped on drop.
pub struct Nginx {
    pub addr: SocketAddr,
    pub version: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// The nginx binary: `$PURSER_BENCH_NGINX`, then `nginx` on PATH, then the Debian location.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PURSER_BENCH_NGINX") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from)).map(|d| d.join("nginx")).find(|p| p.is_file())
}

/// The config: one worker (the hop is measured with one sequential connection), no logs, an
/// upstream keepalive pool so nginx reuses its connection to the upstream as Purser does.
fn config(dir: &Path, port: u16, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream bench_upstream {{
        server {upstream};
        keepalive 32;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}
}}
"#
    )
}

impl Nginx {
    /// Starts nginx in front of `upstream` and waits (up to 10 s) until it answers.
    pub async fn start(bin: &Path, upstream: SocketAddr) -> Result<Nginx> {
        let version = Command::new(bin).arg("-v").output().map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string()).unwrap_or_default();
        let dir = tempfile::Builder::new().prefix("purser-bench-nginx-").tempdir()?;
        let port = crate::net::free_port()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, upstream))?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut n = Nginx { addr: SocketAddr::from(([127, 0, 0, 1], port)), version, child: Some(child), dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(anyhow!("nginx exited ({st}) at startup: {}", n.logs()));
            }
            if crate::net::wait_answering(n.addr, "/", Duration::from_millis(200)).await.is_ok() {
                return Ok(n);
            }
            if Instant::now() > deadline {
                return Err(anyhow!("nginx did not answer on {} within 10 s: {}", n.addr, n.logs()));
            }
        }
    }

    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log")).trim().chars().take(2000).collect()
    }

    /// Stops nginx: SIGQUIT (graceful, the master stops its workers), SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) on the pid of our own child, which we have not waited for yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
