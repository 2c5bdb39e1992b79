//! The end-to-end tests of the `purser` package, as one test binary (`e2e`) so the build links
//! once: each file of `tests/e2e/` is a module here, as are the CI crash loop
//! (`tests/crashloop/tests/crash20.rs`), the short soak (`tests/soak/tests/soak_short.rs`) and
//! the sandbox tests (`src-tauri/cli/tests/sandbox.rs`). Tests run against the freshly built
//! binary (`CARGO_BIN_EXE_purser`).
//!
//! ```text
//! cargo test -p purser --test e2e                          # all of them
//! cargo test -p purser --test e2e tunnels::                # one file (module)
//! cargo test -p purser --test e2e -- funds:: reconcile::   # several (filters after --, OR'ed)
//! ```
//!
//! Every test here shares one process with the others and runs concurrently with them (libtest
//! threads; `./dev test` passes `--test-threads 4`). So no test changes process-wide state that
//! another could see: environment for `purser` goes to the child's `Command` (e.g.
//! `ServeOptions::env`), never `std::env::set_var`; a test that must change this process's own
//! environment runs alone in a child process of this binary ([`in_own_process`]). Raising the
//! soft open-file limit to the hard one (overspend, hostile_limits) is the one process-wide
//! change left: it only ever grows, so no other test can lose by it.

mod anchor;
mod bad_challenges;
mod concurrency;
mod containment;
#[path = "../crashloop/tests/crash20.rs"]
mod crash20;
mod demo;
mod diskfull;
mod failsettle;
mod forward;
mod funds;
mod hostile_limits;
mod integrity;
mod ledger;
mod overspend;
mod pause;
mod pay;
mod prompt_rules;
mod prompts;
mod reconcile;
mod revoke;
#[path = "../../src-tauri/cli/tests/sandbox.rs"]
mod sandbox;
mod security;
mod shutdown;
#[path = "../soak/tests/soak_short.rs"]
mod soak_short;
mod tiers;
mod timeline;
mod tunnels;
mod vault;

/// Set in the child process [`in_own_process`] starts, to the name of the test it runs.
const ALONE_VAR: &str = "PURSER_E2E_ALONE";

/// For a test that must change this process's own state (its environment, e.g. the session bus
/// an in-process notifier connects to), which every other test of this binary would otherwise
/// see: runs the test alone in a child process of this binary (`--exact`, one thread). In the
/// child it returns true (run the test's body); in this process it waits for the child, asserts
/// it passed exactly that one test, and returns false (the test is done).
///
/// `module` is the caller's `module_path!()`, `test` its function's name.
pub async fn in_own_process(module: &str, test: &str) -> bool {
    let name = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_string(),
    };
    if std::env::var_os(ALONE_VAR).is_some_and(|v| v == name.as_str()) {
        return true;
    }
    // Install the peers' npm packages here once, not again in the child.
    purser_testkit::peers::ensure_setup();
    let out = tokio::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", &name, "--nocapture", "--test-threads", "1"])
        .env(ALONE_VAR, &name)
        .env("PURSER_E2E_SKIP_PEERS_SETUP", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run the test in a child process");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(out.status.success() && stdout.contains("1 passed"), "{name} in its own process: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    false
}
