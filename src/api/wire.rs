//! Problem documents for the requests hyper refuses before any of our code runs.
//!
//! hyper answers a request it cannot parse (control bytes or NUL in a header or the path, a URI
//! over 64 KiB, headers over its limit) itself, with a bare `400`, `414` or `431` and an empty
//! body, then closes the connection. It has no hook for that answer (`Http1Transaction::on_error`
//! is private), and a proxy in front would be one more moving part, so the listener wraps each
//! connection and rewrites exactly that answer, on its way out, into the problem+json every
//! other error is. Nothing else is touched: every response the router makes carries a
//! Content-Type, and hyper's automatic answers are the only error heads without one.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{ready, Context, Poll},
};

use axum::http::StatusCode;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

/// A TCP listener whose connections answer hyper's parse errors with problem+json.
pub struct ProblemListener(pub TcpListener);

impl axum::serve::Listener for ProblemListener {
    type Io = ProblemIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (
            ProblemIo {
                inner: stream,
                pending: None,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// One connection: reads pass through; hyper's bare error answer is replaced when written.
pub struct ProblemIo {
    inner: TcpStream,
    /// A replacement being written: its bytes, how many are out, and how many bytes of hyper's
    /// buffer to report as written once it is all out.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl ProblemIo {
    /// The TCP stream (to set socket options).
    pub fn tcp(&mut self) -> &mut TcpStream {
        &mut self.inner
    }

    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, out, report)) = &mut self.pending {
            if *out == bytes.len() {
                let report = *report;
                self.pending = None;
                return Poll::Ready(Ok(report));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*out..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *out += n;
        }
        Poll::Ready(Ok(0))
    }
}

/// The status of hyper's own bare error answer in `buf`, if that is what `buf` holds: a
/// complete `400`, `414` or `431` head with `content-length: 0` and no Content-Type.
fn hyper_error_head(buf: &[u8]) -> Option<StatusCode> {
    let status = match buf.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => StatusCode::BAD_REQUEST,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => StatusCode::URI_TOO_LONG,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    if !buf.ends_with(b"\r\n\r\n") || buf.len() > 1024 {
        return None;
    }
    let head = String::from_utf8_lossy(buf).to_ascii_lowercase();
    (head.contains("\r\ncontent-length: 0\r\n") && !head.contains("\r\ncontent-type:"))
        .then_some(status)
}

fn replacement(status: StatusCode) -> Vec<u8> {
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::warn!(status = status.as_u16(), request_id = %request_id, "refused a request HTTP could not parse");
    let mut problem = crate::error::generic_problem(status);
    if status == StatusCode::BAD_REQUEST {
        problem.detail = "the request could not be parsed: its request line or a header holds bytes HTTP does not allow (control characters, NUL)".into();
    }
    problem.request_id = Some(request_id.clone());
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nx-request-id: {request_id}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

impl AsyncRead for ProblemIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProblemIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match hyper_error_head(buf) {
                Some(status) => self.pending = Some((replacement(status), 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.drive(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let first = bufs.iter().find(|b| !b.is_empty());
            match first.and_then(|b| hyper_error_head(b).map(|s| (s, b.len()))) {
                Some((status, len)) => self.pending = Some((replacement(status), 0, len)),
                None => return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            }
        }
        self.drive(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            ready!(self.drive(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            ready!(self.drive(cx))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_bare_error_heads_are_recognised() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 09:00:00 GMT\r\n\r\n";
        assert_eq!(hyper_error_head(bare), Some(StatusCode::BAD_REQUEST));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_head(ours), None);
        assert_eq!(
            hyper_error_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(
            hyper_error_head(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n"),
            Some(StatusCode::URI_TOO_LONG)
        );
    }
}
