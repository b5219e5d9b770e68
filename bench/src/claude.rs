//! Claude Code session logs: `projects/<project folder>/<session uuid>.jsonl`.
//!
//! Shapes follow the real records in `host-native/tests/fixtures/claude-code/`: every line is a
//! record with `parentUuid` (the previous record of the chain), `isSidechain`, `userType`, `cwd`,
//! `sessionId`, `version`, `gitBranch`, then its own fields, `uuid` and `timestamp`. Assistant
//! API messages are written one content block per record (thinking, text, tool_use), each
//! repeating the message's `usage` with a growing output count. A tool's result is a `user`
//! record holding a `tool_result` block, plus `toolUseResult`: the tool's structured output,
//! which repeats much of the result (file contents, command output), as real logs do.
//!
//! Subagents (the `Task` tool) follow the version's layout, which the parser and `discover.rs`
//! know: 1.0.x writes the subagent's records into the same log as a sidechain; 2.0.x writes
//! `<project>/agent-<id>.jsonl` beside the session; later versions write
//! `<project>/<session>/subagents/agent-<id>.jsonl`.

use std::io;
use std::path::Path;

use crate::ids;
use crate::json::Json;
use crate::logfile::{FileStats, LogFile};
use crate::project::Project;
use crate::rng::Rng;
use crate::shape;
use crate::text;
use crate::tools;

/// How a Claude Code version lays out subagents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 1.0.x: sidechain records in the session's own log.
    Inline,
    /// 2.0.x: `agent-<id>.jsonl` beside the session's log.
    Beside,
    /// Later: `<session>/subagents/agent-<id>.jsonl`.
    Nested,
}

pub fn era(version: &str) -> Era {
    if version.starts_with("1.") {
        Era::Inline
    } else if version.starts_with("2.0.") {
        Era::Beside
    } else {
        Era::Nested
    }
}

/// The position in a conversation and the fields every record of it repeats.
#[derive(Debug, Clone)]
pub struct Chain {
    /// `sessionId`: the session's id (in a subagent's log, its parent session's).
    pub session_id: String,
    pub cwd: String,
    pub version: String,
    pub git_branch: String,
    pub slug: Option<String>,
    pub agent_id: Option<String>,
    pub sidechain: bool,
    /// The last record written on this chain: the next one's `parentUuid`.
    pub parent: Option<String>,
    pub clock: i64,
    pub model: String,
    /// Tokens in the model's context, for plausible cache-read counts.
    pub context_tokens: u64,
}

/// One log being written.
pub struct Log {
    pub file: LogFile,
    j: Json,
}

/// A tool call with its outcome, prepared before its records are written.
struct Call {
    id: String,
    name: &'static str,
    /// The `input` object, encoded.
    input: Json,
    /// The `tool_result` content: a string, or (for subagents) text blocks.
    result: String,
    blocks: bool,
    is_error: bool,
    /// The `toolUseResult` value, encoded.
    tool_use_result: Json,
    millis: u64,
    /// For `Task`: the subagent's prompt, run before the result exists.
    task: Option<String>,
}

/// One API response: its records share id, request id and usage.
struct Api {
    id: String,
    request_id: String,
    input: u64,
    cache_creation: u64,
    cache_read: u64,
    output: u64,
}

impl Api {
    fn new(rng: &mut Rng, chain: &mut Chain) -> Api {
        let fresh = 200 + rng.below(6000);
        let api = Api {
            id: ids::message_id(rng),
            request_id: ids::request_id(rng),
            input: 1 + rng.below(12),
            cache_creation: fresh,
            cache_read: chain.context_tokens,
            output: 0,
        };
        chain.context_tokens += fresh;
        api
    }
}

#[derive(Clone, Copy)]
enum Block<'a> {
    Text(&'a str),
    Thinking(&'a str),
    ToolUse(&'a Call),
}

impl Log {
    pub fn create(path: &Path, subagent: bool) -> io::Result<Log> {
        Ok(Log {
            file: LogFile::create(path, subagent)?,
            j: Json::new(),
        })
    }

    pub fn append(path: &Path) -> io::Result<Log> {
        Ok(Log {
            file: LogFile::append(path)?,
            j: Json::new(),
        })
    }

    pub fn bytes(&self) -> u64 {
        self.file.bytes()
    }

    /// Opens a record with the fields every conversation record starts with.
    fn header(&mut self, c: &Chain, parent: Option<&str>, logical_parent: Option<&str>) {
        let j = &mut self.j;
        j.clear();
        j.begin_obj();
        j.s_or_null("parentUuid", parent);
        if let Some(logical) = logical_parent {
            j.s("logicalParentUuid", logical);
        }
        j.b("isSidechain", c.sidechain)
            .s("userType", "external")
            .s("cwd", &c.cwd)
            .s("sessionId", &c.session_id)
            .s("version", &c.version)
            .s("gitBranch", &c.git_branch);
        if let Some(agent) = &c.agent_id {
            j.s("agentId", agent);
        }
        if let Some(slug) = &c.slug {
            j.s("slug", slug);
        }
    }

    fn begin(&mut self, c: &Chain) {
        let parent = c.parent.clone();
        self.header(c, parent.as_deref(), None);
    }

    /// Closes the record with its `uuid` and `timestamp` (and `toolUseResult`), writes it, and
    /// makes it the chain's last record.
    fn close(
        &mut self,
        c: &mut Chain,
        uuid: String,
        tool_use_result: Option<&Json>,
    ) -> io::Result<()> {
        self.j.s("uuid", &uuid).t("timestamp", c.clock);
        if let Some(result) = tool_use_result {
            self.j.key("toolUseResult").raw(&result.buf);
        }
        self.j.end_obj();
        self.file.line(&self.j)?;
        c.context_tokens += self.j.len() as u64 / 8;
        c.parent = Some(uuid);
        Ok(())
    }

    /// A user record with text: a prompt, or (with `meta`) text Claude Code wrote itself.
    fn user_text(&mut self, c: &mut Chain, uuid: String, text: &str, meta: bool) -> io::Result<()> {
        self.begin(c);
        self.j.s("type", "user").o("message", |j| {
            j.s("role", "user").s("content", text);
        });
        if meta {
            self.j.b("isMeta", true);
        }
        self.close(c, uuid, None)?;
        self.file.stats.messages += 1;
        Ok(())
    }

    fn tool_result(&mut self, c: &mut Chain, rng: &mut Rng, call: &Call) -> io::Result<()> {
        self.begin(c);
        self.j.s("type", "user").o("message", |j| {
            j.s("role", "user").a("content", |j| {
                j.obj(|j| {
                    j.s("tool_use_id", &call.id).s("type", "tool_result");
                    if call.blocks {
                        j.a("content", |j| {
                            j.obj(|j| {
                                j.s("type", "text").s("text", &call.result);
                            });
                        });
                    } else {
                        j.s("content", &call.result);
                    }
                    if call.is_error {
                        j.b("is_error", true);
                    }
                });
            });
        });
        self.close(c, ids::uuid_v4(rng), Some(&call.tool_use_result))
    }

    /// One content block of an API response, as its own record.
    fn assistant(
        &mut self,
        c: &mut Chain,
        rng: &mut Rng,
        api: &mut Api,
        block: Block<'_>,
    ) -> io::Result<()> {
        api.output += match block {
            Block::Text(t) | Block::Thinking(t) => 1 + t.len() as u64 / 4,
            Block::ToolUse(call) => 10 + call.input.len() as u64 / 4,
        };
        self.begin(c);
        let model = c.model.as_str();
        self.j.o("message", |j| {
            j.s("id", &api.id)
                .s("type", "message")
                .s("role", "assistant")
                .s("model", model)
                .a("content", |j| {
                    j.obj(|j| match block {
                        Block::Text(text) => {
                            j.s("type", "text").s("text", text);
                        }
                        Block::Thinking(text) => {
                            // Opaque and random: a real share of a log's bytes that
                            // does not compress.
                            let mut signature = String::with_capacity(2048);
                            signature.push_str("Eu");
                            let n = 300 + rng.below(600) as usize + text.len() / 8;
                            rng.base62(&mut signature, n);
                            j.s("type", "thinking")
                                .s("thinking", text)
                                .s("signature", &signature);
                        }
                        Block::ToolUse(call) => {
                            j.s("type", "tool_use")
                                .s("id", &call.id)
                                .s("name", call.name)
                                .key("input")
                                .raw(&call.input.buf);
                        }
                    });
                })
                .null_at("stop_reason")
                .null_at("stop_sequence")
                .o("usage", |j| {
                    j.n("input_tokens", api.input)
                        .n("cache_creation_input_tokens", api.cache_creation)
                        .n("cache_read_input_tokens", api.cache_read)
                        .o("cache_creation", |j| {
                            j.n("ephemeral_5m_input_tokens", api.cache_creation)
                                .n("ephemeral_1h_input_tokens", 0);
                        })
                        .n("output_tokens", api.output)
                        .s("service_tier", "standard");
                });
        });
        self.j
            .s("requestId", &api.request_id)
            .s("type", "assistant");
        self.close(c, ids::uuid_v4(rng), None)?;
        self.file.stats.messages += 1;
        if matches!(block, Block::ToolUse(_)) {
            self.file.stats.tool_calls += 1;
        }
        Ok(())
    }

    /// The file-history snapshot 2.x writes before each prompt (skipped by the parser).
    fn snapshot(&mut self, c: &Chain, prompt_uuid: &str) -> io::Result<()> {
        let clock = c.clock;
        self.bookkeeping(|j| {
            j.s("type", "file-history-snapshot")
                .s("messageId", prompt_uuid)
                .o("snapshot", |j| {
                    j.s("messageId", prompt_uuid)
                        .o("trackedFileBackups", |_| {})
                        .t("timestamp", clock);
                })
                .b("isSnapshotUpdate", false);
        })
    }

    /// A record our parser skips, with no place in the chain.
    fn bookkeeping(&mut self, f: impl FnOnce(&mut Json)) -> io::Result<()> {
        self.j.clear();
        self.j.obj(f);
        self.file.line(&self.j)
    }

    /// A `system` record without content (`turn_duration`): skipped by the parser.
    fn turn_duration(&mut self, c: &mut Chain, rng: &mut Rng, millis: u64) -> io::Result<()> {
        self.begin(c);
        self.j
            .s("type", "system")
            .s("subtype", "turn_duration")
            .n("durationMs", millis)
            .b("isMeta", false);
        self.close(c, ids::uuid_v4(rng), None)
    }

    /// A compaction: the boundary (a new chain that names the old one) and the summary the
    /// conversation continues from. Two messages.
    fn compaction(&mut self, c: &mut Chain, rng: &mut Rng) -> io::Result<()> {
        let previous = c.parent.clone();
        c.clock += 20_000 + rng.below(60_000) as i64;
        self.header(c, None, previous.as_deref());
        let pre_tokens = c.context_tokens;
        self.j
            .s("type", "system")
            .s("subtype", "compact_boundary")
            .s("content", "Conversation compacted")
            .b("isMeta", false)
            .s("level", "info")
            .o("compactMetadata", |j| {
                j.s("trigger", "auto").n("preTokens", pre_tokens);
            });
        self.close(c, ids::uuid_v4(rng), None)?;
        self.file.stats.messages += 1;

        let mut summary = String::from(
            "This session is being continued from a previous conversation that ran out of \
             context. The conversation is summarized below:\nAnalysis:\n",
        );
        text::thinking(rng, &mut summary);
        summary.push_str("\n\nSummary:\n");
        text::thinking(rng, &mut summary);
        self.begin(c);
        self.j
            .s("type", "user")
            .o("message", |j| {
                j.s("role", "user").s("content", &summary);
            })
            .b("isVisibleInTranscriptOnly", true)
            .b("isCompactSummary", true);
        self.close(c, ids::uuid_v4(rng), None)?;
        self.file.stats.messages += 1;
        c.context_tokens = 12_000 + summary.len() as u64 / 4;
        Ok(())
    }
}

/// What a session needs while it is written.
pub struct Session<'a> {
    pub project: &'a Project,
    pub rng: Rng,
    pub era: Era,
    /// The session's log folder (`projects/<project folder>`), for subagent logs.
    pub folder: &'a Path,
    pub budget: u64,
    /// Subagent logs written so far.
    pub subagents: Vec<FileStats>,
    /// Bytes of logs other than the one being written (for the budget).
    other_bytes: u64,
    /// The last todo list, encoded: `TodoWrite` results repeat it as `oldTodos`.
    todos: Json,
}

/// Subagent types the `Task` tool is called with.
const SUBAGENT_TYPES: &[&str] = &["general-purpose", "Explore", "Plan"];

#[derive(Clone, Copy)]
enum Tool {
    Read,
    Bash,
    Edit,
    MultiEdit,
    Write,
    Grep,
    Glob,
    Ls,
    TodoWrite,
    WebFetch,
    WebSearch,
    Task,
}

impl<'a> Session<'a> {
    pub fn new(project: &'a Project, rng: Rng, era: Era, folder: &'a Path, budget: u64) -> Self {
        Session {
            project,
            rng,
            era,
            folder,
            budget,
            subagents: Vec::new(),
            other_bytes: 0,
            todos: Json::new(),
        }
    }

    /// Bytes left in the session's budget.
    fn room(&self, log: &Log) -> u64 {
        self.budget.saturating_sub(self.other_bytes + log.bytes())
    }

    /// The most one tool output may take: long-tailed sizes, but no single result that
    /// overshoots the budget by much.
    fn max_output(&self, log: &Log) -> usize {
        ((self.room(log) / 3) as usize).clamp(1024, 128 * 1024)
    }

    /// A whole session: turns until the drawn number, or the budget, runs out.
    pub fn write(&mut self, log: &mut Log, chain: &mut Chain) -> io::Result<()> {
        let rng = &mut self.rng;
        if self.era == Era::Inline && rng.chance(0.15) {
            let mut title = String::new();
            text::title(rng, &mut title);
            let leaf = ids::uuid_v4(rng);
            log.bookkeeping(|j| {
                j.s("type", "summary")
                    .s("summary", &title)
                    .s("leafUuid", &leaf);
            })?;
        }
        let turns = shape::TURNS.draw(&mut self.rng);
        for turn in 0..turns {
            if turn > 0 {
                if self.room(log) == 0 {
                    break;
                }
                chain.clock += 5_000 + (self.rng.heavy(5_000.0, 0.5, 3_600_000.0) as i64);
            }
            if chain.context_tokens > shape::COMPACT_AT_TOKENS {
                log.compaction(chain, &mut self.rng)?;
            }
            let prompt_uuid = ids::uuid_v4(&mut self.rng);
            if self.era != Era::Inline {
                log.snapshot(chain, &prompt_uuid)?;
            }
            if turn > 0 && self.rng.chance(0.03) {
                self.slash_command(log, chain, prompt_uuid)?;
            } else {
                let mut prompt = String::new();
                let file = self.project.pick_file(&mut self.rng);
                text::prompt(
                    &mut self.rng,
                    &mut prompt,
                    self.project.lang,
                    &self.project.files[file].path,
                );
                let started = chain.clock;
                self.turn(log, chain, prompt_uuid, &prompt, true)?;
                if self.era == Era::Nested && self.rng.chance(0.5) {
                    let millis = (chain.clock - started) as u64;
                    log.turn_duration(chain, &mut self.rng, millis)?;
                }
            }
        }
        Ok(())
    }

    /// A slash command the user typed and its local output: two user messages, no model call.
    fn slash_command(&mut self, log: &mut Log, chain: &mut Chain, uuid: String) -> io::Result<()> {
        let command = *self
            .rng
            .pick(&["model", "cost", "status", "context", "memory"]);
        let typed = format!(
            "<command-name>/{command}</command-name>\n            <command-message>{command}</command-message>\n            <command-args></command-args>"
        );
        log.user_text(chain, uuid, &typed, false)?;
        chain.clock += 100 + self.rng.below(900) as i64;
        let mut output = String::from("<local-command-stdout>");
        text::sentence(&mut self.rng, &mut output);
        output.push_str("</local-command-stdout>");
        log.user_text(chain, ids::uuid_v4(&mut self.rng), &output, false)
    }

    /// A prompt and the model's work on it: steps of tool calls, then an answer, which is
    /// returned (a subagent's answer is its `Task` result).
    fn turn(
        &mut self,
        log: &mut Log,
        chain: &mut Chain,
        uuid: String,
        prompt: &str,
        main: bool,
    ) -> io::Result<String> {
        log.user_text(chain, uuid, prompt, false)?;
        let steps = if main {
            shape::STEPS.draw(&mut self.rng) - 2
        } else {
            shape::SUBAGENT_STEPS.draw(&mut self.rng)
        };
        let mut step = 0;
        loop {
            let last = step >= steps || self.room(log) == 0;
            chain.clock += 1_500 + self.rng.below(12_000) as i64;
            let mut api = Api::new(&mut self.rng, chain);
            if self.rng.chance(if last { 0.25 } else { 0.35 }) {
                let mut thought = String::new();
                text::thinking(&mut self.rng, &mut thought);
                log.assistant(chain, &mut self.rng, &mut api, Block::Thinking(&thought))?;
                chain.clock += 200 + self.rng.below(3_000) as i64;
            }
            if last {
                let mut answer = String::new();
                let project = self.project;
                let paths: Vec<&str> = (0..3)
                    .map(|_| {
                        project.files[project.pick_file(&mut self.rng)]
                            .path
                            .as_str()
                    })
                    .collect();
                text::answer(&mut self.rng, &mut answer, self.project.lang, &paths);
                log.assistant(chain, &mut self.rng, &mut api, Block::Text(&answer))?;
                return Ok(answer);
            }
            if self.rng.chance(0.4) {
                let mut note = String::new();
                text::sentence(&mut self.rng, &mut note);
                log.assistant(chain, &mut self.rng, &mut api, Block::Text(&note))?;
            }
            let parallel = if self.rng.chance(0.15) {
                2 + self.rng.below(3)
            } else {
                1
            };
            let mut calls = Vec::new();
            for _ in 0..parallel {
                let call = self.call(log, chain, main);
                calls.push(call);
            }
            for call in &calls {
                chain.clock += 30 + self.rng.below(400) as i64;
                log.assistant(chain, &mut self.rng, &mut api, Block::ToolUse(call))?;
            }
            for mut call in calls {
                if let Some(task) = call.task.take() {
                    self.subagent(log, chain, &mut call, &task)?;
                }
                chain.clock += call.millis as i64;
                log.tool_result(chain, &mut self.rng, &call)?;
            }
            step += 1;
        }
    }

    /// Runs a `Task` call's subagent (inline or in its own log, as the version does) and fills
    /// in the call's result.
    fn subagent(
        &mut self,
        log: &mut Log,
        chain: &mut Chain,
        call: &mut Call,
        prompt: &str,
    ) -> io::Result<()> {
        let started = chain.clock;
        let mut side = Chain {
            agent_id: None,
            sidechain: true,
            parent: None,
            model: if self.rng.chance(0.3) {
                "claude-haiku-4-5-20251001".to_owned()
            } else {
                chain.model.clone()
            },
            context_tokens: 8_000,
            ..chain.clone()
        };
        let answer;
        let agent_id;
        let tool_uses;
        if self.era == Era::Inline {
            agent_id = None;
            let calls_before = log.file.stats.tool_calls;
            let uuid = ids::uuid_v4(&mut self.rng);
            answer = self.turn(log, &mut side, uuid, prompt, false)?;
            tool_uses = log.file.stats.tool_calls - calls_before;
        } else {
            let id = ids::agent_id(&mut self.rng, self.era == Era::Nested);
            let name = format!("agent-{id}.jsonl");
            let path = match self.era {
                Era::Beside => self.folder.join(name),
                _ => self
                    .folder
                    .join(&chain.session_id)
                    .join("subagents")
                    .join(name),
            };
            side.agent_id = Some(id.clone());
            let mut sub = Log::create(&path, true)?;
            let saved = self.other_bytes;
            self.other_bytes += log.bytes();
            let uuid = ids::uuid_v4(&mut self.rng);
            answer = self.turn(&mut sub, &mut side, uuid, prompt, false)?;
            let stats = sub.file.finish()?;
            self.other_bytes = saved + stats.bytes;
            tool_uses = stats.tool_calls;
            self.subagents.push(stats);
            agent_id = Some(id);
        }
        chain.clock = side.clock + 500;
        let duration = (chain.clock - started) as u64;
        let tokens = side.context_tokens;
        call.result = answer;
        call.blocks = true;
        let j = &mut call.tool_use_result;
        j.clear();
        j.obj(|j| {
            j.s("status", "completed").s("prompt", prompt);
            if let Some(id) = &agent_id {
                j.s("agentId", id);
            }
            j.a("content", |j| {
                j.obj(|j| {
                    j.s("type", "text").s("text", &call.result);
                });
            })
            .n("totalDurationMs", duration)
            .n("totalTokens", tokens)
            .n("totalToolUseCount", tool_uses)
            .o("usage", |j| {
                j.n("input_tokens", 5)
                    .n("cache_creation_input_tokens", tokens / 7)
                    .n("cache_read_input_tokens", tokens - tokens / 7)
                    .n("output_tokens", 200 + call.result.len() as u64 / 4)
                    .s("service_tier", "standard");
            });
        });
        Ok(())
    }

    /// Draws a tool call and its outcome.
    fn call(&mut self, log: &Log, chain: &Chain, allow_task: bool) -> Call {
        let max = self.max_output(log);
        let tool = *self.rng.weighted(&[
            (Tool::Read, 28),
            (Tool::Bash, 22),
            (Tool::Edit, 13),
            (Tool::MultiEdit, 2),
            (Tool::Write, 4),
            (Tool::Grep, 8),
            (Tool::Glob, 4),
            (Tool::Ls, 2),
            (Tool::TodoWrite, 6),
            (Tool::WebFetch, 2),
            (Tool::WebSearch, 1),
            (Tool::Task, if allow_task { 1 } else { 0 }),
        ]);
        let rng = &mut self.rng;
        let project = self.project;
        let mut call = Call {
            id: ids::tool_use_id(rng),
            name: "",
            input: Json::new(),
            result: String::new(),
            blocks: false,
            is_error: false,
            tool_use_result: Json::new(),
            millis: 20 + rng.below(300),
            task: None,
        };
        let (input, tur) = (&mut call.input, &mut call.tool_use_result);
        match tool {
            Tool::Read => {
                call.name = "Read";
                let read = tools::read(project, rng, max / 2);
                input.obj(|j| {
                    j.s("file_path", &read.path);
                    if read.ranged {
                        j.n("offset", read.start as u64)
                            .n("limit", read.lines as u64);
                    }
                });
                if rng.chance(0.03) {
                    call.is_error = true;
                    call.result = "<tool_use_error>File does not exist.</tool_use_error>".into();
                    tur.str("Error: File does not exist.");
                } else {
                    call.result = read.numbered();
                    call.result.push_str("\n<system-reminder>\nWhenever you read a file, you should consider whether it looks malicious. If it does, you MUST refuse to improve or augment the code. You can still analyze existing code, write reports, or answer high-level questions about the code behavior.\n</system-reminder>\n");
                    tur.obj(|j| {
                        j.s("type", "text").o("file", |j| {
                            j.s("filePath", &read.path)
                                .s("content", &read.text)
                                .n("numLines", read.lines as u64)
                                .n("startLine", read.start as u64)
                                .n("totalLines", read.total as u64);
                        });
                    });
                }
            }
            Tool::Bash => {
                call.name = "Bash";
                let shell = tools::shell(project, rng, max, &chain.git_branch, false);
                call.millis = shell.millis;
                input.obj(|j| {
                    j.s("command", &shell.command)
                        .s("description", &shell.description);
                });
                if shell.exit_code != 0 {
                    call.is_error = true;
                    call.result = format!("Exit code {}\n{}", shell.exit_code, shell.output);
                    tur.str(&format!("Error: {}", call.result));
                } else {
                    call.result = if shell.output.is_empty() {
                        "Tool ran without output or errors".to_owned()
                    } else {
                        shell.output.clone()
                    };
                    tur.obj(|j| {
                        j.s("stdout", &shell.output)
                            .s("stderr", "")
                            .b("interrupted", false)
                            .b("isImage", false);
                    });
                }
            }
            Tool::Edit | Tool::MultiEdit => {
                let edit = tools::edit(project, rng, max / 2);
                let multi = matches!(tool, Tool::MultiEdit);
                call.name = if multi { "MultiEdit" } else { "Edit" };
                input.obj(|j| {
                    j.s("file_path", &edit.path);
                    if multi {
                        j.a("edits", |j| {
                            j.obj(|j| {
                                j.s("old_string", &edit.old).s("new_string", &edit.new);
                            });
                        });
                    } else {
                        j.s("old_string", &edit.old).s("new_string", &edit.new);
                    }
                });
                if rng.chance(0.05) {
                    call.is_error = true;
                    let first = edit.old.lines().next().unwrap_or_default();
                    call.result = format!(
                        "<tool_use_error>String to replace not found in file.\nString: {first}</tool_use_error>"
                    );
                    tur.str(&format!(
                        "Error: String to replace not found in file.\nString: {first}"
                    ));
                } else {
                    call.result = if multi {
                        format!(
                            "Applied 1 edit to {}:\n1. Replaced \"{}...\" with \"{}...\"",
                            edit.path,
                            clip(&edit.old, 50),
                            clip(&edit.new, 50)
                        )
                    } else {
                        format!(
                            "The file {} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n{}",
                            edit.path,
                            tools::numbered(&edit.new, edit.start)
                        )
                    };
                    tur.obj(|j| {
                        j.s("filePath", &edit.path);
                        if multi {
                            j.a("edits", |j| {
                                j.obj(|j| {
                                    j.s("old_string", &edit.old)
                                        .s("new_string", &edit.new)
                                        .b("replace_all", false);
                                });
                            })
                            .s("originalFileContents", &edit.original);
                        } else {
                            j.s("oldString", &edit.old)
                                .s("newString", &edit.new)
                                .s("originalFile", &edit.original);
                        }
                        j.a("structuredPatch", |j| {
                            j.obj(|j| {
                                j.n("oldStart", edit.start as u64)
                                    .n("oldLines", edit.old_lines() as u64)
                                    .n("newStart", edit.start as u64)
                                    .n("newLines", edit.new_lines() as u64)
                                    .a("lines", |j| {
                                        for line in edit.old.lines() {
                                            j.str(&format!("-{line}"));
                                        }
                                        for line in edit.new.lines() {
                                            j.str(&format!("+{line}"));
                                        }
                                    });
                            });
                        })
                        .b("userModified", false);
                        if !multi {
                            j.b("replaceAll", false);
                        }
                    });
                }
            }
            Tool::Write => {
                call.name = "Write";
                let (path, _, content) = tools::new_file(project, rng, max / 2);
                input.obj(|j| {
                    j.s("file_path", &path).s("content", &content);
                });
                call.result = format!("File created successfully at: {path}");
                tur.obj(|j| {
                    j.s("type", "create")
                        .s("filePath", &path)
                        .s("content", &content)
                        .a("structuredPatch", |_| {});
                });
            }
            Tool::Grep => {
                call.name = "Grep";
                let found = tools::search(project, rng, max / 2);
                let content_mode = rng.chance(0.5);
                let src = project.abs(project.lang.src());
                input.obj(|j| {
                    j.s("pattern", &found.pattern).s("path", &src).s(
                        "output_mode",
                        if content_mode {
                            "content"
                        } else {
                            "files_with_matches"
                        },
                    );
                    if content_mode {
                        j.b("-n", true);
                    }
                });
                let files: Vec<String> = found.files().iter().map(|f| project.abs(f)).collect();
                if content_mode {
                    for (path, line, text) in &found.hits {
                        call.result
                            .push_str(&format!("{}:{line}:{text}\n", project.abs(path)));
                    }
                    if call.result.is_empty() {
                        call.result.push_str("No matches found");
                    }
                } else if files.is_empty() {
                    call.result.push_str("No files found");
                } else {
                    call.result = format!("Found {} files\n{}", files.len(), files.join("\n"));
                }
                tur.obj(|j| {
                    j.s(
                        "mode",
                        if content_mode {
                            "content"
                        } else {
                            "files_with_matches"
                        },
                    )
                    .n("numFiles", files.len() as u64)
                    .a("filenames", |j| {
                        for f in &files {
                            j.str(f);
                        }
                    });
                    if content_mode {
                        j.s("content", &call.result)
                            .n("numLines", found.hits.len() as u64);
                    }
                });
            }
            Tool::Glob => {
                call.name = "Glob";
                let pattern = format!("**/*.{}", project.lang.ext());
                input.obj(|j| {
                    j.s("pattern", &pattern);
                });
                let files: Vec<String> =
                    project.files.iter().map(|f| project.abs(&f.path)).collect();
                call.result = files.join("\n");
                tur.obj(|j| {
                    j.a("filenames", |j| {
                        for f in &files {
                            j.str(f);
                        }
                    })
                    .n("durationMs", 5 + rng.below(200))
                    .n("numFiles", files.len() as u64)
                    .b("truncated", false);
                });
            }
            Tool::Ls => {
                call.name = "LS";
                let src = project.lang.src();
                input.obj(|j| {
                    j.s("path", &project.abs(src));
                });
                let mut listing = format!("- {}/\n  - {src}/\n", project.cwd);
                for file in project.files.iter().filter(|f| f.path.starts_with(src)) {
                    listing.push_str("    - ");
                    listing.push_str(&file.path[src.len() + 1..]);
                    listing.push('\n');
                }
                call.result = format!(
                    "{listing}\nNOTE: do any of the files above seem malicious? If so, you MUST refuse to continue work."
                );
                tur.str(&listing);
            }
            Tool::TodoWrite => {
                call.name = "TodoWrite";
                let todos = tools::todos(rng);
                let mut list = Json::new();
                list.arr(|j| {
                    for (content, status, active) in &todos {
                        j.obj(|j| {
                            j.s("content", content)
                                .s("status", status)
                                .s("activeForm", active);
                        });
                    }
                });
                input.obj(|j| {
                    j.key("todos").raw(&list.buf);
                });
                call.result = "Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress. Please proceed with the current tasks if applicable".into();
                let old = std::mem::replace(&mut self.todos, list);
                tur.obj(|j| {
                    j.key("oldTodos");
                    if old.is_empty() {
                        j.arr(|_| {});
                    } else {
                        j.raw(&old.buf);
                    }
                    j.key("newTodos").raw(&self.todos.buf);
                });
            }
            Tool::WebFetch => {
                call.name = "WebFetch";
                let url = tools::url(rng);
                let mut question = String::new();
                text::sentence(rng, &mut question);
                input.obj(|j| {
                    j.s("url", &url).s("prompt", &question);
                });
                call.result = tools::web_page(rng, max / 2);
                call.millis = 1_000 + rng.below(15_000);
                tur.obj(|j| {
                    j.n("bytes", 20_000 + rng.below(500_000))
                        .n("code", 200)
                        .s("codeText", "OK")
                        .s("result", &call.result)
                        .n("durationMs", call.millis)
                        .s("url", &url);
                });
            }
            Tool::WebSearch => {
                call.name = "WebSearch";
                let mut query = String::new();
                let n = 3 + rng.below(6) as usize;
                text::words(rng, &mut query, n);
                input.obj(|j| {
                    j.s("query", &query);
                });
                let links: Vec<(String, String)> = (0..3 + rng.below(8))
                    .map(|_| {
                        let mut title = String::new();
                        text::title(rng, &mut title);
                        (title, tools::url(rng))
                    })
                    .collect();
                let mut encoded = Json::new();
                encoded.arr(|j| {
                    for (title, url) in &links {
                        j.obj(|j| {
                            j.s("title", title).s("url", url);
                        });
                    }
                });
                let page = tools::web_page(rng, max / 2);
                call.result = format!(
                    "Web search results for query: \"{query}\"\n\nLinks: {}\n\n{page}",
                    String::from_utf8_lossy(&encoded.buf)
                );
                call.millis = 3_000 + rng.below(20_000);
                let server_id = ids::server_tool_use_id(rng);
                tur.obj(|j| {
                    j.s("query", &query)
                        .a("results", |j| {
                            j.obj(|j| {
                                j.s("tool_use_id", &server_id)
                                    .key("content")
                                    .raw(&encoded.buf);
                            })
                            .str(&page);
                        })
                        .key("durationSeconds")
                        .float(call.millis as f64 / 1000.0, 3);
                });
            }
            Tool::Task => {
                call.name = "Task";
                let mut description = String::new();
                text::title(rng, &mut description);
                let mut prompt = String::new();
                let n = 2 + rng.below(6) as usize;
                text::paragraph(rng, &mut prompt, n);
                let kind = *rng.pick(SUBAGENT_TYPES);
                input.obj(|j| {
                    j.s("description", &description)
                        .s("prompt", &prompt)
                        .s("subagent_type", kind);
                });
                call.task = Some(prompt);
            }
        }
        call
    }
}

fn clip(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends exactly `n` messages to a session: prompts, each followed by tool calls (each call
/// a message, its result none) and an answer, as a live session grows.
pub fn append_messages(
    session: &mut Session<'_>,
    log: &mut Log,
    chain: &mut Chain,
    n: usize,
) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        chain.clock += 10_000 + session.rng.below(600_000) as i64;
        let mut prompt = String::new();
        let file = session.project.pick_file(&mut session.rng);
        text::prompt(
            &mut session.rng,
            &mut prompt,
            session.project.lang,
            &session.project.files[file].path,
        );
        let uuid = ids::uuid_v4(&mut session.rng);
        if session.era != Era::Inline {
            log.snapshot(chain, &uuid)?;
        }
        log.user_text(chain, uuid, &prompt, false)?;
        left -= 1;
        while left > 0 {
            chain.clock += 1_500 + session.rng.below(12_000) as i64;
            let mut api = Api::new(&mut session.rng, chain);
            // Keep one message for the answer, so the exchange ends as turns do.
            if left >= 2 && session.rng.chance(0.6) {
                let call = session.call(log, chain, false);
                log.assistant(chain, &mut session.rng, &mut api, Block::ToolUse(&call))?;
                chain.clock += call.millis as i64;
                log.tool_result(chain, &mut session.rng, &call)?;
                left -= 1;
                continue;
            }
            let mut answer = String::new();
            text::answer(&mut session.rng, &mut answer, session.project.lang, &[]);
            log.assistant(chain, &mut session.rng, &mut api, Block::Text(&answer))?;
            left -= 1;
            break;
        }
    }
    Ok(())
}
