//! e2e: `purser demo --auto-answer approve|deny` run headless as a subprocess: the exact decision
//! lines and summary, the exact receipts in the demo ledger (counts by outcome, reasons, amounts,
//! a verified hash chain), the real data dir left without a wallet or ledger, the payments on
//! the demo chain, and no process the demo started left running afterwards.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use purser_testkit::{peers::ensure_setup, proc, tx_transfer, usdc_balance};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purser");
const FUND: u128 = 10_000_000;
const DECISION_WORDS: &[&str] = &["paid", "asked", "refused", "failed", "not_payable"];

/// A process seen under the demo: pid, its start time (so a reused pid is not mistaken for it)
/// and its command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Seen {
    pid: u32,
    start: u64,
    cmdline: String,
}

/// (ppid, starttime) of a live process, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state=0, ppid=1, ..., starttime is field 22 of the whole line = index 19 here.
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string()).unwrap_or_default()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc").map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default()
}

/// Every live descendant of `root`.
fn descendants(root: u32) -> Vec<Seen> {
    let mut children: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for pid in all_pids() {
        if let Some((ppid, start)) = stat(pid) {
            children.entry(ppid).or_default().push((pid, start));
        }
    }
    let (mut out, mut todo) = (Vec::new(), vec![root]);
    while let Some(p) = todo.pop() {
        for &(c, start) in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(Seen { pid: c, start, cmdline: cmdline(c) });
            todo.push(c);
        }
    }
    out
}

fn still_running(s: &Seen) -> bool {
    stat(s.pid).is_some_and(|(_, start)| start == s.start)
}

struct Demo {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<Seen>,
    out: Vec<String>,
    stderr: PathBuf,
}

fn spawn(data_dir: &Path, args: &[&str], work: &Path) -> Demo {
    ensure_setup();
    let stderr = work.join("demo.stderr");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data_dir).arg("demo").args(args);
    // A debug build seals the demo wallet with the cheap test KDF (release builds ignore it).
    cmd.env("PURSER_INSECURE_TEST_KDF", "1").env("NO_COLOR", "1").env_remove("PURSER_PEERS_DIR");
    for v in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "DBUS_SESSION_BUS_ADDRESS"] {
        cmd.env_remove(v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(proc::log_stdio(&stderr));
    let mut child = cmd.spawn().expect("spawn purser demo");
    let lines = proc::line_reader(child.stdout.take().unwrap(), &work.join("demo.stdout"));
    Demo { child, lines, seen: Vec::new(), out: Vec::new(), stderr }
}

impl Demo {
    fn snapshot(&mut self) {
        for s in descendants(self.child.id()) {
            if !self.seen.contains(&s) {
                self.seen.push(s);
            }
        }
    }

    /// Reads lines (recording the demo's process tree meanwhile) until `until` matches a line
    /// or stdout closes.
    fn read_until(&mut self, until: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.snapshot();
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let hit = until(&l);
                    self.out.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
            assert!(Instant::now() < deadline, "demo did not finish within {timeout:?}; output so far:\n{}\nstderr:\n{}", self.out.join("\n"), proc::tail(&self.stderr, 40));
        }
    }

    fn finish(&mut self) -> std::process::ExitStatus {
        self.read_until(|_| false, Duration::from_secs(300));
        let st = proc::wait_timeout(&mut self.child, Duration::from_secs(30)).unwrap_or_else(|| panic!("demo did not exit after closing stdout; stderr:\n{}", proc::tail(&self.stderr, 40)));
        st
    }

    /// The demo started a real process tree (node peers.mjs and anvil at least), and none of
    /// it, nor anything naming the demo dir, is left.
    fn assert_nothing_left(&self, demo_dir: &Path) {
        assert!(self.seen.iter().any(|s| s.cmdline.contains("peers.mjs")), "never saw peers.mjs under the demo: {:#?}", self.seen);
        assert!(self.seen.iter().any(|s| s.cmdline.contains("anvil")), "never saw anvil under the demo: {:#?}", self.seen);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left: Vec<&Seen> = self.seen.iter().filter(|s| still_running(s)).collect();
            let naming: Vec<(u32, String)> = all_pids().into_iter().map(|p| (p, cmdline(p))).filter(|(_, c)| c.contains(demo_dir.to_str().unwrap())).collect();
            if left.is_empty() && naming.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "processes the demo started are still running: {left:#?}; naming the demo dir: {naming:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn decisions(&self) -> Vec<String> {
        self.out.iter().filter(|l| l.split_whitespace().next().is_some_and(|w| DECISION_WORDS.contains(&w))).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
    }

    fn line(&self, word: &str) -> String {
        self.out.iter().find(|l| l.starts_with(&format!("{word} "))).unwrap_or_else(|| panic!("no {word:?} line in:\n{}", self.out.join("\n"))).split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn cli(data_dir: &Path, args: &[&str]) -> Value {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data_dir).args(args);
    let out = proc::run_with_timeout(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "purser {args:?}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("purser {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// (outcome, reason, decided_by, amount_atomic) → count, over the demo ledger's receipts.
/// Receipts counted by (outcome, reason, decided by, amount).
type Counts = BTreeMap<(String, String, String, String), usize>;

fn receipt_counts(demo_dir: &Path) -> (Counts, Vec<Value>) {
    let list = cli(demo_dir, &["receipts", "list", "--limit", "1000", "--json"]);
    let list = list.as_array().expect("receipts list --json is an array").clone();
    let mut counts = BTreeMap::new();
    for r in &list {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
        assert_eq!(r["grant"]["label"], "demo agent", "every receipt is under the demo grant: {r}");
        *counts.entry((s("outcome"), s("reason"), s("decided_by"), s("amount_atomic"))).or_default() += 1;
    }
    (counts, list)
}

fn key(o: &str, r: &str, d: &str, a: &str) -> (String, String, String, String) {
    (o.into(), r.into(), d.into(), a.into())
}

/// The demo dir is marked as such, its ledger says "demo", the chain verifies, and the real
/// data dir holds no wallet and no ledger.
fn assert_demo_data(data_dir: &Path, demo_dir: &Path, count: u64) {
    assert!(demo_dir.join("DEMO").is_file(), "DEMO marker in {}", demo_dir.display());
    assert!(demo_dir.join("wallet.vault").is_file(), "the demo wallet lives in the demo dir");
    let db = purser_testkit::rusqlite::Connection::open(demo_dir.join("purser.db")).unwrap();
    let demo: String = db.query_row("SELECT value FROM settings WHERE key = 'demo'", [], |r| r.get(0)).unwrap();
    assert_eq!(demo, "1", "the demo ledger is labelled");
    let v = cli(demo_dir, &["receipts", "verify", "--json"]);
    assert_eq!((v["ok"].as_bool(), v["count"].as_u64()), (Some(true), Some(count)), "receipts verify: {v}");
    for f in ["wallet.vault", "wallet.json", "purser.db"] {
        assert!(!data_dir.join(f).exists(), "the real data dir must not get {f}");
    }
    assert!(!demo_dir.join("control.json").exists(), "control.json is removed at the end");
    let nets: Value = serde_json::from_slice(&std::fs::read(demo_dir.join("networks.json")).expect("networks.json in the demo dir")).unwrap();
    let rpc = nets["rpc"]["eip155:84532"].as_str().unwrap_or_default();
    assert!(rpc.starts_with("http://127.0.0.1:"), "the demo dir reads the demo chain, never a public RPC: {nets}");
}

#[test]
fn demo_auto_approve_pays_asks_refuses_and_exhausts_the_budget() {
    let work = tempfile::Builder::new().prefix("purser-demo-").tempdir().unwrap();
    let data_dir = work.path().join("data");
    let demo_dir = data_dir.join("demo");
    let mut d = spawn(&data_dir, &["--auto-answer", "approve"], work.path());
    let st = d.finish();
    assert!(st.success(), "exit {st}; output:\n{}\nstderr:\n{}", d.out.join("\n"), proc::tail(&d.stderr, 40));
    d.assert_nothing_left(&demo_dir);

    let cheap = "paid $0.001000 GET /cheap (auto: below $0.01)";
    let rule = "paid $0.050000 GET /mid (your rule: this host without asking, within the grant)";
    let mut want = vec![cheap, cheap, cheap, "asked $0.050000 GET /mid → approved, paid", "refused $2.000000 GET /pricey (above the grant's ask ceiling $0.25)"];
    want.extend(std::iter::repeat_n(rule, 18));
    want.push("refused $0.050000 GET /mid (budget exhausted: $0.047000 left of $1.00)");
    assert_eq!(d.decisions(), want, "decision lines; whole output:\n{}", d.out.join("\n"));
    assert_eq!(d.out.iter().filter(|l| l.starts_with("prompt ")).count(), 1, "one prompt: {}", d.out.join("\n"));
    assert_eq!(d.line("summary"), "summary 24 decisions: 22 paid, 2 refused, 0 failed");
    assert!(d.out.iter().any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == "paid: 3 auto, 18 rule, 1 user; refused: 1 above_ask_tier, 1 over_budget"), "{}", d.out.join("\n"));
    assert_eq!(d.line("spent"), "spent $0.953000 of the $1.000000 budget, $0.047000 left");
    assert!(d.line("onchain").ends_with("received 953000 test USDC atomic units (equal to the paid receipts)"), "{}", d.line("onchain"));
    assert_eq!(d.line("receipts"), "receipts 24 receipts, hash chain verified intact");
    assert_eq!(d.line("reconcile"), "reconcile 22 confirmed (receipts checked against the chain)");
    assert!(d.line("browse").contains(&format!("purser --data-dir {} receipts list", demo_dir.display())));
    assert!(d.out.last().unwrap().starts_with("stopped "), "the last line says everything stopped");

    let (counts, list) = receipt_counts(&demo_dir);
    let want: BTreeMap<_, _> = [
        (key("paid", "paid", "auto", "1000"), 3),
        (key("paid", "paid", "user", "50000"), 1),
        (key("paid", "paid", "rule", "50000"), 18),
        (key("refused", "above_ask_tier", "policy", "2000000"), 1),
        (key("refused", "over_budget", "policy", "50000"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, want, "receipts in the demo ledger");
    let paid: u128 = list.iter().filter(|r| r["outcome"] == "paid").map(|r| r["amount_atomic"].as_str().unwrap().parse::<u128>().unwrap()).sum();
    assert_eq!(paid, 953_000);
    assert!(list.iter().filter(|r| r["outcome"] == "paid").all(|r| r["tx"].as_str().is_some_and(|t| t.starts_with("0x"))), "every payment settled with a tx");
    assert_demo_data(&data_dir, &demo_dir, 24);
}

#[test]
fn demo_auto_deny_refuses_the_prompt_and_stops_there() {
    let work = tempfile::Builder::new().prefix("purser-demo-").tempdir().unwrap();
    let data_dir = work.path().join("data");
    let demo_dir = work.path().join("elsewhere");
    let mut d = spawn(&data_dir, &["--auto-answer", "deny", "--dir", demo_dir.to_str().unwrap()], work.path());
    let st = d.finish();
    assert!(st.success(), "exit {st}; output:\n{}\nstderr:\n{}", d.out.join("\n"), proc::tail(&d.stderr, 40));
    d.assert_nothing_left(&demo_dir);

    let cheap = "paid $0.001000 GET /cheap (auto: below $0.01)";
    let want = vec![cheap, cheap, cheap, "asked $0.050000 GET /mid → denied, not paid", "refused $2.000000 GET /pricey (above the grant's ask ceiling $0.25)"];
    assert_eq!(d.decisions(), want, "decision lines; whole output:\n{}", d.out.join("\n"));
    assert_eq!(d.line("summary"), "summary 5 decisions: 3 paid, 2 refused, 0 failed");
    assert!(d.out.iter().any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == "paid: 3 auto; refused: 1 above_ask_tier, 1 user_denied"), "{}", d.out.join("\n"));
    assert_eq!(d.line("spent"), "spent $0.003000 of the $1.000000 budget, $0.997000 left");
    assert!(d.line("onchain").ends_with("received 3000 test USDC atomic units (equal to the paid receipts)"), "{}", d.line("onchain"));
    assert_eq!(d.line("receipts"), "receipts 5 receipts, hash chain verified intact");
    assert_eq!(d.line("reconcile"), "reconcile 3 confirmed (receipts checked against the chain)");

    let (counts, _) = receipt_counts(&demo_dir);
    let want: BTreeMap<_, _> =
        [(key("paid", "paid", "auto", "1000"), 3), (key("refused", "user_denied", "user", "50000"), 1), (key("refused", "above_ask_tier", "policy", "2000000"), 1)].into_iter().collect();
    assert_eq!(counts, want, "receipts in the demo ledger");
    assert_demo_data(&data_dir, &demo_dir, 5);
    assert!(!data_dir.join("demo").exists(), "--dir puts the demo elsewhere");
}

/// `--keep-running` leaves the chain up after the summary: the payments are on chain, exactly;
/// then SIGTERM stops everything and the demo still exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_payments_are_on_chain_and_sigterm_cleans_up() {
    let work = tempfile::Builder::new().prefix("purser-demo-").tempdir().unwrap();
    let data_dir = work.path().join("data");
    let demo_dir = data_dir.join("demo");
    let mut d = spawn(&data_dir, &["--auto-answer", "approve", "--keep-running"], work.path());
    let running = tokio::task::block_in_place(|| d.read_until(|l| l.starts_with("running "), Duration::from_secs(300)));
    assert!(running, "no `running` line; output:\n{}\nstderr:\n{}", d.out.join("\n"), proc::tail(&d.stderr, 40));
    let rpc = d.line("chain").split_whitespace().nth(1).unwrap().to_string();
    let wallet = d.line("wallet").split_whitespace().nth(1).unwrap().to_ascii_lowercase();
    let (_, list) = receipt_counts(&demo_dir);
    let paid: Vec<&Value> = list.iter().filter(|r| r["outcome"] == "paid").collect();
    assert_eq!(paid.len(), 22);
    let pay_to = paid[0]["pay_to"].as_str().unwrap().to_ascii_lowercase();
    for r in &paid {
        let (from, to, value) = tx_transfer(&rpc, r["tx"].as_str().unwrap()).await;
        assert_eq!((from.as_str(), to.as_str(), value.to_string()), (wallet.as_str(), pay_to.as_str(), r["amount_atomic"].as_str().unwrap().to_string()), "on-chain transfer of {r}");
    }
    assert_eq!(usdc_balance(&rpc, &wallet).await, FUND - 953_000, "the demo wallet paid exactly the receipts");
    assert_eq!(usdc_balance(&rpc, &pay_to).await, 953_000, "the payee (unfunded at start) got exactly the receipts");

    proc::sigterm(&d.child);
    let st = tokio::task::block_in_place(|| d.finish());
    assert!(st.success(), "SIGTERM after the run exits 0: {st}; stderr:\n{}", proc::tail(&d.stderr, 40));
    d.assert_nothing_left(&demo_dir);
    assert!(d.out.last().unwrap().starts_with("stopped "));
}

#[test]
fn demo_refuses_a_dir_that_is_not_a_demo_and_names_missing_peers() {
    let work = tempfile::Builder::new().prefix("purser-demo-").tempdir().unwrap();
    let data_dir = work.path().join("data");
    let precious = work.path().join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(&data_dir).arg("demo").args(args).env_remove("PURSER_PEERS_DIR");
        proc::run_with_timeout(cmd, Duration::from_secs(60))
    };
    let out = run(&["--auto-answer", "approve", "--dir", precious.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("demo_dir_not_demo"), "{err}");
    assert_eq!(std::fs::read_to_string(precious.join("notes.txt")).unwrap(), "keep me", "nothing wiped");

    let out = run(&["--auto-answer", "approve", "--dir", data_dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("demo_dir_not_demo"), "the real data dir is never the demo dir");

    let out = run(&["--auto-answer", "deny", "--peers-dir", work.path().join("nowhere").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("demo_needs_peers") && err.contains("setup.sh"), "{err}");
    let mut s = String::new();
    let _ = std::io::Cursor::new(out.stdout).read_to_string(&mut s);
    assert!(!s.contains("paid "), "nothing ran: {s}");
}

/// Without `--auto-answer` the prompt waits for a person: the printed `purser approvals approve`
/// command (through the demo dir's control API) answers it, and the run goes on to the end.
#[test]
fn demo_prompt_is_answered_by_the_printed_command() {
    let work = tempfile::Builder::new().prefix("purser-demo-").tempdir().unwrap();
    let data_dir = work.path().join("data");
    let demo_dir = data_dir.join("demo");
    let mut d = spawn(&data_dir, &["--no-notify"], work.path());
    let found = d.read_until(|l| l.contains(" approvals approve "), Duration::from_secs(300));
    assert!(found, "no approve command printed:\n{}", d.out.join("\n"));
    let line = d.out.last().unwrap().clone();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..3], &["purser", "--data-dir", demo_dir.to_str().unwrap()], "{line}");
    // Approving asks for the wallet's passphrase at the terminal: the demo prints its own.
    let pass =
        d.out.iter().find_map(|l| l.strip_prefix("wallet    passphrase ")).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| panic!("no passphrase line:\n{}", d.out.join("\n"))).to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(&words[1..]).env_remove("PURSER_PASSPHRASE");
    let out = purser_testkit::pty::run_in_pty(cmd, &[("passphrase", &pass)], Duration::from_secs(60));
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    let st = d.finish();
    assert!(st.success(), "exit {st}; output:\n{}\nstderr:\n{}", d.out.join("\n"), proc::tail(&d.stderr, 40));
    d.assert_nothing_left(&demo_dir);
    assert!(d.decisions().contains(&"asked $0.050000 GET /mid → approved, paid".to_string()), "{}", d.out.join("\n"));
    assert_eq!(d.line("summary"), "summary 24 decisions: 22 paid, 2 refused, 0 failed");
    assert_demo_data(&data_dir, &demo_dir, 24);
}

/// Ctrl-C while a prompt waits: the held request is refused with a receipt, everything started
/// is stopped, and the demo says it was interrupted.
#[test]
fn demo_ctrl_c_mid_run_stops_everything() {
    let work = tempfile::Builder::new().prefix("purser-demo-").tempdir().unwrap();
    let data_dir = work.path().join("data");
    let demo_dir = data_dir.join("demo");
    let mut d = spawn(&data_dir, &["--no-notify"], work.path());
    let found = d.read_until(|l| l.contains(" approvals deny "), Duration::from_secs(300));
    assert!(found, "no prompt:\n{}", d.out.join("\n"));
    proc::signal(d.child.id(), libc::SIGINT);
    let st = d.finish();
    assert_eq!(st.code(), Some(1), "interrupted: {st}");
    assert!(std::fs::read_to_string(&d.stderr).unwrap().contains("demo_interrupted"));
    d.assert_nothing_left(&demo_dir);
    let cheap = "paid $0.001000 GET /cheap (auto: below $0.01)";
    assert_eq!(
        d.decisions(),
        vec![cheap, cheap, cheap, "refused $0.050000 GET /mid (shutting_down: Purser is shutting down)"],
        "the held /mid was refused, never paid, and the agent made no further call; whole output:\n{}",
        d.out.join("\n")
    );
    assert!(d.out.last().unwrap().starts_with("stopped "));
    let (counts, _) = receipt_counts(&demo_dir);
    assert_eq!(counts.get(&key("paid", "paid", "auto", "1000")), Some(&3));
    assert_eq!(counts.values().sum::<usize>(), 4, "3 paid and the held one refused at shutdown: {counts:?}");
    assert_eq!(counts.get(&key("refused", "shutting_down", "policy", "50000")), Some(&1), "{counts:?}");
}
