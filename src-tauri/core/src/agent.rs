//! Owns "who is asking": the local process behind an agent's connection, its parent chain, and
//! the [`AgentInfo`] a receipt records. On Linux it reads `/proc` the way OpenSnitch does: the
//! client end of a loopback TCP connection is a row of `/proc/net/tcp{,6}` (its inode), and the
//! process holding it has a `/proc/<pid>/fd` link `socket:[inode]`. Whatever cannot be found or
//! read gives [`AgentInfo::unknown`]: never a guess.
//!
//! Every function here does blocking file I/O: async callers run it in `spawn_blocking`.

use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// Most parents recorded (nearest first).
pub const MAX_PARENTS: usize = 16;
/// Most characters of a recorded command line, executable path, name or run label.
pub const MAX_TEXT: usize = 1024;

/// How the agent was identified.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Started by `purser run` (its run id and label are known).
    Run,
    /// The local process that owns the connection.
    Process,
    /// Nobody could be identified.
    Unknown,
}

/// One ancestor of the agent's process.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentProcess {
    pub pid: u32,
    /// `/proc/<pid>/exe` (None when not ours to read).
    pub exe: Option<String>,
    /// The process's `comm`, else its executable's base name.
    pub name: String,
}

/// Who made a request: the process (and its parents), or the `purser run` that started it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub kind: AgentKind,
    pub pid: Option<u32>,
    /// The executable as the kernel resolved it (`/usr/bin/python3.11`, not a symlink).
    pub exe: Option<String>,
    /// argv joined by spaces, control characters removed, at most [`MAX_TEXT`] characters.
    pub cmdline: Option<String>,
    /// Nearest parent first, up to (not including) pid 1, at most [`MAX_PARENTS`].
    pub parents: Vec<ParentProcess>,
    pub run_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub run_id: Option<String>,
}

impl AgentInfo {
    /// Nobody identified: every field empty.
    pub fn unknown() -> AgentInfo {
        AgentInfo { kind: AgentKind::Unknown, pid: None, exe: None, cmdline: None, parents: vec![], run_label: None, run_id: None }
    }

    /// The process's own name: its executable's base name, else its argv[0]'s.
    pub fn process_name(&self) -> Option<String> {
        self.exe.as_deref().map(exe_name).or_else(|| self.cmdline.as_deref().and_then(|c| c.split(' ').next()).map(exe_name)).filter(|n| !n.is_empty())
    }

    /// A short name for lists: `curl`, `run:research`, `unknown`.
    pub fn display_name(&self) -> String {
        match self.kind {
            AgentKind::Run => match self.run_label.as_deref().or(self.run_id.as_deref()) {
                Some(l) => format!("run:{l}"),
                None => "run".into(),
            },
            AgentKind::Process => self.process_name().or_else(|| self.pid.map(|p| format!("pid {p}"))).unwrap_or_else(|| "unknown".into()),
            AgentKind::Unknown => "unknown".into(),
        }
    }

    /// The ancestry, root first: `claude → node → curl`.
    pub fn chain(&self) -> String {
        if self.kind == AgentKind::Unknown {
            return "unknown".into();
        }
        let me = self.process_name().unwrap_or_else(|| self.display_name());
        self.parents.iter().rev().map(|p| p.name.clone()).chain(std::iter::once(me)).collect::<Vec<_>>().join(" → ")
    }

    /// The names `agent:NAME` finds this agent by, lowercased and distinct: the process's
    /// executable and argv[0] base names, and each parent's name and executable base name.
    pub fn search_names(&self) -> Vec<String> {
        let argv0 = self.cmdline.as_deref().and_then(|c| c.split(' ').next());
        let own = [self.exe.as_deref(), argv0].into_iter().flatten().map(exe_name);
        let parents = self.parents.iter().take(MAX_PARENTS).flat_map(|p| std::iter::once(p.name.clone()).chain(p.exe.as_deref().map(exe_name)));
        let mut out: Vec<String> = vec![];
        for n in own.chain(parents) {
            let n: String = n.to_lowercase().chars().take(255).collect();
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }
}

/// An agent started by `purser run`: `pid` (when known) is recorded as given, its exe and
/// parents read from `/proc` when readable; `cmdline` as given (else `/proc`'s); an empty label
/// or command line is none.
pub fn run(run_id: impl Into<String>, run_label: impl Into<String>, pid: Option<u32>, cmdline: impl Into<String>) -> AgentInfo {
    let read = pid.and_then(|p| read_process(Path::new(PROC), p));
    let (exe, proc_cmdline, parents) = match read {
        Some(p) => (p.exe, p.cmdline, p.parents),
        None => (None, None, vec![]),
    };
    let nonempty = |s: String| Some(clean(&s)).filter(|s| !s.is_empty());
    AgentInfo { kind: AgentKind::Run, pid, exe, cmdline: nonempty(cmdline.into()).or(proc_cmdline), parents, run_label: nonempty(run_label.into()), run_id: nonempty(run_id.into()) }
}

/// The process at the client end of a loopback TCP connection: `peer` is the client's address
/// as our listener saw it, `local` our side of the connection. Both `/proc/net/tcp` and
/// `tcp6` are searched, v4-mapped addresses (`::ffff:127.0.0.1`) equal to their v4 form.
///
/// When several processes hold the socket (a fork after connecting), the one that started
/// first is chosen: the socket's creator when it is still there (a socket is never older than
/// its creator, and forked children are younger). The newest holder would be a guess: any fork
/// of the agent holds every descriptor for the instant between `fork` and `exec`, so a child
/// being spawned would pass for the agent.
pub fn identify_tcp_peer(peer: SocketAddr, local: SocketAddr) -> AgentInfo {
    let proc = Path::new(PROC);
    let Some(inode) = socket_inode(&proc.join("net"), peer, local) else { return AgentInfo::unknown() };
    let Some(pid) = socket_owner(proc, inode) else { return AgentInfo::unknown() };
    identify_in(proc, pid)
}

/// The process `pid` (a Unix-socket peer's, from `SO_PEERCRED`); unknown when it is gone.
pub fn identify_pid(pid: u32) -> AgentInfo {
    identify_in(Path::new(PROC), pid)
}

const PROC: &str = "/proc";

fn identify_in(proc: &Path, pid: u32) -> AgentInfo {
    match read_process(proc, pid) {
        Some(p) => AgentInfo { kind: AgentKind::Process, pid: Some(pid), exe: p.exe, cmdline: p.cmdline, parents: p.parents, run_label: None, run_id: None },
        None => AgentInfo::unknown(),
    }
}

/// What `/proc/<pid>` says about a live process.
struct ProcessRead {
    exe: Option<String>,
    cmdline: Option<String>,
    parents: Vec<ParentProcess>,
}

fn read_process(proc: &Path, pid: u32) -> Option<ProcessRead> {
    if pid == 0 {
        return None;
    }
    let mut ppid = read_stat(proc, pid)?.ppid;
    let exe = read_exe(proc, pid);
    let cmdline = std::fs::read(proc.join(pid.to_string()).join("cmdline")).ok().map(|raw| {
        let args: Vec<String> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        clean(&args.join(" "))
    });
    let mut parents = vec![];
    while ppid > 1 && parents.len() < MAX_PARENTS {
        let Some(stat) = read_stat(proc, ppid) else { break };
        let exe = read_exe(proc, ppid);
        let name = if stat.comm.is_empty() { exe.as_deref().map(exe_name).unwrap_or_default() } else { stat.comm };
        parents.push(ParentProcess { pid: ppid, exe, name });
        ppid = stat.ppid;
    }
    Some(ProcessRead { exe, cmdline: cmdline.filter(|c| !c.is_empty()), parents })
}

/// What `/proc/<pid>/stat` says of a process.
struct Stat {
    comm: String,
    ppid: u32,
    /// Start time, in clock ticks since boot.
    start: u64,
}

/// Reads `/proc/<pid>/stat` (`pid (comm) state ppid ... starttime ...`; comm may hold spaces
/// and parentheses, so it ends at the last `)`).
fn read_stat(proc: &Path, pid: u32) -> Option<Stat> {
    let stat = std::fs::read(proc.join(pid.to_string()).join("stat")).ok()?;
    let stat = String::from_utf8_lossy(&stat);
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = clean(stat.get(open + 1..close)?);
    // After the comm: state (0), ppid (1), ... starttime (19).
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    Some(Stat { comm, ppid: rest.get(1)?.parse().ok()?, start: rest.get(19)?.parse().ok()? })
}

fn read_exe(proc: &Path, pid: u32) -> Option<String> {
    let link = std::fs::read_link(proc.join(pid.to_string()).join("exe")).ok()?;
    Some(clean(&link.to_string_lossy())).filter(|e| !e.is_empty())
}

/// The base name of an executable path (without the kernel's ` (deleted)` mark).
fn exe_name(path: &str) -> String {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Control characters removed, at most [`MAX_TEXT`] characters.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect()
}

/// The inode of the socket whose local address is `peer` and remote address `local`, from
/// `<net>/tcp` then `<net>/tcp6`. Rows without an owner (inode 0: `TIME_WAIT`) are skipped.
fn socket_inode(net: &Path, peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let (peer, local) = (canonical(peer), canonical(local));
    for table in ["tcp", "tcp6"] {
        let Ok(file) = std::fs::File::open(net.join(table)) else { continue };
        for line in std::io::BufReader::new(file).lines().skip(1) {
            let Ok(line) = line else { break };
            if let Some((l, r, inode)) = parse_tcp_row(&line) {
                if inode != 0 && canonical(l) == peer && canonical(r) == local {
                    return Some(inode);
                }
            }
        }
    }
    None
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// One row of `/proc/net/tcp{,6}`: local address, remote address, inode.
fn parse_tcp_row(line: &str) -> Option<(SocketAddr, SocketAddr, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return None;
    }
    Some((parse_proc_addr(f[1])?, parse_proc_addr(f[2])?, f[9].parse().ok()?))
}

/// `0100007F:1F90` (v4) or 32 hex digits and a port (v6). The kernel prints each 32-bit word of
/// the address as it lies in memory (network order) read as a host integer, so the word's
/// native-endian bytes are the address bytes; the port is a plain hex number.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| ip.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()).map(u32::to_ne_bytes);
    match ip.len() {
        8 => Some(SocketAddr::new(Ipv4Addr::from(word(0)?).into(), port)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(SocketAddr::new(Ipv6Addr::from(b).into(), port))
        }
        _ => None,
    }
}

/// The process holding `socket:[inode]`, by scanning every readable `/proc/<pid>/fd` (see
/// [`identify_tcp_peer`] for the choice among several holders).
fn socket_owner(proc: &Path, inode: u64) -> Option<u32> {
    let target = format!("socket:[{inode}]");
    let mut holders: Vec<u32> = vec![];
    for entry in std::fs::read_dir(proc).ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
        if holds {
            holders.push(pid);
        }
    }
    if holders.len() <= 1 {
        return holders.pop();
    }
    // A holder that exited meanwhile is no candidate; a parent and the child it forked in the
    // same tick are told apart by the child's having the parent among its ancestors.
    let started: Vec<(u64, u32)> = holders.iter().filter_map(|p| read_stat(proc, *p).map(|s| (s.start, *p))).collect();
    let first = started.iter().map(|(s, _)| *s).min()?;
    let tied: Vec<u32> = started.iter().filter(|(s, _)| *s == first).map(|(_, p)| *p).collect();
    let is_ancestor_of = |a: u32, b: u32| {
        let mut p = b;
        for _ in 0..4 * MAX_PARENTS {
            match read_stat(proc, p) {
                Some(s) if s.ppid == a => return true,
                Some(s) if s.ppid > 1 => p = s.ppid,
                _ => return false,
            }
        }
        false
    };
    tied.iter().copied().find(|a| tied.iter().all(|b| a == b || !is_ancestor_of(*b, *a)))
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
