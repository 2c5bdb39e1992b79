//! Every error code a front end can see is one of `api::ErrorCode`: the codes each module's
//! error type returns are the enum by construction (their `code()` returns it); this test reads
//! the sources of the core, the CLI, the app and the demo for the codes written out where an
//! HTTP answer is made (`error_response(status, "code", …)`, `refuse(status, "code", …)`,
//! `Refusal::new(status, "code", …)`) and fails on any the enum does not name, so a new one
//! cannot reach the UI untyped.

use purser_core::api::ErrorCode;
use std::path::{Path, PathBuf};

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The string literal that is the second argument of each call to `name(`.
fn second_literals(code: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(name) {
        rest = &rest[i + name.len()..];
        // Skip the first argument (balanced parentheses), then expect `, "literal"`.
        let mut depth = 0i32;
        let mut end = None;
        for (j, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    end = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(j) = end else { continue };
        let after = rest[j + 1..].trim_start();
        if let Some(lit) = after.strip_prefix('"') {
            if let Some(k) = lit.find('"') {
                out.push(lit[..k].to_string());
            }
        }
    }
    out
}

#[test]
fn every_code_written_out_is_an_error_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut files = Vec::new();
    for dir in ["core/src", "cli/src", "src", "demo/src"] {
        rs_files(&root.join(dir), &mut files);
    }
    let (mut seen, mut unknown) = (0, Vec::new());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for name in ["error_response(", "refuse(", "Refusal::new("] {
            for code in second_literals(&text, name) {
                seen += 1;
                if ErrorCode::parse(&code).is_none() {
                    unknown.push(format!("{}: {code}", f.strip_prefix(&root).unwrap().display()));
                }
            }
        }
    }
    println!("{seen} codes written out in {} files; ErrorCode names {}", files.len(), ErrorCode::ALL.len());
    assert!(seen > 20, "the reader found only {seen} codes: has the call shape changed?");
    assert!(unknown.is_empty(), "codes the UI would get untyped (add them to api::ErrorCode):\n{}", unknown.join("\n"));
}

#[test]
fn the_reader_takes_the_second_argument_only() {
    let code = r#"error_response(StatusCode::X, "a_code", "not this", None); refuse(f(1, 2), "b_code", m); refuse(status, code, m)"#;
    assert_eq!(second_literals(code, "error_response("), ["a_code"]);
    assert_eq!(second_literals(code, "refuse("), ["b_code"]);
}
