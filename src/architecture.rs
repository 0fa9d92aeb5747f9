//! The layering rules, checked on the source: only `web/` (and `main.rs`,
//! which wires) may use actix or `crate::web`, and the top-level modules do
//! not import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to: `src/storage/s3/mod.rs` → `storage`.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Code only: comments and doc comments do not count.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim_start).filter(|line| !line.starts_with("//"))
}

#[test]
fn only_the_web_layer_knows_actix() {
    let mut offenders = Vec::new();
    for file in sources(&src()) {
        let module = module_of(&file);
        if module == "web" || module == "main" || module == "architecture" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for line in code_lines(&text) {
            if line.contains("actix") || line.contains("crate::web") || line.contains("super::web") {
                offenders.push(format!("{}: {line}", file.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "outside src/web/:\n{}", offenders.join("\n"));
}

#[test]
fn top_level_modules_do_not_import_each_other_in_a_circle() {
    let modules: BTreeSet<String> = sources(&src()).iter().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src()) {
        let from = module_of(&file);
        let text = std::fs::read_to_string(&file).expect("readable source");
        for line in code_lines(&text) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let to: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if to != from && modules.contains(&to) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            return Some(path[start..].iter().cloned().chain([node.to_owned()]).collect());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        if let Some(cycle) = visit(module, &edges, &mut Vec::new(), &mut done) {
            panic!("modules import each other in a circle: {}\nall imports: {edges:?}", cycle.join(" -> "));
        }
    }
}
