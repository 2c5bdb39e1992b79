//! The receipt timeline benchmark. Fills a ledger with generated receipts (`purser dev
//! seed-receipts`' generator; 1,000,000 by default), then measures: database size per receipt;
//! p50/p99 of first-page searches (full text + filters, totals included); aggregates; export of
//! every row to CSV and JSONL (rows/s and the exporting process's peak RSS, next to a 10%
//! export to show memory stays flat); and `verify` over every row. Prints figures; never a test.
//!
//! ```sh
//! cargo run --release -p purser-timeline-bench -- [--receipts N] [--dir DIR] [--runs R]
//! ```
//! With `--dir`, a ledger already holding N receipts is reused (no re-seeding).

use anyhow::{bail, Context, Result};
use chrono::{Duration, Utc};
use purser_core::ledger::{ChainReport, GroupBy, Ledger};
use purser_core::search::{self, export::Format, seed};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Opts {
    receipts: u64,
    dir: Option<PathBuf>,
    runs: usize,
    /// Create the ledger file with this SQLite page size (an experiment; default: Purser's).
    page_size: Option<u32>,
    /// Merge the FTS index into one segment before measuring (an experiment).
    optimize: bool,
    /// Stop after the searches and aggregates (no export, no verify).
    search_only: bool,
    /// Time these searches instead of the standard shapes (`--query Q`, repeatable).
    queries: Vec<String>,
}

fn parse_args() -> Result<(Opts, Vec<String>)> {
    let mut o = Opts { receipts: 1_000_000, dir: None, runs: 40, page_size: None, optimize: false, search_only: false, queries: vec![] };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a.starts_with("--child-")) {
        return Ok((o, args));
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--receipts" => o.receipts = val()?.replace('_', "").parse()?,
            "--dir" => o.dir = Some(PathBuf::from(val()?)),
            "--runs" => o.runs = val()?.parse()?,
            "--page-size" => o.page_size = Some(val()?.parse()?),
            "--optimize-fts" => o.optimize = true,
            "--search-only" => o.search_only = true,
            "--query" => o.queries.push(val()?),
            "-h" | "--help" => {
                println!("purser-timeline-bench [--receipts N] [--dir DIR] [--runs R] [--page-size BYTES] [--optimize-fts] [--search-only] [--query Q]...");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok((o, vec![]))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The peak resident set of this process's own memory (`VmHWM`, KiB). `getrusage`'s `ru_maxrss`
/// would not do: a child spawned with vfork inherits the parent's high-water mark at exec (after
/// an in-process seeding it reported the seeder's 67 MiB for every export).
fn own_peak_rss_kib() -> Result<i64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}

/// Runs the child half of a measurement in its own process, so its peak RSS is its own; prints
/// its figures, then that peak.
fn child(args: &[String]) -> Result<()> {
    let dir = Path::new(&args[1]);
    let ledger = Ledger::open_in(dir)?;
    let t = Instant::now();
    match args[0].as_str() {
        "--child-export" => {
            let format: Format = args[2].parse().map_err(anyhow::Error::msg)?;
            let out = std::fs::File::create(&args[4])?;
            let s = search::export::export(&ledger, &args[3], format, false, out, Utc::now(), |_, _| {})?;
            println!("{} {} {}", s.rows, s.bytes, t.elapsed().as_secs_f64());
        }
        "--child-verify" => match ledger.verify_chain()? {
            ChainReport::Intact { count, .. } => println!("{count} 0 {}", t.elapsed().as_secs_f64()),
            ChainReport::Broken { id, why, .. } => bail!("chain broken at {id}: {why}"),
        },
        other => bail!("unknown child {other}"),
    }
    println!("{}", own_peak_rss_kib()?);
    Ok(())
}

/// Spawns this binary as a child; returns its stdout words and its own peak RSS (KiB, the last
/// word it prints).
fn measure_child(args: &[&str]) -> Result<(Vec<String>, i64)> {
    let exe = std::env::current_exe()?;
    let child = std::process::Command::new(exe).args(args).stdout(std::process::Stdio::piped()).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.context("child stdout")?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text)?;
    let mut status = 0;
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("child {args:?} failed (status {status})");
    }
    let mut words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let rss = words.pop().context("child printed nothing")?.parse()?;
    Ok((words, rss))
}

fn main() -> Result<()> {
    let (o, child_args) = parse_args()?;
    if !child_args.is_empty() {
        return child(&child_args);
    }
    let tmp;
    let dir = match &o.dir {
        Some(d) => d.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("purser-timeline-bench-{}", std::process::id()));
            tmp.clone()
        }
    };
    let cleanup = o.dir.is_none();
    let result = run(&o, &dir);
    if cleanup {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run(o: &Opts, dir: &Path) -> Result<()> {
    let n = o.receipts;
    if let Some(ps) = o.page_size {
        std::fs::create_dir_all(dir)?;
        let c = rusqlite::Connection::open(dir.join(purser_core::ledger::DB_FILE))?;
        c.pragma_update(None, "page_size", ps)?;
        c.execute_batch("VACUUM")?;
        println!("(ledger file created with page_size {ps})");
    }
    let ledger = Ledger::open_in(dir)?;
    let now = Utc::now();
    // The first search indexes whatever is pending (a ledger from an older schema is reindexed).
    let t = Instant::now();
    let have = search::count(&ledger, "", now)?;
    let first = t.elapsed();
    println!("purser-timeline-bench: {n} receipts in {}", dir.display());
    if first.as_secs_f64() > 1.0 {
        println!("first search (pending index backfill of {have} receipts): {:.1} s", first.as_secs_f64());
    }
    if have == 0 {
        let t = Instant::now();
        let mut last = Instant::now();
        let rep = seed::seed(&ledger, dir, &seed::SeedOptions { count: n, ..Default::default() }, now, |d, total| {
            if last.elapsed().as_secs() >= 10 {
                eprintln!("  seeding: {d}/{total}");
                last = Instant::now();
            }
        })?;
        let secs = t.elapsed().as_secs_f64();
        println!("seed: {} receipts ({} grants, {} hosts, {} endpoints) in {secs:.1} s ({:.0} receipts/s)", rep.receipts, rep.grants, rep.hosts, rep.endpoints, rep.receipts as f64 / secs);
    } else if have != n {
        bail!("{} already holds {have} receipts, not {n}", dir.display());
    } else {
        println!("seed: reusing the {have} receipts already there");
    }

    if o.optimize {
        let t = Instant::now();
        ledger.with(|c| Ok(c.execute_batch("INSERT INTO receipt_fts(receipt_fts) VALUES ('optimize')")?))?;
        println!("fts optimize: {:.1} s", t.elapsed().as_secs_f64());
    }
    // Size: after a WAL checkpoint, the whole file over the receipt count, with a breakdown.
    let db = dir.join(purser_core::ledger::DB_FILE);
    ledger.with(|c| Ok(c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?))?;
    let size = std::fs::metadata(&db)?.len();
    println!("\nsize: {:.1} MiB on disk = {:.0} bytes per receipt", size as f64 / 1048576.0, size as f64 / n as f64);
    let (text_n, text_len, blob_n, blob_len, cols): (i64, Option<f64>, i64, Option<f64>, f64) = ledger.with(|c| {
        Ok(c.query_row(
            "SELECT sum(typeof(body) = 'text'), avg(CASE WHEN typeof(body) = 'text' THEN length(body) END), sum(typeof(body) = 'blob'), avg(CASE WHEN typeof(body) = 'blob' THEN length(body) END),
                    avg(length(id) + length(time) + coalesce(length(grant_id), 0) + length(outcome) + length(reason) + coalesce(length(amount_atomic), 0) + length(prev_hash) + length(hash)) FROM receipts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?)
    })?;
    let (dicts, dict_bytes): (i64, i64) = ledger.with(|c| Ok(c.query_row("SELECT count(*), coalesce(sum(length(dict)), 0) FROM body_dicts", [], |r| Ok((r.get(0)?, r.get(1)?)))?))?;
    println!(
        "  receipt bodies (the hashed JSON): {text_n} stored as text, {:.0} bytes each; {blob_n} compressed, {:.0} bytes each ({dicts} dictionaries, {dict_bytes} bytes); indexed columns: {cols:.0} bytes/receipt",
        text_len.unwrap_or(0.0),
        blob_len.unwrap_or(0.0)
    );
    let breakdown: Result<Vec<(String, i64)>> = ledger
        .with(|c| {
            let mut st = c.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .map_err(anyhow::Error::from);
    match breakdown {
        Ok(rows) => {
            let (mut search_idx, mut chain) = (0i64, 0i64);
            for (name, bytes) in &rows {
                if name.starts_with("receipt_") || name.starts_with("price_") || name.starts_with("payee_") || name.starts_with("sqlite_autoindex_receipt_dims") {
                    search_idx += bytes;
                } else {
                    chain += bytes;
                }
                if *bytes as f64 / n as f64 >= 1.0 {
                    println!("    {name:<40} {:>7.1} bytes/receipt", *bytes as f64 / n as f64);
                }
            }
            println!(
                "  the search index (facts, FTS, rollup, days, price memory): {:.0} bytes/receipt; receipts + their indexes + grants: {:.0} bytes/receipt",
                search_idx as f64 / n as f64,
                chain as f64 / n as f64
            );
        }
        Err(e) => println!("  (no per-table breakdown: {e})"),
    }

    // Search: first pages (limit 50, total included), fresh calls, several query shapes.
    let since30 = (now - Duration::days(30)).format("%Y-%m-%d").to_string();
    let since7 = (now - Duration::days(7)).format("%Y-%m-%d").to_string();
    // Values that match something in this ledger: the grant with the most weather receipts in
    // the last 30 days, and the transaction hash of the newest payment.
    let busiest = search::stats(&ledger, &format!("weather since:{since30}"), &[GroupBy::Grant], Some(1), now)?;
    let grant = busiest.groups.first().and_then(|g| g["grant_label"].as_str()).unwrap_or("none").to_string();
    let newest_paid = search::search(&ledger, "outcome:paid", 1, None, now)?;
    let tx = newest_paid.items.first().and_then(|i| i.receipt.tx.clone()).unwrap_or_else(|| "none".into());
    let queries: Vec<(&str, String)> = vec![
        ("word", "forecast".into()),
        ("word + outcome", "forecast outcome:paid".into()),
        ("word + grant + date", format!("weather grant:{grant} since:{since30}")),
        ("issue example", format!("weather grant:{grant} outcome:refused amount:>0.10 since:{since30}")),
        ("two words + decider", "paris weather by:auto".into()),
        ("prefix + host wildcard", "transl* host:*.com".into()),
        ("rare word (a tx hash)", tx),
        ("word + amount range", "search amount:0.01..0.05".into()),
        ("word + amount, off grid", "forecast amount:0.013..0.07".into()),
        ("non-Latin word + amount", "डेटा amount:>0.02".into()),
        ("filter + amount range", format!("grant:{grant} amount:0.01..0.05")),
        ("word - word", "news -headlines".into()),
        ("filter only: outcome", "outcome:refused".into()),
        ("filter only: flags", "flag:any".into()),
        ("filter only: amount", "amount:>0.10".into()),
        ("filters + last 7 days", format!("outcome:paid,failed since:{since7}")),
        ("everything", "".into()),
    ];
    let queries: Vec<(&str, String)> = if o.queries.is_empty() { queries } else { o.queries.iter().map(|q| ("--query", q.clone())).collect() };
    println!("\nsearch: first page (limit 50, with total), {} runs each", o.runs);
    println!("  {:<28} {:>9} {:>9} {:>9}  query", "", "total", "p50 ms", "p99 ms");
    let mut all = vec![];
    for (name, q) in &queries {
        let mut times = vec![];
        let mut total = 0;
        for _ in 0..o.runs {
            let t = Instant::now();
            let page = search::search(&ledger, q, 50, None, now)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = page.total;
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!("  {name:<28} {total:>9} {:>9.2} {:>9.2}  {q:?}", pct(&times, 0.5), pct(&times, 0.99));
        all.extend(times);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    println!("  {:<28} {:>9} {:>9.2} {:>9.2}  (all {} searches)", "ALL", "", pct(&all, 0.5), pct(&all, 0.99), all.len());
    // A next page, for completeness.
    let first = search::search(&ledger, "forecast outcome:paid", 50, None, now)?;
    if let Some(c) = first.next_cursor {
        let mut times = vec![];
        for _ in 0..o.runs {
            let t = Instant::now();
            search::search(&ledger, "forecast outcome:paid", 50, Some(&c), now)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!("  {:<28} {:>9} {:>9.2} {:>9.2}  (second page by cursor)", "next page", "", pct(&times, 0.5), pct(&times, 0.99));
    }

    // Aggregates.
    println!("\naggregates (median of 5 runs)");
    let aggs: Vec<(&str, String, Vec<GroupBy>, Option<usize>)> = vec![
        ("spend per day, all rows", "".into(), vec![GroupBy::Day], None),
        ("date range per day per grant", format!("since:{since30}"), vec![GroupBy::Day, GroupBy::Grant], None),
        ("spend per week per grant", "".into(), vec![GroupBy::Week, GroupBy::Grant], None),
        ("top 10 endpoints by spend", "outcome:paid".into(), vec![GroupBy::Endpoint], Some(10)),
        ("counts by outcome", "".into(), vec![GroupBy::Outcome], None),
        ("per payee, date range", format!("since:{since30}"), vec![GroupBy::Payee], None),
        ("text-filtered per day", "forecast".into(), vec![GroupBy::Day], None),
        ("amount-filtered per host", "amount:>0.10".into(), vec![GroupBy::Host], None),
    ];
    for (name, q, by, top) in &aggs {
        let mut times = vec![];
        let mut info = (0, 0usize, "");
        for _ in 0..5 {
            let t = Instant::now();
            let s = search::stats(&ledger, q, by, *top, now)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            info = (s.total["receipts"].as_u64().unwrap_or(0), s.groups.len(), s.source);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!("  {name:<34} {:>9.1} ms  ({} receipts, {} groups, from {})  {q:?}", pct(&times, 0.5), info.0, info.1, info.2);
    }
    drop(ledger);
    if o.search_only {
        return Ok(());
    }

    // Export and verify, each in its own process (peak RSS is that process's own).
    println!("\nexport (own process; rows/s and peak RSS)");
    let dir_s = dir.to_string_lossy().to_string();
    let out = dir.join("bench-export.out");
    let out_s = out.to_string_lossy().to_string();
    let recent = format!("since:{}", (now - Duration::days((n / 5000 / 10).max(1) as i64)).format("%Y-%m-%d"));
    let exports = [
        ("csv, every row", "csv", "", out_s.as_str()),
        ("jsonl, every row", "jsonl", "", out_s.as_str()),
        ("csv -> /dev/null", "csv", "", "/dev/null"),
        ("jsonl -> /dev/null", "jsonl", "", "/dev/null"),
        ("jsonl, about 10%", "jsonl", recent.as_str(), out_s.as_str()),
        ("csv, text + filter", "csv", "forecast outcome:paid", out_s.as_str()),
    ];
    for (label, fmt, q, to) in exports {
        let (words, rss) = measure_child(&["--child-export", &dir_s, fmt, q, to])?;
        let rows: f64 = words[0].parse()?;
        let bytes: f64 = words[1].parse()?;
        let secs: f64 = words[2].parse()?;
        println!("  {label:<20} {rows:>9.0} rows in {secs:>6.2} s = {:>8.0} rows/s, {:>7.1} MiB written, peak RSS {:>6.1} MiB", rows / secs, bytes / 1048576.0, rss as f64 / 1024.0);
    }
    let _ = std::fs::remove_file(&out);
    println!("\nverify (own process)");
    let (words, rss) = measure_child(&["--child-verify", &dir_s])?;
    let secs: f64 = words[2].parse()?;
    println!("  {} receipts verified in {secs:.1} s ({:.0} receipts/s), peak RSS {:.1} MiB", words[0], words[0].parse::<f64>()? / secs, rss as f64 / 1024.0);
    Ok(())
}
