//! The seeder: fills a data dir's ledger with realistic generated receipts (many grants, hosts,
//! endpoints, payees, outcomes, descriptions and intents; occasional price spikes and payee
//! changes), appended in large transactions as a valid hash chain. For demos and benchmarks; it
//! refuses a data dir that holds a wallet, so it never mixes fiction into a real ledger.

use super::SearchError;
use crate::grants::GrantSpec;
use crate::ledger::Ledger;
use crate::receipt::{DecidedBy, GrantSnapshot, LedgerAfter, Outcome, Receipt};
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;

/// How to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub count: u64,
    /// The receipts span this many days, ending now (default: about 5,000 a day).
    pub days: Option<u32>,
    pub seed: u64,
    /// Receipts per transaction.
    pub batch: usize,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions { count: 1000, days: None, seed: 402, batch: 5000 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub receipts: u64,
    pub grants: usize,
    pub hosts: usize,
    pub endpoints: usize,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

const SERVICES: &[(&str, &[(&str, &str)])] = &[
    ("weather", &[("/v1/forecast", "7-day weather forecast for a city"), ("/v1/current", "current weather conditions"), ("/v1/history/{id}", "historical weather for a station")]),
    ("stocks", &[("/quote/{id}", "real-time stock quote"), ("/v2/fundamentals", "company fundamentals and ratios"), ("/v2/earnings/{id}", "earnings call transcript")]),
    ("news", &[("/search", "news articles matching a query"), ("/article/{id}", "full text of a news article"), ("/headlines", "top headlines by country")]),
    ("translate", &[("/v2/translate", "machine translation of a text"), ("/v2/detect", "language detection")]),
    ("geocode", &[("/forward", "address to coordinates"), ("/reverse", "coordinates to address")]),
    ("maps", &[("/route", "driving and transit directions"), ("/tiles/{id}", "map tile rendering"), ("/places/search", "points of interest near a location")]),
    ("scholar", &[("/papers/search", "academic paper search"), ("/papers/{id}/pdf", "paper full text PDF"), ("/citations/{id}", "citation graph of a paper")]),
    ("images", &[("/generate", "image generation from a prompt"), ("/upscale", "image upscaling"), ("/describe", "image captioning")]),
    ("embeddings", &[("/v1/embed", "text embeddings"), ("/v1/rerank", "search result reranking")]),
    ("flights", &[("/search", "flight offers between two airports"), ("/status/{id}", "live flight status")]),
    ("hotels", &[("/availability", "hotel room availability and prices"), ("/reviews/{id}", "hotel reviews summary")]),
    ("crypto", &[("/price", "token price feed"), ("/ohlc/{id}", "candles for a trading pair"), ("/onchain/{id}", "wallet on-chain activity")]),
    ("legal", &[("/cases/search", "court case search"), ("/statutes/{id}", "statute full text")]),
    ("recipes", &[("/search", "recipe search by ingredients"), ("/nutrition", "nutrition facts")]),
    ("sports", &[("/scores", "live scores"), ("/stats/{id}", "player statistics")]),
    ("patents", &[("/search", "patent search"), ("/family/{id}", "patent family members")]),
    ("speech", &[("/transcribe", "audio transcription"), ("/tts", "text to speech")]),
    ("web", &[("/scrape", "rendered web page scraping"), ("/screenshot", "web page screenshot"), ("/extract", "structured data extraction from a page")]),
    ("companies", &[("/lookup/{id}", "company registry lookup"), ("/officers/{id}", "company officers")]),
    ("shipping", &[("/track/{id}", "parcel tracking"), ("/rates", "shipping rate quotes")]),
];

const DOMAINS: &[&str] = &["api.{s}hub.com", "{s}.data.io", "x402.{s}.dev", "api.{s}-pro.net", "{s}api.example.org", "pay.{s}cloud.ai", "{s}.agentmarket.xyz"];

const TASKS: &[&str] = &[
    "research",
    "travel-plans",
    "market-watch",
    "due-diligence",
    "news-digest",
    "trip-paris",
    "competitor-scan",
    "thesis-lit-review",
    "weekly-report",
    "recipe-bot",
    "patent-search",
    "sales-leads",
    "support-triage",
    "translation-job",
    "data-cleanup",
    "price-tracker",
    "legal-memo",
    "podcast-notes",
    "ops-monitor",
    "hiring-research",
];

const INTENTS: &[&str] = &[
    "compare {s} sources for the {t} task",
    "look up {s} data requested by the user",
    "refresh the {s} figures for the weekly summary",
    "fetch {s} details before answering the question",
    "gather {s} evidence for the {t} report",
    "check {s} again because the first answer was incomplete",
    "collect {s} results for Paris, Lisbon and Tokyo",
    "verify a claim using {s}",
    // Agents write in their user's language.
    "comparer les sources {s} pour la tâche « {t} »",
    "{s}-Daten für den Bericht prüfen",
    "{s} のデータを確認する",
    "{s} डेटा की जाँच करें",
];

const REFUSALS: &[(&str, &str, DecidedBy, u32)] = &[
    ("over_budget", "the grant's remaining budget is smaller than this price", DecidedBy::Policy, 30),
    ("over_per_request_cap", "the price is above the grant's per-request maximum", DecidedBy::Policy, 20),
    ("host_not_allowed", "this host is not in the grant's scope", DecidedBy::Policy, 12),
    ("user_denied", "the user denied this payment", DecidedBy::User, 12),
    ("approval_timed_out", "nobody approved this payment within 60 s", DecidedBy::Timeout, 10),
    ("expired", "the grant has expired", DecidedBy::Policy, 8),
    ("revoked", "the grant was revoked", DecidedBy::Policy, 3),
    ("payee_not_allowed", "this payee is not in the grant's scope", DecidedBy::Policy, 3),
    ("malformed_challenge", "payment option is malformed: amount is not a canonical decimal string", DecidedBy::Policy, 2),
];

struct Endpoint {
    host: usize,
    path: &'static str,
    description: &'static str,
    price: u64,
}

struct Host {
    name: String,
    service: &'static str,
    payee: String,
    /// When (fraction of the span) the host switched to `new_payee`, if ever.
    payee_change: Option<(f64, String)>,
    network: &'static str,
    v1: bool,
}

struct SeedGrant {
    /// The part of the span (fractions) the grant's task is active in.
    active: (f64, f64),
    id: String,
    label: String,
    hosts: Vec<usize>,
    budget: u64,
    spent: u64,
    snapshot: GrantSnapshot,
}

fn hex_of(rng: &mut StdRng, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rng.fill(&mut b[..]);
    hex::encode(b)
}

fn address(rng: &mut StdRng) -> String {
    let a = alloy_primitives::Address::from_slice(&{
        let mut b = [0u8; 20];
        rng.fill(&mut b);
        b
    });
    a.to_checksum(None)
}

fn uuid_at(rng: &mut StdRng, t: DateTime<Utc>) -> String {
    let mut rand_bytes = [0u8; 10];
    rng.fill(&mut rand_bytes);
    uuid::Builder::from_unix_timestamp_millis(t.timestamp_millis().max(0) as u64, &rand_bytes).into_uuid().to_string()
}

/// A price: log-uniform between $0.001 and $0.25, rounded to a tenth of a cent or so.
fn base_price(rng: &mut StdRng) -> u64 {
    let exp: f64 = rng.gen_range(3.0..5.4);
    let raw = 10f64.powf(exp) as u64;
    let step = if raw >= 10_000 { 1000 } else { 100 };
    (raw / step).max(1) * step
}

/// Fills `ledger` (in `dir`) with generated receipts. `progress(done, total)` is called after
/// each batch.
pub fn seed(ledger: &Ledger, dir: &Path, opts: &SeedOptions, now: DateTime<Utc>, mut progress: impl FnMut(u64, u64)) -> Result<SeedReport, SearchError> {
    if let Some(wallet) = crate::wallet::wallet_file(dir) {
        return Err(SearchError::WalletPresent(wallet.display().to_string()));
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let n = opts.count;
    let days = opts.days.unwrap_or_else(|| (n / 5000).clamp(1, 3000) as u32).clamp(1, 3000);
    let span = Duration::days(days as i64);
    let start = now - span;

    // The world: hosts with endpoints, payees and networks.
    let n_hosts = ((n as f64).sqrt() as usize / 5).clamp(8, 240);
    let mut hosts: Vec<Host> = vec![];
    let mut endpoints: Vec<Endpoint> = vec![];
    for i in 0..n_hosts {
        let (service, paths) = SERVICES[i % SERVICES.len()];
        let domain = DOMAINS[(i / SERVICES.len()) % DOMAINS.len()];
        let mut name = domain.replace("{s}", service);
        if i >= SERVICES.len() * DOMAINS.len() {
            name = format!("v{}.{name}", i / (SERVICES.len() * DOMAINS.len()));
        }
        let payee = address(&mut rng);
        let payee_change = rng.gen_bool(0.04).then(|| (rng.gen_range(0.2..0.9), address(&mut rng)));
        let network = if rng.gen_bool(0.85) { "eip155:8453" } else { "eip155:84532" };
        hosts.push(Host { name, service, payee, payee_change, network, v1: rng.gen_bool(0.3) });
        for (path, description) in paths.iter() {
            endpoints.push(Endpoint { host: i, path, description, price: base_price(&mut rng) });
        }
    }
    let by_host: Vec<Vec<usize>> = (0..n_hosts).map(|h| endpoints.iter().enumerate().filter(|(_, e)| e.host == h).map(|(i, _)| i).collect()).collect();

    // Grants: per-task, each with a few hosts, stored in the grants table too.
    let n_grants = ((n / 2500) as usize).clamp(5, 400);
    let mut grants: Vec<SeedGrant> = vec![];
    for g in 0..n_grants {
        let label = if g < TASKS.len() { TASKS[g].to_string() } else { format!("{}-{}", TASKS[g % TASKS.len()], g / TASKS.len() + 1) };
        let k = rng.gen_range(2..7);
        let gh: Vec<usize> = (0..k).map(|_| rng.gen_range(0..n_hosts)).collect();
        let budget = rng.gen_range(5..500u64) * 1_000_000;
        let spec = GrantSpec {
            label: label.clone(),
            budget: crate::money::micros_decimal(budget),
            expires: format!("{}d", days + 30),
            hosts: gh.iter().map(|h| hosts[*h].name.clone()).collect(),
            per_request_max: Some("0.50".into()),
            auto_below: Some("0.05".into()),
            ask_below: Some("1.00".into()),
            ..Default::default()
        };
        let (label, limits) = spec.validate(start).map_err(|e| SearchError::Seed(e.to_string()))?;
        let id = uuid_at(&mut rng, start);
        let grant = ledger.create_grant(&id, &label, &limits, &hex_of(&mut rng, 32), start)?;
        let snapshot = GrantSnapshot::from(&grant);
        // A few standing grants span everything; the rest are tasks of a day to two weeks.
        let active = if g < 5 {
            (0.0, 1.0)
        } else {
            let len = (rng.gen_range(1.0..14.0) / days as f64).min(1.0);
            let s = rng.gen_range(0.0..(1.0 - len).max(f64::EPSILON));
            (s, s + len)
        };
        grants.push(SeedGrant { active, id, label, hosts: gh, budget, spent: 0, snapshot });
    }

    let total_weight: u32 = REFUSALS.iter().map(|r| r.3).sum();
    let mut done = 0u64;
    let mut batch: Vec<Receipt> = Vec::with_capacity(opts.batch);
    let (mut first, mut last) = (None, None);
    let step_ms = span.num_milliseconds() as f64 / n.max(1) as f64;
    for i in 0..n {
        let frac = i as f64 / n.max(1) as f64;
        let mut t = start + Duration::milliseconds((i as f64 * step_ms) as i64 + rng.gen_range(0..1000));
        // Some decisions waited for the user: their time is when the request came in.
        if rng.gen_bool(0.02) {
            t -= Duration::seconds(rng.gen_range(1..60));
        }
        let gi = (0..64).map(|_| rng.gen_range(0..grants.len())).find(|g| grants[*g].active.0 <= frac && frac <= grants[*g].active.1).unwrap_or_else(|| rng.gen_range(0..5.min(grants.len())));
        let hi = grants[gi].hosts[rng.gen_range(0..grants[gi].hosts.len())];
        let ep = &endpoints[by_host[hi][rng.gen_range(0..by_host[hi].len())]];
        let host = &hosts[hi];
        let item = rng.gen_range(1000..99_999);
        let path = ep.path.replace("{id}", &item.to_string());
        let query = match host.service {
            "weather" | "hotels" => format!("?city={}", ["paris", "lisbon", "tokyo", "berlin", "nairobi", "lima"][rng.gen_range(0..6)]),
            "news" | "scholar" | "patents" => format!("?q={}", ["solar+storage", "llm+agents", "rate+cuts", "coral+reefs", "battery+recycling"][rng.gen_range(0..5)]),
            _ => String::new(),
        };
        let url = format!("https://{}{path}{query}", host.name);
        let mut r = Receipt::new(uuid_at(&mut rng, t), t, if rng.gen_bool(0.8) { "GET" } else { "POST" }, &url, &host.name);
        r.grant_id = Some(grants[gi].id.clone());
        r.grant = Some(grants[gi].snapshot.clone());
        r.intent = rng.gen_bool(0.7).then(|| INTENTS[rng.gen_range(0..INTENTS.len())].replace("{s}", host.service).replace("{t}", &grants[gi].label));

        let roll: f64 = rng.gen();
        let before_402 = roll < 0.03;
        if before_402 {
            // Refused or failed before any challenge: expired/revoked grant, upstream down.
            if rng.gen_bool(0.5) {
                r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::Expired, None, "the grant has expired");
            } else {
                r.decide(Outcome::Failed, DecidedBy::Policy, crate::receipt::Reason::UpstreamError, Some("connect"), "could not reach the upstream server");
            }
        } else {
            let spike = rng.gen_bool(0.004);
            let price = if spike { ep.price * rng.gen_range(5..40) } else { (ep.price as f64 * rng.gen_range(0.9..1.1)) as u64 / 100 * 100 + 100 };
            let payee = match &host.payee_change {
                Some((at, new)) if frac >= *at => new.clone(),
                _ if rng.gen_bool(0.0005) => address(&mut rng),
                _ => host.payee.clone(),
            };
            let (network, asset) =
                if host.network == "eip155:8453" { ("eip155:8453", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913") } else { ("eip155:84532", "0x036CbD53842c5426634e7929541eC2318f3dCF7e") };
            let requirement = if host.v1 {
                json!({"scheme": "exact", "network": if network == "eip155:8453" { "base" } else { "base-sepolia" }, "maxAmountRequired": price.to_string(), "resource": url, "description": ep.description, "mimeType": "application/json", "payTo": payee, "maxTimeoutSeconds": 300, "asset": asset, "extra": {"name": if network == "eip155:8453" { "USD Coin" } else { "USDC" }, "version": "2"}})
            } else {
                json!({"scheme": "exact", "network": network, "amount": price.to_string(), "asset": asset, "payTo": payee, "maxTimeoutSeconds": 300, "extra": {"name": if network == "eip155:8453" { "USD Coin" } else { "USDC" }, "version": "2"}})
            };
            r.challenge = Some(if host.v1 {
                json!({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement.clone()]})
            } else {
                json!({"x402Version": 2, "error": "Payment required", "resource": {"url": url, "description": ep.description, "mimeType": "application/json"}, "accepts": [requirement.clone()]})
            });
            r.upstream_status = Some(402);
            let o: f64 = rng.gen();
            if o < 0.07 {
                r.decide(Outcome::NotPayable, DecidedBy::Policy, crate::receipt::Reason::NotPayable, Some("unsupported_network"), "network \"eip155:1\" is not in Purser's registry");
            } else {
                r.x402_version = Some(if host.v1 { 1 } else { 2 });
                r.requirement_hash = Some(hex::encode(Sha256::digest(requirement.to_string().as_bytes())));
                r.requirement = Some(requirement);
                r.amount_atomic = Some(price.to_string());
                r.amount_usd = Some(crate::money::micros_decimal(price));
                r.network = Some(network.into());
                r.asset = Some(asset.into());
                r.pay_to = Some(payee.clone());
                if o < 0.37 || price > 500_000 {
                    let mut w = rng.gen_range(0..total_weight);
                    let (reason, msg, by, _) = REFUSALS
                        .iter()
                        .find(|x| {
                            if w < x.3 {
                                true
                            } else {
                                w -= x.3;
                                false
                            }
                        })
                        .copied()
                        .unwrap_or(REFUSALS[0]);
                    let reason = if price > 500_000 { "over_per_request_cap" } else { reason };
                    let reason = crate::receipt::Reason::parse(reason).unwrap_or(crate::receipt::Reason::OverBudget);
                    let by = if price > 500_000 { DecidedBy::Policy } else { by };
                    r.decide(Outcome::Refused, by, reason, None, msg);
                } else {
                    let by = if price >= 50_000 { DecidedBy::User } else { DecidedBy::Auto };
                    r.reservation_id = Some(uuid_at(&mut rng, t));
                    r.payload_hash = Some(hex_of(&mut rng, 32));
                    r.valid_before = Some(t.timestamp() as u64 + 300);
                    r.payer = Some("0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into());
                    if o < 0.42 {
                        r.upstream_status = Some(402);
                        r.decide(
                            Outcome::Failed,
                            by,
                            crate::receipt::Reason::SettlementFailed,
                            Some("insufficient_funds"),
                            "the payment was not confirmed (upstream answered 402 Payment Required); no second signature will be made and the budget stays reserved until the authorization expires",
                        );
                    } else {
                        let tx = format!("0x{}", hex_of(&mut rng, 32));
                        r.settlement = Some(json!({"success": true, "transaction": tx, "network": network, "payer": r.payer}));
                        r.tx = Some(tx);
                        r.upstream_status = Some(200);
                        r.decide(Outcome::Paid, by, crate::receipt::Reason::Paid, None, format!("paid {} to {payee}", crate::money::format_usd(price)));
                        let g = &mut grants[gi];
                        g.spent = (g.spent + price).min(g.budget);
                    }
                }
            }
        }
        let g = &grants[gi];
        r.ledger_after = Some(LedgerAfter { spent_atomic: g.spent.to_string(), reserved_atomic: "0".into(), remaining_atomic: (g.budget - g.spent).to_string() });
        first.get_or_insert(t);
        last = Some(t);
        batch.push(r);
        if batch.len() >= opts.batch.max(1) {
            ledger.record_batch(&mut batch)?;
            done += batch.len() as u64;
            batch.clear();
            progress(done, n);
        }
    }
    if !batch.is_empty() {
        ledger.record_batch(&mut batch)?;
        done += batch.len() as u64;
        progress(done, n);
    }
    // A bulk load ends by merging the full-text index into one segment.
    ledger.optimize_search_index()?;
    Ok(SeedReport { receipts: done, grants: grants.len(), hosts: hosts.len(), endpoints: endpoints.len(), first, last })
}
