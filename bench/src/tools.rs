//! What agents do with tools, apart from how each agent logs it: read a file, run a command,
//! search, edit, create a file, fetch a page. `claude.rs` and `codex.rs` render these actions
//! in their own record shapes; the content (file text, command output) is shared.
//!
//! Outputs take a byte bound (`max`) so that a session near its byte budget does not overshoot
//! it with one large result; otherwise sizes are long-tailed, as real ones are.

use crate::project::Project;
use crate::rng::Rng;
use crate::text::{self, Lang};

/// Lines of a file, as read.
pub struct Read {
    pub path: String,
    /// First line read, from 1.
    pub start: usize,
    /// Lines read (at most the 2000 Claude Code reads at once).
    pub lines: usize,
    pub total: usize,
    /// Whether the read asked for a range (offset/limit) rather than the whole file.
    pub ranged: bool,
    pub text: String,
}

impl Read {
    /// The lines as Claude Code's Read returns them: `cat -n` numbering with a `→`.
    pub fn numbered(&self) -> String {
        numbered(&self.text, self.start)
    }
}

/// Lines numbered from `start` in a right-aligned 6-wide column followed by `→`.
pub fn numbered(text: &str, start: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for (k, line) in text.split_inclusive('\n').enumerate() {
        let _ = write!(out, "{:>6}→", start + k);
        out.push_str(line);
    }
    out
}

/// Up to `limit` lines of `text` from line `start` (from 1), stopping before `max` bytes.
fn lines_of(text: &str, start: usize, limit: usize, max: usize) -> (String, usize) {
    let mut out = String::new();
    let mut n = 0;
    for line in text.split_inclusive('\n').skip(start - 1).take(limit) {
        if n > 0 && out.len() + line.len() > max {
            break;
        }
        out.push_str(line);
        n += 1;
    }
    (out, n)
}

pub fn read(project: &Project, rng: &mut Rng, max: usize) -> Read {
    let index = project.pick_file(rng);
    let file = &project.files[index];
    let total = file.lines;
    let (start, limit, ranged) = if total > 150 && rng.chance(0.45) {
        let start = rng.range(1, total as u64 - 20) as usize;
        (start, rng.range(20, 250) as usize, true)
    } else {
        (1, total.min(2000), false)
    };
    let (text, lines) = lines_of(&project.text(index), start, limit, max);
    Read {
        path: project.abs(&file.path),
        start,
        lines,
        total,
        ranged,
        text,
    }
}

/// A shell command and what it printed.
pub struct Shell {
    pub command: String,
    /// The short description Claude Code asks for with each command.
    pub description: String,
    pub output: String,
    pub exit_code: i64,
    pub millis: u64,
}

/// A command an agent runs in `project`. `reads` lets file reads go through the shell too
/// (`sed -n`, `cat`), as Codex reads files; Claude Code has its Read tool for that.
pub fn shell(project: &Project, rng: &mut Rng, max: usize, branch: &str, reads: bool) -> Shell {
    let lang = project.lang;
    let mut output = String::new();
    let mut exit_code = 0;
    let mut millis = 20 + rng.below(400);
    let roll = rng.below(if reads { 130 } else { 100 });
    let (command, description) = match roll {
        0..=24 => {
            let failed = if rng.chance(0.15) {
                1 + rng.below(3) as usize
            } else {
                0
            };
            let tests = (rng.heavy(4.0, 0.5, 1500.0) as usize).max(failed + 1);
            text::test_output(rng, &mut output, lang, tests, failed);
            if failed > 0 {
                exit_code = if lang == Lang::Rust { 101 } else { 1 };
            }
            millis = 800 + rng.below(60_000);
            let command = match lang {
                Lang::Rust => {
                    *rng.pick(&["cargo test -q", "cargo test", "cargo test --all-targets"])
                }
                Lang::TypeScript => {
                    *rng.pick(&["npm test", "npx vitest run", "npm run test -- --coverage"])
                }
                Lang::Python => *rng.pick(&["pytest -q", "python -m pytest -x", "pytest tests -q"]),
                Lang::Go => *rng.pick(&[
                    "go test ./...",
                    "go test -race ./...",
                    "go test -run Test ./internal/...",
                ]),
            };
            (command.to_owned(), "Run the test suite".to_owned())
        }
        25..=44 => {
            let file = &project.files[project.pick_file(rng)].path;
            if rng.chance(0.25) {
                let lines = rng.heavy(3.0, 0.5, 600.0) as usize;
                text::compiler_errors(rng, &mut output, lang, file, lines);
                exit_code = if lang == Lang::Rust { 101 } else { 2 };
            } else {
                match lang {
                    Lang::Rust => output.push_str(&format!(
                        "   Compiling {} v0.1.0 ({})\n    Finished `dev` profile [unoptimized + debuginfo] target(s) in {}.{:02}s\n",
                        project.name(), project.cwd, rng.below(40), rng.below(100)
                    )),
                    Lang::TypeScript => output.push_str(&format!(
                        "\n> {}@0.1.0 build\n> tsc -p tsconfig.json && vite build\n\nvite v5.4.2 building for production...\n✓ {} modules transformed.\ndist/index.html  0.46 kB\ndist/assets/index-{}.js  {}.{} kB │ gzip: {}.{} kB\n✓ built in {}.{:02}s\n",
                        project.name(), rng.below(900), rng.below(1_000_000), rng.below(400), rng.below(100), rng.below(90), rng.below(100), rng.below(9), rng.below(100)
                    )),
                    Lang::Python => output.push_str("Success: no issues found in 14 source files\n"),
                    Lang::Go => output.push_str("ok\n"),
                }
            }
            millis = 2_000 + rng.below(90_000);
            let command = match lang {
                Lang::Rust => *rng.pick(&[
                    "cargo build",
                    "cargo check --all-targets",
                    "cargo clippy --all-targets -- -D warnings",
                ]),
                Lang::TypeScript => {
                    *rng.pick(&["npm run build", "npx tsc --noEmit", "npm run lint"])
                }
                Lang::Python => {
                    *rng.pick(&["mypy app", "ruff check .", "python -m compileall -q app"])
                }
                Lang::Go => *rng.pick(&["go build ./...", "go vet ./..."]),
            };
            (command.to_owned(), "Build and check for errors".to_owned())
        }
        45..=56 => {
            output.push_str(&format!("On branch {branch}\nChanges not staged for commit:\n  (use \"git add <file>...\" to update what will be committed)\n  (use \"git restore <file>...\" to discard changes in working directory)\n"));
            for _ in 0..1 + rng.below(6) {
                output.push_str("\tmodified:   ");
                output.push_str(&project.files[project.pick_file(rng)].path);
                output.push('\n');
            }
            output.push_str(
                "\nno changes added to commit (use \"git add\" and/or \"git commit -a\")\n",
            );
            (
                "git status".to_owned(),
                "Show working tree status".to_owned(),
            )
        }
        57..=66 => {
            let edit = edit(project, rng, max);
            output.push_str(&edit.unified_diff());
            ("git diff".to_owned(), "Show unstaged changes".to_owned())
        }
        67..=73 => {
            let n = 3 + rng.below(25) as usize;
            text::git_log(rng, &mut output, n);
            (
                "git log --oneline -n 20".to_owned(),
                "Show recent commits".to_owned(),
            )
        }
        74..=83 => {
            let dir = lang.src();
            output.push_str(&format!("total {}\n", 8 * project.files.len()));
            for file in project.files.iter().filter(|f| f.path.starts_with(dir)) {
                output.push_str(&format!(
                    "-rw-r--r--  1 dev  staff  {:>6} Oct {:>2} {:02}:{:02} {}\n",
                    file.lines * 38,
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    &file.path[dir.len() + 1..]
                ));
            }
            (format!("ls -la {dir}"), format!("List files in {dir}"))
        }
        84..=99 => {
            let found = search(project, rng, max);
            for (path, line, text) in &found.hits {
                output.push_str(&format!("{path}:{line}:{text}\n"));
            }
            if found.hits.is_empty() {
                exit_code = 1;
            }
            (
                format!("rg -n \"{}\" {}", found.pattern, lang.src()),
                format!("Search for {}", found.pattern),
            )
        }
        _ => {
            let read = read(project, rng, max);
            output.push_str(&read.text);
            let rel = read.path[project.cwd.len() + 1..].to_owned();
            let command = if read.ranged {
                format!(
                    "sed -n '{},{}p' {rel}",
                    read.start,
                    read.start + read.lines - 1
                )
            } else {
                format!("cat {rel}")
            };
            (command, format!("Read {rel}"))
        }
    };
    truncate_at_line(&mut output, max);
    Shell {
        command,
        description,
        output,
        exit_code,
        millis,
    }
}

/// Cuts `text` to at most `max` bytes at a line end.
fn truncate_at_line(text: &mut String, max: usize) {
    if text.len() > max {
        // Bytes, not `&text[..max]`: `max` may fall inside a character; a newline never does.
        let end = text.as_bytes()[..max]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        text.truncate(end);
        text.push_str("... (output truncated)\n");
    }
}

/// Lines matching a pattern: (relative path, line number, line).
pub struct Search {
    pub pattern: String,
    pub hits: Vec<(String, usize, String)>,
}

impl Search {
    /// The distinct files with hits, in order.
    pub fn files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = Vec::new();
        for (path, _, _) in &self.hits {
            if files.last() != Some(&path.as_str()) {
                files.push(path);
            }
        }
        files
    }
}

/// Searches a few of the project's files for an identifier, as `rg -n` would. The pattern is
/// taken from a line of the first file, so there is always at least one hit (searches that
/// find nothing would log empty results, which tests could not tell from missing ones).
pub fn search(project: &Project, rng: &mut Rng, max: usize) -> Search {
    let first = project.pick_file(rng);
    let content = project.text(first);
    let tokens_of = |line: &'_ str| -> Vec<String> {
        line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|t| t.len() >= 4)
            .map(str::to_owned)
            .collect()
    };
    let line = content
        .lines()
        .nth(rng.index(project.files[first].lines.max(1)));
    let mut tokens = tokens_of(line.unwrap_or(""));
    if tokens.is_empty() {
        // A blank or brace-only line: any identifier of the file will do.
        tokens = tokens_of(&content).into_iter().take(8).collect();
    }
    let pattern = if tokens.is_empty() {
        text::noun(rng).to_owned()
    } else {
        rng.pick(&tokens).clone()
    };
    let wanted = rng.heavy(6.0, 0.5, 800.0) as usize;
    let mut hits = Vec::new();
    let mut bytes = 0;
    let mut files = vec![first];
    for _ in 0..rng.below(6) {
        let index = project.pick_file(rng);
        if !files.contains(&index) {
            files.push(index);
        }
    }
    'files: for index in files {
        let path = &project.files[index].path;
        for (n, line) in project.text(index).lines().enumerate() {
            if line.contains(pattern.as_str()) {
                bytes += path.len() + line.len() + 8;
                if !hits.is_empty() && (hits.len() >= wanted || bytes > max) {
                    break 'files;
                }
                hits.push((path.clone(), n + 1, line.to_owned()));
            }
        }
    }
    Search { pattern, hits }
}

/// A replacement of a few lines in a file.
pub struct Edit {
    pub path: String,
    pub relative: String,
    /// First line replaced, from 1.
    pub start: usize,
    pub old: String,
    pub new: String,
    /// The file before the edit (Claude Code logs it with the result), cut to the byte bound.
    pub original: String,
}

impl Edit {
    pub fn old_lines(&self) -> usize {
        self.old.lines().count()
    }

    pub fn new_lines(&self) -> usize {
        self.new.lines().count()
    }

    /// The edit as `git diff` prints it.
    pub fn unified_diff(&self) -> String {
        let mut out = format!(
            "diff --git a/{p} b/{p}\nindex {:07x}..{:07x} 100644\n--- a/{p}\n+++ b/{p}\n@@ -{},{} +{},{} @@\n",
            self.old.len() * 7919 % 0xfff_ffff,
            self.new.len() * 104_729 % 0xfff_ffff,
            self.start,
            self.old_lines(),
            self.start,
            self.new_lines(),
            p = self.relative
        );
        for line in self.old.lines() {
            out.push('-');
            out.push_str(line);
            out.push('\n');
        }
        for line in self.new.lines() {
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The edit as Codex's `apply_patch` input.
    pub fn patch(&self) -> String {
        let mut out = format!("*** Begin Patch\n*** Update File: {}\n@@\n", self.relative);
        for line in self.old.lines() {
            out.push('-');
            out.push_str(line);
            out.push('\n');
        }
        for line in self.new.lines() {
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("*** End Patch\n");
        out
    }
}

pub fn edit(project: &Project, rng: &mut Rng, max: usize) -> Edit {
    let index = project.pick_file(rng);
    let file = &project.files[index];
    let text = project.text(index);
    let count = (1 + rng.below(12) as usize).min(file.lines);
    let start = rng.range(1, (file.lines - count + 1) as u64) as usize;
    let (old, _) = lines_of(&text, start, count, usize::MAX);
    let mut new = String::new();
    let new_count = (count as i64 + rng.range(0, 8) as i64 - 3).max(1) as usize;
    text::code(rng, &mut new, project.lang, new_count);
    let (new, _) = lines_of(&new, 1, new_count, usize::MAX);
    let (original, _) = lines_of(&text, 1, usize::MAX, max);
    Edit {
        path: project.abs(&file.path),
        relative: file.path.clone(),
        start,
        old: old.trim_end_matches('\n').to_owned(),
        new: new.trim_end_matches('\n').to_owned(),
        original,
    }
}

/// A new file: (absolute path, relative path, content).
pub fn new_file(project: &Project, rng: &mut Rng, max: usize) -> (String, String, String) {
    let relative = format!(
        "{}/{}_{}.{}",
        project.lang.src(),
        text::noun(rng),
        text::noun(rng),
        project.lang.ext()
    );
    let mut content = String::new();
    let lines = rng.heavy(15.0, 0.4, 800.0) as usize;
    text::code(rng, &mut content, project.lang, lines);
    truncate_at_line(&mut content, max);
    (project.abs(&relative), relative, content)
}

/// A documentation URL.
pub fn url(rng: &mut Rng) -> String {
    format!(
        "https://docs.{}.dev/{}/{}-{}",
        text::noun(rng),
        text::noun(rng),
        text::verb(rng),
        text::noun(rng)
    )
}

/// A fetched page, summarised: markdown prose.
pub fn web_page(rng: &mut Rng, max: usize) -> String {
    let mut out = String::new();
    let paragraphs = rng.heavy(1.0, 0.5, 40.0) as usize;
    for p in 0..paragraphs {
        if p > 0 {
            out.push_str("\n\n");
        }
        if rng.chance(0.3) {
            out.push_str("## ");
            text::title(rng, &mut out);
            out.push('\n');
        }
        let n = 2 + rng.below(5) as usize;
        text::paragraph(rng, &mut out, n);
        if out.len() > max {
            break;
        }
    }
    out
}

/// A todo list: (content, status, active form).
pub fn todos(rng: &mut Rng) -> Vec<(String, &'static str, String)> {
    let n = 2 + rng.below(6) as usize;
    let done = rng.below(n as u64) as usize;
    (0..n)
        .map(|i| {
            let verb = text::verb(rng);
            let mut object = String::new();
            let n = 2 + rng.below(6) as usize;
            text::words(rng, &mut object, n);
            let status = match i.cmp(&done) {
                std::cmp::Ordering::Less => "completed",
                std::cmp::Ordering::Equal => "in_progress",
                std::cmp::Ordering::Greater => "pending",
            };
            let mut content = String::new();
            let mut chars = verb.chars();
            if let Some(c) = chars.next() {
                content.extend(c.to_uppercase());
                content.push_str(chars.as_str());
            }
            content.push(' ');
            content.push_str(&object);
            let active = format!(
                "{}ing {object}",
                content
                    .trim_end_matches('e')
                    .split(' ')
                    .next()
                    .unwrap_or("")
            );
            (content, status, active)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_respect_their_byte_bound() {
        let project = Project::new("/home/dev/src/tally");
        let mut rng = Rng::new(9);
        for _ in 0..200 {
            let r = read(&project, &mut rng, 4096);
            assert!(r.text.len() <= 4096 || r.lines == 1);
            assert!(r.numbered().starts_with(&format!("{:>6}→", r.start)));
            let s = shell(&project, &mut rng, 4096, "main", true);
            assert!(s.output.len() <= 4096 + 64, "{}", s.command);
            let e = edit(&project, &mut rng, 4096);
            assert!(e.patch().starts_with("*** Begin Patch\n*** Update File: "));
        }
    }
}
