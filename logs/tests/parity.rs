//! Parity: for every fixture log of every agent, the messages, typed prompts, tool calls and
//! answered calls the parser finds match the counts written beside the fixtures
//! (`<fixture folder>/counts.json`), which were derived by hand from the logs, never from the
//! parser's output. Logs are read as settled (messages waiting for tool results published),
//! as a log the agent is done with.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use agentsync_core::Message;
use agentsync_logs::agent::{self, Agent, LinesOptions, Reader};
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counts {
    sessions: u64,
    messages: u64,
    /// Messages the user typed: role `user`, not flagged `system` (generated or injected).
    user_messages: u64,
    tool_calls: u64,
    /// Calls that end up with a non-empty result.
    tool_results: u64,
    /// Messages on a branch the user left (counted in `messages` too); 0 when not given.
    #[serde(default)]
    abandoned: u64,
    /// How the counts were derived (for the reader; not compared).
    #[serde(default)]
    how: String,
}

impl Counts {
    fn add(&mut self, messages: &[Message]) {
        self.sessions += 1;
        self.messages += messages.len() as u64;
        for m in messages {
            self.user_messages += u64::from(m.role == "user" && !m.system);
            self.tool_calls += m.tool_calls.len() as u64;
            self.abandoned += u64::from(m.abandoned);
            self.tool_results +=
                m.tool_calls.iter().filter(|c| !c.result.is_empty()).count() as u64;
        }
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The agent whose fixtures a folder holds.
fn agent_of_folder(folder: &str) -> Option<&'static Agent> {
    agent::named(match folder {
        "claude-code" => "claude",
        other => other,
    })
}

/// What the parser finds in one log, read whole and settled.
fn parsed_counts(agent: &Agent, path: &Path) -> Counts {
    let mut counts = Counts::default();
    match &agent.reader {
        Reader::Lines(read) => {
            let file = fs::File::open(path).unwrap();
            let pass = read(path, file, None, &LinesOptions { settled: true }).unwrap();
            if pass.session.is_some() {
                counts.add(&pass.messages);
            } else {
                assert!(pass.messages.is_empty(), "{}", path.display());
            }
        }
        Reader::Document(read) => {
            let bytes = fs::read(path).unwrap();
            let document = read(path, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            counts.add(&document.messages);
        }
        Reader::Collection(read) => {
            for session in read(path, &mut |_, _| true).unwrap() {
                let document = session
                    .document
                    .unwrap_or_else(|e| panic!("{} {}: {e}", path.display(), session.key));
                counts.add(&document.messages);
            }
        }
    }
    counts
}

#[test]
fn every_fixture_has_the_counts_derived_by_hand() {
    let mut checked = 0;
    let mut mismatches = Vec::new();
    let mut folders_with_counts = Vec::new();
    for entry in fs::read_dir(fixtures()).unwrap() {
        let folder = entry.unwrap().path();
        let counts_file = folder.join("counts.json");
        if !counts_file.is_file() {
            continue;
        }
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let agent = agent_of_folder(&name).unwrap_or_else(|| panic!("no agent for {name}"));
        folders_with_counts.push(agent.name);
        let expected: BTreeMap<String, Counts> =
            serde_json::from_str(&fs::read_to_string(&counts_file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", counts_file.display()));
        assert!(
            !expected.is_empty(),
            "{} lists no log",
            counts_file.display()
        );
        for (relative, want) in expected {
            let path = folder.join(&relative);
            assert!(
                path.exists(),
                "{} names {relative}, which is missing",
                counts_file.display()
            );
            let mut got = parsed_counts(agent, &path);
            got.how.clone_from(&want.how);
            if got != want {
                mismatches.push(format!(
                    "{name}/{relative}:\n  want {want:?}\n  got  {got:?}"
                ));
            }
            checked += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Every agent read has its counts: a new agent without them fails here.
    for agent in agent::ALL {
        assert!(
            folders_with_counts.contains(&agent.name),
            "no counts.json for the fixtures of {}",
            agent.name
        );
    }
    assert!(checked >= agent::ALL.len());
}
