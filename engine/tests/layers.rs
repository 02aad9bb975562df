//! The engine's layers point one way (see `docs/architecture.md`, "Layout and layers"): this
//! test reads every source file of `ooc-engine` and fails when a module refers to a layer it
//! must not use, through a `use crate::…` line, an inline `crate::…` path, or `super::` paths
//! that climb out of its layer. Test code (`#[cfg(test)]` items and files) is not checked: a
//! test may build whatever it needs.
//!
//! It also checks that no message of the engine or of `ooc-io` names a command-line flag
//! (the CLI is one front end of three; it adds its own hints), and that `ooc-io` does not depend
//! on the engine (io knows no plans).
//!
//! Issue #25 listed the wrong-way imports this guards against; `the_checker_catches_*` below
//! feeds each of them to the checker and expects a violation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which layers each top-level module of `engine/src` may use (itself always included), and
/// the parts of an allowed layer it still must not reach.
fn rules(layer: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match layer {
        // Leaves.
        "error" => (&[], &[]),
        "metrics" => (&[], &[]),
        // The handle of a budget shared by concurrent queries: knows no pool.
        "budget" => (&[], &[]),
        "config" => (&["error", "budget"], &[]),
        // What a query computes: knows nothing of how it runs.
        "logical" => (&["error"], &[]),
        // Compiled expressions: a leaf above logical that every layer above may use.
        "eval" => (
            &["error", "logical"],
            &["logical::plan", "logical::cardinality"],
        ),
        // Rules rewrite logical plans only.
        "optimizer" => (&["error", "logical", "eval"], &[]),
        // Front ends produce logical plans only.
        "frontend" => (&["error", "logical", "eval"], &[]),
        // Budget, reservations and spill files: no operator.
        "memory" => (&["error", "metrics", "budget"], &[]),
        // Operators: expressions and types of the logical layer, never its plans.
        "physical" => (
            &["error", "logical", "eval", "memory", "metrics"],
            &["logical::plan", "logical::cardinality", "logical::hidden"],
        ),
        // Writers know batches and files.
        "sink" => (&["error"], &[]),
        // Entry points of the fuzz targets (`--cfg fuzzing` only): the private readers.
        "fuzzing" => (&["memory"], &[]),
        // Batches for models: batches and matrices.
        "feed" => (&["error", "config", "sink"], &[]),
        // The only layer that knows every layer below it.
        "execution" => (
            &[
                "error",
                "config",
                "logical",
                "eval",
                "optimizer",
                "physical",
                "memory",
                "metrics",
                "budget",
            ],
            &[],
        ),
        // Plans split into stages for other processes: runs them through execution.
        "distributed" => (
            &[
                "error",
                "config",
                "logical",
                "eval",
                "execution",
                "physical",
                "sink",
            ],
            &[],
        ),
        "dataframe" => (
            &[
                "error",
                "config",
                "logical",
                "frontend",
                "execution",
                "feed",
            ],
            &[],
        ),
        "session" => (
            &["error", "config", "logical", "frontend", "dataframe"],
            &[],
        ),
        _ => return None,
    })
}

/// The modules whose layer is "anything": the crate root and the benchmarks' entry points.
const UNCHECKED: &[&str] = &["lib", "bench"];

/// Items the crate root re-exports, by the module that defines them.
fn root_item(name: &str) -> Option<&'static str> {
    Some(match name {
        "EngineError" | "Result" => "error",
        "SessionConfig" | "RowOrder" | "default_memory_limit" | "parse_size" => "config",
        "DataFrame" => "dataframe",
        "QueryStream" | "OperatorStats" | "StoredResult" | "peak_rss_bytes" => "execution",
        "Progress" => "metrics",
        "MemoryBudget" => "budget",
        "Session" => "session",
        "Expr" => "logical::expr",
        "JoinType" | "LogicalPlan" | "SortKey" => "logical::plan",
        _ => return None,
    })
}

/// One reference from a source file to a module of the crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reference {
    line: usize,
    /// The absolute path, without `crate::` (`physical::expr::PhysicalExpr`).
    path: String,
}

/// A reference a layer rule forbids.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    path: String,
    layer: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (allowed, denied) = rules(&self.layer).unwrap_or((&[], &[]));
        write!(
            f,
            "{}:{}: `crate::{}` — {} may use only {}{}",
            self.file,
            self.line,
            self.path,
            self.layer,
            if allowed.is_empty() {
                "itself".to_string()
            } else {
                allowed.join(", ")
            },
            if denied.is_empty() {
                String::new()
            } else {
                format!(" (not {})", denied.join(", "))
            }
        )
    }
}

/// `text` with comments, string and char literals blanked out (newlines kept, so line
/// numbers stay right).
fn strip_comments_and_strings(text: &str) -> String {
    strip(text, true)
}

/// `text` with comments blanked out, and string and char literals too when `strings`.
fn strip(text: &str, strings: bool) -> String {
    let bytes: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let literal = |c: char| if strings { blank(c) } else { c };
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            while i < bytes.len() && !(bytes[i] == '*' && bytes.get(i + 1) == Some(&'/')) {
                out.push(blank(bytes[i]));
                i += 1;
            }
            out.push_str("  ");
            i += 2;
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while bytes.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if bytes.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= bytes.len() {
                    break;
                }
                if bytes[j] == '"' && (0..hashes).all(|h| bytes.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &b in &bytes[i..j.min(bytes.len())] {
                out.push(literal(b));
            }
            i = j;
        } else if c == '"' {
            out.push(literal(c));
            i += 1;
            while i < bytes.len() && bytes[i] != '"' {
                if bytes[i] == '\\' {
                    out.push(literal(bytes[i]));
                    i += 1;
                }
                if i < bytes.len() {
                    out.push(literal(bytes[i]));
                    i += 1;
                }
            }
            if i < bytes.len() {
                out.push(literal(bytes[i]));
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1}') or a lifetime ('a).
            let rest: String = bytes[i..(i + 12).min(bytes.len())].iter().collect();
            let len = char_literal_len(&rest);
            if len > 0 {
                out.extend(bytes[i..i + len].iter().map(|&b| literal(b)));
                i += len;
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

/// The length in chars of the char literal `text` starts with, or 0 for a lifetime.
fn char_literal_len(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() >= 3 && chars[1] != '\\' && chars[2] == '\'' {
        return 3;
    }
    if chars.len() >= 4 && chars[1] == '\\' {
        if let Some(end) = chars.iter().skip(2).position(|&c| c == '\'') {
            return end + 3;
        }
    }
    0
}

/// `text` (already stripped) without the items marked `#[cfg(test)]`.
fn without_test_items(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(start) = out.find("#[cfg(test)]") {
        let after = start + "#[cfg(test)]".len();
        // The item ends at its `;` (a `mod x;` declaration) or its matching closing brace.
        let rest = &out[after..];
        let semicolon = rest.find(';');
        let brace = rest.find('{');
        let end = match (semicolon, brace) {
            (Some(s), Some(b)) if s < b => after + s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = out.len();
                for (k, ch) in out[after + b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = after + b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(s), None) => after + s + 1,
            (None, None) => out.len(),
        };
        let blanked: String = out[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..end, &blanked);
    }
    out
}

/// The module path of a file under `src/` (`physical/joins/mod.rs` → `physical::joins`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// Every path into the crate that `code` (stripped, without tests) refers to, made absolute
/// for a file whose module is `module`.
fn references(code: &str, module: &[String]) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let starts = |word: &str| {
            boundary
                && chars[i..].iter().take(word.len()).copied().eq(word.chars())
                && chars.get(i + word.len()) == Some(&':')
                && chars.get(i + word.len() + 1) == Some(&':')
        };
        let base: Option<(Vec<String>, usize)> = if starts("crate") {
            Some((Vec::new(), i + "crate::".len()))
        } else if starts("super") {
            // Climb one module per `super::`.
            let mut base: Vec<String> = module.to_vec();
            let mut j = i;
            while chars[j..].iter().take(7).copied().eq("super::".chars()) {
                base.pop();
                j += 7;
            }
            Some((base, j))
        } else {
            None
        };
        let Some((prefix, start)) = base else {
            i += 1;
            continue;
        };
        // A use tree: `a::b::{c, d::e}` or a plain path.
        let (paths, end) = parse_tree(&chars, start);
        for p in paths {
            let mut full = prefix.clone();
            full.extend(p.split("::").filter(|s| !s.is_empty()).map(str::to_string));
            if full.is_empty() {
                continue;
            }
            out.push(Reference {
                line,
                path: full.join("::"),
            });
        }
        // Count the newlines the tree spanned.
        line += chars[i..end].iter().filter(|&&c| c == '\n').count();
        i = end;
    }
    out
}

/// Parse a path or use tree starting at `start`; returns its leaf paths and where it ends.
fn parse_tree(chars: &[char], start: usize) -> (Vec<String>, usize) {
    let mut i = start;
    let mut head = String::new();
    if chars.get(i) == Some(&'{') {
        return parse_group(chars, i, &head);
    }
    loop {
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            head.push(chars[i]);
            i += 1;
        }
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            head.push_str("::");
            i += 2;
            if chars.get(i) == Some(&'{') {
                return parse_group(chars, i, &head);
            }
            continue;
        }
        break;
    }
    (vec![head.trim_end_matches("::").to_string()], i)
}

/// Parse the group `{a, b::c, ...}` at `start` of a use tree whose path so far is `head`.
fn parse_group(chars: &[char], start: usize, head: &str) -> (Vec<String>, usize) {
    let mut i = start + 1;
    let mut paths = Vec::new();
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() || chars[i] == '}' {
            i += 1;
            break;
        }
        let (inner, end) = parse_tree(chars, i);
        for p in inner {
            paths.push(format!("{head}{p}"));
        }
        i = end.max(i + 1);
        // Skip ` as name` and whitespace up to `,` or `}`.
        while i < chars.len() && chars[i] != ',' && chars[i] != '}' {
            i += 1;
        }
        if chars.get(i) == Some(&',') {
            i += 1;
        }
    }
    (paths, i)
}

/// The violations of `code`, the text of the file `file` whose module is `module`.
fn check_source(file: &str, module: &[String], code: &str) -> Vec<Violation> {
    let Some(layer) = module.first().cloned().or_else(|| Some("lib".to_string())) else {
        return vec![];
    };
    let layer = if module.is_empty() {
        "lib".to_string()
    } else {
        layer
    };
    if UNCHECKED.contains(&layer.as_str()) {
        return vec![];
    }
    let Some((allowed, denied)) = rules(&layer) else {
        return vec![Violation {
            file: file.to_string(),
            line: 0,
            path: String::new(),
            layer: format!("{layer} (a layer without rules: add it to `rules`)"),
        }];
    };
    let code = without_test_items(&strip_comments_and_strings(code));
    let mut out = Vec::new();
    for reference in references(&code, module) {
        let mut segments: Vec<&str> = reference.path.split("::").collect();
        // A root re-export stands for the module that defines it.
        let resolved;
        if !is_module(segments[0]) {
            match root_item(segments[0]) {
                Some(module) => {
                    resolved = module.to_string();
                    segments = resolved.split("::").collect();
                }
                None if segments[0] == "self" || segments[0].is_empty() => continue,
                None => {
                    out.push(Violation {
                        file: file.to_string(),
                        line: reference.line,
                        path: reference.path.clone(),
                        layer: format!("{layer} (an unknown root item: add it to `root_item`)"),
                    });
                    continue;
                }
            }
        }
        let target = segments[0];
        let two = segments
            .iter()
            .take(2)
            .copied()
            .collect::<Vec<_>>()
            .join("::");
        let ok = (target == layer || allowed.contains(&target)) && !denied.contains(&two.as_str());
        if !ok {
            out.push(Violation {
                file: file.to_string(),
                line: reference.line,
                path: reference.path.clone(),
                layer: layer.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The engine's top-level modules.
fn is_module(name: &str) -> bool {
    rules(name).is_some() || UNCHECKED.contains(&name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Files declared as `#[cfg(test)] mod name;` (test-only files), by module path.
fn test_only_files(files: &[PathBuf], src: &Path) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = strip_comments_and_strings(&std::fs::read_to_string(file).expect("readable"));
        let module = module_path(file.strip_prefix(src).expect("under src"));
        let words: Vec<&str> = text.split_whitespace().collect();
        for w in words.windows(3) {
            if w[0] == "#[cfg(test)]" && w[1] == "mod" && w[2].ends_with(';') {
                let mut m = module.clone();
                m.push(w[2].trim_end_matches(';').to_string());
                out.insert(m);
            }
        }
    }
    out
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let test_only = test_only_files(&files, &src);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = module_path(relative);
        if test_only.contains(&module) || module.iter().any(|m| m == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source file");
        violations.extend(check_source(
            &format!("engine/src/{}", relative.display()),
            &module,
            &text,
        ));
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files checked");
    assert!(
        violations.is_empty(),
        "{} wrong-way references:\n{}",
        violations.len(),
        violations
            .iter()
            .map(|v| format!("  {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The string literals of `text` with their line numbers (comments are not literals).
fn string_literals(text: &str) -> Vec<(usize, String)> {
    // Blanking literals (and comments) leaves the literals where the two texts differ and the
    // stripped text has a blank; comments are blanked first so that they never count.
    let without_comments = strip(text, false);
    let stripped = strip(text, true);
    let mut out = Vec::new();
    let mut line = 1;
    let mut current: Option<(usize, String)> = None;
    for (o, b) in without_comments.chars().zip(stripped.chars()) {
        if o == '\n' {
            line += 1;
        }
        let in_literal = o != b || (b == ' ' && current.is_some() && o == ' ');
        match (&mut current, in_literal) {
            (Some((_, literal)), true) => literal.push(o),
            (None, true) => current = Some((line, o.to_string())),
            (Some(_), false) => out.extend(current.take()),
            (None, false) => {}
        }
    }
    out.extend(current);
    out
}

/// A command-line flag (`--data`, `--memory-limit`) in `text`.
fn names_a_flag(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(3).enumerate().any(|(i, w)| {
        w[0] == '-'
            && w[1] == '-'
            && w[2].is_ascii_lowercase()
            && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '-')
    })
}

#[test]
fn no_engine_or_io_message_names_a_cli_flag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root.join("engine/src"), &mut files);
    rust_files(&root.join("io/src"), &mut files);
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source file");
        let code = without_test_items(&text);
        for (line, literal) in string_literals(&code) {
            if names_a_flag(&literal) {
                found.push(format!("{}:{line}: {literal}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "messages naming CLI flags (the CLI adds its own hints):\n{}",
        found.join("\n")
    );
}

#[test]
fn io_does_not_depend_on_the_engine() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../io/Cargo.toml");
    let text = std::fs::read_to_string(manifest).expect("io manifest");
    assert!(!text.contains("ooc-engine"), "ooc-io must know no plans");
}

// The checker itself, on the wrong-way references issue #25 found.

fn violations_of(file: &str, text: &str) -> Vec<String> {
    let relative = Path::new(file);
    let mut paths: Vec<String> = check_source(file, &module_path(relative), text)
        .into_iter()
        .map(|v| v.path)
        .collect();
    paths.sort();
    paths
}

#[test]
fn the_checker_catches_the_optimizer_evaluating_with_physical_expressions() {
    let text = "use crate::error::Result;\nuse crate::physical::expr::{create_physical_expr, ColumnarValue};\n";
    assert_eq!(
        violations_of("optimizer/constant_folding.rs", text),
        [
            "physical::expr::ColumnarValue",
            "physical::expr::create_physical_expr"
        ]
    );
}

#[test]
fn the_checker_catches_memory_calling_into_physical_inline() {
    let text = "fn f(b: &RecordBatch) -> usize {\n    crate::physical::referenced_bytes(b)\n}\n";
    assert_eq!(
        violations_of("memory/spill.rs", text),
        ["physical::referenced_bytes"]
    );
}

#[test]
fn the_checker_catches_operators_reading_optimizer_estimates_and_plans() {
    let text = "use crate::optimizer::cardinality::{estimate_bytes, estimate_rows};\n\
                use crate::logical::plan::LogicalPlan;\nuse crate::logical::expr::Expr;\n";
    assert_eq!(
        violations_of("physical/planner.rs", text),
        [
            "logical::plan::LogicalPlan",
            "optimizer::cardinality::estimate_bytes",
            "optimizer::cardinality::estimate_rows",
        ]
    );
}

#[test]
fn the_checker_catches_front_ends_using_the_optimizer_and_running_plans() {
    let text = "use crate::optimizer::references_only;\n\
                fn f() { let x = crate::optimizer::fold_expr(e); }\n";
    assert_eq!(
        violations_of("frontend/sql/mod.rs", text),
        ["optimizer::fold_expr", "optimizer::references_only"]
    );
    let text = "use crate::memory::{MemoryPool, SpillManager};\nuse crate::physical::{display_plan, TaskContext};\nuse crate::optimizer::optimize;\n";
    assert_eq!(violations_of("frontend/dataframe.rs", text).len(), 5);
}

#[test]
fn the_checker_catches_the_dataframe_importing_the_session_and_logical_importing_physical() {
    assert_eq!(
        violations_of(
            "dataframe.rs",
            "use crate::session::{SessionConfig, SessionState};"
        ),
        ["session::SessionConfig", "session::SessionState"]
    );
    assert_eq!(
        violations_of("logical/plan.rs", "use crate::eval::PhysicalExpr;"),
        ["eval::PhysicalExpr"]
    );
    assert_eq!(
        violations_of(
            "logical/plan.rs",
            "use super::super::physical::ExecutionPlan;"
        ),
        ["physical::ExecutionPlan"]
    );
}

#[test]
fn the_checker_ignores_comments_strings_and_tests() {
    let text = "// use crate::physical::X;\nconst S: &str = \"crate::physical::Y\";\n\
                #[cfg(test)]\nmod tests {\n    use crate::physical::Z;\n}\n";
    assert!(violations_of("optimizer/topk.rs", text).is_empty());
    assert!(names_a_flag("use --data DIR"));
    assert!(!names_a_flag("x -- y") && !names_a_flag("a---b") && !names_a_flag("max_temp_size"));
    let literals = string_literals("let a = 1; // \"--x\"\nlet m = \"use --data DIR\";\n");
    assert_eq!(literals.len(), 1, "{literals:?}");
    assert_eq!(literals[0].0, 2);
    assert!(
        literals[0].1.starts_with("\"use --data DIR\""),
        "{literals:?}"
    );
}
