//! The README's configuration table is the code's: every knob of `config::KNOBS` has its row
//! (`| \`PURSER_…\` | default | … |`) with the same default, and the table names no other.

use purser_core::config::KNOBS;

#[test]
fn the_readme_documents_every_knob_with_its_default() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let section = readme.split("### Configuration").nth(1).expect("a `### Configuration` section in README.md");
    let section = section.split("\n#").next().unwrap_or(section);
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `PURSER_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect();
    let want: Vec<(String, String)> = KNOBS.iter().map(|k| (k.env.to_string(), k.default.to_string())).collect();
    for w in &want {
        assert!(rows.contains(w), "README's configuration table lacks `| `{}` | {} |`; it has {rows:?}", w.0, w.1);
    }
    for r in &rows {
        assert!(want.contains(r), "README documents {} = {}, which config::KNOBS does not have", r.0, r.1);
    }
}
