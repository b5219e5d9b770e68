//! Throughput of the core's write and read paths for segments, beside a plain `zstd -3` + BLAKE3
//! baseline over the very same bytes.
//!
//! ```text
//! cargo bench -p agentsync-core --bench encode                 # ~64 MB corpus, 7 rounds
//! cargo bench -p agentsync-core --bench encode -- --quick      # ~8 MB corpus, 3 rounds
//! AGENTSYNC_BENCH_MB=256 AGENTSYNC_BENCH_RUNS=9 cargo bench -p agentsync-core --bench encode
//! ```
//!
//! `scripts/bench-core` runs this and copies the Markdown it prints (between the
//! `<!-- bench-core:begin -->` and `<!-- bench-core:end -->` markers) into `docs/benchmarks.md`.
//!
//! The corpus is synthetic but shaped like Claude Code sessions: alternating user and assistant
//! messages, prose of varied length, thinking blocks, tool calls (reads, edits, shell, search,
//! subagents) whose results are mostly short and sometimes long file dumps or logs, token usage.
//! It is generated from a fixed seed, so every run and every machine sees the same bytes.
//!
//! Everything runs on one thread and is timed in CPU time of that thread
//! (`CLOCK_THREAD_CPUTIME_ID`), so other processes on a shared machine distort the numbers less
//! than they would wall-clock time. Every step runs once per round and rounds are repeated, so a
//! change of machine load hits all steps alike; the tables report the median round. Throughput
//! is always canonical (uncompressed) bytes per second, 1 MB = 10^6 bytes. Nothing here asserts
//! a speed: the numbers are measurements, compared within one run.
//!
//! `AGENTSYNC_BENCH_ONLY=decode,open` runs only those steps (the keys in `round`) and prints
//! their medians instead of the report: handy under `perf record`.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) it only smoke-tests itself on a
//! tiny corpus, checking that every segment round-trips.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Read as _;
use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use agentsync_core::frame::{self, HEADER_LEN};
use agentsync_core::segment::decode_segment;
use agentsync_core::{
    ArtifactKind, Compressor, Decompressor, Message, RuzstdCompressor, TokenUsage, ToolCall,
    ToolResultEvent, segment_messages,
};

/// The C zstd encoder at level 3, as the native host supplies it.
struct CZstd;

impl Compressor for CZstd {
    fn compress(&self, canonical: &[u8]) -> agentsync_core::Result<Vec<u8>> {
        zstd::bulk::compress(canonical, 3).map_err(|e| agentsync_core::Error::Compress {
            reason: e.to_string(),
        })
    }
}

/// The C zstd decoder, as the native host plugs it into `frame::open_with` (host-native's
/// `ZstdDecompressor`, which also keeps one context per thread).
#[derive(Debug)]
struct CZstdDec;

impl Decompressor for CZstdDec {
    fn decompress(&self, payload: &[u8], declared: usize) -> Option<Vec<u8>> {
        zstd::bulk::decompress(payload, declared).ok()
    }
}

const SEED: u64 = 0x00a6_e175_c0de_2025;
const MB: f64 = 1e6;

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (splitmix64).

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-uniform in `lo..hi`: as many values per decade, so small ones dominate counts and
    /// large ones dominate bytes.
    fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let (lo, hi) = (lo as f64, hi as f64);
        (lo * (hi / lo).powf(self.unit())) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Skewed towards the front of the list, like word frequencies.
    fn pick_skewed<T: Copy>(&mut self, items: &[T]) -> T {
        let u = self.unit();
        items[((u * u * u) * items.len() as f64) as usize]
    }

    fn hex(&mut self, out: &mut String, digits: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for _ in 0..digits {
            out.push(HEX[self.below(16)] as char);
        }
    }

    fn uuid(&mut self) -> String {
        let mut s = String::with_capacity(36);
        for (i, n) in [8, 4, 4, 4, 12].into_iter().enumerate() {
            if i > 0 {
                s.push('-');
            }
            self.hex(&mut s, n);
        }
        s
    }

    fn tool_use_id(&mut self) -> String {
        const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut s = String::from("toolu_01");
        for _ in 0..22 {
            s.push(self.pick(B62) as char);
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic corpus.

static WORDS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "the to and a of is in that it this for I we be on with as not can now so file test \
    function will if are should let me error code from by check an which when but all need \
    use have or at new one there segment build run value then also because make change type \
    return see fix first tests update was would add into only still looks like passes fails \
    since each same instead just module struct field case bytes call path line output input \
    result issue compile looking implementation method trait string manifest sync origin \
    checkpoint store should again here what why how good right wrong missing expected found \
    actually current previous next last before after other both its their our my you your do \
    does done did write read parse decode encode hash compress limit size count order version \
    format canonical artifact upload listing prefix key session message ordinal role content \
    thinking tool result usage token cache approach simpler cleaner faster slower safe unsafe \
    panic unwrap clone borrow lifetime generic closure iterator vector bucket root ledger \
    event conflict replay signature verify reject retry defer missing corrupt boundary window \
    frame header payload"
        .split_whitespace()
        .collect()
});

static RARE_WORDS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "naïve café résumé — … → ≥ ✓ über déjà façade “quoted”"
        .split_whitespace()
        .collect()
});

static SYLLABLES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "seg ment man if est check point hash id store sync read er write buf len key orig in \
    frame head pay load root buck et ev ent led ger hlc time stamp ord inal msg tool call res \
    ult lim it dec ode enc pars can on"
        .split_whitespace()
        .collect()
});

const TYPES: &[&str] = &[
    "Segment",
    "Manifest",
    "Checkpoint",
    "ArtifactId",
    "Message",
    "Session",
    "Error",
    "Result",
    "Vec<u8>",
    "String",
    "Option<u64>",
    "Frame",
    "Bucket",
    "Root",
    "EventBatch",
    "OriginId",
    "Hlc",
    "Store",
    "Reader",
    "Writer",
    "BTreeMap<String, u64>",
    "HashSet<ArtifactId>",
];

const DIRS: &[&str] = &[
    "core/src",
    "core/tests",
    "host-native/src",
    "host-native/src/store",
    "host-web/src",
    "src",
    "src/components",
    "tests",
    "scripts",
    "docs",
];

const EXTS: &[&str] = &[
    ".rs", ".rs", ".rs", ".ts", ".tsx", ".py", ".md", ".toml", ".sh",
];

const MODELS: &[&str] = &[
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-sonnet-4-20250514",
    "claude-haiku-4-5-20251001",
];

static CRATES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "serde serde_json blake3 ruzstd zstd-sys thiserror hex proptest rusqlite wasmtime tokio \
    clap anyhow libc cc syn quote"
        .split_whitespace()
        .collect()
});

/// A file of the synthetic project, read and edited repeatedly within a session.
struct SourceFile {
    path: String,
    lines: Vec<String>,
}

/// Generates one session. Each session has its own identifiers and files, so a session repeats
/// itself (re-reads, edits of what it read) about as much as a real one does.
struct SessionGen<'r> {
    rng: &'r mut Rng,
    idents: Vec<String>,
    files: Vec<SourceFile>,
    project: String,
}

impl<'r> SessionGen<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        let idents = (0..rng.range(40, 160))
            .map(|_| {
                let mut s = String::new();
                for i in 0..rng.range(1, 4) {
                    if i > 0 && rng.chance(0.6) {
                        s.push('_');
                    }
                    s.push_str(rng.pick(&SYLLABLES));
                }
                s
            })
            .collect();
        let project = format!("/home/dev/work/{}", rng.pick(&SYLLABLES));
        SessionGen {
            rng,
            idents,
            files: Vec::new(),
            project,
        }
    }

    fn ident(&mut self) -> &str {
        let i = self.rng.below(self.idents.len());
        &self.idents[i]
    }

    fn rel_path(&mut self) -> String {
        let dir = self.rng.pick(DIRS);
        let ext = self.rng.pick(EXTS);
        let name = self.ident().to_owned();
        format!("{dir}/{name}{ext}")
    }

    fn number(&mut self, out: &mut String) {
        let n = self.rng.log_uniform(1, 100_000);
        let _ = write!(out, "{n}");
    }

    /// Prose of about `len` bytes: sentences, paragraphs, inline code, paths, numbers.
    fn prose(&mut self, out: &mut String, len: usize) {
        let end = out.len() + len;
        let mut capital = true;
        let mut words_in_sentence = 0;
        while out.len() < end {
            let r = self.rng.below(1000);
            if r < 870 {
                let w = self.rng.pick_skewed(&WORDS);
                if capital {
                    let mut cs = w.chars();
                    if let Some(c) = cs.next() {
                        out.extend(c.to_uppercase());
                        out.push_str(cs.as_str());
                    }
                } else {
                    out.push_str(w);
                }
            } else if r < 930 {
                out.push('`');
                let id = self.ident().to_owned();
                out.push_str(&id);
                if self.rng.chance(0.5) {
                    out.push_str("()");
                }
                out.push('`');
            } else if r < 955 {
                out.push('`');
                let p = self.rel_path();
                out.push_str(&p);
                out.push('`');
            } else if r < 990 {
                self.number(out);
            } else if r < 995 {
                out.push_str(self.rng.pick(&RARE_WORDS));
            } else {
                out.push_str(self.rng.pick(TYPES));
            }
            capital = false;
            words_in_sentence += 1;
            let end_sentence = words_in_sentence > 4 && self.rng.chance(0.08);
            if end_sentence {
                out.push_str(match self.rng.below(10) {
                    0 => "?",
                    1 => ":",
                    _ => ".",
                });
                words_in_sentence = 0;
                capital = true;
                match self.rng.below(20) {
                    0 => out.push_str("\n\n"),
                    1 => out.push_str("\n- "),
                    _ => out.push(' '),
                }
            } else if self.rng.chance(0.06) {
                out.push_str(", ");
            } else {
                out.push(' ');
            }
        }
    }

    fn prose_string(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 32);
        self.prose(&mut s, len);
        s
    }

    /// One line of Rust-like source.
    fn code_line(&mut self, out: &mut String, depth: usize) {
        for _ in 0..depth.min(4) {
            out.push_str("    ");
        }
        let a = self.ident().to_owned();
        let b = self.ident().to_owned();
        match self.rng.below(12) {
            0 => {
                let t = self.rng.pick(TYPES);
                let _ = write!(out, "pub fn {a}(&self, {b}: &[u8]) -> Result<{t}> {{");
            }
            1..=3 => {
                let c = self.ident().to_owned();
                let _ = write!(out, "let {a} = {b}.{c}(");
                self.number(out);
                out.push_str(")?;");
            }
            4 => {
                let _ = write!(out, "if {a}.len() > {} {{", b.to_uppercase());
            }
            5 => {
                let w = self.rng.pick_skewed(&WORDS);
                let _ = write!(
                    out,
                    "return Err(Error::malformed(\"{a}\", format!(\"{w} {{}}\", {b})));"
                );
            }
            6 => out.push('}'),
            7 => {
                out.push_str("// ");
                let n = self.rng.range(20, 90);
                self.prose(out, n);
            }
            8 => {
                let t = self.rng.pick(TYPES);
                let _ = write!(out, "use crate::{a}::{{{t}, {b}}};");
            }
            9 => {
                let _ = write!(out, "\"{a}\" => Ok(Self::{b}),");
            }
            10 => {
                let _ = write!(out, "assert_eq!({a}, {b}, \"\\t{a}\\n\");");
            }
            _ => {
                let t = self.rng.pick(TYPES);
                let _ = write!(out, "{a}: {t},");
            }
        }
    }

    fn new_file(&mut self, bytes: usize) -> usize {
        let path = self.rel_path();
        let mut lines = Vec::new();
        let mut total = 0;
        let mut depth = 0usize;
        while total < bytes {
            let mut line = String::new();
            if self.rng.chance(0.08) {
                // blank line
            } else {
                self.code_line(&mut line, depth);
                if line.ends_with('{') {
                    depth += 1;
                } else if line.ends_with('}') {
                    depth = depth.saturating_sub(1);
                }
            }
            total += line.len() + 8;
            lines.push(line);
        }
        self.files.push(SourceFile { path, lines });
        self.files.len() - 1
    }

    /// A file the session already knows, or a new one.
    fn some_file(&mut self, long: bool) -> usize {
        if long {
            let n = self.rng.log_uniform(10_000, 200_000);
            return self.new_file(n);
        }
        if self.files.is_empty() || self.rng.chance(0.45) {
            let n = self.rng.log_uniform(400, 12_000);
            self.new_file(n)
        } else {
            self.rng.below(self.files.len())
        }
    }

    /// `cat -n` style dump of a file (what the Read tool returns).
    fn dump(&self, out: &mut String, file: usize, from: usize, max_bytes: usize) {
        let f = &self.files[file];
        let start = out.len();
        for (i, line) in f.lines.iter().enumerate().skip(from) {
            let _ = writeln!(out, "{:>6}\t{line}", i + 1);
            if out.len() - start > max_bytes {
                break;
            }
        }
    }

    fn log(&mut self, out: &mut String, len: usize) {
        let end = out.len() + len;
        let mut t = self.rng.range(0, 86_400_000);
        while out.len() < end {
            match self.rng.below(8) {
                0 => {
                    let c = self.rng.pick(&CRATES);
                    let _ = writeln!(
                        out,
                        "   Compiling {c} v{}.{}.{}",
                        self.rng.below(3),
                        self.rng.below(30),
                        self.rng.below(20)
                    );
                }
                1 | 2 => {
                    let a = self.ident().to_owned();
                    let b = self.ident().to_owned();
                    let verdict = if self.rng.chance(0.95) {
                        "ok"
                    } else {
                        "FAILED"
                    };
                    let _ = writeln!(out, "test {a}::tests::{b} ... {verdict}");
                }
                3 => {
                    let a = self.ident().to_owned();
                    let p = self.rel_path();
                    let _ = writeln!(
                        out,
                        "warning: unused variable: `{a}`\n  --> {p}:{}:{}\n   |",
                        self.rng.range(1, 900),
                        self.rng.range(1, 60)
                    );
                }
                _ => {
                    t += self.rng.range(1, 5_000);
                    let level = self.rng.pick(&["INFO", "INFO", "INFO", "DEBUG", "WARN"]);
                    let m = self.ident().to_owned();
                    let _ = write!(
                        out,
                        "2025-10-{:02}T{:02}:{:02}:{:02}.{:03}Z {level:>5} agentsync::{m}: ",
                        1 + t / 86_400_000 % 28,
                        t / 3_600_000 % 24,
                        t / 60_000 % 60,
                        t / 1000 % 60,
                        t % 1000
                    );
                    let n = self.rng.range(20, 100);
                    self.prose(out, n);
                    if self.rng.chance(0.2) {
                        out.push_str(" id=");
                        self.rng.hex(out, 16);
                    }
                    out.push('\n');
                }
            }
        }
    }

    fn grep(&mut self, out: &mut String, len: usize) {
        let end = out.len() + len;
        while out.len() < end {
            let file = self.some_file(false);
            let f = &self.files[file];
            let i = self.rng.below(f.lines.len());
            let _ = writeln!(out, "{}:{}:{}", f.path, i + 1, f.lines[i]);
        }
    }

    /// A tool call with its result. `long` asks for a 10–200 KB result.
    fn tool_call(&mut self, long: bool) -> ToolCall {
        let id = self.rng.tool_use_id();
        let mut result = String::new();
        let mut result_events = Vec::new();
        let mut subagent_session = String::new();
        let (name, category, input) = match self.rng.below(20) {
            0..=6 => {
                let file = self.some_file(long);
                let path = format!("{}/{}", self.project, self.files[file].path);
                let partial = !long && self.rng.chance(0.3);
                let (from, max) = if partial {
                    let n = self.files[file].lines.len();
                    (self.rng.below(n), self.rng.range(500, 4000))
                } else {
                    (0, usize::MAX)
                };
                self.dump(&mut result, file, from, max);
                let input = if partial {
                    serde_json::json!({"file_path": path, "offset": from + 1, "limit": 100})
                } else {
                    serde_json::json!({"file_path": path})
                };
                ("Read", "read", input)
            }
            7..=11 => {
                let cmd = match self.rng.below(4) {
                    0 => format!("cargo test -p agentsync-core {}", self.ident()),
                    1 => "cargo build --workspace 2>&1 | tail -40".to_owned(),
                    2 => format!(
                        "git diff --stat && git log --oneline -{}",
                        self.rng.range(3, 30)
                    ),
                    _ => {
                        let dir = self.rng.pick(DIRS);
                        format!("rg -n '{}' {dir}", self.ident())
                    }
                };
                let n = if long {
                    self.rng.log_uniform(10_000, 200_000)
                } else {
                    self.rng.log_uniform(60, 5_000)
                };
                self.log(&mut result, n);
                let description = {
                    let n = self.rng.range(15, 60);
                    self.prose_string(n)
                };
                (
                    "Bash",
                    "shell",
                    serde_json::json!({"command": cmd, "description": description}),
                )
            }
            12 | 13 => {
                let pattern = format!("fn {}", self.ident());
                let n = if long {
                    self.rng.log_uniform(10_000, 100_000)
                } else {
                    self.rng.log_uniform(100, 3_000)
                };
                self.grep(&mut result, n);
                (
                    "Grep",
                    "search",
                    serde_json::json!({"pattern": pattern, "path": self.rng.pick(DIRS), "output_mode": "content", "-n": true}),
                )
            }
            14..=16 => {
                let file = self.some_file(false);
                let path = format!("{}/{}", self.project, self.files[file].path);
                let mut old = String::new();
                let mut new = String::new();
                let n = self.files[file].lines.len();
                let from = self.rng.below(n);
                for line in self.files[file]
                    .lines
                    .iter()
                    .skip(from)
                    .take(self.rng.range(1, 30))
                {
                    old.push_str(line);
                    old.push('\n');
                }
                for _ in 0..self.rng.range(1, 30) {
                    self.code_line(&mut new, 1);
                    new.push('\n');
                }
                let _ = writeln!(
                    result,
                    "The file {path} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:"
                );
                self.dump(&mut result, file, from.saturating_sub(5), 800);
                (
                    "Edit",
                    "edit",
                    serde_json::json!({"file_path": path, "old_string": old, "new_string": new}),
                )
            }
            17 => {
                let n = self.rng.log_uniform(500, 20_000);
                let file = self.new_file(n);
                let path = format!("{}/{}", self.project, self.files[file].path);
                let mut content = String::new();
                for line in &self.files[file].lines {
                    content.push_str(line);
                    content.push('\n');
                }
                let _ = write!(result, "File created successfully at: {path}");
                (
                    "Write",
                    "edit",
                    serde_json::json!({"file_path": path, "content": content}),
                )
            }
            18 => {
                let todos: Vec<_> = (0..self.rng.range(2, 8))
                    .map(|i| {
                        let content = { let n = self.rng.range(30, 100); self.prose_string(n) };
                        let status = if i == 0 { "in_progress" } else { "pending" };
                        serde_json::json!({"content": content, "status": status, "activeForm": content})
                    })
                    .collect();
                result.push_str("Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress.");
                ("TodoWrite", "task", serde_json::json!({ "todos": todos }))
            }
            _ => {
                let prompt = {
                    let n = self.rng.log_uniform(300, 3_000);
                    self.prose_string(n)
                };
                let description = {
                    let n = self.rng.range(15, 40);
                    self.prose_string(n)
                };
                let n = self.rng.log_uniform(300, 6_000);
                self.prose(&mut result, n);
                subagent_session = self.rng.uuid();
                for status in ["running", "completed"] {
                    result_events.push(ToolResultEvent {
                        content: {
                            let n = self.rng.range(40, 300);
                            self.prose_string(n)
                        },
                        source: "subagent".into(),
                        status: status.into(),
                        subagent_session: subagent_session.clone(),
                        timestamp_ms: Some(1_760_000_000_000 + self.rng.below(1 << 30) as i64),
                    });
                }
                (
                    "Task",
                    "task",
                    serde_json::json!({"description": description, "prompt": prompt, "subagent_type": "general-purpose"}),
                )
            }
        };
        ToolCall {
            category: category.into(),
            file_path: String::new(),
            id,
            input: input.to_string(),
            is_error: self.rng.chance(0.03),
            name: name.into(),
            result,
            result_events,
            subagent_session,
        }
    }

    /// Messages until `budget` bytes of content have been written.
    fn messages(&mut self, budget: usize) -> (Vec<Message>, usize) {
        let mut messages: Vec<Message> = Vec::new();
        let mut bytes = 0;
        let mut ts = 1_750_000_000_000 + self.rng.below(1 << 34) as i64;
        let sidechain = self.rng.chance(0.05);
        let model = self.rng.pick(MODELS);
        while bytes < budget || messages.len() < 2 {
            let ordinal = messages.len() as u64;
            let assistant = ordinal % 2 == 1;
            ts += self.rng.log_uniform(500, 120_000) as i64;
            let mut m = Message {
                ordinal,
                role: if assistant { "assistant" } else { "user" }.into(),
                source_uuid: self.rng.uuid(),
                parent_uuid: messages
                    .last()
                    .map(|m| m.source_uuid.clone())
                    .unwrap_or_default(),
                timestamp_ms: Some(ts),
                sidechain,
                ..Message::default()
            };
            if assistant {
                m.model = model.into();
                m.content = {
                    let n = self.rng.log_uniform(100, 2_000);
                    self.prose_string(n)
                };
                if self.rng.chance(0.3) {
                    m.thinking = {
                        let n = self.rng.log_uniform(200, 4_000);
                        self.prose_string(n)
                    };
                }
                if self.rng.chance(0.6) {
                    let calls = if self.rng.chance(0.8) {
                        1
                    } else {
                        self.rng.range(2, 5)
                    };
                    for _ in 0..calls {
                        let long = self.rng.chance(0.03);
                        m.tool_calls.push(self.tool_call(long));
                    }
                }
                m.usage = TokenUsage {
                    cache_creation: self.rng.log_uniform(1, 8_000) as u64,
                    cache_read: self.rng.range(10_000, 160_000) as u64,
                    input: self.rng.range(1, 60) as u64,
                    output: self.rng.log_uniform(10, 4_000) as u64,
                    reasoning: 0,
                };
            } else if self.rng.chance(0.02) {
                m.system = true;
                m.compact_boundary = self.rng.chance(0.5);
                m.content = {
                    let n = self.rng.log_uniform(500, 8_000);
                    self.prose_string(n)
                };
            } else {
                m.content = {
                    let n = self.rng.log_uniform(40, 1_500);
                    self.prose_string(n)
                };
            }
            bytes += content_bytes(&m);
            messages.push(m);
        }
        (messages, bytes)
    }
}

/// Bytes of text a message carries (the "message content" the corpus size counts).
fn content_bytes(m: &Message) -> usize {
    m.content.len()
        + m.thinking.len()
        + m.tool_calls
            .iter()
            .map(|c| {
                c.input.len()
                    + c.result.len()
                    + c.result_events
                        .iter()
                        .map(|e| e.content.len())
                        .sum::<usize>()
            })
            .sum::<usize>()
}

struct Corpus {
    sessions: Vec<Vec<Message>>,
    content_bytes: usize,
    messages: usize,
}

impl Corpus {
    /// Where the message text is, in percent: message content, thinking, tool inputs, tool
    /// results under 10 KB, tool results of 10 KB or more.
    fn composition(&self) -> [f64; 5] {
        let mut b = [0usize; 5];
        for m in self.sessions.iter().flatten() {
            b[0] += m.content.len();
            b[1] += m.thinking.len();
            for c in &m.tool_calls {
                b[2] += c.input.len();
                b[if c.result.len() < 10_000 { 3 } else { 4 }] += c.result.len();
                b[3] += c
                    .result_events
                    .iter()
                    .map(|e| e.content.len())
                    .sum::<usize>();
            }
        }
        b.map(|n| 100.0 * n as f64 / self.content_bytes.max(1) as f64)
    }

    fn median_session_messages(&self) -> usize {
        let mut lens: Vec<usize> = self.sessions.iter().map(Vec::len).collect();
        lens.sort_unstable();
        lens.get(lens.len() / 2).copied().unwrap_or(0)
    }

    fn longest_session_messages(&self) -> usize {
        self.sessions.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// Sessions until `target` bytes of content: most are short, a few are very long.
fn corpus(target: usize) -> Corpus {
    let mut rng = Rng(SEED);
    let mut sessions = Vec::new();
    let mut total = 0;
    let mut messages = 0;
    while total < target {
        let budget = if rng.chance(0.9) {
            rng.log_uniform(5_000, 200_000)
        } else {
            rng.log_uniform(200_000, 6_000_000)
        }
        .min(target - total);
        let (msgs, bytes) = SessionGen::new(&mut rng).messages(budget);
        total += bytes;
        messages += msgs.len();
        sessions.push(msgs);
    }
    Corpus {
        sessions,
        content_bytes: total,
        messages,
    }
}

// ---------------------------------------------------------------------------------------------
// Timing.

/// CPU time consumed by the calling thread, in seconds. Other processes on the machine do not
/// count, so a busy machine (a build next door) slows the numbers down less than wall-clock time.
#[cfg(unix)]
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Elsewhere, wall-clock time since the first call.
#[cfg(not(unix))]
fn thread_cpu_secs() -> f64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_secs_f64()
}

/// Per-step thread CPU seconds of every round (and the wall-clock seconds, to show how busy
/// the machine was); `only` restricts the steps run (for profiling).
#[derive(Default)]
struct Timings {
    secs: BTreeMap<&'static str, Vec<f64>>,
    cpu_total: f64,
    wall_total: f64,
    only: Option<Vec<String>>,
}

impl Timings {
    fn run<T>(&mut self, key: &'static str, f: impl FnOnce() -> T) {
        if let Some(only) = &self.only
            && !only.iter().any(|k| k == key)
        {
            return;
        }
        let wall = Instant::now();
        let cpu = thread_cpu_secs();
        black_box(f());
        let cpu = thread_cpu_secs() - cpu;
        self.wall_total += wall.elapsed().as_secs_f64();
        self.cpu_total += cpu;
        self.secs.entry(key).or_default().push(cpu);
    }

    fn median(&self, key: &str) -> f64 {
        let mut v = self.secs[key].clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    fn best(&self, key: &str) -> f64 {
        self.secs[key].iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn worst(&self, key: &str) -> f64 {
        self.secs[key].iter().copied().fold(0.0, f64::max)
    }

    /// Share of the wall-clock time the measuring thread was on a CPU.
    fn on_cpu(&self) -> f64 {
        self.cpu_total / self.wall_total.max(f64::MIN_POSITIVE)
    }
}

// Step keys.
const ENC_C: &str = "encode_c";
const ENC_RU: &str = "encode_ru";
const BASE_ENC: &str = "base_enc";
const DEC: &str = "decode";
const DEC_RU: &str = "decode_ru_written";
const DEC_C: &str = "decode_c_decoder";
const BASE_DEC: &str = "base_dec";
const SEGMENT: &str = "segment_messages";
const SERDE_TO: &str = "serde_to_vec";
const BLAKE3: &str = "blake3";
const SEAL_NONE: &str = "seal_none";
const C_ZSTD: &str = "c_zstd";
const C_ZSTD_CTX: &str = "c_zstd_ctx";
const RUZSTD: &str = "ruzstd";
const RUZSTD_REUSE: &str = "ruzstd_reuse";
const OPEN: &str = "open";
const RUZSTD_DEC: &str = "ruzstd_dec";
const C_ZSTD_DEC: &str = "c_zstd_dec";
const DECODE_SEG: &str = "decode_segment";
const SERDE_FROM: &str = "serde_from_slice";

type RuzstdFrameCompressor<'a> =
    ruzstd::encoding::FrameCompressor<&'a [u8], Vec<u8>, ruzstd::encoding::MatchGeneratorDriver>;

fn ruzstd_compressor<'a>() -> RuzstdFrameCompressor<'a> {
    ruzstd::encoding::FrameCompressor::new(ruzstd::encoding::CompressionLevel::Fastest)
}

/// ruzstd `Fastest` with one compressor kept across calls (what `RuzstdCompressor` cannot do
/// behind `Compressor::compress(&self)` without interior mutability).
fn ruzstd_reusing<'a>(compressor: &mut RuzstdFrameCompressor<'a>, canonical: &'a [u8]) -> Vec<u8> {
    compressor.set_source(canonical);
    compressor.set_drain(Vec::with_capacity(canonical.len() / 2));
    compressor.compress();
    compressor.take_drain().unwrap_or_default()
}

fn ruzstd_decompress(payload: &[u8], len: usize) -> Vec<u8> {
    let mut src = payload;
    let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut src).expect("zstd frame");
    let mut out = Vec::with_capacity(len);
    dec.read_to_end(&mut out).expect("zstd payload");
    out
}

/// Everything measured, prepared once outside the timed steps.
struct Prepared {
    canonical: Vec<Vec<u8>>,
    stored_c: Vec<Vec<u8>>,
    stored_ru: Vec<Vec<u8>>,
    canonical_bytes: usize,
    largest: usize,
}

fn prepare(corpus: &Corpus) -> Prepared {
    let mut canonical = Vec::new();
    let mut stored_c = Vec::new();
    let mut stored_ru = Vec::new();
    for session in &corpus.sessions {
        let segments = segment_messages(session).expect("segment");
        let mut decoded = Vec::with_capacity(session.len());
        for seg in segments {
            let c = frame::seal(ArtifactKind::Segment, &seg.canonical, Some(&CZstd)).unwrap();
            let r = frame::seal(
                ArtifactKind::Segment,
                &seg.canonical,
                Some(&RuzstdCompressor),
            )
            .unwrap();
            // Sanity: both encoders give the same id and the same content back.
            let oc = frame::open(&c, Some(ArtifactKind::Segment), Some(seg.reference.id)).unwrap();
            let or = frame::open(&r, Some(ArtifactKind::Segment), Some(seg.reference.id)).unwrap();
            assert_eq!(oc.canonical, seg.canonical);
            assert_eq!(or.canonical, seg.canonical);
            decoded.extend(decode_segment(&oc.canonical).unwrap().messages);
            stored_c.push(c);
            stored_ru.push(r);
            canonical.push(seg.canonical);
        }
        assert!(decoded == *session, "segments decode to the session");
    }
    let mut reused = ruzstd_compressor();
    for (c, r) in canonical.iter().zip(&stored_ru) {
        // Not always byte-identical to a fresh compressor's frame, but it must decode to the
        // same bytes.
        let frame = ruzstd_reusing(&mut reused, c);
        assert!(
            frame == r[HEADER_LEN..] || ruzstd_decompress(&frame, c.len()) == *c,
            "a reused ruzstd compressor writes frames that decode to the input"
        );
    }
    let canonical_bytes = canonical.iter().map(Vec::len).sum();
    let largest = canonical.iter().map(Vec::len).max().unwrap_or(0);
    Prepared {
        canonical,
        stored_c,
        stored_ru,
        canonical_bytes,
        largest,
    }
}

fn open_and_decode(stored: &[Vec<u8>], decoder: Option<&dyn Decompressor>) -> usize {
    let mut n = 0;
    for s in stored {
        let opened = frame::open_with(s, Some(ArtifactKind::Segment), None, decoder).unwrap();
        n += decode_segment(&opened.canonical).unwrap().messages.len();
    }
    n
}

fn round(t: &mut Timings, corpus: &Corpus, p: &Prepared) {
    let sessions = &corpus.sessions;
    // The paths of the main table.
    t.run(ENC_C, || {
        let mut n = 0;
        for s in sessions {
            for seg in segment_messages(s).unwrap() {
                n += frame::seal(ArtifactKind::Segment, &seg.canonical, Some(&CZstd))
                    .unwrap()
                    .len();
            }
        }
        n
    });
    t.run(ENC_RU, || {
        let mut n = 0;
        for s in sessions {
            for seg in segment_messages(s).unwrap() {
                n += frame::seal(
                    ArtifactKind::Segment,
                    &seg.canonical,
                    Some(&RuzstdCompressor),
                )
                .unwrap()
                .len();
            }
        }
        n
    });
    t.run(BASE_ENC, || {
        let mut n = 0;
        for c in &p.canonical {
            n += zstd::bulk::compress(c, 3).unwrap().len();
            black_box(blake3::hash(c));
        }
        n
    });
    t.run(DEC_C, || open_and_decode(&p.stored_c, Some(&CZstdDec)));
    t.run(DEC, || open_and_decode(&p.stored_c, None));
    t.run(DEC_RU, || open_and_decode(&p.stored_ru, None));
    t.run(BASE_DEC, || {
        let mut n = 0;
        for (s, c) in p.stored_c.iter().zip(&p.canonical) {
            let out = zstd::bulk::decompress(&s[HEADER_LEN..], c.len()).unwrap();
            black_box(blake3::hash(&out));
            n += out.len();
        }
        n
    });

    // Sub-steps of the write path.
    t.run(SEGMENT, || {
        let mut n = 0;
        for s in sessions {
            n += segment_messages(s).unwrap().len();
        }
        n
    });
    t.run(SERDE_TO, || {
        let mut n = 0;
        for m in sessions.iter().flatten() {
            n += serde_json::to_vec(m).unwrap().len();
        }
        n
    });
    t.run(BLAKE3, || {
        for c in &p.canonical {
            black_box(blake3::hash(c));
        }
    });
    t.run(SEAL_NONE, || {
        let mut n = 0;
        for c in &p.canonical {
            n += frame::seal(ArtifactKind::Segment, c, None).unwrap().len();
        }
        n
    });
    t.run(C_ZSTD, || {
        let mut n = 0;
        for c in &p.canonical {
            n += zstd::bulk::compress(c, 3).unwrap().len();
        }
        n
    });
    t.run(C_ZSTD_CTX, || {
        let mut ctx = zstd::bulk::Compressor::new(3).unwrap();
        let mut n = 0;
        for c in &p.canonical {
            n += ctx.compress(c).unwrap().len();
        }
        n
    });
    t.run(RUZSTD_REUSE, || {
        let mut compressor = ruzstd_compressor();
        let mut n = 0;
        for c in &p.canonical {
            n += ruzstd_reusing(&mut compressor, c).len();
        }
        n
    });
    t.run(RUZSTD, || {
        let mut n = 0;
        for c in &p.canonical {
            n += RuzstdCompressor.compress(c).unwrap().len();
        }
        n
    });

    // Sub-steps of the read path.
    t.run(OPEN, || {
        let mut n = 0;
        for s in &p.stored_c {
            n += frame::open(s, Some(ArtifactKind::Segment), None)
                .unwrap()
                .canonical
                .len();
        }
        n
    });
    t.run(RUZSTD_DEC, || {
        let mut n = 0;
        for (s, c) in p.stored_c.iter().zip(&p.canonical) {
            n += ruzstd_decompress(&s[HEADER_LEN..], c.len()).len();
        }
        n
    });
    t.run(C_ZSTD_DEC, || {
        let mut n = 0;
        for (s, c) in p.stored_c.iter().zip(&p.canonical) {
            n += zstd::bulk::decompress(&s[HEADER_LEN..], c.len())
                .unwrap()
                .len();
        }
        n
    });
    t.run(DECODE_SEG, || {
        let mut n = 0;
        for c in &p.canonical {
            n += decode_segment(c).unwrap().messages.len();
        }
        n
    });
    t.run(SERDE_FROM, || {
        let mut n = 0;
        for c in &p.canonical {
            // Split lines with memchr as `decode_segment` does, skip the header line and parse
            // each message line into a kept `Vec`, with nothing else around it.
            let body = c.strip_suffix(b"\n").unwrap();
            let mut start = 0;
            let messages = memchr::memchr_iter(b'\n', body)
                .chain(std::iter::once(body.len()))
                .map(|end| std::mem::replace(&mut start, end + 1)..end)
                .skip(1)
                .map(|line| serde_json::from_slice::<Message>(&body[line]).unwrap())
                .collect::<Vec<_>>();
            n += messages.len();
        }
        n
    });
}

// ---------------------------------------------------------------------------------------------
// Report.

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let os = std::env::consts::OS;
    let arch = std::env::consts::ARCH;
    format!("{model}, {cores} cores, {os}/{arch}")
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(
            || "rustc (unknown version)".to_owned(),
            |s| s.trim().to_owned(),
        )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// UTC date of now, `YYYY-MM-DD` (civil-from-days, H. Hinnant).
fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

struct Report<'a> {
    t: &'a Timings,
    bytes: f64,
}

impl Report<'_> {
    fn mbps(&self, key: &str) -> f64 {
        self.bytes / self.t.median(key) / MB
    }

    fn ms(&self, key: &str) -> f64 {
        self.t.median(key) * 1e3
    }

    fn spread(&self, key: &str) -> String {
        format!(
            "{:.0}–{:.0}",
            self.bytes / self.t.worst(key) / MB,
            self.bytes / self.t.best(key) / MB
        )
    }
}

fn pct(part: f64, whole: f64) -> String {
    format!("{:.0} %", 100.0 * part / whole)
}

fn report(
    load: &str,
    corpus: &Corpus,
    p: &Prepared,
    t: &Timings,
    runs: usize,
    quick: bool,
    mb_target: f64,
) -> String {
    let r = Report {
        t,
        bytes: p.canonical_bytes as f64,
    };
    let stored = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>() as f64;
    let (stored_c, stored_ru) = (stored(&p.stored_c), stored(&p.stored_ru));
    let canon = p.canonical_bytes as f64;
    let mut o = String::new();
    let _ = writeln!(o, "<!-- bench-core:begin -->");
    let _ = writeln!(
        o,
        "Run of {} on {} (load average before the run: {}; the measuring thread was on a CPU \
         {:.0} % of the wall-clock time), {}, `cargo bench` profile{}.\n",
        today(),
        machine(),
        load,
        100.0 * t.on_cpu(),
        rustc_version(),
        if quick { ", `--quick`" } else { "" },
    );
    let [prose, thinking, inputs, short, long] = corpus.composition();
    let _ = writeln!(
        o,
        "Corpus (synthetic, seed `{SEED:#x}`, target {mb_target} MB): {} sessions (median {} \
         messages, longest {}), {} messages, {:.1} MB of message text ({prose:.0} % message \
         content, {thinking:.0} % thinking, {inputs:.0} % tool inputs, {short:.0} % tool results \
         under 10 KB, {long:.0} % tool results of 10–200 KB) → {} segments holding {:.1} MB of \
         canonical NDJSON (mean {:.0} KB, largest {:.0} KB). MB/s = canonical bytes per second \
         of CPU time of one thread, median of {runs} rounds.\n",
        corpus.sessions.len(),
        corpus.median_session_messages(),
        corpus.longest_session_messages(),
        corpus.messages,
        corpus.content_bytes as f64 / MB,
        p.canonical.len(),
        canon / MB,
        canon / p.canonical.len() as f64 / 1e3,
        p.largest as f64 / 1e3,
    );

    let rows = [
        (
            "encode + hash + compress, C zstd -3 (native host): `segment_messages` + `frame::seal`",
            "writing with C zstd",
            ENC_C,
            BASE_ENC,
            "`zstd -3` + BLAKE3",
        ),
        (
            "encode + hash + compress, ruzstd Fastest (wasm hosts)",
            "writing with ruzstd",
            ENC_RU,
            BASE_ENC,
            "`zstd -3` + BLAKE3",
        ),
        (
            "open + decode, C zstd decoder (native host): `frame::open_with` + `decode_segment`",
            "reading with the C decoder",
            DEC_C,
            BASE_DEC,
            "C zstd decompress + BLAKE3",
        ),
        (
            "open + decode, ruzstd (wasm hosts; C-zstd-written): `frame::open` + `decode_segment`",
            "reading (open + decode)",
            DEC,
            BASE_DEC,
            "C zstd decompress + BLAKE3",
        ),
        (
            "open + decode (ruzstd-written)",
            "reading (open + decode)",
            DEC_RU,
            BASE_DEC,
            "C zstd decompress + BLAKE3",
        ),
    ];
    let _ = writeln!(
        o,
        "| path | MB/s | baseline MB/s | ratio (agentsync/baseline) | baseline |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---|");
    let mut worst = ("", f64::INFINITY);
    for (name, short, key, base, base_name) in rows {
        let ratio = r.mbps(key) / r.mbps(base);
        if ratio < worst.1 {
            worst = (short, ratio);
        }
        let _ = writeln!(
            o,
            "| {name} | {:.0} | {:.0} | {ratio:.2} | {base_name} |",
            r.mbps(key),
            r.mbps(base),
        );
    }

    let _ = writeln!(o, "\nCompression of the same segments:\n");
    let _ = writeln!(
        o,
        "| encoder | stored MB | ratio (canonical/stored) | compress only, MB/s |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|");
    let _ = writeln!(
        o,
        "| C zstd level 3 | {:.1} | {:.2} | {:.0} |",
        stored_c / MB,
        canon / stored_c,
        r.mbps(C_ZSTD)
    );
    let _ = writeln!(
        o,
        "| ruzstd `Fastest` | {:.1} | {:.2} | {:.0} |",
        stored_ru / MB,
        canon / stored_ru,
        r.mbps(RUZSTD)
    );

    let _ = writeln!(
        o,
        "\nBreakdown: each sub-step timed alone over the same corpus (ms per pass, MB/s, range \
         over the rounds):\n"
    );
    let _ = writeln!(o, "| step | ms | MB/s | min–max MB/s |");
    let _ = writeln!(o, "|---|---:|---:|---:|");
    let steps = [
        (
            "write: `segment_messages` (validate, JSON, assemble, BLAKE3 id)",
            SEGMENT,
        ),
        (
            "write: `serde_json::to_vec` of each message alone",
            SERDE_TO,
        ),
        ("write: BLAKE3 of the canonical bytes", BLAKE3),
        (
            "write: `frame::seal(.., None)` (BLAKE3 again + header + copy)",
            SEAL_NONE,
        ),
        ("write: C zstd -3, `zstd::bulk::compress`", C_ZSTD),
        ("write: C zstd -3, one reused context", C_ZSTD_CTX),
        ("write: ruzstd `Fastest`", RUZSTD),
        (
            "write: ruzstd `Fastest`, one reused `FrameCompressor`",
            RUZSTD_REUSE,
        ),
        ("read: `frame::open` (ruzstd decode + BLAKE3 verify)", OPEN),
        ("read: ruzstd decode alone", RUZSTD_DEC),
        ("read: C zstd decode alone", C_ZSTD_DEC),
        (
            "read: `decode_segment` (strict reader of canonical lines, validate)",
            DECODE_SEG,
        ),
        (
            "read: split lines + `serde_json::from_slice::<Message>` of each, alone (the parse before the strict reader, for comparison)",
            SERDE_FROM,
        ),
    ];
    for (name, key) in steps {
        let _ = writeln!(
            o,
            "| {name} | {:.1} | {:.0} | {} |",
            r.ms(key),
            r.mbps(key),
            r.spread(key)
        );
    }

    // Where the time goes: the sub-steps that make up each path, timed alone, as shares of
    // their sum (set beside the path's own time, which also has cache effects of its own).
    let hash = r.ms(BLAKE3);
    let json_enc = (r.ms(SEGMENT) - hash).max(0.0);
    let write_parts = |compressor: &'static str, key: &'static str| {
        [
            (compressor, r.ms(key)),
            ("JSON + validate + assembly in `segment_messages`", json_enc),
            ("BLAKE3 id in `segment_messages`", hash),
            ("`seal`: BLAKE3 again + frame", r.ms(SEAL_NONE)),
        ]
    };
    let _ = writeln!(
        o,
        "\nWhere the time goes: the sub-steps of each path, timed alone, as shares of their sum:\n"
    );
    let paths = [
        (
            "Write with C zstd",
            ENC_C,
            write_parts("C zstd -3", C_ZSTD).to_vec(),
        ),
        (
            "Write with ruzstd",
            ENC_RU,
            write_parts("ruzstd", RUZSTD).to_vec(),
        ),
        (
            "Read with the C decoder",
            DEC_C,
            vec![
                ("C zstd decode", r.ms(C_ZSTD_DEC)),
                ("BLAKE3 verify in `open`", hash),
                ("`decode_segment`", r.ms(DECODE_SEG)),
            ],
        ),
        (
            "Read with ruzstd",
            DEC,
            vec![
                ("ruzstd decode", r.ms(RUZSTD_DEC)),
                ("BLAKE3 verify in `open`", hash),
                ("`decode_segment`", r.ms(DECODE_SEG)),
            ],
        ),
    ];
    for (name, key, parts) in paths {
        let sum: f64 = parts.iter().map(|(_, ms)| ms).sum();
        let shares = parts
            .iter()
            .map(|(what, ms)| format!("{what} {}", pct(*ms, sum)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "- {name} ({:.0} ms measured, sub-steps {sum:.0} ms): {shares}.",
            r.ms(key)
        );
    }
    let _ = writeln!(
        o,
        "- Largest gap to the baseline: {} at {:.2}× the baseline's throughput.",
        worst.0, worst.1
    );
    let _ = writeln!(o, "<!-- bench-core:end -->");
    o
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this without it, and then
    // a tiny smoke run is enough.
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    for a in &args {
        if !matches!(a.as_str(), "--bench" | "--quick") {
            eprintln!("encode bench: ignoring argument {a:?} (known: --quick)");
        }
    }
    let env_f64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    let mb_target = match (bench, quick) {
        (false, _) => 0.5,
        (true, true) => env_f64("AGENTSYNC_BENCH_MB").unwrap_or(8.0),
        (true, false) => env_f64("AGENTSYNC_BENCH_MB").unwrap_or(64.0),
    };
    let runs = match (bench, quick) {
        (false, _) => 1,
        (true, true) => env_f64("AGENTSYNC_BENCH_RUNS").map_or(3, |n| n as usize),
        (true, false) => env_f64("AGENTSYNC_BENCH_RUNS").map_or(7, |n| n as usize),
    }
    .max(1);

    let load = load_average();
    let started = Instant::now();
    let corpus = corpus((mb_target * MB) as usize);
    let prepared = prepare(&corpus);
    eprintln!(
        "encode bench: {} sessions, {} segments, {:.1} MB canonical, prepared in {:.1} s",
        corpus.sessions.len(),
        prepared.canonical.len(),
        prepared.canonical_bytes as f64 / MB,
        started.elapsed().as_secs_f64()
    );

    // AGENTSYNC_BENCH_ONLY=decode,open runs only those steps (keys in `round`), e.g. under
    // `perf record`, and prints no report.
    let only: Option<Vec<String>> = std::env::var("AGENTSYNC_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|k| k.trim().to_owned()).collect());
    let mut timings = Timings {
        only: only.clone(),
        ..Timings::default()
    };
    if bench {
        // Warm-up round (allocator, caches, lazy page mapping), not counted.
        let mut warm_up = Timings {
            only: only.clone(),
            ..Timings::default()
        };
        round(&mut warm_up, &corpus, &prepared);
    }
    for i in 0..runs {
        round(&mut timings, &corpus, &prepared);
        eprintln!(
            "encode bench: round {}/{runs} done ({:.0} s)",
            i + 1,
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(only) = &only {
        for key in only {
            if timings.secs.contains_key(key.as_str()) {
                eprintln!(
                    "encode bench: {key}: median {:.1} ms, {:.0} MB/s",
                    timings.median(key) * 1e3,
                    prepared.canonical_bytes as f64 / timings.median(key) / MB
                );
            } else {
                eprintln!("encode bench: no step {key:?}");
            }
        }
    } else if bench {
        print!(
            "{}",
            report(&load, &corpus, &prepared, &timings, runs, quick, mb_target)
        );
    } else {
        eprintln!("encode bench: smoke run ok (pass --bench, as `cargo bench` does, to measure)");
    }
}
