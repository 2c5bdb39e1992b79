//! Owns `purser demo`'s command line: its flags, Ctrl-C/SIGTERM as the stop signal, and the
//! lines on stdout. The demo itself is the `purser-demo` library (shared with the desktop app).

use purser_demo::{AutoAnswer, Options};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// How `--auto-answer` answers each prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AutoAnswerArg {
    /// Approve, and let the grant pay this host up to that price for 10 minutes without asking.
    Approve,
    /// Deny.
    Deny,
}

impl From<AutoAnswerArg> for AutoAnswer {
    fn from(a: AutoAnswerArg) -> AutoAnswer {
        match a {
            AutoAnswerArg::Approve => AutoAnswer::Approve,
            AutoAnswerArg::Deny => AutoAnswer::Deny,
        }
    }
}

/// `purser demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Answer every prompt without a person (after a short visible delay); without it, the
    /// prompts are real desktop notifications and `purser approvals` commands.
    #[arg(long, value_enum)]
    pub auto_answer: Option<AutoAnswerArg>,
    /// The demo's own data dir (default: `<data dir>/demo`). Wiped at start; it must be empty,
    /// missing, or a previous demo's (it holds a DEMO file).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where `peers.mjs` is (default: the source tree this binary was built from).
    #[arg(long, env = "PURSER_PEERS_DIR", value_name = "DIR")]
    pub peers_dir: Option<PathBuf>,
    /// Keep the chain, paywall and proxy running after the agent is done, until Ctrl-C/SIGTERM.
    #[arg(long)]
    pub keep_running: bool,
    /// Raise no desktop notifications (prompts still wait for `purser approvals`).
    #[arg(long)]
    pub no_notify: bool,
    /// Print the summary as JSON after the lines.
    #[arg(long)]
    pub json: bool,
}

/// `purser demo`: runs the demo with the lines on stdout and Ctrl-C/SIGTERM as the stop signal.
pub async fn command(data_dir: &Path, a: DemoArgs) -> anyhow::Result<()> {
    let opts = Options {
        dir: a.dir.clone().unwrap_or_else(|| data_dir.join("demo")),
        real_data_dir: data_dir.to_path_buf(),
        peers_dir: a.peers_dir.clone(),
        auto_answer: a.auto_answer.map(AutoAnswer::from),
        answer_delay: Duration::from_millis(800),
        notify: !a.no_notify,
        keep_running: a.keep_running,
    };
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signals = tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    let out = purser_demo::run(&opts, |l| println!("{l}"), rx).await;
    signals.abort();
    match out {
        Ok(summary) => {
            if a.json {
                crate::print_json(&summary)?;
            }
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("{e} ({})", e.code())),
    }
}
