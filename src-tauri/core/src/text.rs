//! Owns making untrusted text safe to show: control, bidi and invisible characters removed,
//! whitespace collapsed, length capped, markup escaped, and the short forms of addresses, hosts
//! and paths every screen uses. Pure, and a leaf: it imports nothing of Purser's.

/// Longest text an agent or a server gets on screen (characters).
pub const MAX_CLAIM: usize = 160;
/// Longest path shown (characters).
pub const MAX_PATH: usize = 80;
/// Longest label, name or host shown (characters).
pub const MAX_NAME: usize = 60;

/// Characters that reorder, hide or fake text: bidi controls, zero-width and other invisible
/// format characters, tag characters, interlinear annotations.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Makes text safe to show on one line: control, bidi and invisible characters removed, any run
/// of whitespace (newlines, line and paragraph separators included) turned into one space, and
/// at most `max` characters kept (an ellipsis marks a cut).
pub fn clean(raw: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let (mut out, mut n, mut space, mut cut) = (String::new(), 0usize, false, false);
    for c in raw.chars() {
        if invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            space = n > 0;
            continue;
        }
        if n + 1 + usize::from(space) > max {
            cut = true;
            break;
        }
        if space {
            out.push(' ');
            n += 1;
            space = false;
        }
        out.push(c);
        n += 1;
    }
    if cut {
        while n + 1 > max {
            out.pop();
            n -= 1;
        }
        out.truncate(out.trim_end().len());
        out.push('…');
    }
    out
}

/// [`clean`], or `None` when nothing is left.
pub fn clean_opt(raw: &str, max: usize) -> Option<String> {
    Some(clean(raw, max)).filter(|s| !s.is_empty())
}

/// Escapes the markup notification servers interpret (`<b>`, `<a>`, `<img>`, entities).
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `0x3C44…93BC`: enough of an address to recognise it at a glance.
pub fn short_address(a: &str) -> String {
    let a = clean(a, 64);
    if a.len() == 42 && a.starts_with("0x") && a.is_ascii() {
        format!("{}…{}", &a[..6], &a[38..])
    } else {
        clean(&a, 20)
    }
}

/// The host a URL really goes to, with its port when it is not the scheme's default:
/// `api.example.com`, `127.0.0.1:4021`, `[::1]:8080`.
pub fn authority(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            let host = clean(host, MAX_NAME);
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        }
        Err(_) => clean(url, MAX_NAME),
    }
}

/// The path and query of a URL, cleaned and capped.
pub fn path(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let p = match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            };
            clean(&p, MAX_PATH)
        }
        Err(_) => String::new(),
    }
}
