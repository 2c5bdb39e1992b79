//! The run's figures: what the agents sent and received, what the kills interrupted and how the
//! chain decided it, the ledger against the chain, every check's verdict; printed as a table.

use crate::checks::Findings;
use crate::traffic::{Answer, Route};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub kills: usize,
    pub seed: u64,
    pub concurrency: usize,
    pub requests: u64,
    pub answers: usize,
    /// Paid routes answered 200 with a receipt.
    pub paid: usize,
    /// 403 (refused, with a receipt).
    pub refused: usize,
    /// `/free` answered 200 (no payment, no receipt).
    pub passed: usize,
    /// Other statuses (e.g. 502 when the upstream failed).
    pub other: usize,
    /// Requests that got no answer: cut in flight by a kill.
    pub no_answer: usize,
    /// Requests that found nothing listening (sent between a kill and the agents' pause).
    pub connect_refused: usize,
    /// Answers whose head arrived but whose body the kill cut.
    pub cut: usize,
    pub receipts_promised: usize,
    pub receipts_found: usize,
    pub checks: usize,
    pub verify_passes: usize,
    /// Interrupted payments (receipts written at restart) at the end, and how the chain decided them.
    pub interrupted: usize,
    pub interrupted_spent: usize,
    pub interrupted_released: usize,
    pub interrupted_unknown: usize,
    pub settled_late: usize,
    pub unknown_left: usize,
    /// Most interrupted payments still unknown right after a restart's reconcile.
    pub max_unknown_after_restart: usize,
    pub receipts: usize,
    pub paid_receipts: usize,
    pub paid_sum: u128,
    pub spent: u64,
    pub reserved: u64,
    pub chain_transfers: usize,
    pub chain_sum: u128,
    pub max_nonces_per_request: usize,
    pub max_paid_retries: usize,
    /// Every violation, prefixed with the check that found it.
    pub violations: Vec<String>,
    pub wall: Duration,
}

impl Report {
    /// Folds in the check after kill `k`.
    pub fn add_check(&mut self, k: usize, f: &Findings) {
        self.checks += 1;
        self.verify_passes += usize::from(f.verified);
        self.max_unknown_after_restart = self.max_unknown_after_restart.max(f.unknown);
        self.violations.extend(f.violations.iter().map(|v| format!("after kill {k}: {v}")));
    }

    /// The final check (chain clock past every validBefore) and the agents' answers.
    pub fn finish(&mut self, answers: &[Answer], f: &Findings, requests: u64, wall: Duration) {
        self.add_check(self.kills + 1, f);
        self.requests = requests;
        for a in answers {
            match a.status {
                None if a.refused_connect => self.connect_refused += 1,
                None => self.no_answer += 1,
                Some(s) => {
                    self.answers += 1;
                    match (s, a.route) {
                        (200, Route::Free) => self.passed += 1,
                        (200, _) if a.receipt.is_some() => self.paid += 1,
                        (403, _) => self.refused += 1,
                        _ => self.other += 1,
                    }
                }
            }
            self.cut += usize::from(a.body_cut);
            self.receipts_promised += usize::from(a.receipt.is_some());
        }
        self.receipts_found = f.promised_checked - f.promised_missing;
        self.interrupted = f.interrupted;
        self.interrupted_spent = f.interrupted_spent;
        self.interrupted_released = f.interrupted_released;
        self.interrupted_unknown = f.interrupted_unknown;
        self.settled_late = f.settled_late;
        self.unknown_left = f.unknown;
        self.receipts = f.receipts;
        self.paid_receipts = f.paid_receipts;
        self.paid_sum = f.paid_sum;
        self.spent = f.spent;
        self.reserved = f.reserved;
        self.chain_transfers = f.chain_transfers;
        self.chain_sum = f.chain_sum;
        self.max_nonces_per_request = f.max_nonces_per_request;
        self.max_paid_retries = f.max_paid_retries;
        self.wall = wall;
    }

    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "| {k:<58} | {v:>22} |");
        };
        row("kills (SIGKILL, then restart on the same data dir)", self.kills.to_string());
        row("seed / concurrent agents", format!("{} / {}", self.seed, self.concurrency));
        row("requests sent (each logical request once)", self.requests.to_string());
        row("answers received", self.answers.to_string());
        row("  paid (200 with a receipt)", self.paid.to_string());
        row("  refused (403 with a receipt)", self.refused.to_string());
        row("  passed through (no payment)", self.passed.to_string());
        row("  other statuses", self.other.to_string());
        row("no answer: cut in flight by the kill", self.no_answer.to_string());
        row("no answer: nothing listening (daemon dead)", self.connect_refused.to_string());
        row("answers with a body cut by the kill", self.cut.to_string());
        row("Purser-Receipt ids received / found in the ledger", format!("{} / {}", self.receipts_promised, self.receipts_found));
        row("receipts in the ledger", self.receipts.to_string());
        row("interrupted payments (receipt written at restart)", self.interrupted.to_string());
        row("  reconciled by nonce: spent (used on chain)", self.interrupted_spent.to_string());
        row("  reconciled by nonce: released (expired unused)", self.interrupted_released.to_string());
        row("  still unknown at the end", self.interrupted_unknown.to_string());
        row("most reservations unknown right after a restart", self.max_unknown_after_restart.to_string());
        row("reservations spent without a paid receipt (late)", self.settled_late.to_string());
        row("paid receipts (count / atomic)", format!("{} / {}", self.paid_receipts, self.paid_sum));
        row("on-chain transfers payer -> payee (count / atomic)", format!("{} / {}", self.chain_transfers, self.chain_sum));
        row("ledger spent / reserved (micro-USD)", format!("{} / {}", self.spent, self.reserved));
        row("most authorizations for one request (ledger)", self.max_nonces_per_request.to_string());
        row("most paid retries for one request (paywall)", self.max_paid_retries.to_string());
        row("receipts verify passes / checks", format!("{} / {}", self.verify_passes, self.checks));
        row("violations", self.violations.len().to_string());
        row("wall time", format!("{:.1} s", self.wall.as_secs_f64()));
        let mut out = format!("| {:<58} | {:>22} |\n|{}|{}|\n", "crash loop", "", "-".repeat(60), "-".repeat(24));
        out.push_str(&t);
        for v in self.violations.iter().take(30) {
            out.push_str(&format!("VIOLATION {v}\n"));
        }
        out
    }
}
