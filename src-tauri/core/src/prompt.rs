//! Owns what a held payment looks like on screen: the words of a prompt, built only from
//! sanitised fields, the verified facts (host, amount, payee, budget) first and always in the
//! same place, and the words of the agent or the server quoted, capped and marked as theirs, so
//! no text an attacker controls can pass for a fact Purser checked. Pure: no I/O.

use crate::approvals::PendingApproval;
use crate::text::{authority, clean, clean_opt, escape_markup, path, short_address, MAX_CLAIM, MAX_NAME, MAX_PATH};
use chrono::{DateTime, Utc};

/// A notification's title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptText {
    pub summary: String,
    pub body: String,
}

/// How the notification server shows text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// The server interprets markup in the body (`body-markup`): escape it.
    pub markup: bool,
    /// The server shows action buttons: without them, the body says how to decide.
    pub actions: bool,
}

fn usd(micros: &str) -> String {
    crate::money::format_usd(micros.parse().unwrap_or(0))
}

/// Quotes text an agent or a server wrote. Quotation marks inside it become plain
/// apostrophes, so it can never "close" Purser's quote and go on as if Purser said the rest.
fn quote(s: &str) -> String {
    let neutral: String = s.chars().map(|c| if matches!(c, '“' | '”' | '„' | '‟' | '«' | '»' | '"' | '〝' | '〞' | '＂' | '‹' | '›') { '\'' } else { c }).collect();
    format!("“{}”", clean(&neutral, MAX_CLAIM))
}

/// A `root → … → process` chain cut to `max` characters from the root's end, so the asking
/// process itself always shows: `… → cargo → curl`.
fn nearest_first_cut(chain: &str, max: usize) -> String {
    let parts: Vec<String> = chain.split(" → ").map(|p| clean(p, MAX_NAME)).collect();
    let mut from = 0;
    while from + 1 < parts.len() && parts[from..].join(" → ").chars().count() + if from > 0 { 4 } else { 0 } > max {
        from += 1;
    }
    let kept = parts[from..].join(" → ");
    if from > 0 {
        format!("… → {kept}")
    } else {
        kept
    }
}

/// Who is asking, as the OS says, in one line: the run (its label and command), else the
/// process with its parent chain, else that nobody could be identified (never a guess).
pub fn asked_by(who: &crate::agent::AgentInfo) -> String {
    use crate::agent::AgentKind;
    let pid = who.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
    match who.kind {
        AgentKind::Run => format!("Asked by run “{}”: {}{pid}", clean(who.run_label.as_deref().unwrap_or("unlabelled"), MAX_NAME), clean(who.cmdline.as_deref().unwrap_or("?"), MAX_PATH)),
        AgentKind::Process => format!("Asked by {}{pid}", nearest_first_cut(&who.chain(), MAX_PATH)),
        AgentKind::Unknown => "Asked by an unidentified process".to_string(),
    }
}

/// The prompt for one held payment. Every line is built from cleaned fields; who is asking
/// comes first, then the verified facts, the agent's and the server's words after them, quoted
/// and marked.
pub fn approval(a: &PendingApproval, style: Style, now: DateTime<Utc>) -> PromptText {
    let host = authority(&a.url);
    let amount = usd_of(a);
    let payee = match a.payee_label.as_deref().and_then(|l| clean_opt(l, MAX_NAME)) {
        Some(label) => format!("{} “{label}”", short_address(&a.pay_to)),
        None => short_address(&a.pay_to),
    };
    let mut lines = vec![
        asked_by(&a.who),
        format!("{} {}{}", clean(&a.method, 10), host, path(&a.url)),
        format!("{amount} ({} on {}) to {payee}", clean(&a.amount_asset, MAX_NAME), clean(&a.network_name, MAX_NAME)),
        format!("Task “{}”: budget {} left, {} after", clean(&a.grant_label, MAX_NAME), usd(&a.remaining_before_atomic), usd(&a.remaining_after_atomic)),
    ];
    match (a.agent.as_deref(), a.intent.as_deref()) {
        (Some(agent), Some(intent)) => lines.push(format!("Unverified, the agent ({}) says: {}", clean(agent, MAX_NAME), quote(intent))),
        (None, Some(intent)) => lines.push(format!("Unverified, the agent says: {}", quote(intent))),
        (Some(agent), None) => lines.push(format!("Unverified, the agent calls itself {}", quote(&clean(agent, MAX_NAME)))),
        (None, None) => {}
    }
    if let Some(d) = a.description.as_deref() {
        lines.push(format!("Unverified, the server says: {}", quote(d)));
    }
    let left = (a.expires_at - now).num_seconds().max(0);
    lines.push(if a.paused { "Countdown paused while the approval window is open.".to_string() } else { format!("Denied in {left} s unless you approve.") });
    lines.push(format!("Payee {}", clean(&a.pay_to, 64)));
    if !style.actions {
        let id = clean(&a.id, 64);
        lines.push(format!("Decide: purser approvals approve {id}  or  purser approvals deny {id}"));
    }
    let body = lines.join("\n");
    let name = clean(&a.who.display_name(), MAX_NAME);
    PromptText { summary: format!("{name}: pay {amount} to {host}?"), body: if style.markup { escape_markup(&body) } else { body } }
}

fn usd_of(a: &PendingApproval) -> String {
    // `amount_usd` is the decimal the pipeline computed from the verified requirement.
    let d = clean(&a.amount_usd, 30);
    if d.chars().all(|c| c.is_ascii_digit() || c == '.') && !d.is_empty() {
        format!("${d}")
    } else {
        "$?".to_string()
    }
}

/// The one notification that stands for every request of a grant past the flood threshold.
pub fn queue(grant_label: &str, waiting: usize, style: Style) -> PromptText {
    let label = clean(grant_label, MAX_NAME);
    let noun = if waiting == 1 { "payment" } else { "payments" };
    let mut body = format!("{waiting} more {noun} for task “{label}” are waiting in the approval queue; each is denied if nobody approves it in time.");
    if !style.actions {
        body.push_str("\nSee them: purser approvals list");
    }
    PromptText { summary: format!("{waiting} more {noun} waiting for you"), body: if style.markup { escape_markup(&body) } else { body } }
}

/// The first line of a prompt while the wallet is locked.
pub const WALLET_LOCKED: &str = "Wallet locked: approving will still refuse this payment until you unlock the wallet.";

/// Marks a prompt raised while the wallet is locked: approving it will be refused
/// (`wallet_locked`), so the prompt says so first.
pub fn wallet_locked(text: PromptText) -> PromptText {
    PromptText { summary: format!("{} (wallet locked)", text.summary), body: format!("{WALLET_LOCKED}\n{}", text.body) }
}

/// "3 requests were denied while you were away".
pub fn missed(count: u64) -> Option<String> {
    match count {
        0 => None,
        1 => Some("1 request was denied while you were away.".into()),
        n => Some(format!("{n} requests were denied while you were away.")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_locked_wallet_is_said_first() {
        let t = wallet_locked(PromptText { summary: "Pay $0.05 to api.x.com?".into(), body: "GET api.x.com/a".into() });
        assert_eq!(t.summary, "Pay $0.05 to api.x.com? (wallet locked)");
        assert_eq!(t.body.lines().next(), Some(WALLET_LOCKED));
        assert_eq!(t.body.lines().nth(1), Some("GET api.x.com/a"));
    }

    pub(crate) fn view() -> PendingApproval {
        let now = Utc::now();
        PendingApproval {
            id: "0193-abc".into(),
            grant_id: "g1".into(),
            grant_label: "research".into(),
            method: "GET".into(),
            url: "http://127.0.0.1:4021/mid?q=1".into(),
            host: "127.0.0.1".into(),
            amount_atomic: "50000".into(),
            amount_usd: "0.05".into(),
            network: "eip155:84532".into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
            requirement_hash: "h".into(),
            amount_asset: "0.05 USDC".into(),
            network_name: "base-sepolia".into(),
            payee_label: None,
            intent: None,
            description: None,
            agent: None,
            who: crate::agent::AgentInfo::unknown(),
            remaining_before_atomic: "1000000".into(),
            remaining_after_atomic: "950000".into(),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(60),
            paused: false,
        }
    }

    #[test]
    fn cleaning_table() {
        let cases: &[(&str, usize, &str)] = &[
            ("plain", 10, "plain"),
            ("  two\n\nlines\r\n ", 20, "two lines"),
            ("a\u{202E}evorppa\u{202C}b", 20, "aevorppab"),
            ("zero\u{200B}width\u{FEFF}", 20, "zerowidth"),
            ("tag\u{E0041}s", 20, "tags"),
            ("iso\u{2066}late\u{2069}", 20, "isolate"),
            ("bell\u{7}tab\tnul\u{0}", 20, "bell tab nul"),
            ("line\u{2028}sep", 20, "line sep"),
            ("abcdefghij", 5, "abcd…"),
            ("abcde", 5, "abcde"),
            ("\u{202E}\u{202E}", 5, ""),
        ];
        for (raw, max, want) in cases {
            assert_eq!(clean(raw, *max), *want, "{raw:?}");
            assert!(clean(raw, *max).chars().count() <= *max);
        }
        assert_eq!(clean_opt("\u{200B} \n", 9), None);
    }

    #[test]
    fn small_helpers() {
        assert_eq!(short_address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"), "0x3C44…93BC");
        assert_eq!(authority("http://127.0.0.1:4021/x"), "127.0.0.1:4021");
        assert_eq!(authority("https://api.example.com/x"), "api.example.com");
        assert_eq!(authority("https://api.example.com:443/x"), "api.example.com", "default port left out");
        assert_eq!(authority("http://[::1]:8080/"), "[::1]:8080");
        assert_eq!(authority("https://xn--80ak6aa92e.com/"), "xn--80ak6aa92e.com", "IDN hosts stay in punycode");
        assert_eq!(path("http://h/a/b?c=d"), "/a/b?c=d");
        assert_eq!(escape_markup("<img src=x onerror=alert(1)>&"), "&lt;img src=x onerror=alert(1)&gt;&amp;");
        assert_eq!(missed(0), None);
        let u = |v: u64| alloy_primitives::U256::from(v);
        assert_eq!(crate::money::atomic_decimal(u(50_000), 6), "0.05");
        assert_eq!(crate::money::atomic_decimal(u(2_000_000), 6), "2");
        assert_eq!(crate::money::atomic_decimal(u(1), 18), "0.000000000000000001");
        assert_eq!(crate::money::atomic_decimal(u(123), 0), "123");
        assert_eq!(missed(3).unwrap(), "3 requests were denied while you were away.");
    }

    #[test]
    fn the_prompt_states_the_verified_facts() {
        let v = view();
        let p = approval(&v, Style { markup: false, actions: true }, v.created_at);
        assert_eq!(p.summary, "unknown: pay $0.05 to 127.0.0.1:4021?");
        let lines: Vec<&str> = p.body.lines().collect();
        assert_eq!(lines[0], "Asked by an unidentified process");
        assert_eq!(lines[1], "GET 127.0.0.1:4021/mid?q=1");
        assert_eq!(lines[2], "$0.05 (0.05 USDC on base-sepolia) to 0x3C44…93BC");
        assert_eq!(lines[3], "Task “research”: budget $1.00 left, $0.95 after");
        assert_eq!(lines[4], "Denied in 60 s unless you approve.");
        assert_eq!(lines[5], "Payee 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
        assert_eq!(lines.len(), 6);

        // Who is asking comes first, as the OS says it: a process with its parents, or a run.
        let mut v = view();
        v.who = crate::agent::AgentInfo {
            kind: crate::agent::AgentKind::Process,
            pid: Some(42),
            exe: Some("/usr/bin/curl".into()),
            cmdline: Some("curl -s x".into()),
            parents: vec![crate::agent::ParentProcess { pid: 41, exe: Some("/usr/bin/node".into()), name: "node".into() }, crate::agent::ParentProcess { pid: 40, exe: None, name: "claude".into() }],
            run_label: None,
            run_id: None,
        };
        let p = approval(&v, Style { markup: false, actions: true }, v.created_at);
        assert_eq!((p.summary.as_str(), p.body.lines().next()), ("curl: pay $0.05 to 127.0.0.1:4021?", Some("Asked by claude → node → curl, pid 42")));
        // However deep the ancestry, the asking process itself stays on the line.
        let deep = (0..30).map(|i| crate::agent::ParentProcess { pid: 100 + i, exe: None, name: format!("ancestor-{i}") }).collect();
        let mut long = v.who.clone();
        long.parents = deep;
        assert!(nearest_first_cut(&long.chain(), MAX_PATH).chars().count() <= MAX_PATH);
        assert!(
            nearest_first_cut(&long.chain(), MAX_PATH).starts_with("… → ") && nearest_first_cut(&long.chain(), MAX_PATH).ends_with(" → ancestor-0 → curl"),
            "{}",
            nearest_first_cut(&long.chain(), MAX_PATH)
        );
        v.who = crate::agent::run("r1", "research", Some(7), "claude --print");
        let p = approval(&v, Style { markup: false, actions: true }, v.created_at);
        assert_eq!((p.summary.as_str(), p.body.lines().next()), ("run:research: pay $0.05 to 127.0.0.1:4021?", Some("Asked by run “research”: claude --print, pid 7")));

        let mut v = view();
        v.payee_label = Some("Acme\nweather".into());
        v.paused = true;
        let p = approval(&v, Style { markup: false, actions: false }, v.created_at);
        assert!(p.body.contains("to 0x3C44…93BC “Acme weather”"), "{}", p.body);
        assert!(p.body.contains("Countdown paused"), "{}", p.body);
        assert!(p.body.ends_with("Decide: purser approvals approve 0193-abc  or  purser approvals deny 0193-abc"), "{}", p.body);
    }

    #[test]
    fn hostile_words_are_marked_capped_and_cannot_fake_facts() {
        let mut v = view();
        let long = "A".repeat(10 * 1024);
        v.description = Some(format!("\u{202E}evorppa ot kcilc\n$0.00 to trusted.example.com\n<img src=x onerror=alert(1)>{long}"));
        v.intent = Some("ignore the amount,\r\nPay $0.00 to 127.0.0.1:4021?".into());
        v.agent = Some("agent\u{200F}-x".into());
        let style = Style { markup: true, actions: true };
        let p = approval(&v, style, v.created_at);
        assert_eq!(p.summary, "unknown: pay $0.05 to 127.0.0.1:4021?");
        let lines: Vec<&str> = p.body.lines().collect();
        assert_eq!(lines.len(), 8, "attacker text cannot add lines: {}", p.body);
        assert_eq!(lines[1], "GET 127.0.0.1:4021/mid?q=1");
        assert_eq!(lines[2], "$0.05 (0.05 USDC on base-sepolia) to 0x3C44…93BC");
        assert!(lines[4].starts_with("Unverified, the agent (agent-x) says: “ignore the amount, Pay $0.00"), "{}", lines[4]);
        assert!(lines[5].starts_with("Unverified, the server says: “evorppa ot kcilc $0.00 to trusted.example.com &lt;img src=x"), "{}", lines[5]);
        assert!(!p.body.contains('\u{202E}') && !p.body.contains("<img") && !p.body.contains('\u{200F}'));
        assert!(lines[5].chars().count() < MAX_CLAIM + 80, "capped: {} chars", lines[5].chars().count());
        assert!(lines[5].ends_with("…”"), "{}", lines[5]);
    }

    #[test]
    fn quote_marks_in_claims_cannot_close_the_quote() {
        let mut v = view();
        v.intent = Some("ok” Purser verified: this payee is your bank “".into());
        v.description = Some("«fine» \"trusted\" „x‟".into());
        let p = approval(&v, Style { markup: false, actions: true }, v.created_at);
        let agent = p.body.lines().find(|l| l.starts_with("Unverified, the agent says")).unwrap();
        assert_eq!(agent, "Unverified, the agent says: “ok' Purser verified: this payee is your bank '”");
        let server = p.body.lines().find(|l| l.starts_with("Unverified, the server says")).unwrap();
        assert_eq!(server, "Unverified, the server says: “'fine' 'trusted' 'x'”");
        for line in [agent, server] {
            assert_eq!((line.matches('“').count(), line.matches('”').count()), (1, 1), "one quote, Purser's: {line}");
        }
    }

    #[test]
    fn the_queue_summary() {
        let p = queue("research", 45, Style { markup: false, actions: true });
        assert_eq!(p.summary, "45 more payments waiting for you");
        assert!(p.body.contains("task “research”"));
        let p = queue("r<b>", 1, Style { markup: true, actions: false });
        assert!(p.body.contains("r&lt;b&gt;") && p.body.contains("purser approvals list"), "{}", p.body);
    }
}
