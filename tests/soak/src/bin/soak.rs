//! `soak`: runs purser serve under mixed agent traffic for `--minutes`, prints the per-window
//! table, the drift and the audit, writes the whole report as JSON; exits 1 on any problem.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use purser_soak::{report, Config, Report};

#[derive(Parser)]
#[command(about = "One soak of purser serve: mixed traffic, RSS/fd/latency drift, ledger audit")]
struct Args {
    /// How long traffic flows.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Seconds instead of minutes (short runs).
    #[arg(long)]
    seconds: Option<u64>,
    /// Requests per second over all agents.
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// Report window, seconds.
    #[arg(long, default_value_t = 300)]
    window: u64,
    /// Sampling period of RSS and fds, seconds.
    #[arg(long, default_value_t = 10)]
    sample: u64,
    /// After traffic, the daemon's fds must come back to their baseline plus this.
    #[arg(long, default_value_t = 4)]
    fd_slack: u64,
    /// How long to wait for that, seconds.
    #[arg(long, default_value_t = 150)]
    settle: u64,
    /// Leave Base Sepolia on its public RPC (unreachable offline): soak with the RPC down.
    #[arg(long)]
    unreachable_rpc: bool,
    /// The purser binary (default: target/release/purser next to this binary's target dir).
    #[arg(long)]
    purser: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn default_purser() -> PathBuf {
    // This binary lives in <target>/<profile>/soak; purser serve is built beside it.
    std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("purser"))).unwrap_or_else(|| PathBuf::from("target/release/purser"))
}

fn summary(r: &Report) -> String {
    let mut s = String::new();
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    s += &format!("traffic: {:.1} min at {} req/s; approved {} denied {} by the user; {} top-ups\n", r.minutes, r.rate_per_s, r.approved_by_user, r.denied_by_user, r.topups);
    s += &format!("{:<16}{:>8}{:>10}{:>12}{:>6}{:>10}{:>10}{:>10}\n", "kind", "sent", "expected", "unexpected", "shed", "p50 ms", "p99 ms", "max ms");
    for (k, c) in &r.counts {
        let l = &r.overall[k];
        s += &format!("{k:<16}{:>8}{:>10}{:>12}{:>6}{:>10.1}{:>10.1}{:>10.1}\n", c.sent, c.expected, c.unexpected, c.shed, l.p50_ms, l.p99_ms, l.max_ms);
    }
    let (f, l, lo, hi) = r.rss_kb;
    s += &format!(
        "RSS: baseline {} first {} last {} min {} max {} after {}\n",
        r.baseline.map_or("-".into(), |b| mb(b.rss_kb)),
        mb(f),
        mb(l),
        mb(lo),
        mb(hi),
        r.after.map_or("-".into(), |a| mb(a.rss_kb))
    );
    let (f, l, lo, hi) = r.fds;
    s += &format!("fds: baseline {} first {f} last {l} min {lo} max {hi} after {} ({:.0} s after traffic stopped)\n", r.baseline.map_or(0, |b| b.fds), r.after.map_or(0, |a| a.fds), r.fd_settle_s);
    if let Some(d) = &r.drift {
        s += &format!("drift (first window -> last): RSS {:+} kB ({:+.1}%), fds {:+}, p99 ms:", d.rss_growth_kb, d.rss_growth_pct, d.fd_growth);
        for (k, (a, b, c)) in &d.p99_ms {
            s += &format!(" {k} {a:.0}->{b:.0} ({c:+.0})");
        }
        s += &format!("\nafter the first window: RSS slope {:?} kB/min, fd slope {:?}/min\n", d.rss_slope_kb_per_min, d.fd_slope_per_min);
    }
    let a = &r.audit;
    s += &format!(
        "ledger: {} receipts, verify {} ({}); paid {} atomic, payees received {} atomic\n",
        a.receipts_in_ledger,
        if a.verify_ok { "ok" } else { "FAILED" },
        a.verify_output.lines().next().unwrap_or(""),
        a.paid_atomic,
        a.payee_delta_atomic
    );
    s += "outcomes (outcome/reason/decided_by: agents = ledger):\n";
    for (k, n) in &a.ledger {
        s += &format!("  {k}: agents {} ledger {n}\n", a.agents.get(k).copied().unwrap_or(0));
    }
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds.unwrap_or(args.minutes * 60));
    let mut cfg = Config::new(args.purser.unwrap_or_else(default_purser), duration);
    cfg.rate = args.rate;
    cfg.window = Duration::from_secs(args.window.max(1));
    cfg.sample_every = Duration::from_secs(args.sample.max(1));
    cfg.fd_slack = args.fd_slack;
    cfg.unreachable_rpc = args.unreachable_rpc;
    cfg.settle_timeout = Duration::from_secs(args.settle);
    anyhow::ensure!(cfg.purser_bin.exists(), "no purser binary at {} (cargo build --release -p purser, or --purser PATH)", cfg.purser_bin.display());
    println!("soak: {} for {:?} at {} req/s", cfg.purser_bin.display(), duration, cfg.rate);
    let r = purser_soak::run(&cfg, &|line| println!("soak: {line}")).await?;
    println!("\n{}", report::table(&r.windows));
    println!("{}", summary(&r));
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&r)?)?;
        println!("report: {}", path.display());
    }
    if r.passed() {
        println!("soak: PASSED");
        Ok(())
    } else {
        println!("soak: FAILED, {} problems:", r.problems.len());
        for p in r.problems.iter().take(30) {
            println!("  - {p}");
        }
        std::process::exit(1);
    }
}
