//! The core's top-level modules form no import cycle: a module may use those below it, never one
//! that uses it back. Read from the code's own `crate::` paths (comments and `#[cfg(test)]`
//! modules left out), so the rule holds as the code changes.
//!
//! `cargo test -p purser-core --test module_graph -- --nocapture` prints the graph, one line per
//! module (`a -> b c`), then the modules in layers (each uses only those in earlier layers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: `src/x.rs` and `src/x/` (lib.rs aside).
fn modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        // lib.rs, and the files of tests (`*_tests.rs`), are not modules of the graph.
        if name == "lib" || name.ends_with("tests") {
            continue;
        }
        if p.is_dir() || p.extension().is_some_and(|x| x == "rs") {
            out.insert(name);
        }
    }
    out
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without what only tests compile: `*tests*.rs`
/// files are skipped by the caller; a `#[cfg(test)]` module runs to the end of its file here.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a file's code names through `crate::…`, grouped imports included.
fn uses(code: &str, mods: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the names at depth 0.
            let (mut depth, mut start) = (0usize, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident_at(&group[j..]);
                        if mods.contains(name) {
                            out.insert(name.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if mods.contains(name) {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src_dir();
    let mods = modules(&src);
    let mut g: BTreeMap<String, BTreeSet<String>> = mods.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    let mut all = Vec::new();
    files(&src, &mut all);
    for f in all {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" || f.file_name().unwrap().to_string_lossy().contains("tests") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        for used in uses(&code, &mods) {
            if used != top {
                g.get_mut(&top).unwrap().insert(used);
            }
        }
    }
    g
}

/// Modules in layers: each layer uses only modules of earlier layers. `Err` with the modules
/// left when no further layer can be made (they are on, or above, a cycle).
fn layers(g: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<Vec<String>>, BTreeSet<String>> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while placed.len() < g.len() {
        let layer: Vec<String> = g.iter().filter(|(m, deps)| !placed.contains(*m) && deps.iter().all(|d| placed.contains(d))).map(|(m, _)| m.clone()).collect();
        if layer.is_empty() {
            return Err(g.keys().filter(|m| !placed.contains(*m)).cloned().collect());
        }
        placed.extend(layer.iter().cloned());
        out.push(layer);
    }
    Ok(out)
}

#[test]
fn the_core_has_no_import_cycle() {
    let g = graph();
    assert!(g.len() > 30, "found only {} modules in {}", g.len(), src_dir().display());
    for (m, deps) in &g {
        println!("{m} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    match layers(&g) {
        Ok(ls) => {
            println!("\n{} modules in {} layers, no cycle:", g.len(), ls.len());
            for (i, l) in ls.iter().enumerate() {
                println!("  {i}: {}", l.join(" "));
            }
        }
        Err(stuck) => panic!("an import cycle among (or above) these modules: {}", stuck.into_iter().collect::<Vec<_>>().join(" ")),
    }
}

#[test]
fn the_reader_sees_grouped_imports_and_skips_comments() {
    let mods: BTreeSet<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let code = code_of("use crate::{a::X, b};\n// crate::c in a comment\nfn f() { crate::d::g() }\n#[cfg(test)]\nmod tests { use crate::c; }");
    assert_eq!(uses(&code, &mods), ["a", "b", "d"].iter().map(|s| s.to_string()).collect());
    let cyclic: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "a"), ("c", "a")].iter().map(|(m, d)| (m.to_string(), [d.to_string()].into())).collect();
    assert_eq!(layers(&cyclic).unwrap_err().len(), 3, "a cycle, and what sits above it, are named");
}
