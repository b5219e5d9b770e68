//! Shared helpers for the end-to-end tests: scratch folders, "machines" (one data dir each,
//! driven through the real `agentsync` binary), synthetic Claude Code logs and a seeded PRNG.
//!
//! Every command runs with `HOME` pointing into the scratch folder, so nothing ever reads the
//! real `~/.claude` or `~/.codex`.

#![allow(dead_code)]

pub mod converge;
pub mod faulty_proxy;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentsync");

/// SplitMix64: small, seeded, good enough to pick operations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// A random lowercase RFC 4122-shaped uuid (version 4).
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// A scratch folder, removed when dropped unless the test is failing (then it is kept and
/// its path printed, for a look at the data dirs and the shared folder).
pub struct Scratch {
    pub path: PathBuf,
}

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("agentsync-e2e-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    pub fn join(&self, rest: &str) -> PathBuf {
        self.path.join(rest)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept scratch folder {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub args: Vec<String>,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`agentsync {}` printed no JSON ({e}):\n{}\nstderr: {}",
                self.args.join(" "),
                self.stdout,
                self.stderr
            )
        })
    }

    /// Asserts the exit code, with the command's output in the message.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "`agentsync {}` exited {} (wanted {code})\nstdout: {}\nstderr: {}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// One machine: a data dir, a home (for `~/.claude/projects`), an origin id.
pub struct Machine {
    pub name: String,
    pub origin: String,
    pub data: PathBuf,
    pub home: PathBuf,
    /// Extra environment of every command (S3 credentials, an HTTP peer's token).
    pub env: Vec<(String, String)>,
}

impl Machine {
    /// A new machine under `root/<name>`, initialised with origin `<name>-<suffix>`.
    pub fn new(root: &Path, name: &str) -> Machine {
        let dir = root.join(name);
        let machine = Machine {
            name: name.to_owned(),
            origin: format!("{name}-0a1b2c"),
            data: dir.join("data"),
            home: dir.join("home"),
            env: Vec::new(),
        };
        fs::create_dir_all(machine.projects()).unwrap();
        let init = machine
            .run(&["init", "--origin", &machine.origin, "--json"])
            .expect(0)
            .json();
        assert_eq!(init["origin"], machine.origin.as_str());
        machine
    }

    /// This machine's Claude Code projects folder (`$HOME/.claude/projects`).
    pub fn projects(&self) -> PathBuf {
        self.home.join(".claude").join("projects")
    }

    pub fn mirror(&self) -> PathBuf {
        self.data.join("store")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("AGENTSYNC_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Adds environment variables to every later command of this machine.
    pub fn with_env(mut self, vars: &[(String, String)]) -> Machine {
        self.env.extend_from_slice(vars);
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .expect("the agentsync binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `--json` run that must exit 0; its output.
    pub fn json(&self, args: &[&str]) -> Value {
        // `--json` first: after `tag S -x` it would be taken for a tag change.
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all).expect(0).json()
    }

    /// Spawns `agentsync sync SHARED --json` (with ingest of `~/.claude/projects`).
    pub fn spawn_sync(&self, shared: &Path) -> Child {
        self.command(&["sync", shared.to_str().unwrap(), "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agentsync binary starts")
    }

    /// `sync SHARED --no-ingest --json`: exit code and report.
    pub fn sync(&self, shared: &Path) -> (i32, Value) {
        let run = self.run(&["sync", shared.to_str().unwrap(), "--no-ingest", "--json"]);
        assert!(
            run.code == 0 || run.code == 3,
            "sync on {} failed ({}):\n{}\n{}",
            self.name,
            run.code,
            run.stdout,
            run.stderr
        );
        (run.code, run.json())
    }

    /// `sync SHARED --no-ingest --heal --json` (self-heal checks every own key) that must
    /// exit 0.
    pub fn sync_heal_ok(&self, shared: &Path) -> Value {
        let run = self
            .run(&[
                "sync",
                shared.to_str().unwrap(),
                "--no-ingest",
                "--heal",
                "--json",
            ])
            .expect(0);
        run.json()
    }

    /// `sync --no-ingest --json` without a target (export to and import from the mirror)
    /// that must exit 0.
    pub fn sync_alone_ok(&self) -> Value {
        self.run(&["sync", "--no-ingest", "--json"])
            .expect(0)
            .json()
    }

    /// A sync that must exit 0.
    pub fn sync_ok(&self, shared: &Path) -> Value {
        let (code, report) = self.sync(shared);
        assert_eq!(code, 0, "sync on {} was partial: {report:#}", self.name);
        report
    }

    /// `ingest` of this machine's projects folder.
    pub fn ingest(&self) -> Value {
        let projects = self.projects();
        self.json(&["ingest", projects.to_str().unwrap()])
    }

    pub fn sessions(&self) -> Value {
        self.json(&["sessions"])
    }

    pub fn trashed(&self) -> Value {
        self.json(&["sessions", "--trashed"])
    }

    pub fn conflicts(&self) -> Value {
        self.json(&["conflicts"])
    }

    /// Ids of every session this machine holds, trashed ones included.
    pub fn session_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sessions()
            .as_array()
            .unwrap()
            .iter()
            .chain(self.trashed().as_array().unwrap())
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// The summary of one session (trashed or not), if present.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.sessions()
            .as_array()
            .unwrap()
            .iter()
            .chain(self.trashed().as_array().unwrap())
            .find(|s| s["id"] == id)
            .cloned()
    }

    /// Everything the convergence checks compare: both lists, the conflicts, and the detail
    /// (messages, pins) of every session.
    pub fn snapshot(&self) -> Value {
        let sessions = self.sessions();
        let trashed = self.trashed();
        let mut details = serde_json::Map::new();
        for s in sessions
            .as_array()
            .unwrap()
            .iter()
            .chain(trashed.as_array().unwrap())
        {
            let id = s["id"].as_str().unwrap();
            details.insert(id.to_owned(), self.json(&["show", id]));
        }
        serde_json::json!({
            "sessions": sessions,
            "trashed": trashed,
            "conflicts": self.conflicts(),
            "details": details,
        })
    }

    /// `verify [TARGET]` must exit 0 and report no problems.
    pub fn verify_ok(&self, target: Option<&Path>) {
        let mut args = vec!["verify"];
        if let Some(t) = target {
            args.push(t.to_str().unwrap());
        }
        args.push("--json");
        let run = self.run(&args);
        assert_eq!(
            run.code, 0,
            "verify {target:?} on {} found problems:\n{}\n{}",
            self.name, run.stdout, run.stderr
        );
        let report = run.json();
        assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
        assert_eq!(report["database"], "ok", "{report:#}");
    }
}

/// Whether a sync report says the run changed nothing anywhere.
pub fn quiet(report: &Value) -> bool {
    [
        "exported",
        "sent",
        "exchanged",
        "fetched",
        "imported_sessions",
        "events_published",
        "events_applied",
    ]
    .iter()
    .all(|k| report[*k].as_u64() == Some(0))
}

/// Syncs the machines round-robin until two full rounds change nothing; panics after
/// `max_rounds`. Every sync must exit 0.
pub fn settle(machines: &[&Machine], shared: &Path, max_rounds: usize) {
    let mut quiet_rounds = 0;
    for _ in 0..max_rounds {
        let mut all_quiet = true;
        for m in machines {
            let report = m.sync_ok(shared);
            all_quiet &= quiet(&report);
        }
        quiet_rounds = if all_quiet { quiet_rounds + 1 } else { 0 };
        if quiet_rounds == 2 {
            return;
        }
    }
    panic!("no quiescence after {max_rounds} rounds");
}

/// Asserts that every machine shows the same snapshot as the first.
pub fn assert_converged(machines: &[&Machine]) -> Value {
    let first = machines[0].snapshot();
    for m in &machines[1..] {
        let other = m.snapshot();
        if other != first {
            panic!(
                "{} and {} differ:\n{}",
                machines[0].name,
                m.name,
                first_difference(&first, &other, "")
            );
        }
    }
    first
}

/// The path and both values of the first place two JSON values differ.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                if va != vb {
                    return first_difference(va, vb, &format!("{path}.{key}"));
                }
            }
            String::new()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if va != vb {
                    return first_difference(va, vb, &format!("{path}[{i}]"));
                }
            }
            String::new()
        }
        _ => format!("at {path}:\n  {a}\nvs\n  {b}"),
    }
}

/// A synthetic Claude Code session log, shaped like the real records of
/// `logs/tests/fixtures/claude-code/`: alternating user and assistant records chained by
/// `parentUuid`, one file per session under `<projects>/<project>/<session>.jsonl`.
pub struct ClaudeLog {
    pub path: PathBuf,
    pub session: String,
    pub project: String,
    pub messages: u64,
    /// Seconds since 2025-07-19T00:00:00Z of the first record.
    pub start_secs: u64,
}

impl ClaudeLog {
    pub fn create(projects: &Path, project: &str, session: &str, start_secs: u64) -> ClaudeLog {
        let dir = projects.join(format!("-home-dev-{project}"));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{session}.jsonl"));
        fs::write(&path, "").unwrap();
        ClaudeLog {
            path,
            session: session.to_owned(),
            project: project.to_owned(),
            messages: 0,
            start_secs,
        }
    }

    /// A new log with `n` messages.
    pub fn write(
        projects: &Path,
        project: &str,
        session: &str,
        start_secs: u64,
        n: u64,
    ) -> ClaudeLog {
        let mut log = ClaudeLog::create(projects, project, session, start_secs);
        log.append(n);
        log
    }

    fn uuid_of(&self, index: u64) -> String {
        // The session's first 24 characters (`xxxxxxxx-xxxx-4xxx-8xxx-`) and the index.
        format!("{}{index:012x}", &self.session[..24])
    }

    fn timestamp(&self, index: u64) -> String {
        let secs = self.start_secs + index * 7;
        let (day, rem) = (19 + secs / 86_400, secs % 86_400);
        format!(
            "2025-07-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            index % 1000
        )
    }

    fn record(&self, index: u64) -> Value {
        let parent = if index == 0 {
            Value::Null
        } else {
            Value::String(self.uuid_of(index - 1))
        };
        let cwd = format!("/home/dev/{}", self.project);
        let uuid = self.uuid_of(index);
        if index.is_multiple_of(2) {
            serde_json::json!({
                "parentUuid": parent,
                "isSidechain": false,
                "userType": "external",
                "cwd": cwd,
                "sessionId": self.session,
                "version": "1.0.55",
                "gitBranch": "main",
                "type": "user",
                "message": {
                    "role": "user",
                    "content": format!("question {index} about {} in session {}", self.project, &self.session[..8]),
                },
                "uuid": uuid,
                "timestamp": self.timestamp(index),
            })
        } else {
            serde_json::json!({
                "parentUuid": parent,
                "isSidechain": false,
                "userType": "external",
                "cwd": cwd,
                "sessionId": self.session,
                "version": "1.0.55",
                "gitBranch": "main",
                "message": {
                    "id": format!("msg_{}{index:06}", &self.session[..8]),
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-opus-4-1-20250805",
                    "content": [{"type": "text", "text": format!("answer {index}: the {} build is fine", self.project)}],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": 4 + index, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 20 + index},
                },
                "requestId": format!("req_{}{index:06}", &self.session[..8]),
                "type": "assistant",
                "uuid": uuid,
                "timestamp": self.timestamp(index),
            })
        }
    }

    /// Appends `n` messages (one record each) to the log.
    pub fn append(&mut self, n: u64) {
        let mut text = String::new();
        for i in self.messages..self.messages + n {
            text.push_str(&self.record(i).to_string());
            text.push('\n');
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
        self.messages += n;
    }

    /// The session's id on `origin`.
    pub fn gid(&self, origin: &str) -> String {
        format!("{origin}~{}", self.session)
    }
}

/// Every file under `dir` (recursively), relative paths with their bytes.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Flips a few bytes in the middle of a file (same length). The file's time moves a second
/// on, as it would for damage done after the sync: file times are kept at the kernel's clock
/// tick, so a write within the same few milliseconds as the sync's own last write could not
/// be told apart from it (the self-heal then misses it; `verify` does not).
pub fn flip_bytes(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let (mid, end) = (bytes.len() / 2, (bytes.len() / 2 + 3).min(bytes.len()));
    for b in &mut bytes[mid..end] {
        *b ^= 0xa5;
    }
    fs::write(path, bytes).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

/// The shared folder of a test world (created: `sync` refuses a target that does not exist).
pub fn shared_folder(scratch: &Path) -> PathBuf {
    let shared = scratch.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    shared
}

/// The repository root (for its scripts).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A real S3 server (moto, installed and started by `scripts/moto`) on a free loopback port,
/// stopped when dropped.
pub struct Moto {
    dir: PathBuf,
    pub endpoint: String,
}

impl Moto {
    /// `auth`: moto checks SigV4 signatures (only keys made through its IAM API work).
    pub fn start(dir: &Path, auth: bool) -> Moto {
        fs::create_dir_all(dir).unwrap();
        let mut cmd = Command::new(repo().join("scripts/moto"));
        cmd.arg("start");
        if auth {
            cmd.arg("--auth");
        }
        let out = cmd.arg(dir).output().expect("scripts/moto runs");
        assert!(
            out.status.success(),
            "scripts/moto start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Moto {
            dir: dir.to_path_buf(),
            endpoint,
        }
    }

    /// What a machine needs in its environment to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Creates a bucket (moto accepts an unsigned CreateBucket outside auth mode).
    pub fn create_bucket(&self, bucket: &str) {
        let code = http_status("PUT", &format!("{}/{bucket}", self.endpoint), &[], b"");
        assert_eq!(code, 200, "creating bucket {bucket}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/moto"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// `agentsync serve` of a machine on a free loopback port, killed when dropped.
pub struct Served {
    child: Child,
    pub url: String,
    pub token: String,
}

impl Served {
    pub fn start(machine: &Machine, token: &str) -> Served {
        use std::io::BufRead;
        let mut child = machine
            .command(&[
                "--json",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token",
                token,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("agentsync serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let first: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("serve printed {line:?}: {e}"));
        Served {
            child,
            url: first["url"].as_str().unwrap().to_owned(),
            token: token.to_owned(),
        }
    }

    /// What a client machine needs in its environment.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("AGENTSYNC_TOKEN".into(), self.token.clone())]
    }

    /// Stops it with SIGTERM (a graceful shutdown) and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request (the path sent exactly as given, no client normalisation);
/// the response's status code.
pub fn http_status(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    http_request(method, url, headers, body).0
}

/// One raw HTTP/1.1 request: status and body.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::Read;
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413, 401) before reading the whole body and close.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(Vec::new(), |at| response[at + 4..].to_vec());
    (code, body)
}
