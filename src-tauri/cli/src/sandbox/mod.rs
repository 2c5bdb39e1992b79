//! Owns the containment half of `purser run`: launching an agent under bubblewrap with Purser's
//! proxy as its only way out, and the two hidden subcommands that serve it.
//!
//! [`run`] builds a sandbox in which the host is read-only, `/tmp` and `/run` are private,
//! Purser's own state and the user's credential stores are hidden, the network is only the
//! sandbox's own loopback, and the first process (`purser __sandbox-init`, PID 1) bridges
//! `127.0.0.1:4020` inside to the run's Unix socket outside. The agent gets a clean environment
//! that points every HTTP client at that bridge with the run's grant token.
//!
//! * [`preflight`]: is bubblewrap there and can it build a user namespace? ([`SandboxError`]).
//! * `plan`: the bwrap arguments and the agent's environment (pure, unit-tested).
//! * `launch`: spawning bwrap, forwarding signals, the exit status.
//! * `init`: the sandbox's PID 1: the bridge, the agent, reaping.
//!
//! Nothing here ever runs an agent uncontained: every failure is an error.
//!
//! Limits: hiding is by path (another mount of the same files stays visible); Unix sockets
//! outside `/run`, `/tmp` and the hidden dirs stay connectable (the network namespace does not
//! cover path sockets); whatever Purser's proxy agrees to reach, the agent reaches.

mod init;
mod launch;
mod plan;
mod preflight;

use clap::{Args, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub use launch::run;
pub use preflight::{preflight, SandboxError};

/// What to run and how to contain it.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Host path of the Unix socket Purser's proxy listens on for this run.
    pub proxy_socket: PathBuf,
    /// The run's grant token (`pgt_...`).
    pub token: String,
    /// Purser's local CA certificate (PEM), for standard proxy mode.
    pub ca_pem: Option<PathBuf>,
    /// The writable working dir.
    pub cwd: PathBuf,
    /// More writable paths.
    pub allow_write: Vec<PathBuf>,
    /// Paths that must not be visible at all, on top of the defaults (Purser's data and config
    /// dirs, `$XDG_RUNTIME_DIR`, the keyrings, `~/.ssh`, `~/.gnupg`, `~/.password-store`).
    pub hide: Vec<PathBuf>,
    /// CMD ARGS...
    pub command: Vec<OsString>,
}

/// The umask the user started `purser` with (main sets 077 for Purser's own files; the agent
/// gets the user's back).
static CALLER_UMASK: AtomicU32 = AtomicU32::new(0o022);

/// Records the umask `purser` was started with (call before changing it).
pub fn remember_umask(mask: libc::mode_t) {
    CALLER_UMASK.store(mask, Ordering::Relaxed);
}

fn caller_umask() -> u32 {
    CALLER_UMASK.load(Ordering::Relaxed)
}

/// The hidden subcommands (never in `--help`).
#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// The sandbox's first process: the 127.0.0.1 → Unix socket bridge, then CMD.
    #[command(name = "__sandbox-init", hide = true)]
    Init(InitArgs),
    /// Runs CMD in the sandbox directly (tests; `purser run` is the real entry point).
    #[command(name = "__sandbox-exec", hide = true)]
    Exec(ExecArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The proxy's Unix socket, as seen inside the sandbox.
    #[arg(long)]
    pub socket: PathBuf,
    /// The TCP port to listen on (127.0.0.1, and ::1 when there is one).
    #[arg(long, default_value_t = plan::PORT)]
    pub port: u16,
    /// An inherited pipe to report `ok` (CMD started) or `err MESSAGE` on.
    #[arg(long)]
    pub ready_fd: Option<i32>,
    /// The umask CMD starts with (octal).
    #[arg(long, value_parser = parse_octal)]
    pub umask: Option<u32>,
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[arg(long)]
    pub socket: PathBuf,
    #[arg(long)]
    pub token: String,
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Default: the current dir.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(long)]
    pub allow_write: Vec<PathBuf>,
    #[arg(long)]
    pub hide: Vec<PathBuf>,
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o777).ok_or_else(|| format!("not an octal umask: {s}"))
}

/// Runs a hidden subcommand; both end the process with the agent's exit status.
pub async fn command(cmd: SandboxCmd) -> anyhow::Result<()> {
    match cmd {
        SandboxCmd::Init(args) => init::main(args).await,
        SandboxCmd::Exec(args) => {
            let cwd = match args.cwd {
                Some(d) => d,
                None => std::env::current_dir()?,
            };
            let spec = SandboxSpec { proxy_socket: args.socket, token: args.token, ca_pem: args.ca, cwd, allow_write: args.allow_write, hide: args.hide, command: args.command };
            preflight().map_err(|e| coded(e.into()))?;
            let code = run(&spec).await.map_err(coded)?;
            std::process::exit(code)
        }
    }
}

/// A sandbox error as the CLI prints it: the message, then its code.
pub fn coded(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<SandboxError>() {
        Some(s) => anyhow::anyhow!("{s} ({})", s.code()),
        None => e,
    }
}
