//! A session's record as it accumulates over the lines of its log.

use agentsync_core::limits::{MAX_LABEL, MAX_NAME, MAX_NOTE, MAX_PATH};
use agentsync_core::{NativeId, Session};
use serde::{Deserialize, Serialize};

use super::fit::clip;

/// Where a session title came from; a better source replaces a title from a lesser one, and a
/// later title from the same source replaces an earlier one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TitleSource {
    #[default]
    None,
    /// Claude Code's `summary` records (older versions).
    Summary,
    /// An agent-generated title (Claude Code's `ai-title`).
    Generated,
    /// A title the user set inside the agent (Claude Code's `custom-title`).
    Custom,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDraft {
    /// Unknown until the log names the session (a Codex `session_meta`, or the parent id of a
    /// Claude Code subagent file); messages are held back until then.
    pub native_id: Option<NativeId>,
    pub agent: String,
    pub parser: String,
    /// The project when no working directory is known (the Claude Code project folder name).
    pub project_fallback: String,
    pub cwd: String,
    pub git_branch: String,
    /// The agent's own version (`version`, `cli_version`): kept for the host, since the
    /// session record has no field for it.
    pub agent_version: String,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub title: String,
    pub title_source: TitleSource,
    pub first_message: String,
    pub parent_session: String,
    pub relationship: String,
    pub user_message_count: u64,
}

impl SessionDraft {
    pub fn new(agent: &str, parser: &str) -> Self {
        SessionDraft {
            agent: agent.to_owned(),
            parser: parser.to_owned(),
            ..SessionDraft::default()
        }
    }

    /// The first working directory seen: where the session started.
    pub fn note_cwd(&mut self, cwd: &str) {
        if self.cwd.is_empty() {
            self.cwd = clip(cwd, MAX_PATH).to_owned();
        }
    }

    pub fn note_git_branch(&mut self, branch: &str) {
        if self.git_branch.is_empty() {
            self.git_branch = clip(branch, MAX_PATH).to_owned();
        }
    }

    /// The latest version seen: a resumed session may run under a newer agent.
    pub fn note_agent_version(&mut self, version: &str) {
        if !version.is_empty() {
            self.agent_version = clip(version, MAX_LABEL).to_owned();
        }
    }

    /// Widens the session's time span to include `ms`.
    pub fn note_time(&mut self, ms: i64) {
        self.started_ms = Some(self.started_ms.map_or(ms, |t| t.min(ms)));
        self.ended_ms = Some(self.ended_ms.map_or(ms, |t| t.max(ms)));
    }

    pub fn note_title(&mut self, title: &str, source: TitleSource) {
        let title = title.trim();
        if !title.is_empty() && source >= self.title_source {
            self.title = clip(title, MAX_NAME).to_owned();
            self.title_source = source;
        }
    }

    /// Counts a message the user typed; the first one whose text is a real prompt (not a
    /// wrapped command) becomes the session's first message.
    pub fn note_user_message(&mut self, text: &str, is_prompt: bool) {
        self.user_message_count += 1;
        let text = text.trim();
        if is_prompt && self.first_message.is_empty() && !text.is_empty() {
            self.first_message = clip(text, MAX_NOTE).to_owned();
        }
    }

    pub fn set_parent(&mut self, parent: &NativeId, relationship: &str) {
        self.parent_session = parent.as_str().to_owned();
        self.relationship = relationship.to_owned();
    }

    /// The session record, once the session's id is known.
    pub fn session(&self) -> Option<Session> {
        let native_id = self.native_id.clone()?;
        Some(Session {
            native_id,
            agent: self.agent.clone(),
            parser: self.parser.clone(),
            project: self.project(),
            cwd: self.cwd.clone(),
            git_branch: self.git_branch.clone(),
            started_ms: self.started_ms,
            ended_ms: self.ended_ms,
            title: self.title.clone(),
            first_message: self.first_message.clone(),
            parent_session: self.parent_session.clone(),
            relationship: self.relationship.clone(),
            user_message_count: self.user_message_count,
        })
    }

    /// The last component of the working directory (`/home/u/src/app` → `app`).
    fn project(&self) -> String {
        let name = self
            .cwd
            .trim_end_matches(['/', '\\'])
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default();
        if name.is_empty() {
            self.project_fallback.clone()
        } else {
            name.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_comes_from_the_working_directory() {
        let mut draft = SessionDraft::new("claude", "claude-code/1");
        draft.native_id = "s1".parse().ok();
        draft.project_fallback = "-home-u-src-app".into();
        assert_eq!(draft.session().unwrap().project, "-home-u-src-app");
        draft.note_cwd("/home/u/src/app/");
        draft.note_cwd("/elsewhere");
        let session = draft.session().unwrap();
        assert_eq!(
            (session.cwd.as_str(), session.project.as_str()),
            ("/home/u/src/app/", "app")
        );
        draft.cwd = r"C:\Users\u\app".into();
        assert_eq!(draft.session().unwrap().project, "app");
    }

    #[test]
    fn better_title_sources_win() {
        let mut draft = SessionDraft::new("claude", "claude-code/1");
        draft.note_title("Summary one", TitleSource::Summary);
        draft.note_title("Generated", TitleSource::Generated);
        draft.note_title("Summary two", TitleSource::Summary);
        assert_eq!(draft.title, "Generated");
        draft.note_title("Generated again", TitleSource::Generated);
        assert_eq!(draft.title, "Generated again");
        draft.note_title("  ", TitleSource::Custom);
        assert_eq!(draft.title, "Generated again");
    }

    #[test]
    fn time_span_and_first_prompt() {
        let mut draft = SessionDraft::new("codex", "codex/1");
        draft.native_id = "s1".parse().ok();
        for t in [20, 10, 30] {
            draft.note_time(t);
        }
        draft.note_user_message("<command-name>/model</command-name>", false);
        draft.note_user_message("  fix the bug  ", true);
        draft.note_user_message("and again", true);
        let session = draft.session().unwrap();
        assert_eq!((session.started_ms, session.ended_ms), (Some(10), Some(30)));
        assert_eq!(session.first_message, "fix the bug");
        assert_eq!(session.user_message_count, 3);
        assert!(SessionDraft::default().session().is_none());
    }
}
