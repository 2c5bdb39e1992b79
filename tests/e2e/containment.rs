//! e2e: the agent is untrusted code. A hostile agent started with `purser run` (real bubblewrap,
//! real daemon, real peers on the local chain) tries every way out it has and gets none, while
//! its governed payments work; widening actions need the user's presence (the passphrase typed
//! on a real pseudo-terminal, never the environment); and every governed request says who asked
//! (the run, or the local process with its parent chain: curl, Python requests, Node fetch).

use purser_testkit::pty::{run_at_terminal, PtyOutput};
use purser_testkit::purser::PASSPHRASE;
use purser_testkit::{usdc_balance, Mode, Peers, Purser};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// The hostile agent: each attempt prints `ATTEMPT <name> <ok|blocked> <detail>`. `ok` for an
/// escape means it got out; the governed payments are the ones that must say `ok`.
const HOSTILE: &str = r#"#!/bin/sh
# args: PAYWALL(host:port) DATA_DIR CONTROL_SOCKET DAEMON_PID BUS_ADDRESS HOST_INTERNAL(host:port) MARKER PURSER_BIN
PAYWALL=$1 DATA=$2 SOCK=$3 DPID=$4 BUS=$5 INTERNAL=$6 BIN=$8
say() { echo "ATTEMPT $1 $2 $3"; }
# 127: the tool itself is missing, which proves nothing (the test fails on `missing`).
try() { name=$1; shift; out=$("$@" 2>&1); rc=$?; detail=$(echo "$out" | head -c 200 | tr '\n' ' '); if [ $rc = 0 ]; then say "$name" ok "$detail"; elif [ $rc = 127 ]; then say "$name" missing "$detail"; else say "$name" blocked "$detail"; fi; }
echo "$PURSER_GRANT" > token.txt
# Governed payments: both ways the contract names (loopback peers need --noproxy '').
code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '' -x "$HTTPS_PROXY" "http://$PAYWALL/cheap"); say pay_via_https_proxy "$([ "$code" = 200 ] && echo ok || echo blocked)" "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Proxy-Authorization: Bearer $PURSER_GRANT" "$PURSER_PROXY/http://$PAYWALL/cheap"); say pay_via_gateway "$([ "$code" = 200 ] && echo ok || echo blocked)" "$code"
# A payment in the ask tier, held for the user while we try to approve it ourselves.
curl -s -o held.out -w '%{http_code}' --noproxy '' -x "$HTTPS_PROXY" "http://$PAYWALL/mid" > held.code &
sleep 2
try cli_approvals_list sh -c "'$BIN' --data-dir '$DATA' approvals list --json | grep '\"id\"'"
try cli_approve_default_dir sh -c "'$BIN' approvals list --json | grep '\"id\"'"
try cli_top_up "$BIN" --data-dir "$DATA" grant top-up anything 1000 --json
try cli_grant_create "$BIN" --data-dir "$DATA" grant create --label mine --budget 1000 --expires 7d --host '*' --json
try cli_rules_add "$BIN" --data-dir "$DATA" rules add anything --allow "$PAYWALL" --up-to 1 --for 7d --json
try cli_resume "$BIN" --data-dir "$DATA" resume --json
try read_data_dir sh -c "ls -A '$DATA' | grep . && cat '$DATA/control.json'"
try write_data_dir sh -c "echo x > '$DATA/purser.db-pwned'"
try read_ledger sh -c "test -s '$DATA/purser.db' && head -c 16 '$DATA/purser.db'"
try control_socket curl -s -f --unix-socket "$SOCK" http://purser/_purser/v1/approvals
try control_via_proxy sh -c "curl -s -f -H 'Proxy-Authorization: Bearer $PURSER_GRANT' \"\$PURSER_PROXY/_purser/v1/approvals\""
try daemon_environ sh -c "cat /proc/$DPID/environ | tr '\0' '\n' | grep -a PURSER_PASSPHRASE"
try daemon_proc sh -c "test -e /proc/$DPID/exe && readlink /proc/$DPID/exe"
try session_bus dbus-send --bus="$BUS" --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.ListNames
try secret_service dbus-send --bus="$BUS" --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets org.freedesktop.DBus.Peer.Ping
try direct_tcp_paywall curl -s -f -m 3 --noproxy '*' "http://$PAYWALL/cheap"
try proxy_to_host_internal curl -s -f -m 5 --noproxy '' -x "$HTTPS_PROXY" "http://$INTERNAL/"
try passphrase_in_env sh -c 'env | grep -a PURSER_PASSPHRASE'
touch attempts.done
# Outside, the test tries our token while we wait; then it answers the held request.
while [ ! -e go ]; do sleep 0.1; done
wait
say held_request_answer info "$(cat held.code)"
exit 0
"#;

/// The escapes: each must be `blocked`.
const ESCAPES: &[&str] = &[
    "cli_approvals_list",
    "cli_approve_default_dir",
    "cli_top_up",
    "cli_grant_create",
    "cli_rules_add",
    "cli_resume",
    "read_data_dir",
    "write_data_dir",
    "read_ledger",
    "control_socket",
    "control_via_proxy",
    "daemon_environ",
    "daemon_proc",
    "session_bus",
    "secret_service",
    "direct_tcp_paywall",
    "proxy_to_host_internal",
    "passphrase_in_env",
];

fn text(o: &Output) -> String {
    format!("status {}\n--- stdout\n{}\n--- stderr\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn pty_text(o: &PtyOutput) -> String {
    format!("status {}\n--- stdout\n{}\n--- stderr\n{}\n--- tty\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr), o.tty)
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line contains `marker` (none may outlive a run).
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok().map(|c| (e.file_name(), c)))
        .filter(|(pid, c)| String::from_utf8_lossy(c).contains(marker) && pid.to_string_lossy() != std::process::id().to_string())
        .map(|(pid, c)| format!("{} {}", pid.to_string_lossy(), String::from_utf8_lossy(&c).replace('\0', " ")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_agent_in_a_run_gets_no_way_out_and_its_payments_work() {
    let peers = Peers::start(Mode::Real);
    let bus = purser_testkit::SessionBus::start();
    let p = Purser::start(BIN, &peers);
    let paywall = host_port(&peers.v2);
    let internal = host_port(&peers.facilitator);
    let daemon_pid = p.pid().unwrap();
    let control: Value = serde_json::from_slice(&std::fs::read(p.data_dir.join("control.json")).unwrap()).unwrap();
    let socket = control["socket"].as_str().unwrap().to_string();
    // The daemon got the passphrase in its environment: it is gone from there.
    let environ = std::fs::read(format!("/proc/{daemon_pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(PASSPHRASE), "the daemon's /proc/<pid>/environ still shows the passphrase");

    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("hostile.sh"), HOSTILE).unwrap();
    let payee_before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let marker = format!("hostile-{}", std::process::id());

    // Started as a user would: a new grant for the run, the passphrase typed at the terminal.
    let mut cmd = Command::new(&p.bin);
    cmd.current_dir(work.path())
        .args(["--data-dir", p.data_dir.to_str().unwrap(), "run", "--label", "hostile", "--budget", "1.00", "--expires", "1h"])
        .args(["--host", &paywall, "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "120s", "--"])
        .args(["sh", "hostile.sh", &paywall, p.data_dir.to_str().unwrap(), &socket, &daemon_pid.to_string(), &bus.address, &internal, &marker, p.bin.to_str().unwrap()])
        .env("PURSER_PASSPHRASE", PASSPHRASE)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    let t0 = Instant::now();
    let run = std::thread::spawn(move || run_at_terminal(cmd, &[("passphrase", PASSPHRASE)], Duration::from_secs(240)));

    // The run's token, written by the agent into its working dir: refused from outside the run.
    let token_file = work.path().join("token.txt");
    wait_for("the agent's token file", Duration::from_secs(60), || std::fs::read_to_string(&token_file).is_ok_and(|t| t.trim().starts_with("pgt_")));
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    let c = purser_testkit::agent();
    let outside = purser_testkit::send(c.get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!((outside.status, outside.code().as_deref()), (407, Some("unknown_token")), "the run's token outside the run: {outside}");

    // The held request waits for the user, unapproved, while the agent tries everything.
    let held = p.wait_approvals(1, Duration::from_secs(60), |a| a["grant_label"] == "hostile");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!((held[0]["who"]["kind"].as_str(), held[0]["who"]["run_label"].as_str()), (Some("run"), Some("hostile")), "{}", held[0]);
    wait_for("the agent's last attempt", Duration::from_secs(120), || work.path().join("attempts.done").exists());
    assert_eq!(p.approvals().len(), 1, "still pending for the user, and only the user");
    let grant_id = held[0]["grant_id"].as_str().unwrap().to_string();
    // The run's grant is spent only by runs.
    let g = p.grant_show(&grant_id);
    assert_eq!(g["only_run"], true, "{g}");
    // Approving needs the user at a terminal: the CLI with no terminal (the passphrase only in
    // its environment) is refused, and the request stays pending.
    let out = p.cli_without_tty(&["approvals", "approve", held[0]["id"].as_str().unwrap(), "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).map(|v| v["code"].clone()).ok(), Some(Value::from("presence_required")), "{}", text(&out));
    assert_eq!(p.approvals().len(), 1, "a refused approval changes nothing");
    // The user denies it (narrowing: no passphrase needed), and lets the agent finish.
    let out = p.cli_without_tty(&["approvals", "deny", held[0]["id"].as_str().unwrap(), "--json"]);
    assert!(out.status.success(), "deny: {}", text(&out));
    std::fs::write(work.path().join("go"), "").unwrap();

    let out = run.join().unwrap();
    let elapsed = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "purser run exits with the agent's status (0): {}", pty_text(&out));
    let attempts: Vec<(&str, &str, &str)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ATTEMPT "))
        .map(|l| {
            let mut w = l.splitn(3, ' ');
            (w.next().unwrap_or(""), w.next().unwrap_or(""), w.next().unwrap_or(""))
        })
        .collect();
    eprintln!("escape table ({} attempts, run took {elapsed:?}):", attempts.len());
    for (name, result, detail) in &attempts {
        eprintln!("  {name:<26} {result:<8} {}", detail.chars().take(110).collect::<String>());
    }
    let result = |name: &str| attempts.iter().find(|a| a.0 == name).map(|a| a.1).unwrap_or_else(|| panic!("no attempt {name} in:\n{stdout}"));
    assert_eq!(result("pay_via_https_proxy"), "ok", "{stdout}");
    assert_eq!(result("pay_via_gateway"), "ok", "{stdout}");
    for e in ESCAPES {
        assert_eq!(result(e), "blocked", "escape {e} got through:\n{stdout}");
    }
    assert!(stdout.contains("ATTEMPT held_request_answer info 403"), "the held request was denied by the user: {stdout}");

    // The budget moved only by what was paid through Purser, and the chain agrees.
    let receipts: Vec<Value> = p.receipts().into_iter().filter(|r| r["grant_id"] == grant_id.as_str()).collect();
    let paid: Vec<&Value> = receipts.iter().filter(|r| r["outcome"] == "paid").collect();
    assert_eq!(paid.len(), 2, "{receipts:#?}");
    let paid_atomic: u128 = paid.iter().map(|r| r["amount_atomic"].as_str().unwrap().parse::<u128>().unwrap()).sum();
    let g = p.grant_show(&grant_id);
    assert_eq!(g["spent_atomic"].as_str(), Some("2000"), "{g}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - payee_before, paid_atomic);
    // Every receipt says who asked: the run.
    for r in &receipts {
        assert_eq!((r["agent"]["kind"].as_str(), r["agent"]["run_label"].as_str()), (Some("run"), Some("hostile")), "{r}");
    }
    let denied = receipts.iter().find(|r| r["reason"] == "user_denied").unwrap_or_else(|| panic!("{receipts:#?}"));
    assert_eq!((denied["decided_by"].as_str(), denied["decided_via"].as_str()), (Some("user"), Some("terminal")), "{denied}");
    let found = p.cli_json(&["receipts", "search", "run:hostile", "--json", "--limit", "50"]);
    assert_eq!(found["items"].as_array().map(|a| a.len()), Some(receipts.len()), "run:hostile finds the run's receipts: {found}");
    // The grant made for the run ended with it; nothing of the run is left running.
    assert_eq!(p.grant_show(&grant_id)["state"], "revoked");
    assert_eq!(processes_with(&marker), Vec::<String>::new(), "processes of the run left behind");
    assert!(p.data_dir.join("purser.db").exists() && !p.data_dir.join("purser.db-pwned").exists());
    drop(bus);
}

#[test]
fn widening_needs_presence_narrowing_does_not() {
    let peers_key = purser_testkit::ANVIL_PAYER_KEY;
    let p = Purser::start_with_key(BIN, peers_key);
    let (gid, _token) = p.grant(&["--budget", "1.00"]);
    let audit = p.data_dir.join("audit.log");

    // No terminal (the passphrase only in the environment): refused, `{code, message}`, nothing
    // written, and the audit log names who tried.
    for (args, action) in [
        (vec!["grant", "top-up", gid.as_str(), "5", "--json"], "topping up a grant"),
        (vec!["grant", "create", "--label", "x", "--budget", "1", "--expires", "1h", "--host", "a.com", "--json"], "creating a grant"),
        (vec!["rules", "add", gid.as_str(), "--allow", "a.com", "--up-to", "1", "--for", "1h", "--json"], "adding an allow rule"),
        (vec!["wallet", "unlock", "--json"], "unlocking the wallet"),
    ] {
        let before = std::fs::read_to_string(&audit).unwrap_or_default().lines().count();
        let out = p.cli_without_tty(&args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no {{code, message}} ({e}): {}", text(&out)));
        assert_eq!(v["code"], "presence_required", "{args:?}: {v}");
        let log = std::fs::read_to_string(&audit).unwrap_or_default();
        let line: Value = serde_json::from_str(log.lines().nth(before).unwrap_or_else(|| panic!("no audit line for {args:?}: {log}"))).unwrap();
        assert_eq!((line["action"].as_str(), line["result"].as_str()), (Some(action), Some("refused")), "{line}");
        assert_eq!(line["who"]["kind"], "process", "the audit names the process that tried: {line}");
    }
    let g = p.grant_show(&gid);
    assert_eq!(g["budget_atomic"], "1000000", "no top-up happened: {g}");
    assert_eq!(p.cli_json(&["grant", "list", "--json"]).as_array().unwrap().len(), 1, "no grant was made");
    assert_eq!(p.cli_json(&["rules", "list", "--json"]).as_array().unwrap().len(), 0, "no rule was added");

    // Pausing narrows: no presence. Resuming without it is refused and stays paused.
    assert_eq!(serde_json::from_slice::<Value>(&p.cli_without_tty(&["pause", "--json"]).stdout).unwrap()["paused"], true);
    let out = p.cli_without_tty(&["resume", "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"], "presence_required", "{}", text(&out));
    assert_eq!(p.control("GET", "spending", None).1["paused"], true);
    // Through the control socket directly (a local tool, not the CLI): refused without the
    // passphrase, and with a wrong one.
    let (status, v) = p.control("POST", "spending/resume", None);
    assert_eq!((status, v["code"].as_str()), (403, Some("presence_required")), "{v}");
    let (status, v) = p.control("POST", "spending/resume", Some(&serde_json::json!({"passphrase": "guess"})));
    assert_eq!((status, v["code"].as_str()), (403, Some("presence_required")), "{v}");
    assert!(std::fs::read_to_string(&audit).unwrap().contains("wrong_passphrase"));
    // A wrong passphrase typed at the terminal is refused too; the right one works.
    let wrong = p.cli_typing(&["resume", "--json"], "not-the-passphrase");
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stdout).contains("presence_required"), "{}", pty_text(&wrong));
    let right = p.cli_typing(&["resume", "--json"], PASSPHRASE);
    assert!(right.status.success() && String::from_utf8_lossy(&right.stdout).contains("\"paused\": false"), "{}", pty_text(&right));
    assert!(!right.tty.contains(PASSPHRASE), "the passphrase is not echoed");
    let top = p.cli_typing(&["grant", "top-up", &gid, "2", "--json"], PASSPHRASE);
    assert!(top.status.success(), "{}", pty_text(&top));
    assert_eq!(p.grant_show(&gid)["budget_atomic"], "3000000");
    // Revoking narrows: no presence.
    let out = p.cli_without_tty(&["grant", "revoke", &gid, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn without_user_namespaces_purser_run_names_the_fix_and_runs_nothing() {
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let work = tempfile::tempdir().unwrap();
    let fake = work.path().join("bwrap");
    std::fs::write(&fake, "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let marker = work.path().join("ran");
    let mut cmd = Command::new(&p.bin);
    cmd.args(["--data-dir", p.data_dir.to_str().unwrap(), "run", "--budget", "1", "--expires", "1h", "--host", "a.com", "--", "touch", marker.to_str().unwrap()]).env("PURSER_BWRAP", &fake);
    let out = run_at_terminal(cmd, &[("passphrase", PASSPHRASE)], Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("(userns_disabled)") && err.contains("sysctl"), "{}", pty_text(&out));
    assert_eq!(out.answered, 0, "refused before anything was asked");
    assert!(!marker.exists(), "the command never ran uncontained");
    assert_eq!(p.cli_json(&["grant", "list", "--json"]).as_array().unwrap().len(), 0, "no grant was made");
    let missing = {
        let mut cmd = Command::new(&p.bin);
        cmd.args(["--data-dir", p.data_dir.to_str().unwrap(), "run", "--grant", "x", "--", "true"]).env("PURSER_BWRAP", work.path().join("nope"));
        purser_testkit::proc::run_with_timeout(cmd, Duration::from_secs(30))
    };
    assert!(String::from_utf8_lossy(&missing.stderr).contains("(bwrap_missing)"), "{}", text(&missing));
}

/// The process behind a TCP connection, for three real clients started by `sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn who_is_asking_curl_python_and_node_outside_a_run() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (_gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.01"]);
    let url = p.gateway_url(&format!("{}/cheap", peers.v2));
    let auth = format!("Bearer {token}");
    let python = if Path::new("/usr/bin/python3").exists() { PathBuf::from("/usr/bin/python3") } else { PathBuf::from("python3") };
    let clients: [(&str, String); 3] = [
        ("curl", format!("curl -s -o /dev/null -w '%{{http_code}}' -H 'Proxy-Authorization: {auth}' '{url}'; true")),
        (
            "python3",
            format!(
                "{} -c \"import requests,sys; r=requests.get('{url}', headers={{'Proxy-Authorization': '{auth}'}}, proxies={{'http': None, 'https': None}}); print(r.status_code)\"; true",
                python.display()
            ),
        ),
        ("node", format!("node -e \"fetch('{url}', {{headers: {{'Proxy-Authorization': '{auth}'}}}}).then(r => console.log(r.status))\"; true")),
    ];
    for (name, line) in &clients {
        let out = std::process::Command::new("sh").args(["-c", line]).env_remove("HTTP_PROXY").env_remove("http_proxy").output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("200"), "{name}: {}", text(&out));
        let r = &p.receipts_limit(1)[0];
        let agent = &r["agent"];
        assert_eq!(agent["kind"], "process", "{name}: {r}");
        let exe = agent["exe"].as_str().unwrap_or_default();
        let base = exe.rsplit('/').next().unwrap_or_default();
        assert!(base.starts_with(name), "{name}: exe {exe}");
        let parents: Vec<&str> = agent["parents"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap_or_default()).collect();
        assert_eq!(parents.first().copied(), Some("sh"), "{name}: parents {parents:?}");
        let me = std::env::current_exe().unwrap();
        let me = me.file_name().unwrap().to_string_lossy();
        assert!(parents.iter().any(|p| me.starts_with(p)), "{name}: the chain reaches this test ({me}): {parents:?}");
        let found = p.cli_json(&["receipts", "search", &format!("agent:{name}"), "--json"]);
        let ids: Vec<&str> = found["items"].as_array().unwrap().iter().filter_map(|i| i["id"].as_str()).collect();
        assert!(ids.contains(&r["id"].as_str().unwrap()), "agent:{name} finds it: {found}");
    }
    // A grant for one program: curl's requests pass, Python's are refused by name.
    let (_only, only_token) = p.grant(&["--label", "curl-only", "--budget", "1.00", "--auto-below", "0.01", "--only-exe", "/usr/bin/curl"]);
    let only_auth = format!("Bearer {only_token}");
    let out = std::process::Command::new("sh").args(["-c", &format!("curl -s -o /dev/null -w '%{{http_code}}' -H 'Proxy-Authorization: {only_auth}' '{url}'; true")]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "curl under --only-exe /usr/bin/curl: {}", text(&out));
    let py = format!(
        "{} -c \"import requests; r=requests.get('{url}', headers={{'Proxy-Authorization': '{only_auth}'}}, proxies={{'http': None, 'https': None}}); print(r.status_code, r.json()['code'])\"; true",
        python.display()
    );
    let out = std::process::Command::new("sh").args(["-c", &py]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "403 exe_not_allowed", "python under --only-exe /usr/bin/curl: {}", text(&out));
    // `agent:sh` finds all three (their parent); `agent:curl` only curl's.
    let all = p.cli_json(&["receipts", "search", "agent:sh", "--json"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    let curl = p.cli_json(&["receipts", "search", "agent:curl", "--json"]);
    assert_eq!(curl["items"].as_array().unwrap().len(), 2, "{curl}");
}

/// The app's "Run an agent" action (`runs::launch`, called by the app's `run_start` command with
/// the click as presence): the agent runs contained through the real `purser` binary's sandbox,
/// pays through its run's socket, cannot connect out directly, and the run ends with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_apps_run_action_starts_the_agent_contained_and_ends_the_run() {
    use purser_core::engine::Engine;
    use purser_core::presence::Presence;
    use std::sync::Arc;
    let peers = Peers::start(Mode::Real);
    let paywall = host_port(&peers.v2);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let wallet = purser_core::wallet::Wallet::from_key_hex(&peers.payer_key).unwrap();
    let engine = Arc::new(Engine::new(purser_core::ledger::Ledger::open_in(&data).unwrap(), Some(wallet)).unwrap());
    engine.set_data_dir(&data);
    let runs = purser_core::runs::Runs::new(None);
    let spec =
        purser_core::grants::GrantSpec { label: "app-run".into(), budget: "1.00".into(), expires: "1h".into(), hosts: vec![paywall.clone()], auto_below: Some("0.01".into()), ..Default::default() };
    let g = engine.create_grant(&spec, Some(&Presence::app_click())).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cmd = format!("curl -s -o /dev/null -w '%{{http_code}}' --noproxy '' -x \"$HTTPS_PROXY\" http://{paywall}/cheap > code.txt; curl -s -m 3 --noproxy '*' http://{paywall}/cheap; echo \" direct=$?\" >> code.txt; echo done");
    let relative = purser_core::runs::launch::launch(&engine, &runs, &Presence::app_click(), &g.grant.id, &cmd, Path::new("relative"), Path::new(BIN), &data.join("runs"));
    assert_eq!(relative.unwrap_err().code(), "invalid_run", "a working dir must be absolute");
    let launched = purser_core::runs::launch::launch(&engine, &runs, &Presence::app_click(), &g.grant.id, &cmd, work.path(), Path::new(BIN), &data.join("runs")).unwrap();
    assert_eq!(runs.list().len(), 1, "the run is live while its agent runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !runs.list().is_empty() {
        assert!(Instant::now() < deadline, "the run did not end with its agent; log: {}", std::fs::read_to_string(&launched.log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = std::fs::read_to_string(work.path().join("code.txt")).unwrap_or_default();
    assert_eq!(code.trim(), "200 direct=7", "paid through Purser, no direct connection; log: {}", std::fs::read_to_string(&launched.log).unwrap_or_default());
    assert!(std::fs::read_to_string(&launched.log).unwrap().contains("done"), "the agent's output is in its log");
    let receipts = engine.receipts(10).await.unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:#?}");
    let agent = receipts[0].agent.as_ref().expect("who asked");
    assert_eq!((receipts[0].outcome, agent.kind, agent.run_label.as_deref()), (purser_core::receipt::Outcome::Paid, purser_core::agent::AgentKind::Run, Some("app-run")), "{:?}", receipts[0]);
}
