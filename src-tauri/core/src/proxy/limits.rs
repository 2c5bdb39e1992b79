//! Owns the limits on agent connections to the listener, so that hostile or broken clients
//! (slowloris heads, thousands of idle sockets, a full file-descriptor table) cost bounded memory
//! and never stop other agents from being served:
//!
//! | limit | default | override |
//! |---|---|---|
//! | a new connection's first byte, then each request head (line and headers), must arrive within it; an idle keep-alive connection is closed after it too | [`HEADER_READ_TIMEOUT`] 30 s | `PURSER_HEADER_READ_TIMEOUT_SECS` |
//! | an agent's request body must arrive whole within (else `408 request_body_timeout`) | [`REQUEST_BODY_TIMEOUT`] 60 s | `PURSER_REQUEST_BODY_TIMEOUT_SECS` |
//! | agent connections open at once; beyond it a new one is closed at once (logged once every 10 s, with the count) | [`MAX_CONNECTIONS`] 8,192 | `PURSER_MAX_CONNECTIONS` |
//! | request head size (hyper answers 431 beyond it) | [`MAX_HEADER_BYTES`] 64 KiB | — |
//! | pause after a failed `accept` (e.g. `EMFILE`) instead of spinning | [`ACCEPT_BACKOFF`] 50 ms | — |
//!
//! Agent request bodies are capped by `proxy::MAX_REQUEST_BODY`; upstream limits live in
//! `upstream::Limits`; tunnels (which keep their connection's [`Slot`]) are capped in `tunnels`.

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default time a client has to send a whole request head (also the keep-alive idle timeout).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an agent has to send its whole request body (Purser buffers it, at most
/// `proxy::MAX_REQUEST_BODY`, to be able to send it twice).
pub const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default most agent connections served at once.
pub const MAX_CONNECTIONS: usize = 8192;
/// Largest request head read.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Pause after a failed accept (a full descriptor table fails every accept until one closes).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The connection limits of one listener.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub max_connections: usize,
    slots: Arc<Semaphore>,
    /// Connections refused since the last warning, and when that was: a flood of connections
    /// over the limit logs one line every [`REFUSED_WARN_EVERY`], with the count, not one each.
    refused: Arc<std::sync::Mutex<(u64, Option<std::time::Instant>)>>,
}

/// A connection's slot, shared by the connection and whatever outlives its HTTP part: a tunnel
/// (CONNECT, or an upgrade such as WebSocket) takes a clone, so the slot is given back only when
/// the connection and all its tunnels are closed. `serve` puts it in each request's extensions.
#[derive(Clone, Debug)]
pub struct Slot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

impl Slot {
    pub fn new(permit: OwnedSemaphorePermit) -> Self {
        Slot(Arc::new(permit))
    }
}

/// At most one "too many connections" warning this often.
pub const REFUSED_WARN_EVERY: Duration = Duration::from_secs(10);

impl ConnLimits {
    pub fn new(header_read: Duration, max_connections: usize) -> Self {
        let max_connections = max_connections.max(1);
        ConnLimits { header_read, max_connections, slots: Arc::new(Semaphore::new(max_connections)), refused: Arc::default() }
    }

    /// As the process's configuration says (`config`: the defaults, or their variables).
    pub fn from_env() -> Self {
        let c = crate::config::Config::get();
        Self::new(c.header_read, c.max_connections)
    }

    /// A slot for one more connection (held for its life), or `None` when all are taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            if let Some(n) = self.count_refused(std::time::Instant::now()) {
                tracing::warn!(max = self.max_connections, refused = n, "too many agent connections; new ones are closed at once");
            }
        }
        permit
    }

    /// Counts one refused connection; returns how many to report when a warning is due.
    fn count_refused(&self, now: std::time::Instant) -> Option<u64> {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        r.0 += 1;
        if r.1.is_some_and(|last| now.duration_since(last) < REFUSED_WARN_EVERY) {
            return None;
        }
        r.1 = Some(now);
        Some(std::mem::take(&mut r.0))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max_connections - self.slots.available_permits()
    }

    /// An HTTP/1.1 server builder with these limits (and keep-alive). The HTTP/2 cleartext
    /// preface is refused by [`FirstByte`] (this builder would otherwise answer it).
    pub fn http1_builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new()).http1_only();
        builder.http1().keep_alive(true).timer(TokioTimer::new()).header_read_timeout(self.header_read).max_buf_size(MAX_HEADER_BYTES.max(8192));
        builder
    }
}

/// [`REQUEST_BODY_TIMEOUT`], or `PURSER_REQUEST_BODY_TIMEOUT_SECS` (see `config`).
pub fn request_body_timeout() -> Duration {
    crate::config::Config::get().request_body
}

/// A connection that must send its first byte within a deadline, or reads fail with
/// `TimedOut` (hyper then drops it). hyper's own head timeout starts only once a first byte has
/// arrived (the server first sniffs the HTTP version without a timeout), so a socket that never
/// says anything would otherwise be held forever.
///
/// It also refuses HTTP/2 cleartext: a connection whose first bytes are the HTTP/2 preface
/// (`PRI * HTTP/2.0`) is ended with an error before the server can take it for one.
pub struct FirstByte<T> {
    inner: T,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// How many bytes of the HTTP/2 preface the connection has sent so far (`None`: it is not
    /// HTTP/2, stop looking).
    h2_sniff: Option<usize>,
}

/// The part of the HTTP/2 connection preface that no HTTP/1 request starts with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl<T> FirstByte<T> {
    pub fn new(inner: T, within: Duration) -> Self {
        FirstByte { inner, deadline: Some(Box::pin(tokio::time::sleep(within))), h2_sniff: None }
    }

    /// Also refuses the HTTP/2 cleartext preface (the listener, which serves HTTP/1.1 only;
    /// inside a TLS tunnel HTTP/2 is chosen by ALPN and welcome).
    pub fn refusing_h2(mut self) -> Self {
        self.h2_sniff = Some(0);
        self
    }
}

/// Follows the preface over `new` bytes: `Some(n)` still matching `n` bytes, `None` not HTTP/2.
fn sniff_h2(matched: usize, new: &[u8]) -> Option<usize> {
    let want = &H2_PREFACE[matched..];
    let n = want.len().min(new.len());
    (new[..n] == want[..n]).then_some(matched + n)
}

impl<T: AsyncRead + Unpin> AsyncRead for FirstByte<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.deadline = None;
                if let (Ok(()), Some(matched)) = (&r, this.h2_sniff) {
                    this.h2_sniff = sniff_h2(matched, &buf.filled()[before..]).filter(|m| *m < H2_PREFACE.len());
                    if this.h2_sniff.is_none() && sniff_h2(matched, &buf.filled()[before..]) == Some(H2_PREFACE.len()) {
                        return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "HTTP/2 cleartext is not served (HTTP/1.1 only)")));
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no request from this connection in time"))),
                _ => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FirstByte<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_returned() {
        let l = ConnLimits::new(Duration::from_secs(1), 2);
        let a = l.admit().expect("first");
        let _b = l.admit().expect("second");
        assert!(l.admit().is_none(), "a third connection is refused");
        assert_eq!(l.open(), 2);
        drop(a);
        assert!(l.admit().is_some(), "a closed connection frees its slot");
    }

    #[test]
    fn a_slot_is_returned_only_when_its_last_holder_lets_go() {
        let l = ConnLimits::new(Duration::from_secs(1), 1);
        let conn = Slot::new(l.admit().expect("first"));
        let tunnel = conn.clone();
        drop(conn);
        assert!(l.admit().is_none(), "the tunnel still holds the connection's slot");
        drop(tunnel);
        assert!(l.admit().is_some(), "closing the tunnel frees it");
    }

    #[test]
    fn refused_connections_warn_once_per_period_with_a_count() {
        let l = ConnLimits::new(Duration::from_secs(1), 1);
        let t0 = std::time::Instant::now();
        assert_eq!(l.count_refused(t0), Some(1), "the first refusal is reported at once");
        for i in 1..500 {
            assert_eq!(l.count_refused(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(l.count_refused(t0 + REFUSED_WARN_EVERY), Some(500), "then one line with the count");
        assert_eq!(l.count_refused(t0 + REFUSED_WARN_EVERY + Duration::from_secs(1)), None);
    }

    #[tokio::test]
    async fn a_silent_connection_times_out_and_a_talking_one_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(64);
        let mut silent = FirstByte::new(server, Duration::from_millis(50));
        let err = silent.read(&mut [0u8; 8]).await.expect_err("no byte within the deadline");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        drop(client);

        let (mut client, server) = tokio::io::duplex(64);
        let mut talking = FirstByte::new(server, Duration::from_millis(50));
        client.write_all(b"G").await.unwrap();
        assert_eq!(talking.read(&mut [0u8; 8]).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        client.write_all(b"ET").await.unwrap();
        assert_eq!(talking.read(&mut [0u8; 8]).await.unwrap(), 2, "after the first byte the deadline is gone");
    }

    #[tokio::test]
    async fn the_http2_cleartext_preface_is_refused_however_it_arrives() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for chunks in [vec![&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..]], vec![b"PR", b"I * HT", b"TP/2.0\r\n"]] {
            let (mut client, server) = tokio::io::duplex(256);
            let mut s = FirstByte::new(server, Duration::from_secs(5)).refusing_h2();
            for c in chunks {
                client.write_all(c).await.unwrap();
            }
            let mut buf = vec![0u8; 64];
            let mut err = None;
            for _ in 0..8 {
                match s.read(&mut buf).await {
                    Ok(_) => continue,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::InvalidData));
        }
        // HTTP/1.1 (even a PRI-looking one) passes, and so does HTTP/2 where it was not refused.
        for (req, refusing) in [(&b"GET / HTTP/1.1\r\n\r\n"[..], true), (b"PRI * HTTP/1.1\r\n\r\n", true), (b"PRI * HTTP/2.0\r\n\r\n", false)] {
            let (mut client, server) = tokio::io::duplex(256);
            let s = FirstByte::new(server, Duration::from_secs(5));
            let mut s = if refusing { s.refusing_h2() } else { s };
            client.write_all(req).await.unwrap();
            drop(client);
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, req);
        }
    }
}
