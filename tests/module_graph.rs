//! The layers of `src/` hold: no import cycle between files, and no import from a lower
//! layer up (ARCHITECTURE.md, "Layers").
//!
//! Reads every `.rs` file under `src/`, finds the crate paths each one names outside its
//! `#[cfg(test)]` items (`use crate::…`, `use super::…`, `use self::…`, a child module's
//! name, and the same paths written inline), resolves each to the file that defines it (the
//! longest module prefix that is a file), and checks the resulting file graph:
//! - every file belongs to a layer of [`LAYERS`]; a file imports only from its own layer or
//!   below, and [`NARROW`] files from fewer;
//! - no cycle: no two files import each other, directly or around a loop. A file and its own
//!   submodules are one unit (a child may use its parent's items through `super::`, the
//!   parent names its children), so edges between a file and its ancestors or descendants do
//!   not count as cycles; every other edge does.
//!
//! A failure names each offending import as `src/FILE:LINE imports PATH from src/OTHER`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The layers, from the bottom up, each a list of module paths (`a/b` is `crate::a::b`; a
/// trailing `/**` takes the module and everything under it). The most specific match wins.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &["domain/**", "finding", "snapshot", "approvals", "credential_report"]),
    ("input", &["config/**", "event/**"]),
    ("rules", &["checks/**", "remediate/rotation", "org/scp", "org/coverage/**", "state/**"]),
    ("ports", &["ports"]),
    (
        "adapters, renderings and executors",
        &["aws/**", "render/**", "message", "output", "remediate", "remediate/stale/**", "remediate/undo", "org"],
    ),
    ("app", &["app/**", "org/digest"]),
    ("wiring and entrypoints", &["runtime", "org/run", "metrics", "lambda", "cli/**", ""]),
];

/// Files held to less than their layer allows: (module pattern, what it may import, why).
const NARROW: &[(&str, &[&str], &str)] = &[
    ("ports", &["domain/**", "finding", "snapshot", "approvals", "credential_report"], "ports speak domain types only"),
    (
        "render/**",
        &["domain/**", "finding", "snapshot", "render/**"],
        "renderings are documents made from findings only",
    ),
];

/// One `.rs` file as a module: its path under `src/` and its module path.
#[derive(Debug, Clone)]
struct Module {
    file: String,
    path: Vec<String>,
}

/// One crate path a file names, where.
#[derive(Debug, Clone)]
struct Import {
    line: usize,
    text: String,
    target: Vec<String>,
}

fn module_path(file: &str) -> Vec<String> {
    let stem = file.strip_suffix(".rs").unwrap_or(file);
    let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

fn name(path: &[String]) -> String {
    path.join("/")
}

/// Does `pattern` (`a/b`, `a/**`, or `""` for the crate root) match the module `path`?
fn matches(pattern: &str, path: &[String]) -> bool {
    let joined = name(path);
    match pattern.strip_suffix("/**") {
        Some(prefix) => joined == prefix || joined.starts_with(&format!("{prefix}/")),
        None => joined == pattern,
    }
}

/// How specific a pattern is: exact names beat `/**`, longer beats shorter.
fn specificity(pattern: &str) -> (usize, bool) {
    let exact = !pattern.ends_with("/**");
    (pattern.trim_end_matches("/**").split('/').count(), exact)
}

fn best<'a>(patterns: impl Iterator<Item = &'a str>, path: &[String]) -> Option<&'a str> {
    patterns.filter(|p| matches(p, path)).max_by_key(|p| specificity(p))
}

fn layer_of(path: &[String]) -> Option<usize> {
    let pattern = best(LAYERS.iter().flat_map(|(_, ps)| ps.iter().copied()), path)?;
    LAYERS.iter().position(|(_, ps)| ps.contains(&pattern))
}

/// Source with comments, string and character literals blanked (newlines kept, so line
/// numbers stay right).
fn blank_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r')))
            && !chars.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && {
                let start = if c == 'b' { i + 2 } else { i + 1 };
                let hashes = chars[start..].iter().take_while(|h| **h == '#').count();
                chars.get(start + hashes) == Some(&'"')
            }
        {
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[start..].iter().take_while(|h| **h == '#').count();
            let mut j = start + hashes + 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && chars[j + 1..].iter().take(hashes).filter(|h| **h == '#').count() == hashes {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for ch in &chars[i..j.min(chars.len())] {
                out.push(blank(*ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{7f}'), or a lifetime ('a), left as it is.
            let end = if next == Some('\\') {
                chars[i + 2..].iter().position(|ch| *ch == '\'').map(|p| i + 2 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                for _ in i..=end {
                    out.push(' ');
                }
                i = end + 1;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Blanks every item carrying `#[cfg(test)]`: what tests import is not the crate's structure.
fn blank_test_items(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= out.len() {
        if out[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let mut j = i + marker.len();
        let mut depth = 0usize;
        while j < out.len() {
            match out[j] {
                ';' if depth == 0 => break,
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(out.len());
        for ch in out.iter_mut().take(end).skip(i) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = j + 1;
    }
    out.into_iter().collect()
}

/// Expands one `use` tree (`a::{b, c::{d, e as f}}`) into its paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
        for (k, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..k]);
                    start = k + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts
    }
    fn go(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        if let Some(open) = tree.find('{') {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = tree[open + 1..].trim_end().strip_suffix('}').unwrap_or(&tree[open + 1..]);
            let mut p = prefix.to_vec();
            p.extend(head.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
            for part in split_top(inner) {
                go(&p, part, out);
            }
        } else {
            let path = tree.split(" as ").next().unwrap_or(tree);
            let mut p = prefix.to_vec();
            p.extend(path.split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
            out.push(p);
        }
    }
    let mut out = Vec::new();
    go(&[], &tree.split_whitespace().collect::<Vec<_>>().join(" "), &mut out);
    out
}

fn line_of(code: &str, offset: usize) -> usize {
    code[..offset].matches('\n').count() + 1
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every crate path one file names outside its tests, with its line.
fn imports(source: &str, children: &BTreeSet<String>) -> Vec<Import> {
    let mut code = blank_test_items(&blank_literals(source));
    let mut found = Vec::new();
    let mut declarations = Vec::new();
    let relative = |first: &str| first == "crate" || first == "super" || first == "self" || children.contains(first);
    // `use` declarations (also `pub use`, `pub(crate) use`).
    let mut rest = 0;
    while let Some(k) = code[rest..].find("use ") {
        let at = rest + k;
        rest = at + 4;
        if at > 0 && code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let Some(end) = code[at..].find(';') else { break };
        declarations.push(at..at + end);
        let tree = &code[at + 4..at + end];
        for path in expand_use(tree) {
            if path.first().is_some_and(|f| relative(f)) {
                found.push(Import { line: line_of(&code, at), text: path.join("::"), target: path });
            }
        }
    }
    // Paths written inline: `crate::a::b`, `super::x`, `child::item` (outside the declarations).
    for range in declarations {
        let blanked: String = code[range.clone()].chars().map(|c| if c == '\n' { c } else { ' ' }).collect();
        code.replace_range(range, &blanked);
    }
    let bytes: Vec<char> = code.chars().collect();
    let mut offsets = Vec::with_capacity(bytes.len() + 1);
    let mut o = 0;
    for c in &bytes {
        offsets.push(o);
        o += c.len_utf8();
    }
    offsets.push(o);
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let start = i;
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            segments.push(bytes[s..j].iter().collect::<String>());
            if j + 1 < bytes.len()
                && bytes[j] == ':'
                && bytes[j + 1] == ':'
                && bytes.get(j + 2).is_some_and(|c| is_ident(*c))
            {
                j += 2;
            } else {
                break;
            }
        }
        if segments.len() > 1 && relative(&segments[0]) {
            found.push(Import { line: line_of(&code, offsets[start]), text: segments.join("::"), target: segments });
        }
        i = j.max(start + 1);
    }
    found
}

/// What a file re-exports from the domain (`pub use crate::domain::…`): item name → full path.
fn domain_reexports(source: &str) -> BTreeMap<String, String> {
    let code = blank_test_items(&blank_literals(source));
    let mut found = BTreeMap::new();
    let mut rest = 0;
    while let Some(k) = code[rest..].find("pub use ") {
        let at = rest + k;
        rest = at + 8;
        let Some(end) = code[at..].find(';') else { break };
        for path in expand_use(&code[at + 8..at + end]) {
            if path.len() > 2
                && path[0] == "crate"
                && path[1] == "domain"
                && let Some(item) = path.last()
            {
                found.insert(item.clone(), path.join("::"));
            }
        }
    }
    found
}

/// The file-level graph: for each file, the files it imports from (with the imports).
type Graph = BTreeMap<usize, BTreeMap<usize, Vec<Import>>>;

fn graph(modules: &[Module], sources: &[String]) -> Graph {
    let by_path: BTreeMap<Vec<String>, usize> = modules.iter().enumerate().map(|(i, m)| (m.path.clone(), i)).collect();
    let mut g: Graph = BTreeMap::new();
    for (i, m) in modules.iter().enumerate() {
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|c| c.path.len() == m.path.len() + 1 && c.path.starts_with(&m.path))
            .filter_map(|c| c.path.last().cloned())
            .collect();
        for import in imports(&sources[i], &children) {
            let mut full: Vec<String> = m.path.clone();
            let mut segments = import.target.iter().peekable();
            match segments.peek().map(|s| s.as_str()) {
                Some("crate") => {
                    full.clear();
                    segments.next();
                }
                Some("self") => {
                    segments.next();
                }
                _ => {}
            }
            while segments.peek().map(|s| s.as_str()) == Some("super") {
                full.pop();
                segments.next();
            }
            full.extend(segments.cloned());
            let target = (0..=full.len()).rev().find_map(|n| by_path.get(&full[..n]).copied());
            if let Some(t) = target
                && t != i
                && !modules[t].path.is_empty()
            {
                g.entry(i).or_default().entry(t).or_default().push(import);
            }
        }
    }
    g
}

/// One module is the other's ancestor or descendant (or the same).
fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `src/a.rs:3 imports crate::b::X, line 9 crate::b::Y from src/b.rs`: every distinct path.
fn describe(modules: &[Module], from: usize, to: usize, imports: &[Import]) -> String {
    let mut seen = BTreeSet::new();
    let mut text = String::new();
    for import in imports.iter().filter(|i| seen.insert(i.text.clone())) {
        if text.is_empty() {
            let _ = write!(text, "{}:{} imports {}", modules[from].file, import.line, import.text);
        } else {
            let _ = write!(text, ", line {} {}", import.line, import.text);
        }
    }
    format!("{text} from {}", modules[to].file)
}

/// Every problem of the graph, one line each (empty when the layers hold).
fn problems(modules: &[Module], sources: &[String], g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for m in modules {
        if layer_of(&m.path).is_none() {
            out.push(format!("{} belongs to no layer: add it to LAYERS in tests/module_graph.rs", m.file));
        }
    }
    for (&from, targets) in g {
        let fp = &modules[from].path;
        for (&to, imports) in targets {
            let tp = &modules[to].path;
            let (Some(lf), Some(lt)) = (layer_of(fp), layer_of(tp)) else { continue };
            if lt > lf {
                let moved = domain_reexports(&sources[to]);
                let hints: BTreeSet<&String> =
                    imports.iter().filter_map(|i| i.target.last().and_then(|item| moved.get(item))).collect();
                let fix = if hints.is_empty() {
                    "move what it needs down (src/domain/) and import it from there".to_owned()
                } else {
                    format!(
                        "it moved: import {} instead",
                        hints.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ")
                    )
                };
                out.push(format!(
                    "upward import: {} ({} layer from the {} layer); {fix}",
                    describe(modules, from, to, imports),
                    LAYERS[lt].0,
                    LAYERS[lf].0
                ));
            }
            if let Some(allowed) = best(NARROW.iter().map(|(p, _, _)| *p), fp)
                && let Some((_, may, why)) = NARROW.iter().find(|(p, _, _)| *p == allowed)
                && !may.iter().any(|p| matches(p, tp))
            {
                out.push(format!("too wide an import: {} ({why})", describe(modules, from, to, imports)));
            }
        }
    }
    // Cycles: strongly connected components of the graph without ancestor/descendant edges.
    let n = modules.len();
    let edges: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            g.get(&i)
                .map(|t| t.keys().copied().filter(|&j| !related(&modules[i].path, &modules[j].path)).collect())
                .unwrap_or_default()
        })
        .collect();
    for component in strongly_connected(&edges) {
        if component.len() < 2 {
            continue;
        }
        let inside: BTreeSet<usize> = component.iter().copied().collect();
        let mut text = format!(
            "import cycle between {} files: {}; every import inside it:",
            component.len(),
            component.iter().map(|&i| modules[i].file.as_str()).collect::<Vec<_>>().join(", ")
        );
        for &from in &component {
            for &to in &edges[from] {
                if inside.contains(&to) {
                    let _ = write!(text, "\n    {}", describe(modules, from, to, &g[&from][&to]));
                }
            }
        }
        out.push(text);
    }
    out
}

/// Tarjan's algorithm, iterative: the strongly connected components, each sorted.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut components, mut counter) = (Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut next)) = work.last_mut() {
            if *next == 0 {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*next) {
                *next += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components
}

/// The problems of a source tree (file → text, paths relative to `src/`), and how many
/// file-to-file imports it has.
fn check_counting(files: &BTreeMap<String, String>) -> (Vec<String>, usize) {
    let modules: Vec<Module> =
        files.keys().filter(|f| *f != "main.rs").map(|f| Module { file: f.clone(), path: module_path(f) }).collect();
    let sources: Vec<String> = modules.iter().map(|m| files[&m.file].clone()).collect();
    let modules: Vec<Module> = modules.into_iter().map(|m| Module { file: format!("src/{}", m.file), ..m }).collect();
    let g = graph(&modules, &sources);
    (problems(&modules, &sources, &g), g.values().map(BTreeMap::len).sum())
}

fn check(files: &BTreeMap<String, String>) -> Vec<String> {
    check_counting(files).0
}

fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("src/ is readable").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src/").to_string_lossy().replace('\\', "/");
            out.insert(rel, std::fs::read_to_string(&path).expect("source is UTF-8"));
        }
    }
}

#[test]
fn src_has_no_import_cycle_and_no_upward_import() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 40, "read only {} files under src/", files.len());
    let (problems, imports) = check_counting(&files);
    // The crate's files import each other a few hundred times; far fewer means the reader broke.
    assert!(imports > 150, "found only {imports} imports between the files of src/");
    assert!(problems.is_empty(), "the layers of src/ do not hold (ARCHITECTURE.md, Layers):\n{}", problems.join("\n"));
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(f, s)| ((*f).to_owned(), (*s).to_owned())).collect()
}

#[test]
fn a_cycle_between_two_files_is_named_with_both_imports() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod checks;\npub mod config;\n"),
        ("config.rs", "use crate::checks::policy::Cidr;\n"),
        ("checks/mod.rs", "pub mod policy;\n"),
        ("checks/policy.rs", "pub struct Cidr;\nfn f(p: &crate::config::Policy) {}\n"),
    ]));
    let cycle = problems.iter().find(|p| p.starts_with("import cycle between 2 files")).expect("the cycle is found");
    assert!(cycle.contains("src/config.rs:1 imports crate::checks::policy::Cidr from src/checks/policy.rs"), "{cycle}");
    assert!(cycle.contains("src/checks/policy.rs:2 imports crate::config::Policy from src/config.rs"), "{cycle}");
    assert!(
        problems.iter().any(|p| p.starts_with(
            "upward import: src/config.rs:1 imports crate::checks::policy::Cidr from src/checks/policy.rs (rules layer from the input layer)"
        )),
        "{problems:?}"
    );
}

#[test]
fn a_cycle_through_three_files_and_inline_paths_is_found() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod message;\npub mod ports;\npub mod render;\n"),
        ("ports.rs", "pub fn send(m: crate::message::Message) {}\n"),
        ("message.rs", "use crate::render::{chat, email};\npub struct Message;\n"),
        ("render/mod.rs", "pub mod chat;\npub mod email;\n"),
        ("render/chat.rs", "fn f(s: super::super::ports::Sent) -> usize { std::mem::size_of_val(&s) }\n"),
        ("render/email.rs", "\n"),
    ]));
    let cycle = problems.iter().find(|p| p.starts_with("import cycle between 3 files")).expect("{problems:?}");
    for edge in [
        "src/ports.rs:1 imports crate::message::Message from src/message.rs",
        "src/message.rs:1 imports crate::render::chat from src/render/chat.rs",
        "src/render/chat.rs:1 imports super::super::ports::Sent from src/ports.rs",
    ] {
        assert!(cycle.contains(edge), "{edge} missing from {cycle}");
    }
    assert!(problems.iter().any(|p| p.starts_with("too wide an import: src/ports.rs:1")), "{problems:?}");
}

#[test]
fn an_upward_import_of_a_type_that_moved_down_names_its_new_path() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod checks;\npub mod domain;\npub mod event;\n"),
        ("domain/mod.rs", "pub mod call;\n"),
        ("domain/call.rs", "pub struct Actor;\n"),
        ("checks/mod.rs", "pub use crate::domain::call::{Actor, CallContext};\n"),
        ("event.rs", "use crate::checks::Actor;\nfn f(a: crate::checks::Actor) {}\n"),
    ]));
    assert_eq!(
        problems,
        vec![
            "upward import: src/event.rs:1 imports crate::checks::Actor from src/checks/mod.rs (rules layer from the \
             input layer); it moved: import crate::domain::call::Actor instead"
        ]
    );
}

#[test]
fn imports_in_comments_strings_and_tests_do_not_count() {
    let problems = check(&tree(&[
        ("lib.rs", "pub mod checks;\npub mod config;\n"),
        (
            "config.rs",
            "// use crate::checks::X;\nconst S: &str = \"crate::checks::X\";\nconst R: &str = r#\"use crate::checks::X;\"#;\n\
             const C: char = '{';\n#[cfg(test)]\nmod tests {\n    use crate::checks::X;\n}\n",
        ),
        ("checks/mod.rs", "use crate::config::Y;\n"),
    ]));
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn a_file_outside_every_layer_is_named() {
    let problems = check(&tree(&[("lib.rs", "pub mod newcomer;\n"), ("newcomer.rs", "\n")]));
    assert_eq!(problems, vec!["src/newcomer.rs belongs to no layer: add it to LAYERS in tests/module_graph.rs"]);
}
