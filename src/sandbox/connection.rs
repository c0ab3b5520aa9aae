//! Accepted TCP connections that a handler can sever, which is how the sandbox injects a
//! dropped connection (`Faults::drop_rate`).
//!
//! axum hands each request a [`Severer`] for its connection (as `ConnectInfo`). When the fault
//! injector says "drop", the handler calls [`Severer::sever`] and returns a throw-away response.
//! From then on every read and write on the connection fails, so hyper's attempt to write that
//! response fails before a single byte leaves, hyper abandons the connection, and the socket is
//! closed. The client has sent its request and gets EOF (or a reset) instead of a status line:
//! reqwest reports a transport error ("connection closed before message completed"), exactly
//! what a crashed server or a broken proxy looks like. Nothing panics and no task is aborted.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be severed.
#[derive(Debug)]
pub(crate) struct SeverableListener(TcpListener);

impl SeverableListener {
    pub(crate) fn new(listener: TcpListener) -> Self {
        SeverableListener(listener)
    }
}

impl axum::serve::Listener for SeverableListener {
    type Io = SeverableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Small request/response pairs: do not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let io = SeverableStream {
                        stream,
                        severed: Arc::new(AtomicBool::new(false)),
                    };
                    return (io, addr);
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::debug!(%error, "sandbox: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// One accepted connection.
#[derive(Debug)]
pub(crate) struct SeverableStream {
    stream: TcpStream,
    severed: Arc<AtomicBool>,
}

fn severed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "sandbox: connection dropped (fault injection)",
    )
}

impl SeverableStream {
    fn is_severed(&self) -> bool {
        self.severed.load(Ordering::Acquire)
    }
}

impl AsyncRead for SeverableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_severed() {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SeverableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_severed() {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_severed() {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_severed() {
            return Poll::Ready(Err(severed_error()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The handle a request handler uses to sever its own connection.
#[derive(Clone, Debug)]
pub(crate) struct Severer(Arc<AtomicBool>);

impl Severer {
    /// Makes every further read and write on the connection fail.
    pub(crate) fn sever(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, SeverableListener>> for Severer {
    fn connect_info(stream: IncomingStream<'_, SeverableListener>) -> Self {
        Severer(stream.io().severed.clone())
    }
}
