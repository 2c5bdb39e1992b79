//! `crashloop --kills 300 [--seed S] [--concurrency C] [--purser PATH] [--min-ms A] [--max-ms B] [--quiet]`:
//! the long crash loop (tests/hardening/crashloop.sh). Prints one line per kill, then the
//! figures as a table; exits 1 if any invariant broke.

#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use purser_crashloop::{run, Config};
use std::path::PathBuf;
use std::time::Duration;

fn parse(args: &[String]) -> Result<Config> {
    let mut cfg = Config::new(default_purser(), 300);
    cfg.verbose = true;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kills" => cfg.kills = value()?.parse().context("--kills")?,
            "--seed" => cfg.seed = value()?.parse().context("--seed")?,
            "--concurrency" => cfg.concurrency = value()?.parse().context("--concurrency")?,
            "--purser" => cfg.purser = PathBuf::from(value()?),
            "--min-ms" => cfg.min_delay = Duration::from_millis(value()?.parse().context("--min-ms")?),
            "--max-ms" => cfg.max_delay = Duration::from_millis(value()?.parse().context("--max-ms")?),
            "--quiet" => cfg.verbose = false,
            "-h" | "--help" => {
                println!("crashloop --kills N [--seed S] [--concurrency C] [--purser PATH] [--min-ms A] [--max-ms B] [--quiet]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if cfg.kills == 0 || cfg.concurrency == 0 || cfg.min_delay > cfg.max_delay {
        bail!("--kills and --concurrency must be > 0 and --min-ms <= --max-ms");
    }
    if !cfg.purser.is_file() {
        bail!("no purser binary at {} (build it: cargo build --release -p purser, or pass --purser)", cfg.purser.display());
    }
    Ok(cfg)
}

/// The `purser` built beside this binary (same target dir and profile).
fn default_purser() -> PathBuf {
    std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("purser"))).unwrap_or_else(|| PathBuf::from("purser"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = parse(&args)?;
    eprintln!("crashloop: {} kills, seed {}, {} agents, purser {}", cfg.kills, cfg.seed, cfg.concurrency, cfg.purser.display());
    let report = run(&cfg).await?;
    println!("{}", report.table());
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}
