//! Owns the engine operations the desktop app's screens need beyond the shared ones: the
//! timeline as the app shows it (a page of search results, one receipt with everything in it,
//! aggregates for the spend chart, an export of the current result set to a file, suggestions
//! for the search box) and a new grant with the set-up lines its agent pastes. Each is one call
//! the app's Tauri commands make after validating their arguments (`ipc`).

use crate::engine::{ApiError, Engine};
use crate::ipc::{ExportResult, GrantCreated, QueryHelp, QueryKey, ReceiptDetail};
use crate::search::{self, export, SearchError, SearchPage, Stats};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Every reason code a receipt is written with (for the search box's suggestions; the search
/// accepts any code).
pub fn reasons() -> Vec<&'static str> {
    crate::receipt::Reason::ALL.iter().map(|r| r.as_str()).collect()
}

fn not_found(id: &str) -> ApiError {
    ApiError { code: crate::api::ErrorCode::NoSuchReceipt, message: format!("no receipt {}", id.chars().take(64).collect::<String>()) }
}

impl Engine {
    /// Creates a grant and the lines its agent needs (`proxy_url`: where this Purser listens;
    /// `ca_cert`: its local CA certificate).
    /// `presence`: the click in the app's window that asked for it.
    pub fn create_grant_for_app(&self, spec: &crate::grants::GrantSpec, proxy_url: &str, ca_cert: &Path, presence: &crate::presence::Presence) -> Result<GrantCreated, ApiError> {
        let created = self.create_grant(spec, Some(presence))?;
        let setup_lines = crate::ipc::setup_lines(proxy_url, &created.token, ca_cert);
        Ok(GrantCreated { grant: created.grant, token: created.token, setup_lines })
    }

    /// One page of the timeline, newest first.
    pub fn search_receipts(&self, query: &str, cursor: Option<&str>, limit: usize) -> Result<SearchPage, ApiError> {
        Ok(search::search(&self.ledger, query, limit, cursor, self.clock.now())?)
    }

    /// One receipt with its flags and place in the chain.
    pub fn receipt_detail(&self, id: &str) -> Result<ReceiptDetail, ApiError> {
        let (receipt, seq, flags) = self.ledger.receipt_detail(id).map_err(SearchError::from)?.ok_or_else(|| not_found(id))?;
        Ok(ReceiptDetail { receipt, flags: flags.names().into_iter().map(str::to_string).collect(), seq })
    }

    /// Aggregates of the receipts matching `query`, grouped by `by` (`day,grant`...).
    pub fn receipt_stats(&self, query: &str, by: &str) -> Result<Stats, ApiError> {
        let by = search::parse_group_by(by)?;
        Ok(search::stats(&self.ledger, query, &by, None, self.clock.now())?)
    }

    /// Writes the receipts matching `query` (oldest first, with the chain columns so anyone can
    /// verify the file) to a new 0600 file in `dir`, named after the time.
    pub fn export_receipts(&self, query: &str, format: export::Format, dir: &Path) -> Result<ExportResult, ApiError> {
        let now = self.clock.now();
        std::fs::create_dir_all(dir).map_err(SearchError::from)?;
        let ext = match format {
            export::Format::Csv => "csv",
            export::Format::Jsonl => "jsonl",
        };
        let stem = format!("purser-receipts-{}", now.format("%Y%m%d-%H%M%S"));
        let mut path = dir.join(format!("{stem}.{ext}"));
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = dir.join(format!("{stem}-{n}.{ext}"));
        }
        let file = open_new_private(&path).map_err(SearchError::from)?;
        let mut out = std::io::BufWriter::new(file);
        let summary = match export::export(&self.ledger, query, format, true, &mut out, now, |_, _| {}) {
            Ok(s) => s,
            Err(e) => {
                drop(out);
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        out.flush().map_err(SearchError::from)?;
        out.get_ref().sync_all().map_err(SearchError::from)?;
        Ok(ExportResult { path: path.display().to_string(), rows: summary.rows, bytes: summary.bytes })
    }

    /// Keys of the query language with values to suggest: this ledger's grant labels and
    /// hosts, and the fixed codes.
    pub fn query_help(&self) -> Result<QueryHelp, ApiError> {
        let grants = self.list_grants()?;
        let mut labels: Vec<String> = grants.iter().map(|g| g.label.clone()).collect();
        labels.dedup();
        let mut hosts: Vec<String> = grants.iter().flat_map(|g| g.hosts.iter().cloned()).collect();
        hosts.sort();
        hosts.dedup();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let key = |key: &str, description: &str, values: Vec<String>, example: &str| QueryKey { key: key.into(), description: description.into(), values, example: example.into() };
        let networks = crate::networks::REGISTRY.iter().map(|n| n.v1_name.to_string()).collect();
        Ok(QueryHelp {
            keys: vec![
                key("grant", "a grant, by label (any case) or id", labels, "grant:research"),
                key("outcome", "what happened", strings(&["paid", "refused", "failed", "not_payable"]), "outcome:paid,failed"),
                key("by", "who decided", strings(&["auto", "user", "timeout", "policy", "rule"]), "by:user"),
                key("host", "a host, or its subdomains with *.", hosts, "host:*.example.com"),
                key("payee", "a payee address", vec![], "payee:0x3C44…"),
                key("network", "a network name or CAIP-2 id", networks, "network:base-sepolia"),
                key("reason", "a reason code", strings(&reasons()), "reason:over_budget"),
                key("amount", "price in USD: exact, a comparison or a range", vec![], "amount:0.01..0.05"),
                key("since", "from a UTC day, date-time, or an age", strings(&["1d", "7d", "30d"]), "since:7d"),
                key("until", "up to a UTC day or date-time (included)", vec![], "until:2026-11-30"),
                key("flag", "price-memory flags", strings(&["price_spike", "new_payee", "any"]), "flag:any"),
                key("agent", "the asking process or one of its parents, by name (any case)", vec![], "agent:claude"),
                key("run", "a purser run, by label (any case)", vec![], "run:research"),
            ],
        })
    }
}

fn open_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Where exports go: the user's download dir when it exists, else `<data dir>/exports`.
pub fn export_dir(download_dir: Option<PathBuf>, data_dir: &Path) -> PathBuf {
    download_dir.filter(|d| d.is_dir()).unwrap_or_else(|| data_dir.join("exports"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::GrantSpec;
    use crate::ledger::Ledger;
    use crate::receipt::{DecidedBy, Outcome, Receipt};

    fn engine_with_receipts() -> (tempfile::TempDir, Engine, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::new(Ledger::open_in(&dir.path().join("d")).unwrap(), None).unwrap();
        let spec = GrantSpec { label: "research".into(), budget: "5".into(), expires: "2h".into(), hosts: vec!["api.x.com".into()], ..Default::default() };
        let g = e.ledger.grant(&e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap().grant.id).unwrap();
        let mut ids = vec![];
        for (i, outcome) in [Outcome::Refused, Outcome::NotPayable, Outcome::Refused].into_iter().enumerate() {
            let mut r = Receipt::new(crate::clock::new_id(), chrono::Utc::now(), "GET", &format!("https://api.x.com/w?n={i}"), "api.x.com");
            r.set_grant(&g);
            r.decide(outcome, DecidedBy::Policy, if outcome == Outcome::Refused { crate::receipt::Reason::OverBudget } else { crate::receipt::Reason::NotPayable }, None, "m");
            e.ledger.record(&mut r, chrono::Utc::now()).unwrap();
            ids.push(r.id);
        }
        (dir, e, ids)
    }

    #[test]
    fn search_detail_stats_and_errors() {
        let (_d, e, ids) = engine_with_receipts();
        let page = e.search_receipts("reason:over_budget", None, 10).unwrap();
        assert_eq!((page.total, page.items.len()), (2, 2));
        let d = e.receipt_detail(&ids[1]).unwrap();
        assert_eq!((d.receipt.id.as_str(), d.seq, d.receipt.hash.len()), (ids[1].as_str(), 2, 64));
        assert!(d.flags.is_empty());
        assert_eq!(e.receipt_detail("nope").unwrap_err().code, "no_such_receipt");
        let bad = e.search_receipts("outcome:maybe", None, 10).unwrap_err();
        assert_eq!(bad.code, "invalid_query");
        assert!(bad.message.contains("outcome:maybe"), "{}", bad.message);
        let s = e.receipt_stats("", "outcome").unwrap();
        assert_eq!(s.total["receipts"], 3);
        assert_eq!(e.receipt_stats("", "colour").unwrap_err().code, "invalid_group_by");
        let help = e.query_help().unwrap();
        let grant = help.keys.iter().find(|k| k.key == "grant").unwrap();
        assert_eq!(grant.values, ["research"]);
        assert!(help.keys.iter().any(|k| k.key == "host" && k.values == ["api.x.com"]));
        for k in &help.keys {
            let q = k.example.replace('…', "");
            assert!(crate::search::Query::parse(&q, chrono::Utc::now()).is_ok() || k.key == "payee", "the example of {}: {q}", k.key);
        }
    }

    #[test]
    fn export_writes_a_private_verifiable_file() {
        use std::os::unix::fs::PermissionsExt;
        let (d, e, _ids) = engine_with_receipts();
        let out = d.path().join("out");
        let r = e.export_receipts("grant:research", export::Format::Jsonl, &out).unwrap();
        assert_eq!(r.rows, 3);
        let meta = std::fs::metadata(&r.path).unwrap();
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (r.bytes, 0o600));
        let check = export::verify_export(std::fs::File::open(&r.path).unwrap()).unwrap();
        assert_eq!(check.rows, 3);
        let again = e.export_receipts("grant:research", export::Format::Csv, &out).unwrap();
        assert_ne!(again.path, r.path);
        assert_eq!(e.export_receipts("outcome:maybe", export::Format::Csv, &out).unwrap_err().code, "invalid_query");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2, "a failed export leaves no file");
        assert_eq!(export_dir(None, Path::new("/d")), PathBuf::from("/d/exports"));
        assert_eq!(export_dir(Some(out.clone()), Path::new("/d")), out);
    }
}
