//! purser-bench: runs every Purser benchmark in one go and reports the figures (a table on stdout,
//! JSON in target/bench/report.json). Owns the plan (how many requests, how long) and the order.
//!
//!   cargo run --release -p purser-bench -- [--quick] [--no-node] [--no-nginx]
//!
//! Benchmarks are not tests: nothing here asserts on a time; every loop is bounded in count and
//! time; only loopback traffic. See tests/bench/README.md for how to read the figures.

mod load;
mod net;
mod nginx;
mod paywall;
mod peers;
mod purser;
mod report;
mod stats;

use anyhow::Result;
use load::Target;
use serde_json::{json, Value};
use stats::{Budget, Summary};
use std::time::Instant;
use tokio::runtime::Runtime;

/// How much of everything to do.
struct Plan {
    quick: bool,
    latency: Budget,
    latency_warmup: usize,
    latency_rounds: usize,
    agents: Vec<usize>,
    fast: Budget,
    node: Budget,
    sequential_n: usize,
    sequential_secs: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                latency: Budget::new(2_000, 20.0),
                latency_warmup: 200,
                latency_rounds: 5,
                agents: vec![16, 64],
                fast: Budget::new(20_000, 4.0),
                node: Budget::new(2_000, 5.0),
                sequential_n: 50,
                sequential_secs: 30,
            }
        } else {
            Plan {
                quick,
                latency: Budget::new(5_000, 60.0),
                latency_warmup: 500,
                latency_rounds: 10,
                agents: vec![16, 64],
                fast: Budget::new(60_000, 12.0),
                node: Budget::new(10_000, 15.0),
                sequential_n: 200,
                sequential_secs: 90,
            }
        }
    }
}

fn runtime(name: &str) -> Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).thread_keep_alive(std::time::Duration::from_secs(3600)).enable_all().build()?)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: cargo run --release -p purser-bench -- [--quick] [--no-node] [--no-nginx]");
        return;
    }
    let unknown: Vec<&String> = args.iter().filter(|a| !["--quick", "--no-node", "--no-nginx"].contains(&a.as_str())).collect();
    if !unknown.is_empty() {
        eprintln!("unknown arguments {unknown:?}; usage: cargo run --release -p purser-bench -- [--quick] [--no-node] [--no-nginx]");
        std::process::exit(2);
    }
    let plan = Plan::new(args.iter().any(|a| a == "--quick"));
    let started = Instant::now();
    let mut rep = report::Report::new(plan.quick, &args);
    if cfg!(debug_assertions) {
        eprintln!("purser-bench: this is a debug build; figures mean nothing. Use --release.");
    }
    if let Err(e) = run(&plan, &args, &mut rep) {
        rep.note(format!("the run stopped early: {e:#}"));
    }
    rep.set("total_seconds", json!(stats::r4(started.elapsed().as_secs_f64())));
    rep.set("loadavg_at_end", json!(stats::loadavg()));
    report::print_table(&rep.doc);
    match rep.write() {
        Ok(p) => println!("\nreport: {}", p.display()),
        Err(e) => eprintln!("could not write the report: {e:#}"),
    }
}

fn run(plan: &Plan, args: &[String], rep: &mut report::Report) -> Result<()> {
    let agents_rt = runtime("bench-agents")?;
    let servers_rt = runtime("bench-servers")?;
    let upstream = servers_rt.block_on(net::start_upstream())?;
    let fast = servers_rt.block_on(paywall::Paywall::start())?;
    let purser = purser::Purser::start(2, None)?;
    let auth = vec![("proxy-authorization".to_string(), purser.auth())];
    let via_purser = |url: String| Target { name: "purser".into(), addr: purser.addr, path: purser.path_for(&url), headers: auth.clone() };
    rep.set(
        "setup",
        json!({"upstream": upstream.to_string(), "fast_paywall": fast.addr.to_string(), "purser": purser.addr.to_string(),
        "purser_runtime_threads": purser.threads, "bench_runtimes": "agents: 2 threads, upstream+fast paywall: 2 threads"}),
    );

    // 1. Latency Purser adds to a non-402 request, next to nginx doing the same hop.
    eprintln!("[1/3] hop latency (sequential keep-alive GETs)");
    let mut targets = vec![Target { name: "direct".into(), addr: upstream, path: "/data".into(), headers: vec![] }];
    let nginx = match (args.iter().any(|a| a == "--no-nginx"), nginx::find()) {
        (true, _) => {
            rep.skip("nginx", "--no-nginx was given");
            None
        }
        (false, None) => {
            eprintln!("{}", nginx::INSTALL_HINT);
            rep.skip("nginx", nginx::INSTALL_HINT);
            None
        }
        (false, Some(bin)) => match agents_rt.block_on(nginx::Nginx::start(&bin, upstream)) {
            Ok(n) => Some(n),
            Err(e) => {
                rep.skip("nginx", &format!("{e:#}"));
                None
            }
        },
    };
    if let Some(n) = &nginx {
        targets.push(Target { name: "nginx".into(), addr: n.addr, path: "/data".into(), headers: vec![] });
    }
    targets.push(via_purser(format!("http://{upstream}/data")));
    let samples = agents_rt.block_on(load::hop_latency(&targets, plan.latency_warmup, plan.latency_rounds, plan.latency))?;
    let by_name: Vec<(String, stats::Samples)> = targets.iter().map(|t| t.name.clone()).zip(samples).collect();
    rep.hop_latency(&by_name, plan.latency, nginx.as_ref().map(|n| n.version.clone()));
    drop(nginx);

    // 2b. Paid requests per second against the fast Rust paywall.
    eprintln!("[2/3] paid throughput, fast Rust paywall");
    // One agent first: Purser's own time per paid request when nothing queues.
    for &agents in std::iter::once(&1).chain(&plan.agents) {
        let run = agents_rt.block_on(load::paid_load(&via_purser(fast.url("/cheap")), agents, 3, plan.fast))?;
        rep.paid_run("rust-fast-paywall", "disk", &run, plan.fast);
    }
    // Diagnostic: the same with the ledger on tmpfs, where fsync costs nothing, to show how much
    // of the figure durability takes (not a configuration Purser offers).
    if let Some(shm) = purser::tmpfs_dir() {
        let on_shm = purser::Purser::start(2, Some(&shm))?;
        let auth = vec![("proxy-authorization".to_string(), on_shm.auth())];
        let target = Target { name: "purser-tmpfs".into(), addr: on_shm.addr, path: on_shm.path_for(&fast.url("/cheap")), headers: auth };
        let agents = plan.agents[0];
        let run = agents_rt.block_on(load::paid_load(&target, agents, 3, plan.fast))?;
        rep.paid_run("rust-fast-paywall", "tmpfs", &run, plan.fast);
    }
    let c = &fast.counters;
    let ord = std::sync::atomic::Ordering::Relaxed;
    rep.set(
        "fast_paywall_counters",
        json!({"challenges": c.challenges.load(ord), "paid": c.paid.load(ord), "rejected": c.rejected.load(ord),
        "first_rejection": c.first_rejection.lock().ok().and_then(|f| f.clone())}),
    );

    // 2a and 3. The Node reference v2 paywall with the sigonly facilitator.
    let node_off = args.iter().any(|a| a == "--no-node");
    match (node_off, peers::unavailable()) {
        (true, _) => rep.skip("node", "--no-node was given"),
        (false, Some(why)) => rep.skip("node", &why),
        (false, None) => {
            if let Err(e) = node_phases(plan, rep, &agents_rt, &via_purser) {
                rep.skip("node", &format!("{e:#}"));
            }
        }
    }
    let outcomes: serde_json::Map<String, Value> = purser.receipts_by_outcome().into_iter().map(|(k, v)| (k, json!(v))).collect();
    rep.set("purser_receipts_by_outcome", Value::Object(outcomes));
    drop(purser);
    agents_rt.shutdown_timeout(std::time::Duration::from_secs(5));
    servers_rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

fn node_phases(plan: &Plan, rep: &mut report::Report, rt: &Runtime, via_purser: &dyn Fn(String) -> Target) -> Result<()> {
    eprintln!("[2/3] paid throughput, Node reference v2 paywall (starting the peers)");
    peers::setup()?;
    let t = Instant::now();
    let node = peers::Peers::start()?;
    rep.set("node_peers", json!({"v2": node.v2, "facilitator": node.facilitator, "startup_s": stats::r4(t.elapsed().as_secs_f64()), "facilitator_mode": "sigonly"}));
    let cheap = format!("{}/cheap", node.v2);
    for &agents in &plan.agents {
        let run = rt.block_on(load::paid_load(&via_purser(cheap.clone()), agents, 2, plan.node))?;
        rep.paid_run("node-reference-v2", "disk", &run, plan.node);
    }

    eprintln!("[3/3] sequential paid requests: reference client vs Purser ({} each)", plan.sequential_n);
    let reference = peers::run_ref_client(&cheap, plan.sequential_n, plan.sequential_secs);
    let purser_seq = rt.block_on(load::paid_load(&via_purser(cheap.clone()), 1, 5, Budget::new(plan.sequential_n, plan.sequential_secs as f64)))?;
    let e2e = Summary::of_ms(&purser_seq.samples.e2e_ms);
    let inside = Summary::of_ms(&purser_seq.samples.inside_ms);
    rep.sequential(reference.map_err(|e| format!("{e:#}")), &purser_seq, e2e, inside);
    if !node.stderr_tail().is_empty() {
        rep.set("node_peers_stderr_tail", json!(node.stderr_tail()));
    }
    Ok(())
}
