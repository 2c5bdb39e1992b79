//! e2e: "pause all spending" (`purser pause`) refuses every payment with a receipt
//! (`spending_paused`) and settles nothing, survives a daemon restart, and `purser resume` pays
//! again; a second owner of the same data dir is refused with a message naming the running one.

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Mode, Peers, Purser, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

async fn get_cheap(p: &Purser, peers: &Peers, token: &str) -> Reply {
    send(agent().get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await
}

fn assert_paused_refusal(p: &Purser, r: &Reply) {
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.code().as_deref(), Some("spending_paused"), "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!(rec["outcome"], "refused", "{rec}");
    assert_eq!(rec["reason"], "spending_paused", "{rec}");
    assert_eq!(rec["amount_atomic"], "1000", "the receipt names what was asked: {rec}");
    assert!(rec["tx"].is_null() && rec["payload_hash"].is_null(), "nothing signed: {rec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_refuses_with_receipt_and_resume_pays() {
    let peers = Peers::start(Mode::Real);
    let mut p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    let v = p.cli_json(&["pause", "--json"]);
    assert_eq!(v["paused"], true, "{v}");
    let r = get_cheap(&p, &peers, &token).await;
    assert_paused_refusal(&p, &r);

    // A second owner of the data dir is refused, naming the running daemon.
    let out = p.cli(&["serve", "--port", "0", "--no-notify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second serve must not start: {err}");
    let want = format!("Purser is already running (the daemon, pid {}, at {})", p.pid().unwrap(), p.proxy_url);
    assert!(err.contains(&want), "stderr {err:?} lacks {want:?}");

    // The switch is stored: a restarted daemon is still paused.
    p.restart();
    let r = get_cheap(&p, &peers, &token).await;
    assert_paused_refusal(&p, &r);
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str()), (Some("0"), Some("0")), "{g}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, before, "nothing paid while paused");
    assert_eq!(facilitator_stats(&peers.facilitator).await["settle"], 0, "nothing settled while paused");

    let v = p.cli_json(&["resume", "--json"]);
    assert_eq!(v["paused"], false, "{v}");
    let r = get_cheap(&p, &peers, &token).await;
    assert_eq!(r.status, 200, "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["outcome"].as_str(), rec["reason"].as_str()), (Some("paid"), Some("paid")), "{rec}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, before + 1000, "paid after resume");
}

#[test]
fn pause_without_a_daemon_is_stored_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN).arg("--data-dir").arg(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(run(&["pause", "--json"])["paused"], true);
    assert_eq!(run(&["pause", "--json"])["paused"], true, "idempotent");
    // Resuming widens spending: with nobody at a terminal it is refused and stays paused...
    let refused = std::process::Command::new(BIN).arg("--data-dir").arg(dir.path()).args(["resume", "--json"]).output().unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&refused.stdout).unwrap()["code"], "presence_required");
    assert_eq!(run(&["pause", "--json"])["paused"], true);
    // ...and with the wallet's passphrase typed at one, it resumes.
    let new = std::process::Command::new(BIN).arg("--data-dir").arg(dir.path()).args(["wallet", "new"]).env("PURSER_PASSPHRASE", "pause-e2e").env("PURSER_INSECURE_TEST_KDF", "1").output().unwrap();
    assert!(new.status.success(), "{}", String::from_utf8_lossy(&new.stderr));
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(dir.path()).args(["resume", "--json"]).env("PURSER_INSECURE_TEST_KDF", "1");
    let out = purser_testkit::pty::run_in_pty(cmd, &[("passphrase", "pause-e2e")], std::time::Duration::from_secs(60));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["paused"], false, "{}", String::from_utf8_lossy(&out.stderr));
}
