//! Codex CLI rollouts: `sessions/YYYY/MM/DD/rollout-<YYYY-MM-DDTHH-MM-SS>-<uuid>.jsonl`.
//!
//! Shapes follow `host-native/tests/fixtures/codex/make_fixtures.py`, itself modelled on real
//! rollouts: every line is `{"timestamp","type","payload"}`. `session_meta` opens the file;
//! injected context (instructions, environment) comes as user or developer messages; each turn
//! has the prompt (as a `response_item` and again as an `event_msg`), a `turn_context`, then per
//! model call an optional reasoning summary, one tool call, a `token_count` with cumulative and
//! per-call usage, and the call's output; the turn ends with the answer. Versions before 0.60
//! call `shell` and wrap its output as JSON; later ones call `exec_command`, whose output is
//! text headed by the exit code.

use std::io;
use std::path::Path;

use crate::ids;
use crate::json::Json;
use crate::logfile::{FileStats, LogFile};
use crate::project::Project;
use crate::rng::Rng;
use crate::shape;
use crate::text;
use crate::time;
use crate::tools;

pub struct Spec<'a> {
    pub sessions_dir: &'a Path,
    pub project: &'a Project,
    pub id: String,
    pub start_ms: i64,
    pub version: &'static str,
    pub model: &'static str,
    pub git_branch: String,
    /// The thread that spawned this one, for a subagent thread.
    pub parent: Option<String>,
    pub budget: u64,
}

/// Cumulative token counts: Codex reports them with every `token_count`.
#[derive(Default)]
struct Totals {
    input: u64,
    cached: u64,
    output: u64,
    reasoning: u64,
}

fn usage(j: &mut Json, input: u64, cached: u64, output: u64, reasoning: u64) {
    j.n("input_tokens", input)
        .n("cached_input_tokens", cached)
        .n("output_tokens", output)
        .n("reasoning_output_tokens", reasoning)
        .n("total_tokens", input + output);
}

struct Rollout<'a> {
    spec: &'a Spec<'a>,
    rng: &'a mut Rng,
    file: LogFile,
    j: Json,
    /// JSON written inside a string (function-call arguments, wrapped shell output).
    inner: Json,
    clock: i64,
    totals: Totals,
    context: u64,
    /// Versions from 0.60 on run commands with `exec_command`.
    exec: bool,
}

impl Rollout<'_> {
    /// Writes one `{"timestamp","type","payload"}` line.
    fn line(&mut self, kind: &str, payload: impl FnOnce(&mut Json)) -> io::Result<()> {
        self.j.clear();
        let clock = self.clock;
        self.j.obj(|j| {
            j.t("timestamp", clock)
                .s("type", kind)
                .o("payload", payload);
        });
        self.file.line(&self.j)?;
        self.context += self.j.len() as u64 / 8;
        Ok(())
    }

    fn tick(&mut self, lo: u64, hi: u64) {
        self.clock += self.rng.range(lo, hi) as i64;
    }

    fn room(&self) -> u64 {
        self.spec.budget.saturating_sub(self.file.bytes())
    }

    fn max_output(&self) -> usize {
        ((self.room() / 2) as usize).clamp(1024, 128 * 1024)
    }

    /// A message item: one `input_text`/`output_text` part. Every one becomes a message.
    fn message(&mut self, role: &str, text: &str) -> io::Result<()> {
        let part = if role == "assistant" {
            "output_text"
        } else {
            "input_text"
        };
        self.line("response_item", |j| {
            j.s("type", "message").s("role", role).a("content", |j| {
                j.obj(|j| {
                    j.s("type", part).s("text", text);
                });
            });
        })?;
        self.file.stats.messages += 1;
        Ok(())
    }

    fn token_count(&mut self, output: u64, reasoning: u64) -> io::Result<()> {
        let input = self.context;
        let cached = input / 1024 * 1024 * 9 / 10;
        let t = &mut self.totals;
        t.input += input;
        t.cached += cached;
        t.output += output;
        t.reasoning += reasoning;
        let (ti, tc, to, tr) = (t.input, t.cached, t.output, t.reasoning);
        let primary = self.rng.below(100);
        let secondary = self.rng.below(100);
        let resets = self.rng.below(18_000);
        self.line("event_msg", |j| {
            j.s("type", "token_count")
                .o("info", |j| {
                    j.o("total_token_usage", |j| usage(j, ti, tc, to, tr))
                        .o("last_token_usage", |j| {
                            usage(j, input, cached, output, reasoning)
                        })
                        .n("model_context_window", 272_000);
                })
                .o("rate_limits", |j| {
                    j.o("primary", |j| {
                        j.key("used_percent")
                            .float(primary as f64, 1)
                            .n("window_minutes", 299)
                            .n("resets_in_seconds", resets);
                    })
                    .o("secondary", |j| {
                        j.key("used_percent")
                            .float(secondary as f64 / 4.0, 1)
                            .n("window_minutes", 10_079)
                            .n("resets_in_seconds", resets * 20);
                    });
                });
        })
    }

    fn turn_context(&mut self) -> io::Result<()> {
        let cwd = &self.spec.project.cwd;
        let model = self.spec.model;
        self.line("turn_context", |j| {
            j.s("cwd", cwd)
                .s("approval_policy", "on-request")
                .o("sandbox_policy", |j| {
                    j.s("mode", "workspace-write")
                        .b("network_access", false)
                        .b("exclude_tmpdir_env_var", false)
                        .b("exclude_slash_tmp", false);
                })
                .s("model", model)
                .s("effort", "medium")
                .s("summary", "auto");
        })
    }

    /// One model call that runs a tool: reasoning, the call, its usage, its output.
    fn step(&mut self) -> io::Result<()> {
        self.tick(800, 9_000);
        let mut reasoning_tokens = 0;
        if self.rng.chance(0.6) {
            let mut summary = String::from("**");
            text::title(self.rng, &mut summary);
            summary.push_str("**");
            let heading = summary.clone();
            summary.push_str("\n\n");
            let n = 1 + self.rng.below(4) as usize;
            text::paragraph(self.rng, &mut summary, n);
            reasoning_tokens = 64 * (1 + self.rng.below(8));
            self.line("event_msg", |j| {
                j.s("type", "agent_reasoning").s("text", &heading);
            })?;
            let mut encrypted = String::from("gAAAAAB");
            // The encrypted reasoning grows with the reasoning, and does not compress.
            let n = 500 + self.rng.below(1000) as usize + reasoning_tokens as usize * 2;
            self.rng.base62(&mut encrypted, n);
            // Some models log only the encrypted form: no text, so no message.
            let with_text = self.rng.chance(0.9);
            self.line("response_item", |j| {
                j.s("type", "reasoning").a("summary", |j| {
                    if with_text {
                        j.obj(|j| {
                            j.s("type", "summary_text").s("text", &summary);
                        });
                    }
                });
                j.null_at("content").s("encrypted_content", &encrypted);
            })?;
            if with_text {
                self.file.stats.messages += 1;
            }
        }
        let call_id = ids::call_id(self.rng);
        let max = self.max_output();
        let kind = self.rng.below(100);
        self.tick(5, 400);
        if kind < 5 {
            let mut query = String::new();
            let n = 3 + self.rng.below(5) as usize;
            text::words(self.rng, &mut query, n);
            self.line("response_item", |j| {
                j.s("type", "web_search_call")
                    .s("status", "completed")
                    .o("action", |j| {
                        j.s("type", "search").s("query", &query);
                    });
            })?;
            self.count_call();
            let n = 30 + self.rng.below(200);
            self.token_count(n, reasoning_tokens)?;
            return Ok(());
        }
        if kind < 30 {
            let edit = tools::edit(self.spec.project, self.rng, max);
            let patch = edit.patch();
            self.line("response_item", |j| {
                j.s("type", "custom_tool_call")
                    .s("status", "completed")
                    .s("call_id", &call_id)
                    .s("name", "apply_patch")
                    .s("input", &patch);
            })?;
            self.count_call();
            self.token_count(40 + patch.len() as u64 / 4, reasoning_tokens)?;
            self.tick(50, 400);
            let summary = format!(
                "Success. Updated the following files:\nM {}\n",
                edit.relative
            );
            // Newer versions head apply_patch's output like a command's, without a chunk id.
            let output = if self.exec {
                format!("Exit code: 0\nWall time: 0 seconds\nOutput:\n{summary}")
            } else {
                self.command_output(&summary, 0, 0.0)
            };
            self.line("response_item", |j| {
                j.s("type", "custom_tool_call_output")
                    .s("call_id", &call_id)
                    .s("output", &output);
            })?;
            return Ok(());
        }
        let shell = tools::shell(
            self.spec.project,
            self.rng,
            max,
            &self.spec.git_branch,
            true,
        );
        let cwd = &self.spec.project.cwd;
        self.inner.clear();
        let name = if self.exec {
            self.inner.obj(|j| {
                j.s("cmd", &shell.command)
                    .s("workdir", cwd)
                    .n("yield_time_ms", 10_000)
                    .n("max_output_tokens", 6_000);
            });
            "exec_command"
        } else {
            self.inner.obj(|j| {
                j.a("command", |j| {
                    j.str("bash").str("-lc").str(&shell.command);
                })
                .s("workdir", cwd);
                if shell.millis > 10_000 {
                    j.n("timeout_ms", 300_000);
                }
            });
            "shell"
        };
        let arguments = std::mem::take(&mut self.inner);
        self.line("response_item", |j| {
            j.s("type", "function_call")
                .s("name", name)
                .key("arguments")
                .bytes_str(&arguments.buf)
                .s("call_id", &call_id);
        })?;
        self.inner = arguments;
        self.count_call();
        self.token_count(20 + shell.command.len() as u64 / 3, reasoning_tokens)?;
        self.clock += shell.millis as i64;
        let output =
            self.command_output(&shell.output, shell.exit_code, shell.millis as f64 / 1000.0);
        self.line("response_item", |j| {
            j.s("type", "function_call_output")
                .s("call_id", &call_id)
                .s("output", &output);
        })
    }

    fn count_call(&mut self) {
        self.file.stats.messages += 1;
        self.file.stats.tool_calls += 1;
    }

    /// A command's output as the version logs it: JSON with the exit code in `metadata`
    /// (before 0.60), or text headed by the exit code.
    fn command_output(&mut self, output: &str, exit_code: i64, seconds: f64) -> String {
        if self.exec {
            let mut chunk = String::new();
            self.rng.hex(&mut chunk, 6);
            format!(
                "Chunk ID: {chunk}\nWall time: {seconds:.4} seconds\nProcess exited with code {exit_code}\nOriginal token count: {}\nOutput:\n{output}",
                output.len() / 4
            )
        } else {
            self.inner.clear();
            self.inner.obj(|j| {
                j.s("output", output).o("metadata", |j| {
                    j.key("exit_code")
                        .num(exit_code as u64)
                        .key("duration_seconds")
                        .float(seconds, 1);
                });
            });
            String::from_utf8_lossy(&self.inner.buf).into_owned()
        }
    }

    fn turn(&mut self, first: bool) -> io::Result<()> {
        let mut prompt = String::new();
        let project = self.spec.project;
        let file = project.pick_file(self.rng);
        text::prompt(
            self.rng,
            &mut prompt,
            project.lang,
            &project.files[file].path,
        );
        self.message("user", &prompt)?;
        self.line("event_msg", |j| {
            j.s("type", "user_message")
                .s("message", &prompt)
                .a("images", |_| {});
        })?;
        self.tick(1, 5);
        self.turn_context()?;
        if first {
            self.tick(200, 1_000);
            self.line("event_msg", |j| {
                j.s("type", "token_count").null_at("info");
            })?;
        }
        let steps = shape::STEPS.draw(self.rng) - 2;
        for _ in 0..steps {
            if self.room() == 0 {
                break;
            }
            self.step()?;
        }
        self.tick(1_000, 15_000);
        let mut answer = String::new();
        let paths: Vec<&str> = (0..3)
            .map(|_| project.files[project.pick_file(self.rng)].path.as_str())
            .collect();
        text::answer(self.rng, &mut answer, project.lang, &paths);
        self.line("event_msg", |j| {
            j.s("type", "agent_message").s("message", &answer);
        })?;
        self.tick(1, 3);
        self.message("assistant", &answer)?;
        self.tick(20, 60);
        self.token_count(answer.len() as u64 / 4, 0)
    }
}

fn environment_context(cwd: &str) -> String {
    format!(
        "<environment_context>\n  <cwd>{cwd}</cwd>\n  <approval_policy>on-request</approval_policy>\n  <sandbox_mode>workspace-write</sandbox_mode>\n  <network_access>restricted</network_access>\n  <shell>bash</shell>\n</environment_context>"
    )
}

/// Whether a Codex version runs commands with `exec_command` (0.60 and later) rather than
/// `shell`.
pub fn runs_exec_command(version: &str) -> bool {
    let minor = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 60)
}

/// The rollout's path under `sessions/`.
pub fn rollout_path(sessions_dir: &Path, id: &str, start_ms: i64) -> std::path::PathBuf {
    let (folder, stamp) = time::rollout_stamp(start_ms);
    sessions_dir
        .join(folder)
        .join(format!("rollout-{stamp}-{id}.jsonl"))
}

pub fn write_session(spec: &Spec<'_>, rng: &mut Rng) -> io::Result<FileStats> {
    let path = rollout_path(spec.sessions_dir, &spec.id, spec.start_ms);
    let file = LogFile::create(&path, spec.parent.is_some())?;
    let exec = runs_exec_command(spec.version);
    let mut r = Rollout {
        spec,
        rng,
        file,
        j: Json::new(),
        inner: Json::new(),
        clock: spec.start_ms + 20,
        totals: Totals::default(),
        context: 4_000,
        exec,
    };
    let mut commit = String::new();
    r.rng.hex(&mut commit, 40);
    let project = spec.project;
    r.line("session_meta", |j| {
        j.s("id", &spec.id)
            .t("timestamp", spec.start_ms)
            .s("cwd", &project.cwd)
            .s("originator", "codex_cli_rs")
            .s("cli_version", spec.version)
            .null_at("instructions");
        if let Some(parent) = &spec.parent {
            j.o("source", |j| {
                j.o("subagent", |j| {
                    j.o("thread_spawn", |j| {
                        j.s("parent_thread_id", parent).n("depth", 1);
                    });
                });
            });
        }
        j.s("model_provider", "openai").o("git", |j| {
            j.s("commit_hash", &commit).s("branch", &spec.git_branch).s(
                "repository_url",
                &format!("git@github.com:example/{}.git", project.name()),
            );
        });
    })?;
    r.tick(1, 3);
    if exec {
        r.message(
            "developer",
            "<permissions instructions>\nFilesystem sandboxing: workspace-write. Approval policy: on-request.\n</permissions instructions>",
        )?;
    }
    if r.rng.chance(0.5) {
        let mut rules = String::new();
        for _ in 0..2 + r.rng.below(8) {
            rules.push_str("- ");
            text::sentence(r.rng, &mut rules);
            rules.push('\n');
        }
        let text = if exec {
            format!(
                "# AGENTS.md instructions for {}\n\n<INSTRUCTIONS>\n{rules}</INSTRUCTIONS>",
                project.cwd
            )
        } else {
            format!(
                "<user_instructions>\n\n# Repository guidelines\n\n{rules}\n</user_instructions>"
            )
        };
        r.message("user", &text)?;
    }
    r.message("user", &environment_context(&project.cwd))?;
    r.tick(2_000, 30_000);
    let turns = shape::TURNS.draw(r.rng);
    for turn in 0..turns {
        if turn > 0 {
            if r.room() == 0 {
                break;
            }
            r.clock += 5_000 + r.rng.heavy(5_000.0, 0.5, 3_600_000.0) as i64;
        }
        if r.context > shape::COMPACT_AT_TOKENS {
            let mut summary = String::from("Summary of the conversation so far: ");
            text::thinking(r.rng, &mut summary);
            r.line("compacted", |j| {
                j.s("message", &summary);
            })?;
            r.file.stats.messages += 1;
            r.context = 10_000;
        }
        r.turn(turn == 0)?;
    }
    r.file.finish()
}
