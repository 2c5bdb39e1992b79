//! Self-test of the harness itself (no purser binary needed): the hostile server, raw HTTP, and
//! the node peers with the chain helpers.

use purser_testkit::{agent, facilitator_stats, good_v2_required, raw_http, send, usdc_balance, v2_response, Hostile402, Mode, Peers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_and_raw_http() {
    let h = Hostile402::start().await;
    h.route("/x", v2_response(&good_v2_required(&h.url_of("/x"), "1000")));
    let r = send(agent().get(h.url_of("/x?q=1"))).await;
    assert_eq!(r.status, 402, "{r}");
    assert!(r.header("payment-required").is_some(), "{r}");
    assert_eq!(h.paid(), 0);
    let r = send(agent().get(h.url_of("/x")).header("X-PAYMENT", "abc")).await;
    assert_eq!(r.status, 402);
    assert_eq!((h.paid(), h.paid_to("/x"), h.requests_to("/x")), (1, 1, 2));
    let addr = format!("127.0.0.1:{}", h.port);
    let raw = raw_http(&addr, format!("GET /other HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(raw.status, 200, "{raw}");
    assert_eq!(raw.json()["hostile"], true, "{raw}");
    assert_eq!(h.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_start_and_answer() {
    let peers = Peers::start(Mode::Real);
    assert_eq!(peers.chain_id, 84532);
    assert_eq!(usdc_balance(&peers.rpc, &peers.payer_address).await, 1_000_000_000);
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, 0);
    let st = facilitator_stats(&peers.facilitator).await;
    assert_eq!(st["settle"], 0, "{st}");
    for base in [&peers.v2, &peers.v1] {
        let r = send(agent().get(format!("{base}/cheap")).header("Accept", "application/json")).await;
        assert_eq!(r.status, 402, "{r}");
        let r = send(agent().get(format!("{base}/free")).header("Accept", "application/json")).await;
        assert_eq!(r.status, 200, "{r}");
    }
}
