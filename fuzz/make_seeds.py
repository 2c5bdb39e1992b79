#!/usr/bin/env python3
"""Writes the hand-made seed inputs of each fuzz target into fuzz/corpus/<target>/ (then
`cargo fuzz cmin` minimises them together with what the fuzzer found). The x402 documents are
shaped like the reference peers' captured 402s, settlement headers and requests (tests/peers,
the x402-peers kit), plus edge cases. Run from anywhere: python3 fuzz/make_seeds.py"""
import base64, hashlib, json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PAYEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
PAYEE2 = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def js(v):
    return json.dumps(v, separators=(",", ":"))


def v1_option(**kw):
    o = {"scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "1000",
         "resource": "http://127.0.0.1:28548/cheap", "description": "cheap test resource",
         "mimeType": "application/json", "payTo": PAYEE, "maxTimeoutSeconds": 300, "asset": SEPOLIA_USDC,
         "outputSchema": {"input": {"type": "http", "method": "GET", "discoverable": True}},
         "extra": {"name": "USDC", "version": "2"}}
    o.update(kw)
    return {k: v for k, v in o.items() if v is not None}


def v2_option(**kw):
    o = {"scheme": "exact", "network": "eip155:84532", "amount": "10000", "asset": SEPOLIA_USDC,
         "payTo": PAYEE, "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"}}
    o.update(kw)
    return {k: v for k, v in o.items() if v is not None}


def v1_doc(*opts):
    return {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": list(opts)}


def v2_doc(*opts, resource=None):
    return {"x402Version": 2, "error": "Payment required",
            "resource": resource or {"url": "http://127.0.0.1:28547/cheap", "description": "cheap test resource", "mimeType": "application/json"},
            "accepts": list(opts)}


v1_docs = [
    v1_doc(v1_option()),
    v1_doc(v1_option(resource="http://127.0.0.1:28548/echo", description="echoes the JSON request body", maxAmountRequired="10000")),
    v1_doc(v1_option(), v1_option(maxAmountRequired="20000", payTo=PAYEE2)),
    v1_doc(v1_option(network="base", asset=BASE_USDC, extra={"name": "USD Coin", "version": "2"})),
    v1_doc(v1_option(scheme="upto"), v1_option()),
    v1_doc(v1_option(network="solana")),
    v1_doc(v1_option(extra={"name": "USDC", "version": "2", "assetTransferMethod": "permit2"})),
    v1_doc(v1_option(extra={"name": "Evil", "version": "9"})),
    v1_doc(v1_option(maxAmountRequired="0")),
    v1_doc(v1_option(maxAmountRequired="01")),
    v1_doc(v1_option(maxAmountRequired="1.5")),
    v1_doc(v1_option(maxAmountRequired=1000)),
    v1_doc(v1_option(maxAmountRequired="1" * 80)),
    v1_doc(v1_option(payTo="0x" + "0" * 40)),
    v1_doc(v1_option(payTo="0x123")),
    v1_doc(v1_option(maxTimeoutSeconds=0)),
    v1_doc(v1_option(maxTimeoutSeconds=-1)),
    v1_doc(v1_option(extra=[1])),
    {"x402Version": 1, "accepts": []},
    {"x402Version": 3, "accepts": [v1_option()]},
    {"x402Version": "1", "accepts": [v1_option()]},
    {"x402Version": 1, "accepts": [v1_option()], "extensions": {"eip2612GasSponsoring": {}}},
    {"error": "no version"},
    [1, 2, 3],
]
for d in v1_docs:
    put("x402_v1_challenge", js(d))
put("x402_v1_challenge", json.dumps(v1_docs[0], indent=2))
put("x402_v1_challenge", "[" * 40 + "]" * 40)
put("x402_v1_challenge", '{"x402Version":1,"accepts":[{"description":"\\u0007\\u202e\\ud83d\\ude00"}]}')
put("x402_v1_challenge", "Payment required")
put("x402_v1_challenge", "")

v2_docs = [
    v2_doc(v2_option()),
    v2_doc(v2_option(), resource={"url": "http://127.0.0.1:28547/echo", "description": "echoes the JSON request body", "mimeType": "application/json"}),
    v2_doc(v2_option(), v2_option(amount="20000", payTo=PAYEE2), resource={"url": "http://127.0.0.1:28547/multi", "description": "two payment options", "mimeType": "application/json"}),
    v2_doc(v2_option(network="eip155:8453", asset=BASE_USDC, extra={"name": "USD Coin", "version": "2"})),
    v2_doc(v2_option(extra={"name": "USDC", "version": "2", "assetTransferMethod": "eip3009"})),
    v2_doc(v2_option(extra={"assetTransferMethod": "permit2"})),
    v2_doc(v2_option(scheme="upto"), v2_option(network="eip155:1")),
    v2_doc(v2_option(amount="115792089237316195423570985008687907853269984665640564039457584007913129639936")),
    v2_doc(v2_option(amount="115792089237316195423570985008687907853269984665640564039457584007913129639935")),
    v2_doc(v2_option(asset="0x" + "1" * 40)),
    dict(v2_doc(v2_option()), extensions={"permit": {}}),
    {"x402Version": 2, "accepts": "none"},
    {"x402Version": 2},
]
for d in v2_docs:
    put("x402_v2_challenge", b"\x00" + base64.b64encode(js(d).encode()))
    put("x402_v2_challenge", b"\x01" + js(d).encode())
put("x402_v2_challenge", b"\x02" + js(v2_docs[2]).encode())
put("x402_v2_challenge", b"\x03" + js(v2_docs[0]).encode())
put("x402_v2_challenge", b"\x00" + base64.urlsafe_b64encode(js(v2_docs[1]).encode()).rstrip(b"="))
put("x402_v2_challenge", b"\x00 " + base64.b64encode(js(v2_docs[0]).encode()) + b" ")
put("x402_v2_challenge", b"\x00%%%not base64")
put("x402_v2_challenge", b"\x01" + b"{" * 40)

settlements = [
    {"success": True, "payer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "transaction": "0x" + "9c" * 32, "network": "eip155:84532"},
    {"success": True, "transaction": "0x" + "b4" * 32, "network": "base-sepolia", "payer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
    {"success": False, "errorReason": "unexpected_settle_error", "transaction": "", "network": "eip155:84532"},
    {"success": False, "errorReason": "insufficient_funds\u0000\u001b[31m" + "x" * 300},
    {"success": "true"},
    {"transaction": "0x"},
]
for s in settlements:
    put("settlement_header", b"\x00" + base64.b64encode(js(s).encode()))
    put("settlement_header", b"\x01" + js(s).encode())
put("settlement_header", b"\x00" + base64.urlsafe_b64encode(js(settlements[0]).encode()).rstrip(b"="))
put("settlement_header", b"\x00[1]")
put("settlement_header", b"\x01[1]")

for dec, s in [(6, "1000"), (6, "0"), (6, "01"), (18, "1000000000000000000"), (18, "1"), (2, "5"), (6, "18446744073709551615"),
               (6, "115792089237316195423570985008687907853269984665640564039457584007913129639935"),
               (6, "115792089237316195423570985008687907853269984665640564039457584007913129639936"),
               (6, "5.00"), (6, "$1.25"), (6, "0.000001"), (6, "1.0000001"), (6, "9223372036854.775807"), (6, "1e3"),
               (6, "-1"), (6, " 1"), (6, "\u0661"), (0, "9" * 40), (77, "1" * 78)]:
    put("amount", bytes([dec]) + s.encode())

for port, pat, host in [(443, "api.example.com", "api.example.com"), (443, "*.example.org", "a.b.example.org"), (443, "*.example.org", "example.org"),
                        (8080, "127.0.0.1:8080", "127.0.0.1"), (9, "[::1]:9", "::1"), (443, "API.Example.COM", "api.example.com."),
                        (443, "*.example.org:8443", "a.example.org"), (443, "evil-api.example.com", "api.example.com"),
                        (1, "host:99999", "host"), (1, "*.", "x"), (1, "*", "x"), (80, "localhost", "LOCALHOST..")]:
    put("host_pattern", struct.pack(">H", port) + f"{pat}\n{host}".encode())

for q in ["weather grant:research outcome:refused amount:>0.10 since:2026-11-01", "weath*", "-weather", '"paris weather"',
          'grant:"travel plans"', "outcome:paid,failed", "by:user decided_by:auto pay_to:" + PAYEE, "host:*.example.com",
          "host:127.0.0.1:8080", "network:base-sepolia network:eip155:8453", "amount:0.01..0.05 amount:<=1 amount:>=0.001 amount:0.05",
          "since:2026-11-01T10:00:00Z until:2026-11-02", "since:7d", "since:24h until:30m", "flag:price_spike flag:any -flag:new_payee",
          '"https://api.x.com/v1" api.x.com/v1', "reason:over_budget -reason:paid", "colour:red", 'grant:"abc', "amount:<0",
          "since:2026-11-02 until:2026-11-01", "amount:>1 amount:<0.5", "since:2026-11-01T10:00:00+01:00", "since:9999d", "ab\"c", "*", "--"]:
    put("timeline_query", q)

heads = [
    "GET /https://api.example.com/path?q=1\r\nHost: 127.0.0.1:4020\r\nProxy-Authorization: Bearer pgt_abc\r\n",
    "POST /http://127.0.0.1:28547/echo\nHost: localhost:4020\nX-Purser-Grant: pgt_x\nPurser-Intent: buy\n",
    "GET /_purser/v1/approvals\nHost: 127.0.0.1:4020\nAuthorization: Bearer ctl\n",
    "GET /https://api.example.com/\nHost: evil.example:4020\n",
    "GET /https://api.example.com/\nHost: 127.0.0.1:4020\nOrigin: https://evil.example\n",
    "GET /nothing\nHost: 127.0.0.1:4020\n",
    "GET /https://\nHost: 127.0.0.1:4020\n",
    "CONNECT api.example.com:443\nProxy-Authorization: Basic " + base64.b64encode(b"grant:pgt_abc").decode() + "\n",
    "CONNECT [::1]:8443\nProxy-Authorization: Basic " + base64.b64encode(b"u:").decode() + "\n",
    "CONNECT localhost:4020\n",
    "CONNECT api.example.com\n",
    "GET http://api.example.com/x?y=1\nProxy-Authorization: bearer  tok \n",
    "GET http://127.0.0.1:4020/loop\n",
    "GET http://[::1]:4020/x\n",
    "GET ftp://a.b/x\n",
    "OPTIONS *\n",
]
for h in heads:
    put("proxy_head", h)
