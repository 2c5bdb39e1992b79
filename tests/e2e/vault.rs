//! e2e: wallet custody with the real binary. The vault on disk (no plaintext key anywhere,
//! tampering and wrong passphrases are clear errors, no KDF downgrade), the OS keychain (a real
//! gnome-keyring on a private bus: store, read, delete; the fallback without one), lock/unlock
//! of a running daemon (a locked wallet refuses to pay against the real peers: the receipt says
//! so and nothing settles on chain), and proof that a release build never uses the test KDF.

use purser_testkit::{agent, facilitator_count, proc, send, usdc_balance, Keyring, Mode, NotifyServer, Peers, Purser, ServeOptions, SessionBus, ANVIL_PAYER_KEY};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_purser");
const PASS: &str = "vault-e2e-correct-horse";
const TEST_KDF: (&str, &str) = ("PURSER_INSECURE_TEST_KDF", "1");
/// Bytes 10..22 of a vault: m_cost, t_cost, p_cost (little-endian u32s).
const RELEASE_PARAMS: (u32, u32, u32) = (65536, 3, 1);
const TEST_PARAMS: (u32, u32, u32) = (256, 1, 1);

/// A data dir and the environment every purser process of a test gets (its own TMPDIR, a bus
/// or none, never the developer's keyring or proxies).
struct Sandbox {
    work: tempfile::TempDir,
    env: Vec<(&'static str, OsString)>,
}

impl Sandbox {
    fn new(env: Vec<(&'static str, OsString)>) -> Sandbox {
        let work = tempfile::Builder::new().prefix("purser-vault-").tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("tmp")).unwrap();
        Sandbox { work, env }
    }
    fn data(&self) -> PathBuf {
        self.work.path().join("data")
    }
    fn tmp(&self) -> PathBuf {
        self.work.path().join("tmp")
    }
    fn cmd(&self, bin: &str, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new(bin);
        c.arg("--data-dir").arg(self.data()).args(args);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TMPDIR", self.tmp())
            .env("HOME", self.work.path())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (*k, v.clone())))
            .envs(extra.iter().copied())
            .stdin(Stdio::null());
        c
    }
    /// Unlock and export widen what can be spent: the passphrase is typed at a terminal (the
    /// `PURSER_PASSPHRASE` of `extra` is what gets typed, and stays in the environment too, where
    /// the CLI must not read it for these).
    fn run_with(&self, bin: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let os: Vec<OsString> = args.iter().map(OsString::from).collect();
        if purser_testkit::purser::asks_presence(&os) {
            let typed = extra.iter().find(|(k, _)| *k == "PURSER_PASSPHRASE").map_or("", |(_, v)| *v);
            let out = purser_testkit::pty::run_at_terminal(self.cmd(bin, args, extra), &[("passphrase", typed)], Duration::from_secs(120));
            return Output { status: out.status, stdout: out.stdout, stderr: out.stderr };
        }
        proc::run_with_timeout(self.cmd(bin, args, extra), Duration::from_secs(120))
    }
    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        self.run_with(BIN, args, extra)
    }
    fn ok(&self, args: &[&str], extra: &[(&str, &str)]) -> String {
        let out = self.run(args, extra);
        assert!(out.status.success(), "purser {args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn json(&self, args: &[&str], extra: &[(&str, &str)]) -> Value {
        let text = self.ok(args, extra);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("purser {args:?} printed no JSON ({e}): {text}"))
    }
    /// Imports `key` (from a file outside the scanned dirs, removed afterwards).
    fn import(&self, key: &str, extra: &[(&str, &str)]) -> String {
        let key_file = self.work.path().join("payer.key");
        std::fs::write(&key_file, key).unwrap();
        let v = self.json(&["wallet", "import", "--key-file", key_file.to_str().unwrap(), "--json"], &[&[("PURSER_PASSPHRASE", PASS)], extra].concat());
        std::fs::remove_file(&key_file).unwrap();
        v["address"].as_str().unwrap().to_string()
    }
    /// `purser serve --port 0 --no-notify`; returns the daemon once its control file exists.
    fn serve(&self, extra: &[(&str, &str)]) -> Daemon {
        let log = self.work.path().join(format!("serve-{}.stderr", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()));
        let mut child = self.cmd(BIN, &["serve", "--port", "0", "--no-notify"], extra).stdout(Stdio::piped()).stderr(proc::log_stdio(&log)).spawn().unwrap();
        let lines = proc::line_reader(child.stdout.take().unwrap(), &self.work.path().join("serve.stdout"));
        let first = lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            proc::terminate(&mut child, Duration::from_secs(3));
            panic!("serve printed nothing: {}", proc::tail(&log, 30))
        });
        assert!(first.starts_with("listening on http://127.0.0.1:"), "{first}");
        std::thread::spawn(move || for _ in lines {});
        for _ in 0..250 {
            if self.data().join("control.json").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, log }
    }
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn stop(mut self) -> String {
        proc::terminate(&mut self.child, Duration::from_secs(10));
        self.stderr()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        proc::terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// The environment that selects the test-only cheap KDF (honoured by debug builds only).
fn test_kdf() -> Vec<(&'static str, OsString)> {
    vec![(TEST_KDF.0, OsString::from(TEST_KDF.1))]
}

fn show(out: &Output) -> String {
    format!("status {}\n--- stdout\n{}\n--- stderr\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn params(vault: &Path) -> (u32, u32, u32) {
    let b = std::fs::read(vault).unwrap();
    let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    (u(10), u(14), u(18))
}

/// Every file under `dir` (recursively) that holds the key, as hex (any case, with or without
/// 0x) or as its 32 raw bytes.
fn files_with_key(dir: &Path, key_hex: &str) -> Vec<PathBuf> {
    let hex = key_hex.trim().trim_start_matches("0x").to_lowercase();
    let raw: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                let text = String::from_utf8_lossy(&b).to_lowercase();
                if text.contains(&hex) || b.windows(32).any(|w| w == raw.as_slice()) {
                    found.push(p);
                }
            }
        }
    }
    found
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()).unwrap_or(0)
}

#[test]
fn tampered_or_wrong_passphrase_is_a_clear_error_and_no_downgrade() {
    let b = Sandbox::new(test_kdf());
    b.import(ANVIL_PAYER_KEY, &[]);
    let vault = b.data().join("wallet.vault");
    assert_eq!(params(&vault), TEST_PARAMS, "the test KDF is in use (debug build, env var)");
    let good = std::fs::read(&vault).unwrap();
    let wrong = b.run(&["wallet", "unlock"], &[("PURSER_PASSPHRASE", "not-the-passphrase")]);
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("wrong passphrase (or the wallet file was altered) (wallet_unlock_failed)"), "{}", show(&wrong));
    // Flip each byte of the vault, one at a time: unlock fails with a named error, never panics.
    for i in 0..good.len() {
        for mask in [0x01u8, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= mask;
            std::fs::write(&vault, &bad).unwrap();
            let out = b.run(&["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS)]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "byte {i} ^ {mask:#x}: {}", show(&out));
            assert!(!err.contains("panicked"), "byte {i}: {err}");
            assert!(["(wallet_corrupt)", "(wallet_unlock_failed)", "(weak_kdf_params)"].iter().any(|c| err.contains(c)), "byte {i} ^ {mask:#x}: {err}");
        }
    }
    // A truncated file and a foreign one are named as damaged.
    for bad in [&good[..good.len() - 1], b"{\"crypto\": {}}".as_slice()] {
        std::fs::write(&vault, bad).unwrap();
        let out = b.run(&["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS)]);
        assert!(stderr(&out).contains("the wallet file is damaged") && stderr(&out).contains("(wallet_corrupt)"), "{}", show(&out));
    }
    std::fs::write(&vault, &good).unwrap();
    b.ok(&["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS)]);
    // Without the test switch, the same binary refuses the cheap vault: the floor holds.
    let strict = Sandbox::new(vec![]);
    std::fs::create_dir_all(strict.data()).unwrap();
    std::fs::write(strict.data().join("wallet.vault"), &good).unwrap();
    let out = strict.run(&["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS)]);
    let want = "the wallet file's key derivation parameters Argon2id m=256 KiB, t=1, p=1 are below the floor Argon2id m=65536 KiB, t=3, p=1; refusing to unlock it (weak_kdf_params)";
    assert!(stderr(&out).contains(want), "{}", show(&out));
    // Editing release parameters down in the header breaks authentication.
    let real = Sandbox::new(vec![]);
    real.import(ANVIL_PAYER_KEY, &[]);
    let rv = real.data().join("wallet.vault");
    assert_eq!(params(&rv), RELEASE_PARAMS);
    let mut edited = std::fs::read(&rv).unwrap();
    edited[10..14].copy_from_slice(&256u32.to_le_bytes());
    edited[14..18].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&rv, &edited).unwrap();
    let out = real.run(&["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS), TEST_KDF]);
    assert!(stderr(&out).contains("(wallet_unlock_failed)"), "a downgraded header never opens: {}", show(&out));
}

#[test]
fn export_needs_the_passphrase_and_a_confirmation() {
    let b = Sandbox::new(test_kdf());
    let address = b.json(&["wallet", "new", "--json"], &[("PURSER_PASSPHRASE", PASS)])["address"].as_str().unwrap().to_string();
    assert_eq!(b.json(&["wallet", "address", "--json"], &[])["address"], address);
    // No terminal and no --yes-i-understand: refused before anything is asked.
    let refused = proc::run_with_timeout(b.cmd(BIN, &["wallet", "export"], &[("PURSER_PASSPHRASE", PASS)]), Duration::from_secs(60));
    assert!(!refused.status.success() && refused.stdout.is_empty(), "{}", show(&refused));
    assert!(stderr(&refused).contains("WARNING: whoever holds this private key") && stderr(&refused).contains("--yes-i-understand"), "{}", show(&refused));
    let wrong = b.run(&["wallet", "export", "--yes-i-understand"], &[("PURSER_PASSPHRASE", "nope")]);
    assert!(!wrong.status.success() && wrong.stdout.is_empty() && stderr(&wrong).contains("(wallet_unlock_failed)"), "{}", show(&wrong));
    let key = b.ok(&["wallet", "export", "--yes-i-understand"], &[("PURSER_PASSPHRASE", PASS)]).trim().to_string();
    assert!(key.starts_with("0x") && key.len() == 66, "{key}");
    // The exported key is this wallet's: it imports elsewhere to the same address...
    let other = Sandbox::new(test_kdf());
    assert_eq!(other.import(&key, &[]), address);
    // ...and as a standard keystore it round-trips through `import --keystore`.
    let ks = b.work.path().join("exported.json");
    b.ok(&["wallet", "export", "--keystore", ks.to_str().unwrap()], &[("PURSER_PASSPHRASE", PASS)]);
    let third = Sandbox::new(test_kdf());
    let bad = third.run(&["wallet", "import", "--keystore", ks.to_str().unwrap()], &[("PURSER_KEYSTORE_PASSPHRASE", "nope"), ("PURSER_PASSPHRASE", "x")]);
    assert!(stderr(&bad).contains("(wallet_unlock_failed)"), "{}", show(&bad));
    let v = third.json(&["wallet", "import", "--keystore", ks.to_str().unwrap(), "--json"], &[("PURSER_KEYSTORE_PASSPHRASE", PASS), ("PURSER_PASSPHRASE", "third")]);
    assert_eq!(v["address"], address);
    // No plaintext key in any data dir or temp dir after new, export, import.
    for d in [b.data(), b.tmp(), other.data(), other.tmp(), third.data(), third.tmp()] {
        assert!(files_with_key(&d, &key).is_empty(), "plaintext key in {:?}", files_with_key(&d, &key));
    }
}

/// The real Secret Service: `unlock --remember` stores the unlocking secret, `serve` starts
/// unlocked from it with no passphrase anywhere, `lock --forget` deletes it; without a Secret
/// Service every path falls back to the passphrase and says so. No plaintext key on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keychain_remembers_unlocks_and_forgets() {
    let bus = SessionBus::start();
    let kr = Keyring::start(&bus).await;
    let b = Sandbox::new(kr.env());
    let address = b.import(ANVIL_PAYER_KEY, &[]);
    let user = format!("wallet-{}-", address.trim_start_matches("0x").to_lowercase());
    assert_eq!(kr.count("purser"), 0);

    // No daemon: --remember stores the secret for the next start.
    let out = b.ok(&["wallet", "unlock", "--remember"], &[("PURSER_PASSPHRASE", PASS)]);
    assert!(out.contains("the OS keychain now remembers this wallet"), "{out}");
    assert_eq!(kr.count("purser"), 1);
    let listing = kr.search("purser");
    let account = listing.lines().find_map(|l| l.strip_prefix("attribute.username = ")).unwrap_or_else(|| panic!("{listing}")).to_string();
    assert!(account.starts_with(&user), "{account}");
    let secret = kr.lookup("purser", &account).expect("libsecret reads what keyring stored");
    assert_eq!(secret.len(), 64, "a 32-byte key-encryption key, hex");
    assert!(!secret.contains(PASS) && !secret.eq_ignore_ascii_case(ANVIL_PAYER_KEY.trim_start_matches("0x")), "neither the passphrase nor the key");
    let st = b.json(&["wallet", "status", "--json"], &[]);
    assert_eq!((st["locked"].as_bool(), st["remembered"].as_bool(), st["keychain"].as_str()), (Some(true), Some(true), Some("available")), "{st}");

    // serve with no PURSER_PASSPHRASE and no terminal: unlocked from the keychain.
    let d = b.serve(&[]);
    let st = b.json(&["wallet", "status", "--json"], &[]);
    assert_eq!((st["locked"].as_bool(), st["remembered"].as_bool()), (Some(false), Some(true)), "{st}\n{}", d.stderr());
    assert!(d.stderr().contains("wallet unlocked with the secret the OS keychain remembers"), "{}", d.stderr());
    // lock --forget through the daemon: locked, and the keychain entry is gone.
    let st = b.json(&["wallet", "lock", "--forget", "--json"], &[]);
    assert_eq!((st["locked"].as_bool(), st["remembered"].as_bool()), (Some(true), Some(false)), "{st}");
    assert_eq!(kr.count("purser"), 0);
    assert_eq!(kr.lookup("purser", &account), None);
    // unlock --remember through the daemon stores it again.
    let st = b.json(&["wallet", "unlock", "--remember", "--json"], &[("PURSER_PASSPHRASE", PASS)]);
    assert_eq!((st["locked"].as_bool(), st["remembered"].as_bool()), (Some(false), Some(true)), "{st}");
    assert_eq!(kr.lookup("purser", &account).as_deref(), Some(secret.as_str()), "the same vault, the same key-encryption key");
    d.stop();

    // Re-sealed (new salt): the remembered secret no longer opens it; serve says so and uses
    // the passphrase.
    std::fs::remove_file(b.data().join("wallet.vault")).unwrap();
    assert_eq!(b.import(ANVIL_PAYER_KEY, &[]), address);
    let d = b.serve(&[("PURSER_PASSPHRASE", PASS)]);
    assert_eq!(b.json(&["wallet", "status", "--json"], &[])["locked"], false);
    let log = d.stop();
    assert!(log.contains("the OS keychain's remembered secret no longer opens this wallet") && log.contains("using the passphrase instead"), "{log}");

    // Forgotten (no daemon): the next serve has no way in and starts locked, saying so.
    let out = b.ok(&["wallet", "lock", "--forget"], &[]);
    assert!(out.contains("no longer remembers"), "{out}");
    let d = b.serve(&[]);
    assert_eq!(b.json(&["wallet", "status", "--json"], &[])["locked"], true);
    let log = d.stop();
    assert!(log.contains("the wallet is locked (nothing remembered in the OS keychain, no PURSER_PASSPHRASE, no terminal)"), "{log}");

    // No plaintext key: not in the data dir, the temp dir, nor the keyring's own files.
    for dir in [b.data(), b.tmp(), kr.data_dir()] {
        assert!(files_with_key(&dir, ANVIL_PAYER_KEY).is_empty(), "plaintext key in {:?}", files_with_key(&dir, ANVIL_PAYER_KEY));
    }
    assert!(count_files(&kr.data_dir()) > 0, "the keyring did write its (encrypted) files where we scanned");

    // A bus with no Secret Service: the passphrase path, with a clear message.
    let bare = SessionBus::start();
    let nb = Sandbox::new(vec![("DBUS_SESSION_BUS_ADDRESS", bare.address.clone().into())]);
    nb.import(ANVIL_PAYER_KEY, &[]);
    let out = nb.run(&["wallet", "unlock", "--remember"], &[("PURSER_PASSPHRASE", PASS)]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("the OS keychain is unavailable") && stderr(&out).contains("the passphrase is needed at every unlock (keychain_unavailable)"), "{}", show(&out));
    let d = nb.serve(&[("PURSER_PASSPHRASE", PASS)]);
    let st = nb.json(&["wallet", "status", "--json"], &[]);
    assert_eq!((st["locked"].as_bool(), st["remembered"].as_bool(), st["keychain"].as_str()), (Some(false), Some(false), Some("unavailable")), "{st}");
    let st = nb.json(&["wallet", "unlock", "--remember", "--json"], &[("PURSER_PASSPHRASE", PASS)]);
    assert_eq!((st["locked"].as_bool(), st["remembered"].as_bool()), (Some(false), Some(false)), "{st}");
    assert!(st["keychain_message"].as_str().is_some_and(|m| m.contains("the OS keychain is unavailable")), "{st}");
    let log = d.stop();
    assert!(log.contains("the OS keychain is unavailable") && log.contains("using the passphrase instead"), "{log}");
}

/// Locked wallet against the real peers: refused with `wallet_locked`, a receipt that says so,
/// nothing verified or settled, no USDC moved; unlocked again, the same request pays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_wallet_refuses_to_pay_and_says_so() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--label", "locked", "--budget", "1.00", "--auto-below", "0.50", "--ask-below", "1.00"]);
    let st = p.cli_json(&["wallet", "lock", "--json"]);
    assert_eq!(st["locked"], true, "{st}");
    assert_eq!(p.cli_json(&["wallet", "status", "--json"])["locked"], true);
    let (payee, payer) = (usdc_balance(&peers.rpc, &peers.pay_to).await, usdc_balance(&peers.rpc, &peers.payer_address).await);
    let (verify, settle) = (facilitator_count(&peers.facilitator, "verify").await, facilitator_count(&peers.facilitator, "settle").await);
    let c = agent();
    let url = p.gateway_url(&format!("{}/cheap", peers.v2));
    let r = send(c.get(&url).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.code().as_deref(), Some("wallet_locked"), "{r}");
    assert!(r.json()["message"].as_str().is_some_and(|m| m.starts_with("wallet locked")), "{r}");
    let receipt = p.receipt(&r.receipt_id());
    assert_eq!((receipt["outcome"].as_str(), receipt["reason"].as_str()), (Some("refused"), Some("wallet_locked")), "{receipt}");
    assert!(receipt["tx"].is_null() && receipt["payload_hash"].is_null(), "nothing signed: {receipt}");
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str()), (Some("0"), Some("0")), "{g}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, payee, "nothing settled on chain");
    assert_eq!(usdc_balance(&peers.rpc, &peers.payer_address).await, payer);
    assert_eq!(facilitator_count(&peers.facilitator, "verify").await, verify);
    assert_eq!(facilitator_count(&peers.facilitator, "settle").await, settle);

    // A wrong passphrase through the control API is a clear error and leaves it locked; the
    // right one only in the environment is no unlock at all (it must be typed).
    let wrong = p.cli_typing(&["wallet", "unlock"], "wrong");
    let wrong = Output { status: wrong.status, stdout: wrong.stdout, stderr: wrong.stderr };
    assert!(!wrong.status.success() && stderr(&wrong).contains("wrong passphrase") && stderr(&wrong).contains("(wallet_unlock_failed)"), "{}", show(&wrong));
    let env_only = p.cli_without_tty(&["wallet", "unlock"]);
    assert!(!env_only.status.success() && stderr(&env_only).contains("(presence_required)"), "{}", show(&env_only));
    assert_eq!(p.cli_json(&["wallet", "status", "--json"])["locked"], true);

    // Unlocked at runtime (the harness's PURSER_PASSPHRASE), the same request pays.
    let st = p.cli_json(&["wallet", "unlock", "--json"]);
    assert_eq!(st["locked"], false, "{st}");
    let r = send(c.get(&url).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(p.receipt(&r.receipt_id())["outcome"], "paid");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, payee + 1000, "paid once, after unlocking");
    assert!(files_with_key(&p.data_dir, &peers.payer_key).is_empty(), "plaintext key in {:?}", files_with_key(&p.data_dir, &peers.payer_key));
}

/// The release build never uses the test KDF: build it (the real `--release` profile), ask it
/// for the cheap parameters, and check it seals with the release ones and refuses a cheap vault.
/// Also prints the release unlock time (a figure, not a gate).
#[test]
fn release_build_never_uses_the_test_kdf() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--release", "-p", "purser", "--locked"]).current_dir(&root).stdout(Stdio::null()).stderr(Stdio::piped());
    let out = proc::run_with_timeout(build, Duration::from_secs(3600));
    assert!(out.status.success(), "cargo build --release: {}", show(&out));
    let release = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("release/purser");

    let b = Sandbox::new(test_kdf());
    let key_file = b.work.path().join("k");
    std::fs::write(&key_file, ANVIL_PAYER_KEY).unwrap();
    let out = b.run_with(release.to_str().unwrap(), &["wallet", "import", "--key-file", key_file.to_str().unwrap()], &[("PURSER_PASSPHRASE", PASS)]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(params(&b.data().join("wallet.vault")), RELEASE_PARAMS, "PURSER_INSECURE_TEST_KDF=1 is ignored by the release build");
    let t = std::time::Instant::now();
    let out = b.run_with(release.to_str().unwrap(), &["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS)]);
    let unlock = t.elapsed();
    assert!(out.status.success(), "{}", show(&out));
    println!("release unlock (Argon2id m=64 MiB t=3 p=1, whole CLI process): {} ms", unlock.as_millis());

    // A cheap vault (sealed by this debug build with the switch) never opens in release.
    let cheap = Sandbox::new(test_kdf());
    cheap.import(ANVIL_PAYER_KEY, &[]);
    assert_eq!(params(&cheap.data().join("wallet.vault")), TEST_PARAMS);
    let out = cheap.run_with(release.to_str().unwrap(), &["wallet", "unlock"], &[("PURSER_PASSPHRASE", PASS)]);
    assert!(!out.status.success() && stderr(&out).contains("(weak_kdf_params)"), "{}", show(&out));
}

/// The prompt for a payment held while the wallet is locked says so first, and approving it
/// still refuses (`wallet_locked`, decided by the user), with nothing settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prompt_while_locked_says_so_and_approving_refuses() {
    let peers = Peers::start(Mode::Real);
    let bus = SessionBus::start();
    let server = NotifyServer::start(&bus, &["actions", "body", "persistence"]).await;
    let p = Purser::start_with(BIN, &peers.payer_key, ServeOptions { session_bus: Some(bus.address.clone()), ..Default::default() });
    let (_, token) = p.grant(&["--label", "held", "--budget", "1.00", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "60s"]);
    assert_eq!(p.cli_json(&["wallet", "lock", "--json"])["locked"], true);
    let payee = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let settle = facilitator_count(&peers.facilitator, "settle").await;
    let rb = agent().get(p.gateway_url(&format!("{}/mid", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}"));
    let held = tokio::spawn(send(rb));
    let n = server.wait_for(1, Duration::from_secs(30)).await.remove(0);
    assert!(n.summary.ends_with("(wallet locked)"), "{n:#?}");
    assert!(n.body.starts_with("Wallet locked: approving will still refuse this payment"), "{n:#?}");
    server.invoke(n.id, "approve").await;
    let r = tokio::time::timeout(Duration::from_secs(60), held).await.expect("answered").expect("agent task");
    assert_eq!((r.status, r.code().as_deref()), (403, Some("wallet_locked")), "{r}");
    let receipt = p.receipt(&r.receipt_id());
    assert_eq!((receipt["reason"].as_str(), receipt["decided_by"].as_str()), (Some("wallet_locked"), Some("user")), "{receipt}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, payee);
    assert_eq!(facilitator_count(&peers.facilitator, "settle").await, settle);
}
