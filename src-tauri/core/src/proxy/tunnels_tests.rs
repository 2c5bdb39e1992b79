//! The tunnel registry's caps, its grant watcher, the slot a tunnel keeps, and [`pipe`]'s idle
//! timeout and closing, tested without a listener.

use super::*;
use tokio::io::duplex;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn each_grant_is_capped_and_a_closed_tunnel_frees_its_place() {
    let t = Tunnels::new(TUNNEL_IDLE, 2, Some(100));
    let a = t.admit("g1", None).expect("first");
    let _b = t.admit("g1", None).expect("second");
    let over = t.admit("g1", None).err().expect("a third tunnel of g1 is refused");
    assert_eq!(over, TunnelError::TooManyForGrant { open: 2, max: 2 });
    assert_eq!((over.code().as_str(), over.response().status()), ("too_many_tunnels", StatusCode::TOO_MANY_REQUESTS));
    let _c = t.admit("g2", None).expect("another grant is not affected");
    assert_eq!(t.open("g1"), (3, 2));
    drop(a);
    assert_eq!(t.open("g1"), (2, 1));
    assert!(t.admit("g1", None).is_ok(), "closing one makes room");
}

#[test]
fn all_tunnels_are_capped_below_the_open_file_limit() {
    let t = Tunnels::new(TUNNEL_IDLE, 10, Some(3));
    let held: Vec<_> = ["a", "b", "c"].iter().map(|g| t.admit(g, None).expect("under the cap")).collect();
    let over = t.admit("d", None).err().expect("the fourth is refused");
    assert_eq!(over, TunnelError::TooManyOpen { open: 3, max: 3 });
    assert_eq!((over.code().as_str(), over.response().status()), ("tunnel_limit", StatusCode::SERVICE_UNAVAILABLE));
    drop(held);
    assert!(t.admit("d", None).is_ok());
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert_eq!(fd_cap() as u64, (lim.rlim_cur - FD_RESERVE) / 2);
}

#[test]
fn a_tunnel_holds_its_connection_slot() {
    let limits = super::super::limits::ConnLimits::new(Duration::from_secs(1), 1);
    let slot = super::super::limits::Slot::new(limits.admit().expect("slot"));
    let t = Tunnels::new(TUNNEL_IDLE, 2, Some(2));
    let guard = t.admit("g", Some(slot.clone())).expect("tunnel");
    drop(slot);
    assert!(limits.admit().is_none(), "the connection ended but its tunnel is open");
    drop(guard);
    assert!(limits.admit().is_some());
}

#[tokio::test]
async fn an_idle_pipe_closes_both_sides_and_traffic_keeps_it_open() {
    let t = Tunnels::new(TUNNEL_IDLE, 2, Some(2));
    let (mut agent, a) = duplex(1024);
    let (mut upstream, b) = duplex(1024);
    let mut guard = t.admit("g", None).unwrap();
    let started = Instant::now();
    let run = tokio::spawn(async move { pipe(a, b, Some(MS(150)), &mut guard).await });
    for _ in 0..5 {
        tokio::time::sleep(MS(80)).await;
        agent.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        upstream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }
    let end = tokio::time::timeout(Duration::from_secs(2), run).await.expect("idles out").unwrap();
    assert_eq!(end, End::Idle);
    assert!(started.elapsed() >= MS(400 + 150), "traffic kept it open: {:?}", started.elapsed());
    assert_eq!(agent.read(&mut [0u8; 8]).await.unwrap(), 0, "the agent's side is closed");
    assert_eq!(upstream.read(&mut [0u8; 8]).await.unwrap(), 0, "the upstream's side is closed");
    assert_eq!(t.open("g"), (0, 0), "and no longer counted");
}

#[tokio::test]
async fn closing_a_grant_closes_its_pipes_only() {
    let t = Tunnels::new(TUNNEL_IDLE, 2, Some(4));
    let mut pipes = Vec::new();
    for g in ["revoked", "other"] {
        let (agent, a) = duplex(64);
        let (_up, b) = duplex(64);
        let mut guard = t.admit(g, None).unwrap();
        pipes.push((agent, _up, tokio::spawn(async move { pipe(a, b, None, &mut guard).await })));
    }
    assert_eq!(t.close_grant("revoked"), 1);
    let (mut agent, _up, run) = pipes.remove(0);
    assert_eq!(tokio::time::timeout(Duration::from_secs(1), run).await.expect("closed").unwrap(), End::Closed);
    assert_eq!(agent.read(&mut [0u8; 8]).await.unwrap(), 0);
    tokio::time::sleep(MS(50)).await;
    assert!(!pipes[0].2.is_finished(), "the other grant's tunnel stays open");
    assert_eq!(t.open("other"), (1, 1));
}

#[tokio::test]
async fn revoking_or_expiring_a_grant_closes_its_tunnels_within_a_second() {
    use crate::clock::{ManualClock, OsNonces};
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let ledger = crate::ledger::Ledger::open_in(dir.path()).unwrap();
    let engine = Arc::new(Engine::with_sources(ledger, None, clock.clone(), Arc::new(OsNonces)).unwrap());
    let spec = |l: &str| crate::grants::GrantSpec { label: l.into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["example.com".into()], ..Default::default() };
    let presence = crate::presence::Presence::app_click();
    let (revoked, expiring) = (engine.create_grant(&spec("r"), Some(&presence)).unwrap().grant.id, engine.create_grant(&spec("e"), Some(&presence)).unwrap().grant.id);
    let t = Tunnels::for_engine(&engine);
    assert!(Arc::ptr_eq(&t, &Tunnels::for_engine(&engine)), "one registry per engine");
    let (mut r, mut e) = (t.admit(&revoked, None).unwrap(), t.admit(&expiring, None).unwrap());

    let started = Instant::now();
    engine.revoke_grant(&revoked).unwrap();
    tokio::time::timeout(Duration::from_secs(1), r.closed()).await.expect("revoked: closed within 1 s");
    assert!(started.elapsed() < MS(200), "at once, on the event: {:?}", started.elapsed());

    tokio::time::sleep(MS(1100)).await;
    assert!(tokio::time::timeout(MS(10), e.closed()).await.is_err(), "an active grant's tunnel stays open");
    clock.advance(chrono::Duration::hours(2));
    tokio::time::timeout(MS(1500), e.closed()).await.expect("expired: closed on the next tick");
}
