//! Owns the payment road, and nothing else: one governed request from the agent's call to its
//! answer, each step a call into the module that owns it.
//!
//! ```text
//! upstream ─► not 402: stream back
//!          └► 402: x402::parse ─► policy::choose ─► refuse ─────────────────► receipt, 403
//!                                                 ├ ask ─► approvals::wait ─┐
//!                                                 └ auto ───────────────────┤
//!             ledger::reserve (BEGIN IMMEDIATE) ◄───────────────────────────┘
//!             ─► wallet::sign_transfer ─► upstream retry (no redirects)
//!             ─► x402::decode_settlement ─► ledger::finish (settle | keep, + receipt) ─► answer
//! ```

use crate::approvals::{PendingApproval, Verdict, Via};
use crate::clock::new_id;
use crate::engine::Engine;
use crate::grants::Grant;
use crate::ledger::{Reservation, Settle};
use crate::money;
use crate::policy::{self, Tier};
use crate::receipt::{DecidedBy, Outcome, Receipt};
use crate::rules::{self, Ruling};
use crate::upstream::{self, AgentRequest, Body};
use crate::x402::{self, Requirement};
use http::{Response, StatusCode};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Longest validity Purser gives a signed authorization.
pub const MAX_VALIDITY_SECS: u64 = 300;
/// Largest 402 body read.
const MAX_402_BODY: usize = 1 << 20;

/// What one governed request turned into, before it becomes an HTTP answer.
enum Answer {
    /// Purser's own refusal or error: status and a receipt.
    Refuse(StatusCode),
    /// Pass an upstream answer back (streamed) with the receipt.
    Upstream(reqwest::Response),
    /// Pass a buffered 402 back untouched with the receipt.
    Buffered(StatusCode, http::HeaderMap, bytes::Bytes),
}

/// Time spent inside Purser on one request: wall time minus waiting on the upstream or the user.
/// Reported to the agent as `Server-Timing: purser;dur=<ms>` on governed answers.
struct Timer {
    start: std::time::Instant,
    waiting: Duration,
}

impl Timer {
    fn new() -> Self {
        Timer { start: std::time::Instant::now(), waiting: Duration::ZERO }
    }
    /// Runs `f`, counting its time as waiting (not Purser's own work).
    async fn wait<T>(&mut self, f: impl std::future::Future<Output = T>) -> T {
        let t = std::time::Instant::now();
        let out = f.await;
        self.waiting += t.elapsed();
        out
    }
    fn inside(&self) -> Duration {
        self.start.elapsed().saturating_sub(self.waiting)
    }
}

/// Runs one agent request under `grant`.
pub async fn run(e: &Engine, grant: Grant, req: AgentRequest, intent: Option<String>) -> Response<Body> {
    let mut timer = Timer::new();
    let mut receipt = Receipt::new(new_id(), e.clock.now(), req.method.as_str(), req.url.as_str(), req.host());
    receipt.set_grant(&grant);
    receipt.intent = intent;
    receipt.agent = Some(req.who.clone());

    // A revoked or expired grant governs nothing, not even free traffic.
    if let Err(refusal) = policy::check_budget(&grant, 0, e.clock.now()) {
        receipt.decide(Outcome::Refused, DecidedBy::Policy, refusal.reason(), None, refusal.to_string());
        return answer(e, None, receipt, Answer::Refuse(StatusCode::FORBIDDEN), timer, &req.client).await;
    }
    let first = match timer.wait(e.upstream.send(&req, None)).await {
        Ok(r) => r,
        Err(err) => {
            // An upstream whose certificate does not verify is refused outright (never ignored).
            let outcome = if matches!(err, upstream::UpstreamError::Certificate(_)) { Outcome::Refused } else { Outcome::Failed };
            // A timeout is named as such (`upstream_timeout`, 504); see `upstream::Limits`.
            let (reason, status) = match err {
                upstream::UpstreamError::Timeout(_) => (crate::receipt::Reason::UpstreamTimeout, StatusCode::GATEWAY_TIMEOUT),
                _ => (crate::receipt::Reason::UpstreamError, StatusCode::BAD_GATEWAY),
            };
            receipt.decide(outcome, DecidedBy::Policy, reason, Some(err.code().as_str()), err.to_string());
            return answer(e, None, receipt, Answer::Refuse(status), timer, &req.client).await;
        }
    };
    if first.status() != StatusCode::PAYMENT_REQUIRED {
        return upstream::stream_back(first, None);
    }
    let (ans, reservation) = pay(e, &grant, &req, first, &mut receipt, &mut timer).await;
    answer(e, reservation, receipt, ans, timer, &req.client).await
}

/// The reason (and the delivery) of a request whose agent left before its answer.
pub const CLIENT_GONE: &str = "client_gone";

/// Records the receipt (ending the reservation in the same transaction) and turns the answer
/// into an HTTP response. An agent that already left is recorded as such (`delivery`).
async fn answer(e: &Engine, reservation: Option<(Reservation, Settle)>, mut receipt: Receipt, ans: Answer, timer: Timer, client: &crate::client::ClientGone) -> Response<Body> {
    if client.is_gone() {
        receipt.delivery = Some(CLIENT_GONE.to_string());
    }
    // Secrets in the URL the server echoed are kept out of the record too.
    for v in [&mut receipt.challenge, &mut receipt.requirement, &mut receipt.settlement].into_iter().flatten() {
        crate::redact::json_urls(v);
    }
    // Routine decisions beyond the grant's receipts a minute are counted into one summary.
    if crate::folding::Folding::foldable(&receipt, reservation.is_some()) {
        if let crate::folding::Admit::Folded { summary_id, first, minute_ends } = e.folding.admit(&receipt) {
            if first {
                write_summaries_after(e, minute_ends);
            }
            tracing::debug!(summary = %summary_id, reason = %receipt.reason, "decision folded into its minute's summary");
            return respond(&receipt.reason, &receipt.message, &summary_id, ans, timer);
        }
    }
    let now = e.clock.now();
    let (receipt, recorded) = match e
        .ledger
        .blocking(move |l| {
            // A receipt the ledger cannot write (disk full, read-only file) is parked, not lost.
            let r = l.finish_or_park(reservation.as_ref().map(|(r, s)| (r, *s)), &mut receipt, now);
            (receipt, r)
        })
        .await
    {
        Ok(pair) => pair,
        Err(err) => {
            tracing::error!(error = %err, "ledger task failed");
            return upstream::error_response(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", "Purser could not record this decision", None);
        }
    };
    if let Err(err) = recorded {
        tracing::error!(error = %err, receipt = %receipt.id, "could not record a receipt");
        if let Answer::Upstream(resp) = ans {
            return upstream::stream_back(resp, None);
        }
        let msg = format!("Purser cannot write its ledger ({}); its receipt will be written when the ledger takes writes again. Decision: {} ({})", err.code(), receipt.reason, receipt.message);
        return upstream::error_response(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", &msg, None);
    }
    e.events.publish(crate::events::Event::ReceiptAdded { id: receipt.id.clone() });
    tracing::info!(receipt = %receipt.id, outcome = receipt.outcome.as_str(), reason = %receipt.reason, url = %receipt.url, "decision");
    respond(&receipt.reason, &receipt.message, &receipt.id, ans, timer)
}

/// The HTTP answer of a recorded decision, naming its receipt (`Purser-Receipt`) and Purser's
/// own time (`Server-Timing`).
fn respond(reason: &str, message: &str, receipt_id: &str, ans: Answer, timer: Timer) -> Response<Body> {
    let id = Some(receipt_id);
    let mut resp = match ans {
        Answer::Refuse(status) => upstream::error_response(status, reason, message, id),
        Answer::Upstream(resp) => upstream::stream_back(resp, id),
        Answer::Buffered(status, headers, body) => upstream::buffered_back(status, &headers, body, id),
    };
    let timing = format!("purser;dur={:.3}", timer.inside().as_secs_f64() * 1000.0);
    if let Ok(v) = http::HeaderValue::from_str(&timing) {
        resp.headers_mut().append(http::header::HeaderName::from_static("server-timing"), v);
    }
    resp
}

/// Writes the summaries of folded decisions once their minute has ended (a second after it,
/// by the engine's clock then).
fn write_summaries_after(e: &Engine, minute_ends: chrono::DateTime<chrono::Utc>) {
    let wait = (minute_ends - e.clock.now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    let (ledger, events, folding, clock) = (e.ledger.clone(), e.events.clone(), e.folding.clone(), e.clock.clone());
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let due = folding.due(Some(clock.now()));
        record_summaries(&ledger, &events, due, clock.now()).await;
    });
}

/// Records summary receipts (parked, like any receipt, if the ledger takes no writes).
pub async fn record_summaries(ledger: &crate::ledger::Ledger, events: &crate::events::Events, due: Vec<Receipt>, now: chrono::DateTime<chrono::Utc>) {
    for mut r in due {
        let written = ledger
            .blocking(move |l| {
                let res = l.finish_or_park(None, &mut r, now);
                (r, res)
            })
            .await;
        match written {
            Ok((r, Ok(()))) => {
                tracing::info!(receipt = %r.id, count = r.folded.as_ref().map(|f| f.count), "summary of folded decisions written");
                events.publish(crate::events::Event::ReceiptAdded { id: r.id.clone() });
            }
            Ok((r, Err(err))) => tracing::error!(error = %err, receipt = %r.id, "could not record a summary receipt"),
            Err(err) => tracing::error!(error = %err, "ledger task failed"),
        }
    }
}

fn refuse(receipt: &mut Receipt, by: DecidedBy, reason: crate::receipt::Reason, detail: Option<&str>, message: String, status: StatusCode) -> (Answer, Option<(Reservation, Settle)>) {
    receipt.decide(Outcome::Refused, by, reason, detail, message);
    (Answer::Refuse(status), None)
}

/// From the 402 to the paid retry's answer.
async fn pay(e: &Engine, grant: &Grant, req: &AgentRequest, first: reqwest::Response, receipt: &mut Receipt, timer: &mut Timer) -> (Answer, Option<(Reservation, Settle)>) {
    receipt.upstream_status = Some(402);
    let status = first.status();
    let headers = first.headers().clone();
    let body = match timer.wait(e.upstream.read_challenge(first, MAX_402_BODY)).await {
        Ok(b) => b,
        Err(err @ upstream::UpstreamError::TooLarge(_)) => {
            return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::MalformedChallenge, Some("too_large"), err.to_string(), StatusCode::FORBIDDEN)
        }
        Err(err @ upstream::UpstreamError::Timeout(_)) => {
            receipt.decide(Outcome::Failed, DecidedBy::Policy, crate::receipt::Reason::UpstreamTimeout, Some(err.code().as_str()), err.to_string());
            return (Answer::Refuse(StatusCode::GATEWAY_TIMEOUT), None);
        }
        Err(err) => {
            receipt.decide(Outcome::Failed, DecidedBy::Policy, crate::receipt::Reason::UpstreamError, Some(err.code().as_str()), err.to_string());
            return (Answer::Refuse(StatusCode::BAD_GATEWAY), None);
        }
    };

    // 1. Parse: a typed challenge, or a named reason.
    let parsed = x402::parse_challenge(headers.get(x402::H_PAYMENT_REQUIRED).map(|v| v.as_bytes()), &body);
    receipt.challenge = parsed.raw;
    let challenge = match parsed.result {
        Ok(c) => c,
        Err(err) if err.is_not_payable() => {
            receipt.challenge = excerpt(receipt.challenge.take(), &body);
            receipt.decide(Outcome::NotPayable, DecidedBy::Policy, crate::receipt::Reason::NotPayable, Some(err.code().as_str()), err.to_string());
            return (Answer::Buffered(status, headers, body), None);
        }
        Err(err) => {
            receipt.challenge = excerpt(receipt.challenge.take(), &body);
            return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::MalformedChallenge, Some(err.code().as_str()), err.to_string(), StatusCode::FORBIDDEN);
        }
    };
    receipt.x402_version = Some(challenge.version);

    // 2. Policy: which option, and pay, ask or refuse.
    let choice = policy::choose(grant, req.host(), req.port(), &challenge.accepts, e.clock.now());
    let requirement = choice.requirement;
    receipt.set_requirement(requirement, choice.micros);
    // "Pause all spending": every payment is refused, whatever the grant says.
    if e.paused() {
        return refuse(
            receipt,
            DecidedBy::Policy,
            crate::receipt::Reason::SpendingPaused,
            None,
            "spending is paused in Purser (resume it in the app or with `purser resume`)".into(),
            StatusCode::FORBIDDEN,
        );
    }
    // The user's standing rules on this grant (block this host / auto-approve it) come next.
    let grant_rules = match &choice.verdict {
        Ok(_) => {
            let (ledger, gid) = (e.ledger.clone(), grant.id.clone());
            match ledger.blocking(move |l| l.live_rules(&gid)).await.and_then(|r| r) {
                Ok(r) => r,
                Err(err) => return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::LedgerUnavailable, Some(err.code().as_str()), err.to_string(), StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        Err(_) => Vec::new(),
    };
    let ruling = rules::ruling(&grant_rules, req.host(), req.port(), choice.micros, e.clock.now());
    if let Some(Ruling::Block(r)) = ruling {
        receipt.rule_id = Some(r.id.clone());
        return refuse(receipt, DecidedBy::Rule, crate::receipt::Reason::BlockedByRule, None, format!("you blocked {} for this grant (rule {})", r.host, r.id), StatusCode::FORBIDDEN);
    }
    let decided_by = match (choice.verdict, ruling) {
        (Err(refusal), _) => return refuse(receipt, DecidedBy::Policy, refusal.reason(), None, refusal.to_string(), StatusCode::FORBIDDEN),
        (Ok(Tier::Auto), _) => DecidedBy::Auto,
        (Ok(Tier::Ask), Some(Ruling::Allow(r))) => {
            receipt.rule_id = Some(r.id.clone());
            DecidedBy::Rule
        }
        (Ok(Tier::Ask), _) => match timer.wait(ask(e, grant, req, requirement, choice.micros, challenge.description.as_deref(), receipt)).await {
            (Verdict::Approved, via) => {
                receipt.decided_via = via;
                // The approval covers exactly the requirement shown, and the signature binds its
                // payee and amount: if the price moved while the user looked, the server refuses
                // the paid request (see `changed_terms`). The request is never sent a third time.
                DecidedBy::User
            }
            (Verdict::Denied, via) => {
                receipt.decided_via = via;
                return refuse(receipt, DecidedBy::User, crate::receipt::Reason::UserDenied, None, "the user denied this payment".into(), StatusCode::FORBIDDEN);
            }
            (Verdict::TimedOut, _) => {
                let msg = format!("nobody approved this payment within {} s", grant.limits.approval_timeout_secs);
                return refuse(receipt, DecidedBy::Timeout, crate::receipt::Reason::ApprovalTimedOut, None, msg, StatusCode::FORBIDDEN);
            }
            (Verdict::Revoked, _) => return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::Revoked, None, "the grant was revoked while this payment waited".into(), StatusCode::FORBIDDEN),
            (Verdict::ShuttingDown, _) => return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::ShuttingDown, None, "Purser is shutting down".into(), StatusCode::SERVICE_UNAVAILABLE),
            (Verdict::ClientGone, _) => {
                return refuse(
                    receipt,
                    DecidedBy::Policy,
                    crate::receipt::Reason::ClientGone,
                    None,
                    "the agent left while this payment waited for you; it was withdrawn and nothing was paid".into(),
                    StatusCode::FORBIDDEN,
                )
            }
        },
    };
    // Paused while the user looked at it: nothing is signed.
    if e.paused() {
        return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::SpendingPaused, None, "spending was paused before this payment could be made".into(), StatusCode::FORBIDDEN);
    }
    let Some(wallet) = e.wallet() else {
        return refuse(receipt, decided_by, crate::receipt::Reason::WalletLocked, None, "wallet locked: unlock it (`purser wallet unlock` or the app) to pay".into(), StatusCode::FORBIDDEN);
    };

    // 3. Reserve, durably, before any signature exists.
    let now = e.clock.now();
    let now_s = now.timestamp().max(0) as u64;
    let valid_before = (now_s + requirement.max_timeout_seconds.min(MAX_VALIDITY_SECS)).min(grant.limits.expires_at.timestamp().max(0) as u64);
    if valid_before <= now_s {
        return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::Expired, None, "the grant expires before a payment could be settled".into(), StatusCode::FORBIDDEN);
    }
    let (ledger, gid, micros, rid) = (e.ledger.clone(), grant.id.clone(), choice.micros, new_id());
    // The authorization's nonce is chosen now and kept with the reservation, in its durable
    // transaction, with the receipt this payment gets if Purser dies before it ends: a restart
    // writes that receipt and the reconciler decides the payment by this nonce on chain.
    // It commits to the ledger's head as read now (see `anchor`): the chain witnesses the ledger.
    // (A ledger read: off the async threads, as every other one on this road.)
    let (nonces, id) = (e.nonces.clone(), receipt.id.clone());
    let committed = match e.ledger.blocking(move |l| crate::anchor::committed_nonce(nonces.as_ref(), l, &id)).await {
        Ok(c) => c,
        Err(err) => return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::LedgerUnavailable, Some(err.code().as_str()), err.to_string(), StatusCode::SERVICE_UNAVAILABLE),
    };
    let nonce = committed.nonce;
    let mut draft = receipt.clone();
    committed.stamp(&mut draft);
    draft.reservation_id = Some(rid.clone());
    draft.valid_before = Some(valid_before);
    draft.authorization_nonce = Some(nonce.to_string());
    draft.payer = Some(wallet.address().to_checksum(None));
    let msg = "Purser stopped while this payment was in flight (it may have been signed and sent); its budget stays reserved until the chain shows whether its authorization was used";
    draft.decide(Outcome::Failed, decided_by, crate::receipt::Reason::Interrupted, Some("outcome_unknown"), msg);
    let reserved = ledger.blocking(move |l| l.reserve_payment(&rid, &gid, micros, valid_before, Some(&draft), now)).await.and_then(|r| r);
    let reservation = match reserved {
        Ok(Ok((r, _))) => r,
        Ok(Err(refusal)) => return refuse(receipt, DecidedBy::Policy, refusal.reason(), None, refusal.to_string(), StatusCode::FORBIDDEN),
        Err(err) => return refuse(receipt, DecidedBy::Policy, crate::receipt::Reason::LedgerUnavailable, Some(err.code().as_str()), err.to_string(), StatusCode::SERVICE_UNAVAILABLE),
    };
    receipt.reservation_id = Some(reservation.id.clone());
    receipt.valid_before = Some(valid_before);
    // The last known balance must cover this payment and every other one in flight (an unknown
    // balance checks nothing: a failed RPC read never blocks a payment).
    let (ledger, network, asset, payer, amount) = (e.ledger.clone(), requirement.network, requirement.asset, wallet.address(), requirement.amount);
    match ledger.blocking(move |l| crate::chain::funds::insufficient(l, network, asset, payer, amount, micros)).await {
        Ok(Ok(Some(msg))) => {
            receipt.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::InsufficientFunds, None, msg);
            return (Answer::Refuse(StatusCode::FORBIDDEN), Some((reservation, Settle::Release)));
        }
        Ok(Ok(None)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "balance check skipped"),
        Err(err) => tracing::warn!(error = %err, "balance check skipped"),
    }

    // 4. Sign exactly this requirement, once, with the nonce already on disk.
    let signed = wallet.sign_transfer(requirement, now_s.saturating_sub(600), valid_before, nonce);
    let (auth, signature) = match signed {
        Ok(s) => s,
        Err(err) => {
            receipt.decide(Outcome::Failed, decided_by, crate::receipt::Reason::SignFailed, Some(err.code().as_str()), err.to_string());
            return (Answer::Refuse(StatusCode::INTERNAL_SERVER_ERROR), Some((reservation, Settle::Release)));
        }
    };
    receipt.authorization_nonce = Some(nonce.to_string());
    committed.stamp(receipt);
    let header = x402::encode_payment(&challenge, requirement, &auth, &signature);
    receipt.payload_hash = Some(hex::encode(Sha256::digest(header.value.as_bytes())));
    receipt.payer = Some(auth.from.to_checksum(None));

    // 5. Retry with the payment; read the settlement.
    let resp = match timer.wait(e.upstream.send(req, Some(&header))).await {
        Ok(r) => r,
        Err(err) => {
            receipt.decide(
                Outcome::Failed,
                decided_by,
                crate::receipt::Reason::UpstreamError,
                Some("outcome_unknown"),
                format!("{err}; the payment may or may not settle, so its budget stays reserved"),
            );
            return (Answer::Refuse(StatusCode::BAD_GATEWAY), Some((reservation, Settle::KeepUnknown)));
        }
    };
    receipt.upstream_status = Some(resp.status().as_u16());
    let settlement = resp.headers().get(x402::H_PAYMENT_RESPONSE).or_else(|| resp.headers().get(x402::H_X_PAYMENT_RESPONSE)).map(|v| x402::decode_settlement(v.as_bytes()));
    if let Some(Ok(s)) = &settlement {
        receipt.settlement = Some(s.raw.clone());
        receipt.tx = s.transaction.clone();
    }
    // A new 402 that no longer offers what was signed: the terms changed under the payment
    // (typically while the user looked at its prompt). The server refused it; nothing more is
    // signed and the request is not sent again.
    if resp.status() == StatusCode::PAYMENT_REQUIRED {
        let headers = resp.headers().clone();
        if let Ok(body) = timer.wait(e.upstream.read_challenge(resp, MAX_402_BODY)).await {
            if let Some((detail, msg)) = x402::parse_challenge(headers.get(x402::H_PAYMENT_REQUIRED).map(|v| v.as_bytes()), &body).result.ok().and_then(|c| changed_terms(requirement, &c)) {
                let msg = format!(
                    "{msg}; nothing more was signed, and the signed authorization's {} stays reserved until the chain shows it unused (it expires at the latest {} s after signing)",
                    money::format_usd(micros),
                    valid_before.saturating_sub(now_s)
                );
                receipt.decide(Outcome::Failed, decided_by, crate::receipt::Reason::RequirementChanged, Some(detail), msg);
                return (Answer::Refuse(StatusCode::FORBIDDEN), Some((reservation, Settle::KeepUnknown)));
            }
            let detail = match &settlement {
                Some(Ok(s)) => s.error_reason.clone().unwrap_or_else(|| "upstream_status_402".into()),
                Some(Err(err)) => err.code().to_string(),
                None => "upstream_status_402".into(),
            };
            let msg = "the server refused the payment (it answered 402 again); no second signature will be made and the budget stays reserved until the authorization expires";
            receipt.decide(Outcome::Failed, decided_by, crate::receipt::Reason::SettlementFailed, Some(&detail), msg);
            return (Answer::Buffered(StatusCode::PAYMENT_REQUIRED, headers, body), Some((reservation, Settle::KeepUnknown)));
        }
        receipt.decide(
            Outcome::Failed,
            decided_by,
            crate::receipt::Reason::SettlementFailed,
            Some("upstream_status_402"),
            "the server answered the payment with an unreadable 402; the budget stays reserved until the authorization expires",
        );
        return (Answer::Refuse(StatusCode::BAD_GATEWAY), Some((reservation, Settle::KeepUnknown)));
    }
    let ok = resp.status().is_success();
    match settlement {
        Some(Ok(s)) if ok && s.success => {
            receipt.decide(Outcome::Paid, decided_by, crate::receipt::Reason::Paid, None, format!("paid {} to {}", money::format_usd(micros), requirement.pay_to));
            (Answer::Upstream(resp), Some((reservation, Settle::Spend)))
        }
        None if ok => {
            receipt.decide(Outcome::Paid, decided_by, crate::receipt::Reason::Paid, Some("no_settlement_header"), "the server accepted the payment but sent no settlement header");
            (Answer::Upstream(resp), Some((reservation, Settle::Spend)))
        }
        other => {
            let detail = match &other {
                Some(Ok(s)) => s.error_reason.clone().unwrap_or_else(|| "settlement_unsuccessful".into()),
                Some(Err(err)) => err.code().to_string(),
                None => format!("upstream_status_{}", resp.status().as_u16()),
            };
            let msg = format!("the payment was not confirmed (upstream answered {}); no second signature will be made and the budget stays reserved until the authorization expires", resp.status());
            receipt.decide(Outcome::Failed, decided_by, crate::receipt::Reason::SettlementFailed, Some(&detail), msg);
            (Answer::Upstream(resp), Some((reservation, Settle::KeepUnknown)))
        }
    }
}

/// Holds the request for the user, bound to this requirement's hash.
async fn ask(e: &Engine, grant: &Grant, req: &AgentRequest, requirement: &Requirement, micros: u64, description: Option<&str>, receipt: &Receipt) -> (Verdict, Option<Via>) {
    let timeout = Duration::from_secs(grant.limits.approval_timeout_secs);
    let (ledger, payee) = (e.ledger.clone(), requirement.pay_to.to_checksum(None));
    let payee_label = ledger.blocking(move |l| l.payee_label(&payee)).await.ok().and_then(Result::ok).flatten();
    let claimed = |name: &str| req.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let agent = claimed("purser-agent").or_else(|| claimed("user-agent")).and_then(|a| crate::text::clean_opt(&a, crate::text::MAX_NAME));
    let now = e.clock.now();
    let view = PendingApproval {
        id: new_id(),
        grant_id: grant.id.clone(),
        grant_label: grant.label.clone(),
        method: req.method.to_string(),
        url: crate::redact::url(req.url.as_str()).0,
        host: req.host().to_string(),
        amount_atomic: requirement.amount.to_string(),
        amount_usd: money::micros_decimal(micros),
        network: requirement.network.caip2.to_string(),
        asset: requirement.asset.address.to_checksum(None),
        pay_to: requirement.pay_to.to_checksum(None),
        requirement_hash: requirement.hash(),
        amount_asset: format!("{} {}", crate::money::atomic_decimal(requirement.amount, requirement.asset.decimals), requirement.asset.symbol),
        network_name: requirement.network.v1_name.to_string(),
        payee_label,
        intent: receipt.intent.clone(),
        description: description.and_then(|d| crate::text::clean_opt(d, crate::text::MAX_CLAIM)),
        agent,
        who: req.who.clone(),
        remaining_before_atomic: grant.remaining().to_string(),
        remaining_after_atomic: grant.remaining().saturating_sub(micros).to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(grant.limits.approval_timeout_secs as i64),
        paused: false,
    };
    let held = e.approvals.hold(view);
    let id = held.id().to_string();
    let wait = e.approvals.wait_decision(held, timeout);
    tokio::pin!(wait);
    // An agent that leaves withdraws its request at once (its prompt closes); the verdict then
    // arrives as `ClientGone` through the same wait.
    let mut client = req.client.clone();
    let mut withdrawn = false;
    loop {
        tokio::select! {
            d = &mut wait => return d,
            _ = client.gone(), if !withdrawn => {
                withdrawn = true;
                if e.approvals.withdraw(&id) {
                    tracing::info!(approval = %id, "the agent left; its held payment was withdrawn");
                }
            }
        }
    }
}

/// A paid request answered with a new 402 that no longer offers the signed requirement: what
/// changed (`price_changed`, `payee_changed` or `requirement_changed`) and how to say it. `None`
/// when the server still offers exactly what was signed (it refused the payment itself).
fn changed_terms(signed: &Requirement, challenge: &x402::Challenge) -> Option<(&'static str, String)> {
    let hash = signed.hash();
    if challenge.accepts.iter().any(|r| r.hash() == hash) {
        return None;
    }
    let usd = |r: &Requirement| money::atomic_to_micros(r.amount, r.asset.decimals).map(money::format_usd).unwrap_or_else(|_| r.amount.to_string());
    let same_payee = challenge.accepts.iter().find(|r| r.pay_to == signed.pay_to && r.network.caip2 == signed.network.caip2 && r.asset.address == signed.asset.address);
    Some(match same_payee {
        Some(r) if r.amount != signed.amount => ("price_changed", format!("the server refused the payment: its price changed from {} to {}", usd(signed), usd(r))),
        Some(_) => ("requirement_changed", "the server refused the payment: its payment terms changed".to_string()),
        None => ("payee_changed", format!("the server refused the payment: {} is no longer its payee", signed.pay_to.to_checksum(None))),
    })
}

/// Longest excerpt of a challenge Purser cannot pay that a receipt keeps (characters).
pub const CHALLENGE_EXCERPT: usize = 1024;

/// A challenge Purser cannot pay is kept as its hash, its size and a capped excerpt, never
/// whole: any host can answer 402, and the ledger is not its storage.
fn excerpt(raw: Option<serde_json::Value>, body: &[u8]) -> Option<serde_json::Value> {
    let text = match raw {
        Some(v) => v.to_string(),
        None if body.is_empty() => return None,
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let cut: String = text.chars().take(CHALLENGE_EXCERPT).collect();
    Some(serde_json::json!({"sha256": hex::encode(Sha256::digest(text.as_bytes())), "bytes": text.len(), "excerpt": cut, "truncated": cut.len() < text.len()}))
}

/// The agent's stated purpose, made safe to show: no control or bidi characters, capped.
pub fn sanitize_intent(raw: &str) -> Option<String> {
    crate::text::clean_opt(raw, 200)
}
