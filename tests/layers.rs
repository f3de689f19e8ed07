//! The crate's layers, kept: every `crate::` path in `src/` is read, and a module may
//! use only modules below it in the order ARCHITECTURE.md states (its "Layers" block),
//! so the module graph has no cycle. A failure names the file, the line and the two
//! modules, and, when the imports make a cycle, the cycle.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One use of another top-level module: where it is and what it names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    from: String,
    to: String,
    file: String,
    line: usize,
}

/// The layers as ARCHITECTURE.md's "Layers" block states them, top first; modules on
/// one line are peers (neither may use the other).
fn declared_layers(architecture: &str) -> Vec<Vec<String>> {
    let start = architecture
        .find("## Layers")
        .expect("ARCHITECTURE.md has a `## Layers` section");
    let rest = &architecture[start..];
    let open = rest
        .find("```")
        .expect("the Layers section has a code block");
    let body = &rest[open + 3..];
    let body = &body[body.find('\n').expect("a line after the fence") + 1..];
    let close = body.find("```").expect("the Layers block is closed");
    body[..close]
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// The top-level module a file under `src/` belongs to (None for the crate root).
fn module_of(relative: &Path) -> Option<String> {
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?;
    let top = first.strip_suffix(".rs").unwrap_or(first);
    (top != "lib" && top != "main").then(|| top.to_string())
}

/// Source text with line comments removed (doc comments too: a link in prose is not a
/// dependency), lines kept in place.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `text` names through `crate::` paths, with 1-based lines;
/// `crate::{a::x, b}` groups count for each item.
fn crate_paths(text: &str) -> Vec<(String, usize)> {
    let text = without_comments(text);
    let bytes = text.as_bytes();
    let ident = |from: usize| -> &str {
        let end = text[from..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| from + n);
        &text[from..end]
    };
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(n) = text[at..].find("crate::") {
        let start = at + n;
        at = start + "crate::".len();
        let preceded = start
            .checked_sub(1)
            .map(|p| bytes[p] as char)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '$');
        if preceded {
            continue; // `$crate::`, `augury_crate::` or a longer path
        }
        if bytes.get(at) == Some(&b'{') {
            let mut depth = 0;
            let mut item_start = at + 1;
            for (i, c) in text[at..].char_indices() {
                let i = at + i;
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let item = text[item_start..i].trim_start();
                        let skip = text[item_start..i].len() - item.len();
                        let name = ident(item_start + skip);
                        if !name.is_empty() && name != "self" {
                            found.push((name.to_string(), line_of(item_start + skip)));
                        }
                        item_start = i + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            let name = ident(at);
            if !name.is_empty() {
                found.push((name.to_string(), line_of(start)));
            }
        }
    }
    found
}

/// Every use of one top-level module by another, for the `.rs` files under `src`.
fn uses(src: &Path) -> Vec<Use> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut all = Vec::new();
    for path in files {
        let relative: PathBuf = path.strip_prefix(src).unwrap().to_path_buf();
        let Some(from) = module_of(&relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for (to, line) in crate_paths(&text) {
            if to != from {
                all.push(Use {
                    from: from.clone(),
                    to,
                    file: format!("src/{}", relative.display()),
                    line,
                });
            }
        }
    }
    all
}

/// A cycle in the module graph of `uses`, as the modules along it, if there is one.
fn find_cycle(uses: &[Use]) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for u in uses {
        graph.entry(&u.from).or_default().insert(&u.to);
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, &graph, &mut Vec::new(), &mut done))
}

/// What is wrong with `uses` against `layers`: uses of a module at the same or a higher
/// layer, modules in no layer, and a cycle if there is one.
fn problems(uses: &[Use], layers: &[Vec<String>]) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), layers.len() - i)))
        .collect();
    let mut out = Vec::new();
    let mut unplaced = BTreeSet::new();
    for u in uses {
        match (rank.get(u.from.as_str()), rank.get(u.to.as_str())) {
            (Some(from), Some(to)) if to < from => {}
            (Some(from), Some(to)) => out.push(format!(
                "{}:{}: `{}` uses `{}`, which is {} it in the layer order",
                u.file,
                u.line,
                u.from,
                u.to,
                if to == from { "beside" } else { "above" }
            )),
            (from, to) => {
                if from.is_none() {
                    unplaced.insert(u.from.clone());
                }
                if to.is_none() {
                    unplaced.insert(u.to.clone());
                }
            }
        }
    }
    for m in unplaced {
        out.push(format!(
            "module `{m}` is in no layer of ARCHITECTURE.md's Layers block"
        ));
    }
    if let Some(cycle) = find_cycle(uses) {
        out.push(format!("module cycle: {}", cycle.join(" -> ")));
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let layers = declared_layers(&architecture);
    let uses = uses(&root.join("src"));
    assert!(
        uses.len() > 100,
        "the scan found {} cross-module uses: it is not reading the sources",
        uses.len()
    );
    let problems = problems(&uses, &layers);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Every module of the crate is placed, so a new one must be given its layer.
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let placed: BTreeSet<&str> = layers.iter().flatten().map(String::as_str).collect();
    assert_eq!(declared, placed, "src/lib.rs's modules vs the Layers block");
}

#[test]
fn the_check_finds_upward_uses_and_cycles() {
    let layers = vec![vec!["top".to_string()], vec!["bottom".to_string()]];
    let a = "use crate::{\n    top::Thing,\n    bottom::Other,\n};\nfn f() { crate::top::g() }\n";
    let paths = crate_paths(a);
    assert_eq!(
        paths,
        vec![
            ("top".to_string(), 2),
            ("bottom".to_string(), 3),
            ("top".to_string(), 5)
        ]
    );
    // Comments and longer paths are not uses.
    assert!(crate_paths("// crate::top\n/// [`crate::top`]\n$crate::top\n").is_empty());

    let up = Use {
        from: "bottom".into(),
        to: "top".into(),
        file: "src/bottom.rs".into(),
        line: 3,
    };
    let down = Use {
        from: "top".into(),
        to: "bottom".into(),
        file: "src/top.rs".into(),
        line: 1,
    };
    assert!(problems(std::slice::from_ref(&down), &layers).is_empty());
    let found = problems(&[down, up], &layers);
    assert_eq!(
        found,
        vec![
            "src/bottom.rs:3: `bottom` uses `top`, which is above it in the layer order"
                .to_string(),
            "module cycle: bottom -> top -> bottom".to_string(),
        ]
    );
    let peers = vec![vec!["a".to_string(), "b".to_string()]];
    let beside = Use {
        from: "a".into(),
        to: "b".into(),
        file: "src/a.rs".into(),
        line: 9,
    };
    assert_eq!(
        problems(&[beside], &peers),
        vec!["src/a.rs:9: `a` uses `b`, which is beside it in the layer order".to_string()]
    );
}
