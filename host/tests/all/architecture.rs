//! The one-way rule of docs/ARCHITECTURE.md, checked on the source: which top-level module of
//! `host/src` may import which. A new import that goes up a layer, makes a leaf depend on a
//! layer, or closes a cycle fails here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The request corridor, top to bottom: each may import only those after it.
const LAYERS: [&str; 5] = ["transport", "mcp", "registry", "worker", "runtime"];
/// Plain data and services any layer may use; they import only other leaves.
const LEAVES: [&str; 12] = [
    "access",
    "model",
    "ids",
    "digest",
    "egress",
    "audit",
    "metrics",
    "principal",
    "pins",
    "shutdown",
    "toml_error",
    "approvals",
];
/// Start-up data: no layer except the front door's settings types (`config` → `transport`).
const START_UP: [&str; 2] = ["config", "policy"];
/// Operator-facing fronts beside the corridor (the admin plane): leaves and the front door's
/// token checking (`transport`); only wiring imports them.
const FRONTS: [&str; 1] = ["admin"];
/// Wiring: may see everything.
const WIRING: [&str; 2] = ["app", "cli"];

/// Top-level module → the top-level modules its non-test code names through `crate::`.
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src").map(|e| e.expect("entry").path()) {
            if entry.is_dir() {
                stack.push(entry);
                continue;
            }
            if entry.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = entry.strip_prefix(&src).expect("under src");
            let top = relative.components().next().expect("a component").as_os_str().to_string_lossy();
            let top = top.trim_end_matches(".rs").to_owned();
            if top == "lib" || top == "main" || relative.ends_with("tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&entry).expect("read file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    group.split(',').filter_map(|item| item.trim().split("::").next()).collect()
                } else {
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).take(1).collect()
                };
                for name in names.into_iter().filter(|n| !n.is_empty() && *n != top) {
                    graph
                        .entry(top.clone())
                        .or_default()
                        .entry(name.to_owned())
                        .or_insert_with(|| relative.display().to_string());
                }
            }
        }
    }
    graph
}

#[test]
fn every_import_follows_the_one_way_rule() {
    let graph = imports();
    let mut violations = Vec::new();
    for (from, targets) in &graph {
        for (to, file) in targets {
            let allowed = if let Some(i) = LAYERS.iter().position(|l| l == from) {
                LAYERS[i + 1..].contains(&to.as_str()) || LEAVES.contains(&to.as_str())
            } else if LEAVES.contains(&from.as_str()) {
                LEAVES.contains(&to.as_str())
            } else if FRONTS.contains(&from.as_str()) {
                LEAVES.contains(&to.as_str()) || to == "transport"
            } else if START_UP.contains(&from.as_str()) {
                LEAVES.contains(&to.as_str()) || (from == "config" && to == "transport")
            } else if from == "app" {
                to != "cli"
            } else {
                WIRING.contains(&from.as_str())
            };
            if !allowed {
                violations.push(format!("{file}: {from} imports {to}"));
            }
        }
    }
    assert!(violations.is_empty(), "imports against docs/ARCHITECTURE.md:\n{}", violations.join("\n"));
    let known: BTreeSet<&str> =
        LAYERS.iter().chain(&LEAVES).chain(&START_UP).chain(&FRONTS).chain(&WIRING).copied().collect();
    let unknown: Vec<&String> = graph.keys().filter(|m| !known.contains(m.as_str())).collect();
    assert!(unknown.is_empty(), "modules the rule does not place (add them to ARCHITECTURE and here): {unknown:?}");
}

#[test]
fn no_two_top_level_modules_import_each_other_even_indirectly() {
    let graph = imports();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut next: Vec<&String> = graph[start].keys().collect();
        while let Some(module) = next.pop() {
            assert_ne!(module, start, "{start} reaches itself through its imports");
            if seen.insert(module) {
                next.extend(graph.get(module).into_iter().flat_map(|t| t.keys()));
            }
        }
    }
}
