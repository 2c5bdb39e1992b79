//! e2e (issue 10, disk faults): `purser serve` with its data dir on a small filesystem, against
//! the real peers. (1) A 4 MiB tmpfs filled to the last byte; (2) the database files made
//! read-only under the running daemon (on a small ext4 image: see `make_read_only`). In both:
//! a paid request is refused with `503 {"code":"ledger_unavailable"}` and no receipt id, the
//! payee's on-chain balance does not move and the facilitator sees no verify or settle (nothing
//! is signed without a durable reservation), pass-through traffic is still served, the daemon
//! keeps running; once the space (or write access) returns, without a restart, the parked
//! refusal receipt is written, the next paid request pays with a receipt, the hash chain
//! verifies and the grant's budget adds up.
//!
//! Needs root (mount); CI runs as root. Without it the test says so loudly and does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Hostile402, Mode, Peers, Purser, Reply, ServeOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// A filesystem mounted for one test; unmounted (and its image removed) on drop.
struct Mounted {
    dir: PathBuf,
    image: Option<PathBuf>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-R").arg("-i").arg(&self.dir).output();
        let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        if let Some(img) = &self.image {
            let _ = std::fs::remove_file(img);
        }
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {} {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Result<Mounted, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"]).arg(dir))?;
    Ok(Mounted { dir: dir.to_path_buf(), image: None })
}

fn mount_ext4(dir: &Path, image: &Path, size_mb: u64) -> Result<Mounted, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let f = std::fs::File::create(image).map_err(|e| e.to_string())?;
    f.set_len(size_mb << 20).map_err(|e| e.to_string())?;
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(image))?;
    run(Command::new("mount").args(["-o", "loop"]).arg(image).arg(dir))?;
    Ok(Mounted { dir: dir.to_path_buf(), image: Some(image.to_path_buf()) })
}

/// Is mounting allowed here? (root, or CAP_SYS_ADMIN.) If not, the reason.
fn can_mount(scratch: &Path) -> Result<(), String> {
    let probe = scratch.join("probe");
    mount_tmpfs(&probe, "64k").map(drop)
}

fn skip_loudly(why: &str) {
    eprintln!("\n{}\n!!! diskfull: SKIPPED — cannot mount a small filesystem here: {why}\n!!! run as root (CI does) to exercise the disk-fault cases\n{}\n", "!".repeat(78), "!".repeat(78));
}

/// Writes a filler file until the filesystem has no byte left.
fn fill(dir: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    let mut total = 0u64;
    for size in [1 << 16, 4096, 512, 1] {
        let chunk = vec![0xa5u8; size];
        while f.write_all(&chunk).is_ok() {
            total += size as u64;
        }
    }
    let _ = f.sync_all();
    total
}

struct Setup {
    peers: Peers,
    p: Purser,
    hostile: Hostile402,
    gid: String,
    token: String,
    url: String,
}

async fn setup(data_dir: PathBuf) -> Setup {
    let peers = Peers::start(Mode::Real);
    let opts = ServeOptions { data_dir: Some(data_dir), ..Default::default() };
    let p = Purser::start_with(BIN, &peers.payer_key, opts);
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.02", "--ask-below", "1.00"]);
    let hostile = Hostile402::start().await;
    let url = p.gateway_url(&format!("{}/echo", peers.v2));
    Setup { peers, p, hostile, gid, token, url }
}

impl Setup {
    async fn paid(&self) -> Reply {
        send(agent().post(&self.url).header("Proxy-Authorization", format!("Bearer {}", self.token)).json(&serde_json::json!({"q": 1}))).await
    }
    async fn free(&self) -> Reply {
        let url = self.p.gateway_url(&self.hostile.url_of("/free"));
        send(agent().get(url).header("Proxy-Authorization", format!("Bearer {}", self.token))).await
    }
    async fn payee(&self) -> u128 {
        usdc_balance(&self.peers.rpc, &self.peers.pay_to).await
    }
    async fn facilitator(&self) -> (u64, u64) {
        let s = facilitator_stats(&self.peers.facilitator).await;
        (s["verify"].as_u64().unwrap_or(0), s["settle"].as_u64().unwrap_or(0))
    }

    /// The outage: a paid request is refused by name, without a receipt id and without any
    /// money moving; free traffic passes; the daemon lives. Returns the refusal.
    async fn assert_refuses_during_outage(&mut self, what: &str) -> Reply {
        let (balance, fac) = (self.payee().await, self.facilitator().await);
        let r = self.paid().await;
        assert_eq!((r.status, r.code().as_deref()), (503, Some("ledger_unavailable")), "{what}: a paid request while the ledger cannot write: {r}\nserve log:\n{}", self.p.serve_log_tail(20));
        assert!(r.receipt().is_none(), "{what}: no receipt id while it is not written: {r}");
        assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("receipt will be written")), "{what}: the message says what happens to the receipt: {r}");
        assert_eq!(self.payee().await, balance, "{what}: the payee's on-chain balance moved");
        assert_eq!(self.facilitator().await, fac, "{what}: the facilitator saw a verify or settle (something was signed)");
        let t = Instant::now();
        let free = self.free().await;
        assert_eq!(free.status, 200, "{what}: pass-through traffic is still served: {free}");
        println!("{what}: refused paid request answered; pass-through served in {:?}", t.elapsed());
        assert!(self.p.is_running(), "{what}: the daemon exited");
        r
    }

    /// Recovery without restart: the parked refusal receipt is written, a paid request pays
    /// with a receipt, the chain verifies and the budget adds up.
    async fn assert_recovers(&mut self, what: &str, paid_before: usize) {
        let since = Instant::now();
        let deadline = since + Duration::from_secs(20);
        let refusal = loop {
            let list = self.p.receipts();
            if let Some(r) = list.iter().find(|r| r["reason"] == "ledger_unavailable") {
                break r.clone();
            }
            assert!(Instant::now() < deadline, "{what}: the parked refusal receipt was never written; receipts: {list:?}\nserve log:\n{}", self.p.serve_log_tail(30));
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(refusal["outcome"], "refused", "{what}: {refusal}");
        println!("{what}: the parked refusal receipt was written {:?} after write access returned (no restart)", since.elapsed());
        let before = self.payee().await;
        let r = self.paid().await;
        assert_eq!(r.status, 200, "{what}: after recovery a paid request pays: {r}\nserve log:\n{}", self.p.serve_log_tail(20));
        let id = r.receipt_id();
        let rec = self.p.receipt(&id);
        assert_eq!(rec["outcome"], "paid", "{what}: {rec}");
        let price: u128 = rec["amount_atomic"].as_str().unwrap().parse().unwrap();
        assert_eq!(self.payee().await - before, price, "{what}: the payee received exactly the price");
        let v = self.p.cli(&["receipts", "verify"]);
        assert!(v.status.success(), "{what}: receipts verify: {}", String::from_utf8_lossy(&v.stdout));
        let list = self.p.receipts();
        let paid: Vec<&Value> = list.iter().filter(|r| r["outcome"] == "paid").collect();
        assert_eq!(paid.len(), paid_before + 1, "{what}: paid receipts");
        let g = self.p.grant_show(&self.gid);
        let n = |k: &str| g[k].as_str().and_then(|s| s.parse::<u128>().ok()).unwrap_or_else(|| panic!("{k} in {g}"));
        assert_eq!(n("spent_atomic"), price * paid.len() as u128, "{what}: spent = sum of payments: {g}");
        assert_eq!(n("reserved_atomic"), 0, "{what}: nothing left reserved: {g}");
        assert_eq!(n("spent_atomic") + n("reserved_atomic") + n("remaining_atomic"), 1_000_000, "{what}: spent + reserved + remaining = budget: {g}");
        assert!(self.p.is_running(), "{what}: the daemon is still the same process");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_refuses_to_pay_and_recovers() {
    let scratch = tempfile::Builder::new().prefix("purser-diskfull-").tempdir().unwrap();
    if let Err(why) = can_mount(scratch.path()) {
        return skip_loudly(&why);
    }
    let mnt = mount_tmpfs(&scratch.path().join("fs"), "4m").expect("mount tmpfs");
    let mut s = setup(mnt.dir.join("data")).await;
    let first = s.paid().await;
    assert_eq!(first.status, 200, "paid before the disk fills: {first}");

    let filled = fill(&mnt.dir);
    println!("filled the 4 MiB tmpfs with {filled} bytes");
    s.assert_refuses_during_outage("disk full").await;
    // Still full a while later (the retry task runs every second): nothing changes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.assert_refuses_during_outage("disk still full").await;

    std::fs::remove_file(mnt.dir.join("filler")).unwrap();
    s.assert_recovers("disk full", 1).await;
    drop(s);
    drop(mnt);
}

/// Makes the ledger's files unwritable under the running daemon. `chmod 0444` changes nothing
/// for a descriptor already open for writing (nor for root), and `mount -o remount,ro` is refused
/// (EBUSY) while one is open, so the files get the immutable attribute, which ext4 enforces on
/// open descriptors too (tmpfs does not). The chmod is done as well, as a user would.
fn make_read_only(data: &Path, on: bool) {
    for name in ["purser.db", "purser.db-wal"] {
        let f = data.join(name);
        if !f.exists() {
            continue;
        }
        if on {
            run(Command::new("chmod").arg("0444").arg(&f)).unwrap();
            run(Command::new("chattr").arg("+i").arg(&f)).unwrap();
        } else {
            run(Command::new("chattr").arg("-i").arg(&f)).unwrap();
            run(Command::new("chmod").arg("0600").arg(&f)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_ledger_refuses_to_pay_and_recovers() {
    let scratch = tempfile::Builder::new().prefix("purser-diskro-").tempdir().unwrap();
    if let Err(why) = can_mount(scratch.path()) {
        return skip_loudly(&why);
    }
    let mnt = match mount_ext4(&scratch.path().join("fs"), &scratch.path().join("fs.img"), 16) {
        Ok(m) => m,
        Err(why) => return skip_loudly(&format!("no loop-mounted ext4 image: {why}")),
    };
    let mut s = setup(mnt.dir.join("data")).await;
    let first = s.paid().await;
    assert_eq!(first.status, 200, "paid before the ledger turns read-only: {first}");

    make_read_only(&s.p.data_dir, true);
    s.assert_refuses_during_outage("read-only ledger").await;

    make_read_only(&s.p.data_dir, false);
    s.assert_recovers("read-only ledger", 1).await;
    drop(s);
    drop(mnt);
}
