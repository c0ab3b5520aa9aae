//! The async side of the command line: the one tokio runtime of a run, the guard that ends a
//! connection (or a served sandbox) on every exit path, and the shutdown signal.
//!
//! Commands are synchronous functions that `block_on` this runtime. Nothing here decides
//! what a command does; it only makes sure that what a command opens is closed.

use std::cell::OnceCell;
use std::io;
use std::ops::Deref;

use crate::error::Error;

/// The one tokio runtime of a run. It is built here only, the first time a command asks for
/// it (`validate` and `schema` never do), and lives until the command has returned.
pub(crate) struct Runtime {
    cell: OnceCell<tokio::runtime::Runtime>,
    /// Build it on the calling thread only ([`Runtime::lazy_one_thread`]).
    one_thread: bool,
}

impl Runtime {
    /// A runtime not built yet.
    pub(crate) fn lazy() -> Runtime {
        Runtime {
            cell: OnceCell::new(),
            one_thread: false,
        }
    }

    /// A runtime not built yet that will run everything on the thread that blocks on it.
    /// `export` uses one: the snapshot it reads is most of its memory, and what worker
    /// threads allocate lands in heaps of their own (glibc's arenas) that the conversion,
    /// on the main thread, cannot reuse once it frees the JSON (about 40 MiB at 100,000
    /// users).
    pub(crate) fn lazy_one_thread() -> Runtime {
        Runtime {
            cell: OnceCell::new(),
            one_thread: true,
        }
    }

    /// The runtime, built on first use (multi-threaded unless made with
    /// [`Runtime::lazy_one_thread`]; I/O and time enabled).
    pub(crate) fn get(&self) -> io::Result<&tokio::runtime::Runtime> {
        if let Some(runtime) = self.cell.get() {
            return Ok(runtime);
        }
        let built = if self.one_thread {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
        };
        Ok(self.cell.get_or_init(|| built))
    }
}

/// Something a command opens and must end before it returns: a connection to the target (an
/// embedded sandbox saves its state when closed) or a served sandbox.
pub(crate) trait Closes: Sized {
    /// Ends it, reporting what went wrong.
    fn close(self) -> impl Future<Output = Result<(), Error>>;
}

impl Closes for crate::target::Connection {
    async fn close(self) -> Result<(), Error> {
        crate::target::Connection::close(self)
            .await
            .map_err(Error::from)
    }
}

impl Closes for crate::sandbox::RunningSandbox {
    async fn close(self) -> Result<(), Error> {
        self.shutdown()
            .await
            .map_err(|e| Error::Sandbox(crate::error::with_causes(&e)))
    }
}

/// Holds an open [`Closes`] value and ends it exactly once: [`Guard::close`] on the way out
/// of a command that went well (its error is the command's), `Drop` on every other exit path
/// (its error is dropped: the command already has one to report). Must be dropped outside
/// the runtime, as commands are.
pub(crate) struct Guard<'r, T: Closes> {
    runtime: &'r tokio::runtime::Runtime,
    open: Option<T>,
}

impl<'r, T: Closes> Guard<'r, T> {
    /// Guards `open`, to be ended on `runtime`.
    pub(crate) fn new(runtime: &'r tokio::runtime::Runtime, open: T) -> Self {
        Guard {
            runtime,
            open: Some(open),
        }
    }

    /// Ends the guarded value and reports how that went.
    pub(crate) fn close(mut self) -> Result<(), Error> {
        match self.open.take() {
            Some(open) => self.runtime.block_on(open.close()),
            None => Ok(()),
        }
    }
}

impl<T: Closes> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // `close` takes the guard by value, so no one can reach it once the value is gone.
        let Some(open) = &self.open else {
            unreachable!("a closed guard cannot be reached")
        };
        open
    }
}

impl<T: Closes> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = self.runtime.block_on(open.close());
        }
    }
}

/// A connection to the target, closed by its guard.
pub(crate) type Connected<'r> = Guard<'r, crate::target::Connection>;

/// Connects to the target `config` (or `overrides`) names, on `runtime`, behind a guard.
pub(crate) fn connect<'r>(
    runtime: &'r tokio::runtime::Runtime,
    config: &crate::model::Config,
    dir: &std::path::Path,
    overrides: &crate::target::Overrides<'_>,
) -> Result<Connected<'r>, Error> {
    let connection = runtime.block_on(crate::target::connect(config, dir, overrides))?;
    Ok(Guard::new(runtime, connection))
}

/// SIGTERM or SIGINT (Ctrl-C), listened for from the moment it is armed, so a signal sent
/// between arming and waiting is not lost.
pub(crate) struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers; must run inside a tokio runtime.
    pub(crate) fn arm() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Resolves on the next signal; can be awaited again for the one after.
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// Resolves on the first signal.
    pub(crate) async fn received(mut self) {
        self.next().await;
    }
}
