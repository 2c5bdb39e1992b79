//! Owns the priced-word tokens: each word of a priced receipt also goes into the FTS index
//! paired with the receipt's amount code (`$m<code>$<word>`), so "this word at these prices" is
//! one short doclist per code rather than the word's whole doclist AND-ed with an OR of amount
//! cells. Counting `search amount:0.01..0.05` at 1M receipts walks the 54k matches, not the
//! word's 178k and the cells' 285k (4 ms against 22 ms). This module says which tokens a receipt
//! carries and which codes a range covers; `ledger::search` decides when to use them.
//!
//! A pair must hold the word exactly as FTS5's tokenizer cuts it (FTS5 then folds case and
//! accents of the pair as it does the word's). For text in the scripts listed in
//! [`plain_letter`], Rust's `char::is_alphanumeric` cuts as unicode61 does (a test checks it
//! against SQLite for every character); other text is cut by FTS5 itself ([`fts_cut`]).

use super::index::{amount_grid, lower_cell, TOKENIZER};
use super::Result;
use rusqlite::Connection;

/// The token of a priced receipt whose words carry no amount codes (too many words to pair).
pub const TOKEN_UNPAIRED: &str = "$x";

/// Largest number of distinct words paired per receipt: a receipt with more is marked
/// [`TOKEN_UNPAIRED`] instead (a receipt has either pairs or the marker, never both).
pub const MAX_PAIRED_WORDS: usize = 64;

/// The amount code of `a` micro-USD: `2i` for the grid point `grid[i]` itself, `2i + 1` for the
/// amounts strictly between `grid[i]` and `grid[i + 1]`. Codes are ordered like amounts, so a
/// range of amounts is a run of codes.
pub fn amount_code(a: u64) -> usize {
    let i = lower_cell(a);
    2 * i + usize::from(a != amount_grid()[i])
}

/// The FTS token pairing `word` (letters and digits, see [`plain_letter`]) with an amount code.
pub fn paired(code: usize, word: &str) -> String {
    format!("$m{code}${word}")
}

/// Letters and digits both cutters treat as such: ASCII, Latin (with accents), Greek,
/// Cyrillic, Hebrew and Arabic letters (no vowel marks), CJK ideographs, kana and Hangul.
fn plain_letter(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c as u32,
            0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x24F | 0x1E00..=0x1EFF
            | 0x386 | 0x388..=0x3CE | 0x400..=0x481 | 0x48A..=0x4FF
            | 0x5D0..=0x5EA | 0x621..=0x63A | 0x641..=0x64A
            | 0x3041..=0x3096 | 0x30A1..=0x30FA | 0x30FC | 0x4E00..=0x9FCB | 0xAC00..=0xD7A3)
            && c.is_alphanumeric()
}

/// Punctuation, symbols and spaces both cutters treat as separators: Latin-1's, general
/// punctuation, currency signs, arrows, mathematical and technical signs, box drawing, shapes,
/// dingbats, CJK and full-width punctuation, variation selectors and the emoji of Unicode 6.0.
/// SQLite's tables stop at Unicode 6, and FTS5 takes a character they lack for a letter.
fn plain_separator(c: char) -> bool {
    c.is_ascii()
        || matches!(c as u32,
            0xA0..=0xBF | 0xD7 | 0xF7 | 0x2000..=0x2064 | 0x20A0..=0x20B9 | 0x2190..=0x23F3
            | 0x2500..=0x26FF | 0x2701..=0x27BF | 0x3000..=0x303F | 0xFE00..=0xFE0F | 0xFF01..=0xFF65
            | 0x1F300..=0x1F320 | 0x1F330..=0x1F335 | 0x1F337..=0x1F37C | 0x1F380..=0x1F393
            | 0x1F3A0..=0x1F3C4 | 0x1F3C6..=0x1F3CA | 0x1F3E0..=0x1F3F0 | 0x1F400..=0x1F43E
            | 0x1F440 | 0x1F442..=0x1F4F7 | 0x1F4F9..=0x1F4FC | 0x1F500..=0x1F53D
            | 0x1F550..=0x1F567 | 0x1F5FB..=0x1F640 | 0x1F645..=0x1F64F | 0x1F680..=0x1F6C5)
            && !c.is_alphanumeric()
}

/// The extra FTS tokens of a receipt whose searchable text is `text` and whose amount is
/// `amount` (none for a receipt without a price). `c` cuts text that is not plain.
pub fn tokens(c: &Connection, text: &str, amount: Option<u64>) -> Result<Vec<String>> {
    let Some(a) = amount else { return Ok(vec![]) };
    // Words as written: FTS5 folds a pair exactly as it folds the word itself.
    let mut words: Vec<String> = if plain(text) { text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect() } else { fts_cut(c, text)? };
    words.sort_unstable();
    words.dedup();
    if words.len() > MAX_PAIRED_WORDS {
        return Ok(vec![TOKEN_UNPAIRED.to_string()]);
    }
    let code = amount_code(a);
    Ok(words.iter().map(|w| paired(code, w)).collect())
}

/// Whether Rust cuts `text` into words as FTS5 does (see [`plain_letter`]).
pub fn plain(text: &str) -> bool {
    text.chars().all(|c| if c.is_alphanumeric() { plain_letter(c) } else { plain_separator(c) })
}

/// Whether a query word can be looked up paired as it is (see [`plain_letter`]).
pub fn pairable(word: &str) -> bool {
    !word.is_empty() && word.chars().all(plain_letter)
}

/// `text` cut and folded by FTS5's own tokenizer, in order, through a scratch table in `c`'s
/// temporary database (`c` must be writable: the ledger's writer, or [`fts_cut_word`]'s own).
/// The index cuts `मौसम` in two, which a quoted phrase cannot ask for when it holds no positions.
pub fn fts_cut(c: &Connection, text: &str) -> Result<Vec<String>> {
    c.prepare_cached(&format!("CREATE VIRTUAL TABLE IF NOT EXISTS temp.purser_cut USING fts5(w, {TOKENIZER})"))?.execute([])?;
    c.prepare_cached("CREATE VIRTUAL TABLE IF NOT EXISTS temp.purser_cut_terms USING fts5vocab(temp, purser_cut, instance)")?.execute([])?;
    c.prepare_cached("INSERT INTO temp.purser_cut (rowid, w) VALUES (1, ?1)")?.execute([text])?;
    let terms = c.prepare_cached("SELECT term FROM temp.purser_cut_terms ORDER BY offset")?.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>();
    c.prepare_cached("DELETE FROM temp.purser_cut")?.execute([])?;
    Ok(terms?)
}

/// A query word cut by FTS5 (see [`fts_cut`]), on an in-memory connection of this thread's:
/// searches read through read-only connections, which cannot hold the scratch table.
pub fn fts_cut_word(word: &str) -> Result<Vec<String>> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Option<Connection>> = const { std::cell::RefCell::new(None) };
    }
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Connection::open_in_memory()?);
        }
        fts_cut(slot.as_ref().expect("just opened"), word)
    })
}

/// The codes the inclusive range `[lo, hi]` covers: those wholly inside, and those only partly
/// inside (at most two: the gaps holding `lo` and `hi`), whose receipts need a row check.
pub fn codes(lo: u64, hi: u64) -> (Vec<usize>, Vec<usize>) {
    let grid = amount_grid();
    let (mut sure, mut partly) = (vec![], vec![]);
    if lo > hi {
        return (sure, partly);
    }
    for i in lower_cell(lo)..=lower_cell(hi) {
        let g = grid[i];
        if lo <= g && g <= hi {
            sure.push(2 * i);
        }
        // The gap (g, next): its amounts are g + 1 ..= next - 1 (no end above the last point).
        let first = g + 1;
        let last = grid.get(i + 1).map_or(u64::MAX, |n| n - 1);
        if first > last || hi < first || lo > last {
            continue;
        }
        if lo <= first && last <= hi {
            sure.push(2 * i + 1);
        } else {
            partly.push(2 * i + 1);
        }
    }
    (sure, partly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_order_like_amounts_and_cover_ranges_exactly() {
        let grid = amount_grid();
        let mut probes: Vec<u64> = grid.iter().flat_map(|g| [g.saturating_sub(1), *g, g + 1, g + g / 3 + 7]).collect();
        probes.extend([u64::MAX - 1, u64::MAX]);
        probes.sort_unstable();
        probes.dedup();
        for w in probes.windows(2) {
            assert!(amount_code(w[0]) <= amount_code(w[1]), "{w:?}");
        }
        for (i, g) in grid.iter().enumerate() {
            assert_eq!(amount_code(*g), 2 * i);
        }
        let bounds: Vec<u64> = probes.iter().copied().step_by(2).collect();
        for (i, lo) in bounds.iter().enumerate() {
            for hi in &bounds[i..] {
                let (sure, partly) = codes(*lo, *hi);
                assert!(partly.len() <= 2, "[{lo}, {hi}]: {partly:?}");
                for a in &probes {
                    let inside = a >= lo && a <= hi;
                    let c = amount_code(*a);
                    if sure.contains(&c) {
                        assert!(inside, "{a} has code {c}, sure for [{lo}, {hi}]");
                    } else if !partly.contains(&c) {
                        assert!(!inside, "{a} (code {c}) is in [{lo}, {hi}] but its code is not listed");
                    }
                }
            }
        }
    }

    #[test]
    fn each_word_is_paired_once_as_fts5_cuts_it() {
        let c = Connection::open_in_memory().unwrap();
        let t = |text: &str, a: Option<u64>| tokens(&c, text, a).unwrap();
        assert_eq!(t("api.weather.com /v1/forecast Weather forecast", Some(10_000)), ["$m32$Weather", "$m32$api", "$m32$com", "$m32$forecast", "$m32$v1", "$m32$weather"]);
        assert_eq!(t("Zürich Wetter, 東京 – café ☀\u{FE0F}!", Some(10_001)), ["$m33$Wetter", "$m33$Zürich", "$m33$café", "$m33$東京"]);
        assert!(plain("Zürich Wetter, 東京 – café ☀\u{FE0F}!"));
        // Not plain (a combining accent, a vowel sign, a private-use or a newer character): FTS5
        // cuts it, and folds it.
        assert_eq!(t("Cafe\u{301} menu", Some(10_001)), ["$m33$cafe", "$m33$menu"]);
        assert_eq!(t("मौसम weather", Some(10_001)), ["$m33$weather", "$m33$म", "$m33$सम"]);
        assert_eq!(t("a\u{E000}b paid \u{20BF}1", Some(10_001)), ["$m33$a\u{E000}b", "$m33$paid", "$m33$\u{20BF}1"]);
        for text in ["cafe\u{301}", "मौसम", "a\u{E000}b", "a\u{378}b", "\u{20BF}1"] {
            assert!(!plain(text), "{text}");
        }
        assert!(t("weather", None).is_empty());
        let many: String = (0..MAX_PAIRED_WORDS + 3).map(|i| format!("w{i} ")).collect();
        assert_eq!(t(&many, Some(1)), [TOKEN_UNPAIRED]);
        assert_eq!(fts_cut(&c, "मौसम").unwrap(), ["म", "सम"]);
        assert!(fts_cut(&c, "\u{301}").unwrap().is_empty());
        assert!(pairable("v1") && pairable("café") && pairable("東京") && !pairable("i\u{307}") && !pairable("मौसम") && !pairable(""));
    }

    /// What `plain_letter` and `plain_separator` promise, checked against SQLite's own FTS5
    /// tokenizer (the index's settings) for every character outside ASCII: `q<c>q` is one token
    /// for each plain letter and two for each plain separator.
    #[test]
    fn rust_and_fts5_cut_plain_text_alike() {
        let tokenizer = TOKENIZER;
        assert!(super::super::migrations::step(8).contains(tokenizer) && super::super::migrations::step(9).contains(tokenizer));
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(&format!("CREATE VIRTUAL TABLE t USING fts5(doc, {tokenizer}); CREATE VIRTUAL TABLE v USING fts5vocab(t, instance);")).unwrap();
        let chars: Vec<char> = (0x80u32..0x30000).filter_map(char::from_u32).collect();
        let tx = c.unchecked_transaction().unwrap();
        for ch in &chars {
            tx.execute("INSERT INTO t (rowid, doc) VALUES (?1, ?2)", rusqlite::params![*ch as i64, format!("q{ch}q")]).unwrap();
        }
        tx.commit().unwrap();
        let mut tokens = std::collections::HashMap::new();
        let mut st = c.prepare("SELECT doc, count(*) FROM v GROUP BY doc").unwrap();
        for row in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).unwrap() {
            let (doc, n) = row.unwrap();
            tokens.insert(doc as u32, n);
        }
        let (mut letters, mut separators, mut wrong) = (0, 0, vec![]);
        for ch in chars {
            let n = tokens.get(&(ch as u32)).copied().unwrap_or(0);
            if ch.is_alphanumeric() && plain_letter(ch) {
                letters += 1;
                if n != 1 {
                    wrong.push(format!("U+{:04X} (letter, {n} tokens)", ch as u32));
                }
            } else if !ch.is_alphanumeric() && plain_separator(ch) {
                separators += 1;
                if n != 2 {
                    wrong.push(format!("U+{:04X} (separator, {n} tokens)", ch as u32));
                }
            }
        }
        assert!(wrong.is_empty(), "FTS5 cuts these otherwise: {}", wrong.join(", "));
        assert!(letters > 30_000 && separators > 2_000, "{letters} letters, {separators} separators");
    }
}
