//! docs/cli.md, executed: every ```` ```console ```` block's `$` commands run, in the order of
//! the document, against one scratch world, and what they print (stdout and stderr together)
//! must match the lines under them. The docs cannot drift from the CLI any more.
//!
//! How a block is read (docs/cli.md says the same to its writers):
//! - `/tmp/clidoc` is this run's scratch folder; `127.0.0.1:8787` a free loopback port and
//!   `127.0.0.1:9000` a real S3 server (moto, started when the document mentions it, with a
//!   bucket for every `s3://NAME` the document names).
//! - A line that is only `…` stands for any number of lines; `…` inside a line for any text.
//! - Two or more spaces then `# ` end an expected line: the rest is a comment.
//! - Values that differ on every run stand for any value of their shape: HLC stamps
//!   (`20261125T162435.543Z-0000`), hex of 8 or more digits (keys, content ids, their
//!   prefixes), 13-digit Unix milliseconds and `YYYY-MM-DD HH:MM` times. An HLC or hex value
//!   stands for the same value wherever the document uses it again, commands included: a
//!   later `drop-edit HLC` runs with the HLC the earlier command really printed.
//! - A line `^C` sends SIGINT once the lines above it have been printed (for `serve` and
//!   `sync --watch`); the lines after it are what the command printed as it stopped.
//! - An HTML comment `<!-- clidoc ... -->` holds shell lines run, unseen by readers, before the
//!   next block (setting up the state the example shows). Background processes it starts
//!   write their pid to `/tmp/clidoc/NAME.pid`; they are stopped at the end.
//!
//! `CLIDOC_PRINT=1` prints every command with what it really printed, for writing examples.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;

use common::{BIN, Moto, Scratch, repo};

const DOC_ROOT: &str = "/tmp/clidoc";
const DOC_PEER: &str = "127.0.0.1:8787";
const DOC_S3: &str = "127.0.0.1:9000";
const WAIT: Duration = Duration::from_secs(60);

struct Block {
    setup: Option<(usize, String)>,
    commands: Vec<DocCommand>,
}

struct DocCommand {
    line: usize,
    text: String,
    expected: Vec<String>,
}

fn parse(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut blocks = Vec::new();
    let mut setup = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.trim_start().strip_prefix("<!-- clidoc") {
            let start = i + 1;
            let mut body = String::new();
            let mut rest = rest.to_owned();
            loop {
                if let Some(before) = rest.strip_suffix("-->") {
                    body.push_str(before);
                    break;
                }
                body.push_str(&rest);
                body.push('\n');
                i += 1;
                rest = lines
                    .get(i)
                    .expect("an unclosed <!-- clidoc comment")
                    .to_string();
            }
            setup = match setup {
                Some((first, earlier)) => Some((first, format!("{earlier}\n{body}"))),
                None => Some((start, body)),
            };
        } else if line == "```console" {
            let mut commands: Vec<DocCommand> = Vec::new();
            i += 1;
            while lines[i] != "```" {
                if let Some(text) = lines[i].strip_prefix("$ ") {
                    commands.push(DocCommand {
                        line: i + 1,
                        text: text.to_owned(),
                        expected: Vec::new(),
                    });
                } else {
                    commands
                        .last_mut()
                        .unwrap_or_else(|| panic!("line {}: output before any `$` line", i + 1))
                        .expected
                        .push(lines[i].to_owned());
                }
                i += 1;
            }
            blocks.push(Block {
                setup: setup.take(),
                commands,
            });
        }
        i += 1;
    }
    blocks
}

/// One expected line: a regex over the real line, and which document value each group stands
/// for (`None`: a value of that shape, not remembered).
enum Pattern {
    AnyLines,
    Line {
        regex: Regex,
        groups: Vec<Option<String>>,
    },
}

fn pattern(expected: &str) -> Pattern {
    let comment = Regex::new(r"\s{2,}# .*$").unwrap();
    let expected = comment.replace(expected, "");
    if expected.trim() == "…" {
        return Pattern::AnyLines;
    }
    let token = Regex::new(
        r"(?<hlc>\d{8}T\d{6}\.\d{3}Z-\d{4})|(?<time>\d{4}-\d\d-\d\d \d\d:\d\d)|(?<hex>\b[0-9a-f]{8,}\b)|(?<any>…)",
    )
    .unwrap();
    let mut re = String::from("^");
    let mut groups = Vec::new();
    let mut last = 0;
    for caps in token.captures_iter(&expected) {
        let whole = caps.get(0).unwrap();
        let text = whole.as_str();
        let piece = if caps.name("hlc").is_some() {
            groups.push(Some(text.to_owned()));
            r"(\d{8}T\d{6}\.\d{3}Z-\d{4})".to_owned()
        } else if caps.name("time").is_some() {
            groups.push(None);
            r"(\d{4}-\d\d-\d\d \d\d:\d\d)".to_owned()
        } else if caps.name("hex").is_some() {
            let decimal = text.bytes().all(|b| b.is_ascii_digit());
            if decimal && text.len() >= 14 {
                continue; // a sequence number: literal
            }
            groups.push((!decimal || text.len() != 13).then(|| text.to_owned()));
            format!(r"\b([0-9a-f]{{{}}})\b", text.len())
        } else {
            ".*?".to_owned()
        };
        re.push_str(&regex::escape(&expected[last..whole.start()]));
        re.push_str(&piece);
        last = whole.end();
    }
    re.push_str(&regex::escape(&expected[last..]));
    re.push('$');
    Pattern::Line {
        regex: Regex::new(&re).unwrap(),
        groups,
    }
}

/// Matches all of `actual` against `pats`; on success, the (document value, real value) pairs.
fn match_lines(pats: &[Pattern], actual: &[&str]) -> Option<Vec<(String, String)>> {
    fn go(pats: &[Pattern], actual: &[&str], found: &mut Vec<(String, String)>) -> bool {
        let Some((first, rest)) = pats.split_first() else {
            return actual.is_empty();
        };
        match first {
            Pattern::AnyLines => (0..=actual.len()).any(|skip| {
                let mark = found.len();
                go(rest, &actual[skip..], found) || {
                    found.truncate(mark);
                    false
                }
            }),
            Pattern::Line { regex, groups } => {
                let Some((line, more)) = actual.split_first() else {
                    return false;
                };
                let Some(caps) = regex.captures(line) else {
                    return false;
                };
                let mark = found.len();
                for (i, doc_value) in groups.iter().enumerate() {
                    if let (Some(doc), Some(real)) = (doc_value, caps.get(i + 1)) {
                        found.push((doc.clone(), real.as_str().to_owned()));
                    }
                }
                go(rest, more, found) || {
                    found.truncate(mark);
                    false
                }
            }
        }
    }
    let mut found = Vec::new();
    go(pats, actual, &mut found).then_some(found)
}

struct World {
    root: PathBuf,
    state: PathBuf,
    /// Document text → this run's text, for commands; reversed for output.
    fixed: Vec<(String, String)>,
    /// Document values (HLCs, hex) → the values this run printed in their place.
    bound: BTreeMap<String, String>,
    last_status: i32,
    print: bool,
    _moto: Option<Moto>,
}

impl World {
    fn command_text(&self, doc_text: &str) -> String {
        let mut text = doc_text.to_owned();
        for (doc, real) in &self.fixed {
            text = text.replace(doc, real);
        }
        let mut bound: Vec<_> = self.bound.iter().filter(|(d, r)| d != r).collect();
        bound.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
        for (doc, real) in bound {
            text = text.replace(doc.as_str(), real);
        }
        text
    }

    fn doc_output(&self, real: &str) -> String {
        let mut text = real.to_owned();
        for (doc, real) in &self.fixed {
            text = text.replace(real, doc);
        }
        text
    }

    fn bash(&self, script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!(
                "exec 2>&1\nsource {}\n{script}",
                shell_quote(self.state.display())
            ))
            .current_dir(&self.root)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs hidden set-up lines; they must succeed.
    fn setup(&mut self, line: usize, body: &str) {
        let script = format!(
            "set -e\n{}\nexport -p > {}",
            self.command_text(body),
            shell_quote(self.state.display())
        );
        let out = self.bash(&script).output().expect("bash runs");
        assert!(
            out.status.success(),
            "docs/cli.md:{line}: the hidden set-up failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Runs one command as a shell line; its output and exit status.
    fn run(&mut self, text: &str) -> (String, i32) {
        let script = format!(
            "(exit {})\n{text}\n__clidoc_status=$?\nexport -p > {}\nexit $__clidoc_status",
            self.last_status,
            shell_quote(self.state.display())
        );
        let out = self.bash(&script).output().expect("bash runs");
        let code = out.status.code().unwrap_or(-1);
        (String::from_utf8_lossy(&out.stdout).into_owned(), code)
    }

    /// Runs a command until what it printed matches `before` (the lines above `^C`), then
    /// interrupts it and collects the rest.
    fn run_interrupted(&mut self, text: &str, before: &[Pattern]) -> (String, i32) {
        let mut child = self
            .bash(&format!("exec {text}"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash runs");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let started = Instant::now();
        loop {
            let so_far = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
            let so_far = self.doc_output(&so_far);
            let complete: Vec<&str> = so_far.lines().collect();
            if so_far.ends_with('\n') && match_lines(before, &complete).is_some() {
                break;
            }
            if started.elapsed() > WAIT || child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the command") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().expect("waiting for the command");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        reader.join().unwrap();
        let out = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
        (out, status.code().unwrap_or(-1))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Background processes the hidden set-up started.
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pid")
                && let Ok(pid) = std::fs::read_to_string(&path)
            {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

fn shell_quote(text: impl std::fmt::Display) -> String {
    format!("'{}'", text.to_string().replace('\'', r"'\''"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

#[test]
fn issue19_item8_every_example_in_cli_md_runs_as_shown() {
    let doc_path = repo().join("docs/cli.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/cli.md");
    let blocks = parse(&doc);
    assert!(blocks.len() > 20, "docs/cli.md has its examples");

    let scratch = Scratch::new("clidoc");
    let root = scratch.path.join("clidoc");
    let home = scratch.path.join("home");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut fixed = vec![
        (DOC_ROOT.to_owned(), root.display().to_string()),
        (DOC_PEER.to_owned(), format!("127.0.0.1:{}", free_port())),
    ];
    let moto = doc.contains(DOC_S3).then(|| {
        let moto = Moto::start(&scratch.join("moto"), false);
        let bucket = Regex::new(r"s3://([a-z0-9.-]+)").unwrap();
        let mut buckets: Vec<&str> = bucket
            .captures_iter(&doc)
            .map(|c| c.get(1).unwrap().as_str())
            .filter(|b| *b != "BUCKET")
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        for b in buckets {
            moto.create_bucket(b);
        }
        let address = moto.endpoint.trim_start_matches("http://").to_owned();
        fixed.push((DOC_S3.to_owned(), address));
        moto
    });

    // The environment every command starts from: no user config, data or credentials.
    let state = scratch.path.join("shell-state");
    let mut env = String::new();
    let mut export = |k: &str, v: &str| env.push_str(&format!("export {k}={}\n", shell_quote(v)));
    export("PATH", &path);
    export("HOME", &home.display().to_string());
    export("TZ", "UTC");
    export("LC_ALL", "C.UTF-8");
    if let Ok(component) = std::env::var("AGENTSYNC_COMPONENT") {
        export("AGENTSYNC_COMPONENT", &component);
    }
    let mut clear = String::new();
    for var in [
        "AGENTSYNC_HOME",
        "AGENTSYNC_TOKEN",
        "AGENTSYNC_SERVE_TOKEN",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        clear.push_str(&format!("unset {var}\n"));
    }
    std::fs::write(&state, format!("{clear}{env}")).unwrap();

    let mut world = World {
        root,
        state,
        fixed,
        bound: BTreeMap::new(),
        last_status: 0,
        print: std::env::var_os("CLIDOC_PRINT").is_some(),
        _moto: moto,
    };
    let mut failures = Vec::new();
    let mut ran = 0;
    for block in &blocks {
        if let Some((line, body)) = &block.setup {
            world.setup(*line, body);
        }
        for cmd in &block.commands {
            let text = world.command_text(&cmd.text);
            let interrupt = cmd.expected.iter().position(|l| l == "^C");
            let (real, status) = match interrupt {
                Some(at) => {
                    let before: Vec<Pattern> =
                        cmd.expected[..at].iter().map(|l| pattern(l)).collect();
                    world.run_interrupted(&text, &before)
                }
                None => world.run(&text),
            };
            ran += 1;
            world.last_status = status;
            let real = world.doc_output(&real);
            if world.print {
                eprintln!("docs/cli.md:{} $ {}\n{real}", cmd.line, cmd.text);
            }
            let pats: Vec<Pattern> = cmd
                .expected
                .iter()
                .filter(|l| *l != "^C")
                .map(|l| pattern(l))
                .collect();
            let lines: Vec<&str> = real.lines().collect();
            let problem = match match_lines(&pats, &lines) {
                None => Some("the output differs".to_owned()),
                Some(found) => {
                    let mut clash = None;
                    for (doc, value) in found {
                        match world.bound.get(&doc) {
                            Some(earlier) if *earlier != value => {
                                clash = Some(format!(
                                    "{doc} stands for {earlier} above, but here for {value}"
                                ));
                            }
                            _ => {
                                world.bound.insert(doc, value);
                            }
                        }
                    }
                    clash
                }
            };
            if let Some(problem) = problem {
                failures.push(format!(
                    "docs/cli.md:{}: $ {}\n{problem} (exit status {status}).\n--- the document shows:\n{}\n--- the command printed:\n{real}",
                    cmd.line,
                    cmd.text,
                    cmd.expected.join("\n"),
                ));
            }
        }
    }
    if world.print {
        // For refreshing the document from one run: each value it shows, and this run's.
        for (doc, real) in &world.bound {
            if doc != real {
                eprintln!("bound {doc} {real}");
            }
        }
    }
    assert!(ran >= 50, "only {ran} commands found in docs/cli.md");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples in docs/cli.md do not match what the CLI prints:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_pattern_line_matches_values_of_its_shape_and_remembers_them() {
    let pats = [
        pattern("sync a: exported 1 at 20261125T162435.543Z-0000  # comment"),
        pattern("…"),
        pattern("key 3032f482….root, 2026-11-20 03:20, 1795623875226 ms"),
    ];
    let found = match_lines(
        &pats,
        &[
            "sync a: exported 1 at 20270101T000000.001Z-0003",
            "anything",
            "else",
            "key 99aa00bb….root, 2027-01-01 00:00, 1800000000000 ms",
        ],
    )
    .expect("matches");
    assert_eq!(
        found,
        [
            (
                "20261125T162435.543Z-0000".to_owned(),
                "20270101T000000.001Z-0003".to_owned()
            ),
            ("3032f482".to_owned(), "99aa00bb".to_owned()),
        ]
    );
    // Counts and words stay literal; a hex value keeps its length.
    assert!(
        match_lines(
            &pats[..1],
            &["sync a: exported 2 at 20270101T000000.001Z-0003"]
        )
        .is_none()
    );
    assert!(
        match_lines(
            &pats[2..],
            &["key 99aa00bb0….root, 2027-01-01 00:00, 1800000000000 ms"]
        )
        .is_none()
    );
    assert!(match_lines(&[pattern("x")], &["x", "y"]).is_none());
}
