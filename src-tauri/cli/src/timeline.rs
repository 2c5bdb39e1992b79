//! `purser receipts search|export|stats|archive|verify-export|verify-archive` and
//! `purser dev seed-receipts`: the receipt timeline on the command line, each a call into
//! `purser_core::search` and a print (human text, or JSON with `--json`).

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use purser_core::ledger::{ChainReport, Ledger};
use purser_core::search::{self, export::Format, SearchError};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub enum TimelineCmd {
    /// Search receipts, newest first: words (host, path, description, intent, grant, payee,
    /// reason, transaction) and filters such as grant:research outcome:refused amount:>0.10
    /// since:2026-11-01 (see the README for the query language).
    Search {
        /// The query ('' for everything).
        #[arg(default_value = "")]
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export the receipts a query matches, oldest first, to CSV or JSON Lines (streamed).
    Export {
        #[arg(default_value = "")]
        query: String,
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: String,
        /// The file to write (`-` for standard output).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Add the hashed body and chain hashes, so the export verifies without Purser's
        /// database (`purser receipts verify-export FILE`).
        #[arg(long)]
        chain: bool,
        #[arg(long)]
        json: bool,
    },
    /// Aggregates of the receipts a query matches: spend and counts per day, week, grant,
    /// host, payee, endpoint, outcome, decider or network (two at most: --by week,grant).
    Stats {
        #[arg(default_value = "")]
        query: String,
        #[arg(long, default_value = "day")]
        by: String,
        /// Keep the first N groups (non-time groups are sorted by spend).
        #[arg(long)]
        top: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Move receipts older than a date to a separate file that stays verifiable; the main
    /// chain then starts from an anchor on the last one moved.
    Archive {
        /// A date (2026-01-01, UTC) or date-time (RFC 3339).
        #[arg(long)]
        before: String,
        /// The archive file (default: receipts-archive.db in the data dir; later runs continue it).
        #[arg(long)]
        to: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Check an export made with --chain: every row hashes to its hash and consecutive rows link.
    VerifyExport {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check archive files (default: every archive this ledger recorded) and their anchors.
    VerifyArchive {
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCmd {
    /// Fill this data dir with N realistic generated receipts (a valid chain), for benchmarks
    /// and demos. Refused when the data dir holds a wallet.
    SeedReceipts(SeedArgs),
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    pub count: u64,
    /// Spread them over this many days, ending now (default: about 5,000 a day).
    #[arg(long)]
    pub days: Option<u32>,
    /// Random seed (the same seed gives the same world of hosts and grants).
    #[arg(long, default_value_t = 402)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

fn coded(e: SearchError) -> anyhow::Error {
    anyhow!("{e} ({})", e.code())
}

/// A progress line on stderr when it is a terminal, redrawn at most ten times a second.
struct Progress {
    what: &'static str,
    tty: bool,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(what: &'static str) -> Progress {
        Progress { what, tty: unsafe { libc::isatty(2) } == 1, start: Instant::now(), last: None }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.tty || (self.last.is_some_and(|l| l.elapsed().as_millis() < 100) && done < total) {
            return;
        }
        self.last = Some(Instant::now());
        let pct = if total == 0 { 100.0 } else { done as f64 * 100.0 / total as f64 };
        let width = 30;
        let filled = ((pct / 100.0) * width as f64) as usize;
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(0.001);
        eprint!("\r{} [{}{}] {done}/{total} {pct:5.1}% {rate:>9.0}/s", self.what, "#".repeat(filled.min(width)), ".".repeat(width - filled.min(width)));
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
    }
}

fn print_chain(label: &str, r: &ChainReport) -> bool {
    match r {
        ChainReport::Intact { count, head } => {
            println!("ok: {label}: {count} receipts, chain intact (head {head})");
            true
        }
        ChainReport::Broken { id, seq, why, checked } => {
            println!("BROKEN: {label}: receipt {id} (#{seq}): {why}; {checked} receipts before it are intact");
            false
        }
    }
}

fn chain_json(r: &ChainReport) -> serde_json::Value {
    match r {
        ChainReport::Intact { count, head } => json!({"ok": true, "count": count, "head": head}),
        ChainReport::Broken { id, seq, why, checked } => json!({"ok": false, "broken_id": id, "seq": seq, "why": why, "checked": checked}),
    }
}

pub fn receipts(dir: &Path, ledger: &Ledger, cmd: TimelineCmd) -> Result<()> {
    let now = chrono::Utc::now();
    match cmd {
        TimelineCmd::Search { query, limit, cursor, json } => {
            let page = search::search(ledger, &query, limit, cursor.as_deref(), now).map_err(coded)?;
            if json {
                return crate::print_json(&page);
            }
            if page.items.is_empty() {
                println!("No receipts match.");
            }
            for it in &page.items {
                let r = &it.receipt;
                let amount = r.amount_usd.as_deref().map(|a| format!("${a}")).unwrap_or_else(|| "-".into());
                let flags = it.flags.names();
                let flags = if flags.is_empty() { String::new() } else { format!("  !{}", flags.join(" !")) };
                println!("{}  {:<11} {:<22} {:>10}  {} {}  [{}]{flags}", r.time.format("%Y-%m-%d %H:%M:%S"), r.outcome.as_str(), r.reason, amount, r.method, r.url, r.id);
            }
            println!("-- {} shown of {} matching", page.items.len(), page.total);
            if let Some(c) = page.next_cursor {
                println!("-- next page: --cursor {c}");
            }
            Ok(())
        }
        TimelineCmd::Export { query, format, output, chain, json } => {
            let format: Format = format.parse().map_err(|e: String| anyhow!(e))?;
            let mut progress = Progress::new("exporting");
            let to_stdout = output.as_os_str() == "-";
            let summary = if to_stdout {
                search::export::export(ledger, &query, format, chain, std::io::stdout().lock(), now, |d, t| progress.update(d, t))
            } else {
                let file = std::fs::File::create(&output).with_context(|| format!("creating {}", output.display()))?;
                let r = search::export::export(ledger, &query, format, chain, file, now, |d, t| progress.update(d, t));
                if r.is_err() {
                    let _ = std::fs::remove_file(&output);
                }
                r
            }
            .map_err(coded)?;
            progress.finish();
            let secs = progress.start.elapsed().as_secs_f64();
            if json {
                return crate::print_json(
                    &json!({"rows": summary.rows, "bytes": summary.bytes, "file": output, "format": if format == Format::Csv { "csv" } else { "jsonl" }, "chain": chain, "seconds": secs}),
                );
            }
            if !to_stdout {
                println!("exported {} receipts ({} bytes) to {} in {:.1} s", summary.rows, summary.bytes, output.display(), secs);
            }
            Ok(())
        }
        TimelineCmd::Stats { query, by, top, json } => {
            let by = search::parse_group_by(&by).map_err(coded)?;
            let s = search::stats(ledger, &query, &by, top, now).map_err(coded)?;
            if json {
                return crate::print_json(&s);
            }
            let key_names = ["day", "week", "grant_label", "host", "payee", "endpoint", "outcome", "decided_by", "network"];
            for g in &s.groups {
                let keys: Vec<String> = key_names.iter().filter_map(|k| g.get(*k).map(|v| v.as_str().unwrap_or("-").to_string())).collect();
                println!(
                    "{:<40} {:>8} receipts  {:>7} paid {:>7} refused {:>6} failed {:>6} not payable   spent ${}",
                    keys.join("  "),
                    g["receipts"],
                    g["paid"],
                    g["refused"],
                    g["failed"],
                    g["not_payable"],
                    g["spend_usd"].as_str().unwrap_or("0")
                );
            }
            let t = &s.total;
            println!("-- total: {} receipts, {} paid, spent ${}", t["receipts"], t["paid"], t["spend_usd"].as_str().unwrap_or("0"));
            Ok(())
        }
        TimelineCmd::Archive { before, to, json } => {
            let cutoff = parse_date(&before)?;
            let file = to.unwrap_or_else(|| dir.join("receipts-archive.db"));
            let rep = ledger.archive_before(cutoff, &file, now).map_err(|e| anyhow!("{e} ({})", e.code()))?;
            if rep.moved > 0 {
                ledger.optimize_search_index()?;
            }
            if json {
                return crate::print_json(&rep);
            }
            match (rep.first_seq, rep.last_seq) {
                (Some(a), Some(b)) => println!("moved {} receipts (#{a}..#{b}) to {}; the ledger's chain now starts after {}", rep.moved, rep.file.display(), rep.anchor_hash.as_deref().unwrap_or("")),
                _ => println!("nothing to archive: no receipt before {before} is left in the ledger"),
            }
            Ok(())
        }
        TimelineCmd::VerifyExport { file, json } => {
            let f = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            match search::export::verify_export(f) {
                Ok(c) if json => crate::print_json(&json!({"ok": true, "rows": c.rows, "links": c.links, "first_seq": c.first_seq, "last_seq": c.last_seq, "head": c.head})),
                Ok(c) => {
                    println!(
                        "ok: {} rows hash to their hashes; {} consecutive links checked (#{}..#{}, head {})",
                        c.rows,
                        c.links,
                        c.first_seq.unwrap_or(0),
                        c.last_seq.unwrap_or(0),
                        c.head.unwrap_or_default()
                    );
                    Ok(())
                }
                Err(e) => {
                    if json {
                        crate::print_json(&json!({"ok": false, "code": e.code(), "why": e.to_string()}))?;
                    } else {
                        println!("BROKEN: {e}");
                    }
                    std::process::exit(2);
                }
            }
        }
        TimelineCmd::VerifyArchive { files, json } => {
            let records = ledger.archives()?;
            let files: Vec<PathBuf> = if files.is_empty() {
                let mut v: Vec<PathBuf> = records.iter().map(|r| r.file.clone()).collect();
                v.dedup();
                v
            } else {
                files
            };
            if files.is_empty() {
                bail!("this ledger has no archives (purser receipts archive --before DATE makes one)");
            }
            let mut ok = true;
            let mut out = vec![];
            for f in &files {
                let report = purser_core::ledger::verify_archive_file(f).map_err(|e| anyhow!("{}: {e}", f.display()))?;
                // The archive must end exactly where the ledger recorded it.
                let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
                let anchor = records.iter().filter(|r| r.file == abs).max_by_key(|r| r.last_seq);
                let anchored = match (&report, anchor) {
                    (ChainReport::Intact { head, .. }, Some(a)) => Some(*head == a.last_hash),
                    _ => None,
                };
                ok &= matches!(report, ChainReport::Intact { .. }) && anchored != Some(false);
                if json {
                    let mut v = chain_json(&report);
                    v["file"] = json!(f);
                    v["matches_ledger_anchor"] = json!(anchored);
                    out.push(v);
                } else {
                    print_chain(&f.display().to_string(), &report);
                    match anchored {
                        Some(true) => println!("    ends at the ledger's anchor #{}", anchor.map(|a| a.last_seq).unwrap_or(0)),
                        Some(false) => println!("    BROKEN: does not end at the ledger's recorded anchor"),
                        None => {}
                    }
                }
            }
            if json {
                crate::print_json(&json!({"ok": ok, "archives": out}))?;
            }
            if !ok {
                std::process::exit(2);
            }
            Ok(())
        }
    }
}

fn parse_date(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)).map_err(|_| anyhow!("--before {s:?} is not a date (2026-01-01) or an RFC 3339 date-time"))
}

pub fn dev(dir: &Path, cmd: DevCmd) -> Result<()> {
    match cmd {
        DevCmd::SeedReceipts(a) => {
            if let Some(wallet) = purser_core::wallet::wallet_file(dir) {
                return Err(coded(SearchError::WalletPresent(wallet.display().to_string())));
            }
            let ledger = crate::ledger(dir)?;
            let opts = search::seed::SeedOptions { count: a.count, days: a.days, seed: a.seed, ..Default::default() };
            let mut progress = Progress::new("seeding");
            let rep = search::seed::seed(&ledger, dir, &opts, chrono::Utc::now(), |d, t| progress.update(d, t)).map_err(coded)?;
            progress.finish();
            let secs = progress.start.elapsed().as_secs_f64();
            if a.json {
                let mut v = serde_json::to_value(&rep)?;
                v["seconds"] = json!(secs);
                return crate::print_json(&v);
            }
            println!("seeded {} receipts ({} grants, {} hosts, {} endpoints) in {:.1} s", rep.receipts, rep.grants, rep.hosts, rep.endpoints, secs);
            Ok(())
        }
    }
}
