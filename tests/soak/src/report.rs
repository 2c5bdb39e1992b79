//! Owns the soak's figures: latency percentiles per kind per window, the daemon's RSS and fd
//! range per window, the drift from the first window to the last, and the printed table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::kinds::Kind;
use crate::sampler::ProcSample;
use crate::traffic::Record;

/// Latency of one kind in one window (ms; latency is not money, floats are fine here).
#[derive(Clone, Debug, Serialize)]
pub struct Lat {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Window {
    pub index: usize,
    pub start_s: u64,
    pub end_s: u64,
    /// By kind name; only kinds with at least one answer in the window.
    pub latency: BTreeMap<&'static str, Lat>,
    pub rss_kb_min: Option<u64>,
    pub rss_kb_max: Option<u64>,
    pub fds_min: Option<u64>,
    pub fds_max: Option<u64>,
}

/// First window vs last window.
#[derive(Clone, Debug, Serialize)]
pub struct Drift {
    /// Max RSS of the last window minus max RSS of the first (kB; negative: it shrank).
    pub rss_growth_kb: i64,
    /// The same, in per cent of the first window's max.
    pub rss_growth_pct: f64,
    /// Max fds of the last window minus max fds of the first.
    pub fd_growth: i64,
    /// By kind: (first window p99, last window p99, change), ms.
    pub p99_ms: BTreeMap<&'static str, (f64, f64, f64)>,
    /// Least-squares slope of RSS after the first (warm-up) window, kB per minute.
    pub rss_slope_kb_per_min: Option<f64>,
    /// The same for fds, per minute.
    pub fd_slope_per_min: Option<f64>,
}

/// Least-squares slope of `y` over `t_ms`, per minute (None under three points).
pub fn slope(points: &[(u64, u64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0 as f64).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 as f64 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 as f64 - mx) * (p.1 as f64 - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx * 60_000.0 * 10.0).round() / 10.0)
}

/// Nearest-rank percentile of sorted `v` (`p` in 0..=100).
pub fn percentile(sorted: &[u64], p: u32) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(us: u64) -> f64 {
    (us as f64 / 100.0).round() / 10.0
}

/// Latency of `records` (answers only; transport errors left out).
pub fn lat(records: &[&Record]) -> Lat {
    let mut v: Vec<u64> = records.iter().filter(|r| r.status != 0).map(|r| r.latency_us).collect();
    v.sort_unstable();
    Lat { n: v.len(), p50_ms: ms(percentile(&v, 50)), p99_ms: ms(percentile(&v, 99)), max_ms: ms(v.last().copied().unwrap_or(0)) }
}

/// Splits `duration_ms` of traffic into windows of `window_ms` (a last partial window shorter
/// than half a window is folded into the one before).
pub fn windows(records: &[Record], samples: &[ProcSample], duration_ms: u64, window_ms: u64) -> Vec<Window> {
    let window_ms = window_ms.max(1);
    let mut n = (duration_ms / window_ms).max(1) as usize;
    if duration_ms % window_ms >= window_ms / 2 && duration_ms > window_ms {
        n += 1;
    }
    (0..n)
        .map(|i| {
            let lo = i as u64 * window_ms;
            let hi = if i + 1 == n { u64::MAX } else { lo + window_ms };
            let mut latency = BTreeMap::new();
            for k in Kind::ALL {
                let rs: Vec<&Record> = records.iter().filter(|r| r.kind == k && r.t_ms >= lo && r.t_ms < hi).collect();
                if !rs.is_empty() {
                    latency.insert(k.name(), lat(&rs));
                }
            }
            let ss: Vec<&ProcSample> = samples.iter().filter(|s| s.t_ms >= lo && s.t_ms < hi).collect();
            Window {
                index: i,
                start_s: lo / 1000,
                end_s: if hi == u64::MAX { duration_ms / 1000 } else { hi / 1000 },
                latency,
                rss_kb_min: ss.iter().map(|s| s.rss_kb).min(),
                rss_kb_max: ss.iter().map(|s| s.rss_kb).max(),
                fds_min: ss.iter().map(|s| s.fds).min(),
                fds_max: ss.iter().map(|s| s.fds).max(),
            }
        })
        .collect()
}

pub fn drift(ws: &[Window], samples: &[ProcSample]) -> Option<Drift> {
    let (first, last) = (ws.first()?, ws.last()?);
    let (r0, r1) = (first.rss_kb_max.unwrap_or(0) as i64, last.rss_kb_max.unwrap_or(0) as i64);
    let warm = first.end_s * 1000;
    let steady: Vec<&ProcSample> = samples.iter().filter(|s| s.t_ms >= warm).collect();
    let mut p99_ms = BTreeMap::new();
    for k in Kind::ALL {
        if let (Some(a), Some(b)) = (first.latency.get(k.name()), last.latency.get(k.name())) {
            p99_ms.insert(k.name(), (a.p99_ms, b.p99_ms, ((b.p99_ms - a.p99_ms) * 10.0).round() / 10.0));
        }
    }
    Some(Drift {
        rss_growth_kb: r1 - r0,
        rss_growth_pct: if r0 > 0 { ((r1 - r0) as f64 * 1000.0 / r0 as f64).round() / 10.0 } else { 0.0 },
        fd_growth: last.fds_max.unwrap_or(0) as i64 - first.fds_max.unwrap_or(0) as i64,
        p99_ms,
        rss_slope_kb_per_min: slope(&steady.iter().map(|s| (s.t_ms, s.rss_kb)).collect::<Vec<_>>()),
        fd_slope_per_min: slope(&steady.iter().map(|s| (s.t_ms, s.fds)).collect::<Vec<_>>()),
    })
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The per-window table: one row per window, p50/p99 (ms) per kind, RSS (MB) and fd range.
pub fn table(ws: &[Window]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:>11} ", "window");
    for k in Kind::ALL {
        let _ = write!(out, "{:>17} ", format!("{} p50/p99", k.name()));
    }
    let _ = writeln!(out, "{:>15} {:>9}", "RSS MB min-max", "fds");
    for w in ws {
        let _ = write!(out, "{:>11} ", format!("{}-{}s", w.start_s, w.end_s));
        for k in Kind::ALL {
            let cell = w.latency.get(k.name()).map_or("-".to_string(), |l| format!("{:.0}/{:.0}", l.p50_ms, l.p99_ms));
            let _ = write!(out, "{cell:>17} ");
        }
        let mb = |v: Option<u64>| v.map_or("-".into(), |kb| format!("{:.1}", kb as f64 / 1024.0));
        let _ = writeln!(out, "{:>15} {:>9}", format!("{}-{}", mb(w.rss_kb_min), mb(w.rss_kb_max)), format!("{}-{}", opt(w.fds_min), opt(w.fds_max)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 99), percentile(&v, 100)), (50, 99, 100));
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[1, 2], 50), 1);
    }

    #[test]
    fn a_short_tail_folds_into_the_last_window() {
        assert_eq!(windows(&[], &[], 700_000, 300_000).len(), 2);
        assert_eq!(windows(&[], &[], 800_000, 300_000).len(), 3);
        assert_eq!(windows(&[], &[], 3_600_000, 300_000).len(), 12);
        assert_eq!(windows(&[], &[], 10_000, 300_000).len(), 1);
    }

    #[test]
    fn slope_per_minute() {
        assert_eq!(slope(&[(0, 100), (60_000, 110), (120_000, 120)]), Some(10.0));
        assert_eq!(slope(&[(0, 5), (60_000, 5), (120_000, 5)]), Some(0.0));
        assert_eq!(slope(&[(0, 5), (1, 6)]), None);
    }
}
