//! A deterministic corpus of coding-agent session logs, shaped like real ones, for benchmarks.
//!
//! [`generate`] writes Claude Code sessions (`claude/projects/<project>/<session>.jsonl`, with
//! subagent logs where each version puts them) and Codex CLI rollouts
//! (`codex/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl`), about 80% and 20% of sessions,
//! until a target size is reached. Session lengths and tool-result sizes are heavy-tailed; text
//! is drawn from a fixed vocabulary and code templates, so it compresses like real logs do.
//! Everything comes from the seed: the same seed and size give a byte-identical tree.
//!
//! [`append`] grows one Claude Code session by whole messages, as a running agent does, for
//! benchmarks of incremental ingest and sync.
//!
//! Every generated log parses with the host's parsers without a malformed line, and the
//! summary's `messages` is what they read (`host-native/src/ingest/corpus_tests.rs` checks both).
//!
//! ```text
//! agentsync-bench corpus --seed 1 --size 100MB --out /tmp/corpus [--json]
//! agentsync-bench append --out /tmp/corpus --seed 2 --messages 1 [--json]
//! ```

mod claude;
mod codex;
mod corpus;
mod ids;
mod json;
mod logfile;
mod project;
mod rng;
mod shape;
mod text;
mod time;
mod tools;

pub use corpus::{AppendSummary, CorpusSpec, CorpusSummary, append, generate, parse_size};
