//! The module structure as docs/architecture.md states it: data flows one way (request ->
//! domain -> store -> jobs -> reconcile -> store), so a module imports only from layers below
//! its own, and no group of sibling modules imports each other in a circle. Reads the sources;
//! a `use` or a path that breaks either rule fails here with the file that has it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The service's top-level modules from the top layer down; a module may import from any
/// module in a later entry, never from its own entry or an earlier one. Keep in step with
/// docs/architecture.md.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["demo"],
    &["app"],
    &["api"],
    &["error"],
    &["doctor"],
    &["reconcile"],
    &["notify"],
    &["jobs"],
    &["aws"],
    &["store"],
    &["domain"],
    &["telemetry"],
    &["config"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path under `src/` (`src/api/views.rs` -> ["api", "views"]).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The first path segment of every name a `<prefix>::` path reaches, including each member of a
/// `<prefix>::{a, b::c}` group. Comments are skipped.
fn first_segments(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let needle = format!("{prefix}::");
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find(&needle) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `zeroscale_crate::`, not `crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Members at depth 0 of the braces.
            let (mut depth, mut member, mut at_start) = (0, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        at_start = true;
                        if !member.is_empty() {
                            out.insert(std::mem::take(&mut member));
                        }
                    }
                    c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => {
                        member.push(c)
                    }
                    c if depth == 0 && !member.is_empty() && !c.is_whitespace() => at_start = false,
                    _ => {}
                }
            }
            if !member.is_empty() {
                out.insert(member);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out.remove("self");
    out
}

#[test]
fn modules_import_only_from_lower_layers_and_siblings_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    // Sibling graph: (parent module, child) -> children it names.
    let mut siblings: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let tops: BTreeSet<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    for file in &files {
        let path = module_path(&src, file);
        let code = std::fs::read_to_string(file).unwrap();
        let Some(top) = path.first() else { continue };
        let Some(own) = layer_of(top) else {
            violations.push(format!("{}: module {top:?} is in no layer", file.display()));
            continue;
        };
        for used in first_segments(&code, "crate") {
            if !tops.contains(used.as_str()) {
                continue; // an item re-exported at the crate root, or a macro
            }
            let theirs = layer_of(&used).unwrap();
            if used != *top && theirs <= own {
                violations.push(format!(
                    "{}: `{top}` (layer {own}) imports `{used}` (layer {theirs}): only lower layers",
                    file.display()
                ));
            }
        }
        // Sibling edges: `super::x` from a child module, `crate::top::x` from anywhere in top.
        if path.len() >= 2 {
            let parent = path[..path.len() - 1].join("::");
            let me = path[path.len() - 1].clone();
            let mut named = first_segments(&code, "super");
            named.extend(first_segments(&code, &format!("crate::{parent}")));
            named.remove(&me);
            siblings.entry((parent, me)).or_default().extend(named);
        }
    }
    // A cycle among siblings: depth-first search over each parent's children.
    let parents: BTreeSet<String> = siblings.keys().map(|(p, _)| p.clone()).collect();
    for parent in parents {
        let children: BTreeMap<&str, Vec<&str>> = siblings
            .iter()
            .filter(|((p, _), _)| *p == parent)
            .map(|((_, c), named)| (c.as_str(), named.iter().map(String::as_str).collect()))
            .collect();
        fn visit<'a>(
            node: &'a str,
            graph: &BTreeMap<&'a str, Vec<&'a str>>,
            stack: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
            cycles: &mut Vec<String>,
        ) {
            if let Some(i) = stack.iter().position(|n| *n == node) {
                cycles.push(format!("{} -> {node}", stack[i..].join(" -> ")));
                return;
            }
            if !done.insert(node) {
                return;
            }
            stack.push(node);
            for next in graph.get(node).into_iter().flatten() {
                if graph.contains_key(next) {
                    visit(next, graph, stack, done, cycles);
                }
            }
            stack.pop();
        }
        let mut cycles = Vec::new();
        let mut done = BTreeSet::new();
        for start in children.keys() {
            visit(start, &children, &mut Vec::new(), &mut done, &mut cycles);
        }
        for c in cycles {
            violations.push(format!(
                "import cycle among the children of `{parent}`: {c}"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "{} violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let code = "use crate::{\n    aws::{A, B},\n    jobs::JobError,\n    store::{self, x::{y, z}},\n};\n// crate::cli in a comment\nlet a = crate::api::f();";
    let seen: Vec<String> = first_segments(code, "crate").into_iter().collect();
    assert_eq!(seen, ["api", "aws", "jobs", "store"]);
}
