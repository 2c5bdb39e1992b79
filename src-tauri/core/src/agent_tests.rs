//! Tests of agent identification against real processes and sockets (a Python client started
//! through `sh`, this test process itself), and of the recorded JSON and names.

use super::*;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Accepts one connection, waiting at most 20 s (a client that never comes fails the test).
fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr, SocketAddr) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match listener.accept() {
            Ok((s, peer)) => {
                s.set_nonblocking(false).unwrap();
                let local = s.local_addr().unwrap();
                return (s, peer, local);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no client connected: {e}"),
        }
    }
}

/// `sh -c 'python3 -c SCRIPT; true'` (the `; true` keeps `sh` as the parent): Python connects
/// to `port`, prints its pid and real executable, optionally forks (the parent then prints the
/// child's pid) and waits for the connection to close.
fn python_client(port: u16, fork: bool) -> (Child, BufReader<std::process::ChildStdout>) {
    let script = format!(
        "import socket, os, sys\ns = socket.create_connection(('127.0.0.1', {port}))\ns.settimeout(30)\nprint(os.getpid(), os.path.realpath(sys.executable), flush=True)\nif {fork}:\n    c = os.fork()\n    if c:\n        print(c, flush=True)\ns.recv(1)\n",
        fork = if fork { "True" } else { "False" }
    );
    let mut child = Command::new("sh").arg("-c").arg("python3 -c \"$1\"; true").arg("sh").arg(script).stdout(Stdio::piped()).spawn().expect("sh");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn line(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    assert!(!l.is_empty(), "the Python client printed nothing (is python3 installed?)");
    l.trim().to_string()
}

fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm").unwrap().trim().to_string()
}

#[test]
fn a_python_client_started_by_sh_is_identified_with_its_parents() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut sh, mut out) = python_client(listener.local_addr().unwrap().port(), false);
    let first = line(&mut out);
    let (pid, exe) = first.split_once(' ').unwrap();
    let pid: u32 = pid.parse().unwrap();
    let (stream, peer, local) = accept(&listener);

    let started = Instant::now();
    let info = identify_tcp_peer(peer, local);
    let took = started.elapsed();
    assert_eq!(info.kind, AgentKind::Process, "{info:?}");
    assert_eq!(info.pid, Some(pid));
    assert_eq!(info.exe.as_deref(), Some(exe), "the kernel's resolved path, as Python's realpath sees it");
    assert!(exe_name(exe).starts_with("python3"), "{exe}");
    let cmdline = info.cmdline.clone().unwrap();
    assert!(cmdline.contains("create_connection") && !cmdline.contains('\n'), "{cmdline}");
    assert_eq!(info.parents[0].pid, sh.id());
    assert_eq!(info.parents[0].name, "sh");
    assert_eq!(info.parents[1].pid, std::process::id(), "then this test binary: {:?}", info.parents);
    assert_eq!(info.parents[1].name, own_comm());
    assert!(info.parents.iter().all(|p| p.pid > 1) && info.parents.len() <= MAX_PARENTS);
    assert!(info.display_name().starts_with("python3"), "{}", info.display_name());
    assert!(info.chain().ends_with(&format!("{} → sh → {}", own_comm(), exe_name(exe))), "{}", info.chain());
    assert!(took < Duration::from_secs(2), "identification took {took:?}");

    drop(stream);
    assert!(sh.wait().unwrap().success());
}

#[test]
fn a_socket_shared_by_a_fork_is_its_creators() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut sh, mut out) = python_client(listener.local_addr().unwrap().port(), true);
    let parent: u32 = line(&mut out).split_once(' ').unwrap().0.parse().unwrap();
    let child: u32 = line(&mut out).parse().unwrap();
    let (stream, peer, local) = accept(&listener);
    let target = format!("socket:[{}]", socket_inode(Path::new("/proc/net"), peer, local).unwrap());
    let holds = |pid: u32| std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
    assert!(holds(parent) && holds(child), "both hold the socket");
    let info = identify_tcp_peer(peer, local);
    assert_eq!(info.pid, Some(parent), "the holder that started first, not its fork: {info:?}");
    assert_eq!(info.parents[0].pid, sh.id());
    drop(stream);
    assert!(sh.wait().unwrap().success());
}

#[test]
fn a_connection_from_this_process_is_this_process() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server, peer, local) = accept(&listener);
    assert_eq!(peer, client.local_addr().unwrap());
    let info = identify_tcp_peer(peer, local);
    assert_eq!(info.kind, AgentKind::Process);
    assert_eq!(info.pid, Some(std::process::id()));
    assert_eq!(info.exe.as_deref().map(std::path::PathBuf::from), Some(std::env::current_exe().unwrap().canonicalize().unwrap()));
    // The listener's own end (local = `local`, remote = `peer`) is not the client's.
    assert_eq!(identify_tcp_peer(local, peer).pid, Some(std::process::id()), "our accepted socket is ours too, found the other way round");
}

#[test]
fn ipv6_and_v4_mapped_connections_are_found() {
    // [::1]: a tcp6 row.
    if let Ok(listener) = TcpListener::bind("[::1]:0") {
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_s, peer, local) = accept(&listener);
        assert!(peer.is_ipv6());
        assert_eq!(identify_tcp_peer(peer, local).pid, Some(std::process::id()));
    }
    // A dual-stack listener sees a v4 client as ::ffff:127.0.0.1; its socket is a tcp (v4) row.
    if let Ok(listener) = TcpListener::bind("[::]:0") {
        let port = listener.local_addr().unwrap().port();
        if let Ok(_client) = TcpStream::connect(("127.0.0.1", port)) {
            let (_s, peer, local) = accept(&listener);
            assert_eq!(peer.ip().to_canonical(), std::net::IpAddr::from([127, 0, 0, 1]), "{peer}");
            assert!(peer.is_ipv6(), "{peer}");
            assert_eq!(identify_tcp_peer(peer, local).pid, Some(std::process::id()));
        }
    }
}

#[test]
fn nobody_is_unknown_never_a_guess() {
    let nobody = identify_tcp_peer("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
    assert_eq!(nobody, AgentInfo::unknown());
    // A client that closed: its socket lingers (FIN_WAIT/TIME_WAIT) without an owner.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server, peer, local) = accept(&listener);
    drop(client);
    assert_eq!(identify_tcp_peer(peer, local), AgentInfo::unknown());
}

#[test]
fn identify_pid_reads_a_live_process_only() {
    let me = identify_pid(std::process::id());
    assert_eq!(me.kind, AgentKind::Process);
    assert_eq!(me.pid, Some(std::process::id()));
    assert_eq!(me.exe.as_deref().map(std::path::PathBuf::from), Some(std::env::current_exe().unwrap().canonicalize().unwrap()));
    let arg0 = std::env::args().next().unwrap();
    assert!(me.cmdline.as_deref().unwrap().starts_with(&arg0), "{:?}", me.cmdline);
    let ppid = std::fs::read_to_string("/proc/self/stat").unwrap().rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse::<u32>().unwrap();
    match me.parents.first() {
        Some(p) => assert_eq!(p.pid, ppid),
        None => assert!(ppid <= 1, "parents stop only at pid 1"),
    }
    for gone in [0, u32::MAX] {
        assert_eq!(identify_pid(gone), AgentInfo::unknown(), "pid {gone}");
    }
}

#[test]
fn a_run_records_what_it_is_given_and_what_proc_says() {
    let me = identify_pid(std::process::id());
    let r = run("run-1", "research", Some(std::process::id()), "agent\t--go\n");
    assert_eq!((r.kind, r.pid), (AgentKind::Run, Some(std::process::id())));
    assert_eq!((r.exe.as_ref(), &r.parents), (me.exe.as_ref(), &me.parents));
    assert_eq!(r.cmdline.as_deref(), Some("agent--go"), "control characters removed");
    assert_eq!((r.run_label.as_deref(), r.run_id.as_deref()), (Some("research"), Some("run-1")));
    assert_eq!(r.display_name(), "run:research");
    let gone = run("run-2", "", Some(u32::MAX), "");
    assert_eq!((gone.pid, gone.exe.as_deref(), gone.cmdline.as_deref(), gone.parents.len()), (Some(u32::MAX), None, None, 0));
    assert_eq!(gone.display_name(), "run:run-2");
}

#[test]
fn the_json_is_the_contract() {
    assert_eq!(serde_json::to_string(&AgentInfo::unknown()).unwrap(), r#"{"kind":"unknown","pid":null,"exe":null,"cmdline":null,"parents":[],"run_label":null}"#);
    let curl = AgentInfo {
        kind: AgentKind::Process,
        pid: Some(42),
        exe: Some("/usr/bin/curl".into()),
        cmdline: Some("curl http://x".into()),
        parents: vec![ParentProcess { pid: 41, exe: Some("/usr/bin/node".into()), name: "claude".into() }, ParentProcess { pid: 40, exe: None, name: "bash".into() }],
        run_label: None,
        run_id: None,
    };
    let json = serde_json::to_string(&curl).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"process","pid":42,"exe":"/usr/bin/curl","cmdline":"curl http://x","parents":[{"pid":41,"exe":"/usr/bin/node","name":"claude"},{"pid":40,"exe":null,"name":"bash"}],"run_label":null}"#
    );
    assert_eq!(serde_json::from_str::<AgentInfo>(&json).unwrap(), curl);
    let r = run("r-9", "research", None, "python3 agent.py");
    assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::json!({"kind": "run", "pid": null, "exe": null, "cmdline": "python3 agent.py", "parents": [], "run_label": "research", "run_id": "r-9"}));

    assert_eq!(curl.display_name(), "curl");
    assert_eq!(curl.chain(), "bash → claude → curl");
    assert_eq!(curl.search_names(), ["curl", "claude", "node", "bash"]);
    assert_eq!(r.search_names(), ["python3"], "argv[0] when the executable is unknown");
    assert_eq!(r.chain(), "python3");
    assert_eq!(AgentInfo::unknown().chain(), "unknown");
    assert_eq!(AgentInfo::unknown().search_names(), Vec::<String>::new());
    let long = run("r", "", None, "x".repeat(5000));
    assert_eq!(long.cmdline.unwrap().len(), MAX_TEXT);
    assert_eq!(exe_name("/usr/bin/curl (deleted)"), "curl");
}

#[test]
fn proc_net_rows_parse() {
    // The kernel prints each address word in memory order read as a host integer.
    let v4 = |a: [u8; 4], port: u16| format!("{:08X}:{port:04X}", u32::from_ne_bytes(a));
    let row = format!("   3: {} {} 01 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 20 4 30 10 -1", v4([127, 0, 0, 1], 40000), v4([127, 0, 0, 1], 8080));
    assert_eq!(parse_tcp_row(&row), Some(("127.0.0.1:40000".parse().unwrap(), "127.0.0.1:8080".parse().unwrap(), 123456)));
    #[cfg(target_endian = "little")]
    {
        let row = "   0: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(parse_tcp_row(row), Some(("127.0.0.1:8080".parse().unwrap(), "127.0.0.1:40000".parse().unwrap(), 777)));
        // ::ffff:127.0.0.1 and ::1 in tcp6.
        let row = "   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000001000000:0050 01 00000000:00000000 00:00000000 00000000  1000        0 778 1";
        let (l, r, inode) = parse_tcp_row(row).unwrap();
        assert_eq!((canonical(l), r, inode), ("127.0.0.1:8080".parse().unwrap(), "[::1]:80".parse().unwrap(), 778));
    }
    for bad in [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        "",
        "0: 0100007F 0100007F:1F90 01 0 0 0 0 0 5",
        "0: 0100007:1F90 0100007F:1F90 01 0 0 0 0 0 5",
    ] {
        assert_eq!(parse_tcp_row(bad), None, "{bad:?}");
    }
}
