//! Pseudo-realistic text: prose from a fixed vocabulary, code-like lines from templates,
//! and the shapes of command output.
//!
//! Real agent logs compress about 3–5× with zstd: prose and code reuse words and shapes, but
//! rarely whole passages. Words drawn with a skew (a few very common, most rare) from a few
//! hundred, and code from templates filled with identifiers, behave alike. Random bytes (1×) or
//! repeated text (50×+) would make compression and deduplication benchmarks meaningless.

use crate::rng::Rng;

/// English words, most frequent first ([`Rng::skewed`] favours the front).
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "to", "and", "a", "of", "is", "in", "that", "it", "this", "for", "we", "be", "I", "on",
    "with", "not", "as", "so", "can", "should", "now", "file", "test", "will", "if", "from", "are",
    "but", "by", "when", "then", "function", "need", "error", "all", "one", "which", "value",
    "use", "there", "type", "only", "each", "make", "what", "code", "new", "an", "check", "have",
    "case", "just", "call", "data", "add", "first", "into", "still", "also", "update", "change",
    "let", "at", "same", "return", "instead", "other", "line", "because", "fix", "run", "or",
    "it's", "field", "path", "read", "write", "list", "look", "handle", "current", "result",
    "state", "config", "these", "here", "after", "before", "where", "like", "does", "would", "was",
    "do", "has", "no", "any", "more", "string", "missing", "empty", "existing", "tests", "passes",
    "fails", "output", "input", "module", "struct", "method", "import", "export", "server",
    "client", "request", "response", "handler", "parser", "record", "session", "message", "index",
    "cache", "key", "entry", "buffer", "offset", "length", "limit", "count", "size", "time",
    "timestamp", "order", "item", "items", "user", "users", "account", "token", "tokens", "query",
    "schema", "column", "table", "row", "migration", "database", "connection", "pool", "retry",
    "timeout", "wrapper", "helper", "component", "props", "hook", "render", "layout", "page",
    "route", "view", "model", "store", "event", "events", "queue", "worker", "task", "job",
    "build", "compile", "warning", "warnings", "lint", "format", "branch", "commit", "diff",
    "patch", "review", "comment", "docs", "README", "example", "interface", "trait", "impl",
    "generic", "closure", "iterator", "async", "await", "future", "thread", "lock", "mutex",
    "channel", "stream", "socket", "header", "body", "payload", "encode", "decode", "serialize",
    "parse", "validate", "normalize", "convert", "merge", "split", "sort", "filter", "map",
    "collect", "clone", "borrow", "lifetime", "reference", "pointer", "slice", "vector", "array",
    "bytes", "chars", "utf-8", "unicode", "escape", "quote", "newline", "whitespace", "prefix",
    "suffix", "boundary", "edge", "cases", "regression", "flaky", "deterministic", "seed",
    "random", "fixture", "fixtures", "mock", "stub", "snapshot", "assert", "expected", "actual",
    "mismatch", "panic", "unwrap", "option", "none", "some", "default", "fallback", "explicit",
    "implicit", "private", "public", "internal", "external", "dependency", "dependencies",
    "version", "upgrade", "downgrade", "feature", "flag", "flags", "environment", "variable",
    "variables", "secret", "permission", "permissions", "access", "sandbox", "directory", "folder",
    "files", "paths", "relative", "absolute", "symlink", "glob", "pattern", "regex", "match",
    "matches", "search", "replace", "rename", "move", "remove", "delete", "insert", "append",
    "prepend", "truncate", "overflow", "underflow", "rounding", "precision", "cents", "total",
    "amount", "price", "invoice", "report", "summary", "manifest", "segment", "ledger", "origin",
    "peer", "device", "sync", "upload", "download", "network", "latency", "throughput", "memory",
    "allocation", "allocations", "performance", "benchmark", "profile", "hot", "loop", "inner",
    "outer", "recursion", "stack", "heap", "graph", "node", "nodes", "tree", "leaf", "root",
    "parent", "child", "children", "sibling", "depth", "width", "height", "color", "theme",
    "style", "styles", "dark", "mode", "button", "input", "form", "modal", "dialog", "menu",
    "sidebar", "navigation", "scroll", "click", "submit", "cancel", "carefully", "quickly",
    "probably", "actually", "likely", "clearly", "simply", "exactly", "correctly", "properly",
    "safely", "again", "already", "never", "always", "usually", "rather", "though", "while",
    "since", "until", "without", "within", "between", "across",
];

/// Nouns for identifiers.
#[rustfmt::skip]
const NOUNS: &[&str] = &[
    "config", "session", "parser", "record", "buffer", "index", "manifest", "segment", "ledger",
    "cache", "token", "request", "response", "handler", "client", "server", "store", "entry",
    "item", "report", "summary", "user", "account", "payload", "header", "offset", "limit",
    "state", "event", "queue", "worker", "task", "job", "path", "file", "line", "message", "block",
    "chunk", "frame", "key", "value", "node", "tree", "edge", "model", "schema", "field", "column",
    "row", "table", "query", "result", "error", "context", "options", "builder", "writer",
    "reader", "stream", "channel", "route", "view", "component", "props", "layout", "theme",
    "price", "total", "amount", "invoice", "order", "cart", "product", "tenant", "origin", "peer",
    "device", "snapshot", "digest", "hash", "signature", "duration", "retry", "timeout", "policy",
    "rule", "filter", "batch", "range", "cursor", "page", "count",
];

#[rustfmt::skip]
const VERBS: &[&str] = &[
    "get", "set", "parse", "load", "save", "read", "write", "build", "new", "from", "update",
    "delete", "create", "find", "fetch", "send", "handle", "process", "validate", "check",
    "compute", "apply", "merge", "split", "encode", "decode", "render", "format", "resolve",
    "flush", "open", "close", "start", "stop", "run", "spawn", "sync", "push", "pop", "insert",
    "remove", "collect", "filter", "sort", "hash", "sign", "verify", "emit", "track", "retry",
    "normalize", "serialize", "deserialize", "init", "reset", "clear", "list", "scan",
];

#[rustfmt::skip]
const PROMPT_OPENERS: &[&str] = &[
    "Can you", "Please", "Let's", "I want to", "Now", "Why does", "Could you", "We need to", "Fix",
    "Add", "Refactor", "Look at", "Make", "Update", "Check why", "Help me", "OK,", "Great.",
    "Thanks! Now", "Hmm,", "Next,", "Run",
];

/// The languages projects are written in; each has its own code templates and tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    TypeScript,
    Python,
    Go,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::TypeScript, Lang::Python, Lang::Go];

    pub fn ext(self) -> &'static str {
        match self {
            Lang::Rust => "rs",
            Lang::TypeScript => "ts",
            Lang::Python => "py",
            Lang::Go => "go",
        }
    }

    /// The code-fence tag of a markdown block.
    pub fn fence(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::TypeScript => "typescript",
            Lang::Python => "python",
            Lang::Go => "go",
        }
    }

    /// Source folder.
    pub fn src(self) -> &'static str {
        match self {
            Lang::Rust | Lang::TypeScript => "src",
            Lang::Python => "app",
            Lang::Go => "internal",
        }
    }

    fn indent(self) -> &'static str {
        match self {
            Lang::Rust | Lang::Python => "    ",
            Lang::TypeScript => "  ",
            Lang::Go => "\t",
        }
    }

    fn comment(self) -> &'static str {
        match self {
            Lang::Python => "#",
            _ => "//",
        }
    }
}

pub fn word(rng: &mut Rng) -> &'static str {
    WORDS[rng.skewed(WORDS.len())]
}

pub fn noun(rng: &mut Rng) -> &'static str {
    NOUNS[rng.skewed(NOUNS.len())]
}

pub fn verb(rng: &mut Rng) -> &'static str {
    VERBS[rng.skewed(VERBS.len())]
}

fn push_capitalized(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// `verb_noun`.
pub fn snake_ident(rng: &mut Rng, out: &mut String) {
    out.push_str(verb(rng));
    out.push('_');
    out.push_str(noun(rng));
}

/// `verbNoun`.
pub fn camel_ident(rng: &mut Rng, out: &mut String) {
    out.push_str(verb(rng));
    push_capitalized(out, noun(rng));
}

/// `NounNoun`, a type name.
pub fn type_name(rng: &mut Rng, out: &mut String) {
    push_capitalized(out, noun(rng));
    if rng.chance(0.4) {
        push_capitalized(out, noun(rng));
    }
}

/// `n` words separated by spaces.
pub fn words(rng: &mut Rng, out: &mut String, n: usize) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word(rng));
    }
}

/// One sentence of 4–24 words, now and then naming an identifier in backticks.
pub fn sentence(rng: &mut Rng, out: &mut String) {
    let n = 4 + rng.below(12) as usize + rng.below(9) as usize;
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        if i > 0 && rng.chance(0.05) {
            out.push('`');
            if rng.chance(0.5) {
                snake_ident(rng, out);
                out.push_str("()");
            } else {
                type_name(rng, out);
            }
            out.push('`');
        } else if i == 0 {
            push_capitalized(out, word(rng));
        } else {
            out.push_str(word(rng));
        }
    }
    out.push(*rng.pick(&['.', '.', '.', '.', '.', '?', ':', '!']));
}

pub fn paragraph(rng: &mut Rng, out: &mut String, sentences: usize) {
    for i in 0..sentences.max(1) {
        if i > 0 {
            out.push(' ');
        }
        sentence(rng, out);
    }
}

/// A short Title Case phrase (session titles, todo items).
pub fn title(rng: &mut Rng, out: &mut String) {
    let n = 2 + rng.below(4) as usize;
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        push_capitalized(out, if i % 2 == 0 { noun(rng) } else { word(rng) });
    }
}

/// What a user types: a request of one to three sentences, sometimes with a pasted error or
/// code (the long tail of prompt sizes).
pub fn prompt(rng: &mut Rng, out: &mut String, lang: Lang, path: &str) {
    out.push_str(rng.pick::<&str>(PROMPT_OPENERS));
    out.push(' ');
    let n = 3 + rng.below(10) as usize;
    words(rng, out, n);
    if rng.chance(0.4) {
        out.push_str(" in `");
        out.push_str(path);
        out.push('`');
    }
    out.push_str(rng.pick::<&str>(&[".", "?", ".", ""]));
    let extra = rng.below(3) as usize;
    for _ in 0..extra {
        out.push(' ');
        sentence(rng, out);
    }
    if rng.chance(0.07) {
        out.push_str("\n\nHere is what I get:\n\n```\n");
        let lines = rng.heavy(4.0, 0.5, 400.0) as usize;
        compiler_errors(rng, out, lang, path, lines);
        out.push_str("```");
    } else if rng.chance(0.04) {
        out.push_str("\n\n```");
        out.push_str(lang.fence());
        out.push('\n');
        let lines = rng.heavy(5.0, 0.45, 300.0) as usize;
        code(rng, out, lang, lines);
        out.push_str("```");
    }
}

/// An assistant's answer in markdown: paragraphs, bullet lists, code blocks, headings.
pub fn answer(rng: &mut Rng, out: &mut String, lang: Lang, paths: &[&str]) {
    let blocks = rng.heavy(1.0, 0.45, 16.0) as usize;
    let n = 1 + rng.below(3) as usize;
    paragraph(rng, out, n);
    for _ in 1..blocks {
        out.push_str("\n\n");
        match rng.below(10) {
            0..=3 => {
                let items = 2 + rng.below(5);
                for i in 0..items {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str("- ");
                    if !paths.is_empty() && rng.chance(0.5) {
                        out.push('`');
                        out.push_str(rng.pick::<&str>(paths));
                        out.push_str("`: ");
                    } else {
                        out.push_str("**");
                        title(rng, out);
                        out.push_str("**: ");
                    }
                    sentence(rng, out);
                }
            }
            4..=5 => {
                out.push_str("```");
                out.push_str(lang.fence());
                out.push('\n');
                let lines = rng.heavy(3.0, 0.4, 80.0) as usize;
                code(rng, out, lang, lines);
                out.push_str("```");
            }
            6 => {
                out.push_str(rng.pick::<&str>(&["## ", "### ", "**"]));
                title(rng, out);
                out.push('\n');
                let n = 1 + rng.below(2) as usize;
                paragraph(rng, out, n);
            }
            _ => {
                let n = 1 + rng.below(4) as usize;
                paragraph(rng, out, n);
            }
        }
    }
}

/// A model's reasoning: plain paragraphs, now and then a numbered plan.
pub fn thinking(rng: &mut Rng, out: &mut String) {
    let paragraphs = rng.heavy(1.0, 0.4, 10.0) as usize;
    for p in 0..paragraphs {
        if p > 0 {
            out.push_str("\n\n");
        }
        if rng.chance(0.2) {
            for i in 1..=2 + rng.below(4) {
                if i > 1 {
                    out.push('\n');
                }
                out.push_str(&i.to_string());
                out.push_str(". ");
                sentence(rng, out);
            }
        } else {
            let n = 1 + rng.below(5) as usize;
            paragraph(rng, out, n);
        }
    }
}

/// Expands a template: `{n}` noun, `{N}` type name, `{v}` verb, `{V}` Verb, `{i}` snake
/// identifier, `{c}` camel identifier, `{s}` a few words, `{d}` a number. Other text is copied.
fn expand(rng: &mut Rng, out: &mut String, template: &str) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let tag = &rest[open + 1..open + len];
        let known = matches!(tag, "n" | "N" | "v" | "V" | "i" | "c" | "s" | "d");
        if !known {
            // A literal brace of the code itself.
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            continue;
        }
        out.push_str(&rest[..open]);
        match tag {
            "n" => out.push_str(noun(rng)),
            "N" => type_name(rng, out),
            "v" => out.push_str(verb(rng)),
            "V" => push_capitalized(out, verb(rng)),
            "i" => snake_ident(rng, out),
            "c" => camel_ident(rng, out),
            "s" => {
                let n = 2 + rng.below(6) as usize;
                words(rng, out, n);
            }
            _ => {
                let small = rng.chance(0.7);
                let n = rng.below(if small { 10 } else { 4096 });
                out.push_str(&n.to_string());
            }
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
}

struct Templates {
    imports: &'static [&'static str],
    headers: &'static [&'static str],
    statements: &'static [&'static str],
    /// Lines that open a nested block (closed by `close`, or by dedent in Python).
    openers: &'static [&'static str],
    close: &'static str,
}

const RUST: Templates = Templates {
    imports: &[
        "use crate::{n}::{N};",
        "use std::collections::{BTreeMap, HashMap};",
        "use std::io::{self, Read, Write};",
        "use serde::{Deserialize, Serialize};",
        "use super::{i};",
        "mod {n};",
    ],
    headers: &[
        "pub fn {i}(&self, {n}: &{N}) -> Result<{N}, Error> {",
        "fn {i}({n}: &[{N}]) -> Option<usize> {",
        "pub fn {i}(&mut self, {n}: {N}) {",
        "impl {N} {",
        "pub(crate) fn {i}<R: Read>(reader: R, {n}: u64) -> io::Result<Vec<{N}>> {",
        "fn {i}() {",
    ],
    statements: &[
        "let {n} = self.{n}.{v}(&{n})?;",
        "let mut {n}s = Vec::with_capacity({d});",
        "let {n} = {i}(&{n}, {d})?;",
        "{n}s.push({N}::{v}({n}));",
        "self.{n}.insert({n}.key(), {n}.clone());",
        "// {s}",
        "debug_assert!({n}.len() <= {d});",
        "return Err(Error::{N});",
        "Ok({N} { {n}, {n}: {n}.into() })",
        "let {n}: u64 = {n}.iter().map(|{n}| {n}.{n}).sum();",
        "assert_eq!({i}(&{n}), {d});",
        "{n}.{v}()?;",
    ],
    openers: &[
        "if {n}.is_empty() {",
        "for {n} in {n}s.iter() {",
        "match {n}.{v}() {",
        "while let Some({n}) = {n}s.pop() {",
        "if let Some({n}) = self.{n}.get(&{n}) {",
    ],
    close: "}",
};

const TYPESCRIPT: Templates = Templates {
    imports: &[
        "import { {N} } from './{n}';",
        "import { {c}, {c} } from '../{n}/{n}';",
        "import type { {N} } from '@/types';",
        "export * from './{n}';",
    ],
    headers: &[
        "export function {c}({n}: {N}): {N} {",
        "export async function {c}({n}: {N}[], {n}?: number): Promise<void> {",
        "const {c} = ({n}: {N}) => {",
        "export class {N} {",
        "function {c}() {",
    ],
    statements: &[
        "const {n} = await {n}.{v}({n});",
        "const {n}s = {n}.filter(({n}) => {n}.{n} !== undefined);",
        "let {n} = {d};",
        "this.{n} = {c}({n}, {d});",
        "// {s}",
        "return { ...{n}, {n} };",
        "throw new Error('{s}');",
        "console.log('{s}', {n});",
        "expect({c}({n})).toEqual({d});",
        "{n}.{v}({n});",
    ],
    openers: &[
        "if (!{n}) {",
        "for (const {n} of {n}s) {",
        "try {",
        "if ({n}.length > {d}) {",
        "switch ({n}.type) {",
    ],
    close: "}",
};

const PYTHON: Templates = Templates {
    imports: &[
        "from .{n} import {N}",
        "import {n}",
        "from typing import Any, Optional",
        "from dataclasses import dataclass, field",
    ],
    headers: &[
        "def {i}(self, {n}: {N}) -> {N}:",
        "def {i}({n}, {n}=None):",
        "class {N}:",
        "async def {i}(self, {n}: list[{N}]) -> None:",
        "def test_{i}():",
    ],
    statements: &[
        "{n} = self.{n}.{v}({n})",
        "{n}s = [{n} for {n} in {n}s if {n}.{n}]",
        "# {s}",
        "return {N}({n}={n}, {n}={d})",
        "raise ValueError(\"{s}\")",
        "self.{n} = {i}({n})",
        "assert {i}({n}) == {d}",
        "logger.debug(\"{s} %s\", {n})",
        "{n}.{v}()",
    ],
    openers: &[
        "if not {n}:",
        "for {n} in {n}s:",
        "with open({n}) as {n}:",
        "try:",
        "if {n} is None:",
    ],
    close: "",
};

const GO: Templates = Templates {
    // Lines inside `import ( ... )`, which `code` writes around them.
    imports: &[
        "\t\"fmt\"",
        "\t\"context\"",
        "\t\"errors\"",
        "\t\"github.com/example/{n}/internal/{n}\"",
    ],
    headers: &[
        "func (s *{N}) {V}{N}(ctx context.Context, {n} *{N}) (*{N}, error) {",
        "func {V}{N}({n} []{N}) int {",
        "type {N} struct {",
        "func Test{V}{N}(t *testing.T) {",
    ],
    statements: &[
        "{n}, err := s.{n}.{V}{N}(ctx, {n})",
        "return nil, fmt.Errorf(\"{v} {n}: %w\", err)",
        "// {s}",
        "{n} := make([]{N}, 0, {d})",
        "return {n}, nil",
        "t.Fatalf(\"{s}: %v\", err)",
        "{n}.{V}()",
    ],
    openers: &[
        "if err != nil {",
        "for _, {n} := range {n}s {",
        "if {n} == nil {",
        "switch {n}.Kind {",
    ],
    close: "}",
};

fn templates(lang: Lang) -> &'static Templates {
    match lang {
        Lang::Rust => &RUST,
        Lang::TypeScript => &TYPESCRIPT,
        Lang::Python => &PYTHON,
        Lang::Go => &GO,
    }
}

fn push_indent(out: &mut String, lang: Lang, depth: usize) {
    for _ in 0..depth {
        out.push_str(lang.indent());
    }
}

/// About `lines` lines of code: imports, then functions with nested blocks. Every line ends
/// in `\n`.
pub fn code(rng: &mut Rng, out: &mut String, lang: Lang, lines: usize) {
    let t = templates(lang);
    let mut written = 0;
    if lines > 12 {
        if lang == Lang::Go {
            out.push_str("package ");
            out.push_str(noun(rng));
            out.push_str("\n\nimport (\n");
            written += 3;
        }
        for _ in 0..2 + rng.below(4) {
            let import = *rng.pick(t.imports);
            expand(rng, out, import);
            out.push('\n');
            written += 1;
        }
        if lang == Lang::Go {
            out.push_str(")\n");
            written += 1;
        }
        out.push('\n');
        written += 1;
    }
    while written < lines {
        if rng.chance(0.3) {
            out.push_str(lang.comment());
            out.push(' ');
            sentence(rng, out);
            out.push('\n');
            written += 1;
        }
        let header = *rng.pick(t.headers);
        expand(rng, out, header);
        out.push('\n');
        written += 1;
        let body = 2 + rng.below(10) as usize;
        let mut depth = 1;
        for _ in 0..body {
            if depth < 3 && rng.chance(0.2) {
                push_indent(out, lang, depth);
                let opener = *rng.pick(t.openers);
                expand(rng, out, opener);
                out.push('\n');
                depth += 1;
            } else {
                push_indent(out, lang, depth);
                let statement = *rng.pick(t.statements);
                expand(rng, out, statement);
                out.push('\n');
                if depth > 1 && rng.chance(0.35) {
                    depth -= 1;
                    if !t.close.is_empty() {
                        push_indent(out, lang, depth);
                        out.push_str(t.close);
                        out.push('\n');
                        written += 1;
                    }
                }
            }
            written += 1;
        }
        while depth > 0 {
            depth -= 1;
            if !t.close.is_empty() {
                push_indent(out, lang, depth);
                out.push_str(t.close);
                out.push('\n');
                written += 1;
            }
        }
        out.push('\n');
        written += 1;
    }
}

/// Compiler or test-failure output naming `path`: about `lines` lines.
pub fn compiler_errors(rng: &mut Rng, out: &mut String, lang: Lang, path: &str, lines: usize) {
    let mut written = 0;
    while written < lines.max(3) {
        let line = 1 + rng.below(400);
        let col = 1 + rng.below(60);
        match lang {
            Lang::Rust => {
                out.push_str(rng.pick::<&str>(&[
                    "error[E0308]: mismatched types",
                    "error[E0599]: no method named `",
                    "error[E0425]: cannot find value `",
                    "warning: unused variable: `",
                    "error[E0502]: cannot borrow `",
                ]));
                if out.ends_with('`') {
                    snake_ident(rng, out);
                    out.push('`');
                }
                out.push_str(&format!("\n  --> {path}:{line}:{col}\n   |\n{line:>3} | "));
                let statement = *rng.pick(RUST.statements);
                expand(rng, out, statement);
                out.push_str("\n   |     ^^^^^^ ");
                let n = 3 + rng.below(5) as usize;
                words(rng, out, n);
                out.push_str("\n\n");
                written += 6;
            }
            Lang::TypeScript => {
                out.push_str(&format!(
                    "{path}({line},{col}): error TS{}: ",
                    2000 + rng.below(700)
                ));
                sentence(rng, out);
                out.push('\n');
                written += 1;
            }
            Lang::Python => {
                out.push_str(&format!("  File \"{path}\", line {line}, in "));
                snake_ident(rng, out);
                out.push_str("\n    ");
                let statement = *rng.pick(PYTHON.statements);
                expand(rng, out, statement);
                out.push('\n');
                if rng.chance(0.2) {
                    out.push_str(rng.pick::<&str>(&["TypeError: ", "KeyError: '", "ValueError: "]));
                    sentence(rng, out);
                    out.push('\n');
                    written += 1;
                }
                written += 2;
            }
            Lang::Go => {
                out.push_str(&format!("{path}:{line}:{col}: "));
                sentence(rng, out);
                out.push('\n');
                written += 1;
            }
        }
    }
}

/// A test runner's output: `tests` test lines (a few failing when `failed` > 0) and a summary.
pub fn test_output(rng: &mut Rng, out: &mut String, lang: Lang, tests: usize, failed: usize) {
    let mut failures = Vec::new();
    for i in 0..tests {
        // Failures spread over the run, `failed` of them at most.
        let fails = failed > 0 && failures.len() < failed && i % (tests / failed).max(1) == 0;
        let mut name = String::new();
        match lang {
            Lang::Rust => {
                name.push_str(noun(rng));
                name.push_str("::tests::");
                snake_ident(rng, &mut name);
                out.push_str("test ");
                out.push_str(&name);
                out.push_str(if fails { " ... FAILED\n" } else { " ... ok\n" });
            }
            Lang::TypeScript => {
                out.push_str(if fails { "    ✕ " } else { "    ✓ " });
                let n = 3 + rng.below(5) as usize;
                words(rng, out, n);
                out.push_str(&format!(" ({} ms)\n", rng.below(40)));
                name.push_str("test");
            }
            Lang::Python => {
                name.push_str("tests/test_");
                name.push_str(noun(rng));
                name.push_str(".py::test_");
                snake_ident(rng, &mut name);
                out.push_str(&name);
                out.push_str(if fails { " FAILED\n" } else { " PASSED\n" });
            }
            Lang::Go => {
                name.push_str("Test");
                push_capitalized(&mut name, verb(rng));
                push_capitalized(&mut name, noun(rng));
                out.push_str("=== RUN   ");
                out.push_str(&name);
                out.push_str(if fails {
                    "\n--- FAIL: "
                } else {
                    "\n--- PASS: "
                });
                out.push_str(&name);
                out.push_str(" (0.00s)\n");
            }
        }
        if fails {
            failures.push(name);
        }
    }
    let passed = tests - failures.len();
    match lang {
        Lang::Rust => {
            for name in &failures {
                out.push_str(&format!("\n---- {name} stdout ----\nthread '{name}' panicked at src/lib.rs:{}:{}:\nassertion `left == right` failed\n  left: {}\n right: {}\n", rng.below(500), rng.below(40), rng.below(100), rng.below(100)));
            }
            out.push_str(&format!(
                "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {}.{:02}s\n",
                if failures.is_empty() { "ok" } else { "FAILED" },
                failures.len(),
                rng.below(3),
                rng.below(100)
            ));
        }
        Lang::TypeScript => out.push_str(&format!(
            "\nTest Suites: {} passed, {} total\nTests:       {passed} passed, {} failed, {tests} total\nTime:        {}.{}s\n",
            1 + rng.below(9),
            10,
            failures.len(),
            rng.below(9),
            rng.below(1000)
        )),
        Lang::Python => out.push_str(&format!(
            "\n========== {passed} passed, {} failed in {}.{:02}s ==========\n",
            failures.len(),
            rng.below(20),
            rng.below(100)
        )),
        Lang::Go => out.push_str(if failures.is_empty() {
            "PASS\nok  \tgithub.com/example/app/internal\t0.412s\n"
        } else {
            "FAIL\nFAIL\tgithub.com/example/app/internal\t0.518s\n"
        }),
    }
}

/// `git log --oneline` lines.
pub fn git_log(rng: &mut Rng, out: &mut String, n: usize) {
    for _ in 0..n {
        rng.hex(out, 7);
        out.push(' ');
        push_capitalized(out, verb(rng));
        out.push(' ');
        let n = 2 + rng.below(7) as usize;
        words(rng, out, n);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_line_shaped_and_varied() {
        let mut rng = Rng::new(5);
        for lang in Lang::ALL {
            let mut out = String::new();
            code(&mut rng, &mut out, lang, 60);
            let lines = out.lines().count();
            assert!((60..120).contains(&lines), "{lang:?}: {lines}\n{out}");
            assert!(out.ends_with('\n'));
            assert!(!out.contains("{n}") && !out.contains("{N}"), "{out}");
        }
        let mut a = String::new();
        let mut b = String::new();
        answer(&mut rng, &mut a, Lang::Rust, &["src/lib.rs"]);
        answer(&mut rng, &mut b, Lang::Rust, &["src/lib.rs"]);
        assert_ne!(a, b);
    }

    #[test]
    fn literal_braces_survive_expansion() {
        let mut rng = Rng::new(1);
        let mut out = String::new();
        expand(&mut rng, &mut out, "Ok({N} { {n}, x })");
        assert!(
            out.starts_with("Ok(") && out.contains(" { ") && out.ends_with(", x })"),
            "{out}"
        );
    }
}
