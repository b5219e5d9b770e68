//! Ordinals, and messages held back until their tool calls have results.
//!
//! Agents log a tool call in one record and its result in a later one. A message is published
//! at a fixed ordinal, so it is held until every call in it has its result, and every later
//! message waits behind it (ordinals are published in order). A parser gives up waiting on
//! calls whose results may not come any more (a new prompt started another turn, the turn was
//! aborted): their messages are published with an empty result. A result that arrives after
//! all (the user interrupted, a parallel subagent finished later) is never dropped: it becomes
//! a [`LateResult`] the host applies to the published message.
//!
//! A parser may also find that messages belong to a branch the user left (an edited prompt's
//! first attempt, see `claude.rs`): held ones are flagged `abandoned` at once, ones handed out
//! already come back as an [`Abandoned`] range the host applies to the stored messages.
//!
//! Holding depends only on the records seen, never on where a pass stopped, so parsing a log in
//! one pass or in several gives the same messages.

use std::collections::{BTreeMap, VecDeque};

use agentsync_core::{Message, ToolCall};
use serde::{Deserialize, Serialize};

use super::fit::fit_message;

/// Messages held at most: beyond this the oldest held message's calls are given up on, so a
/// call that never gets a result cannot hold a whole session back.
pub const MAX_HELD_MESSAGES: usize = 1024;

/// Calls given up on that are remembered, for a result that arrives later.
pub const MAX_GIVEN_UP: usize = 4096;

/// A result for a call of a message already handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateResult {
    pub ordinal: u64,
    pub call_id: String,
    pub result: String,
    pub is_error: bool,
    pub subagent_session: String,
}

impl LateResult {
    /// Sets the result on its call in `message`; `false` if the message has no such call.
    pub fn apply_to(&self, message: &mut Message) -> bool {
        let Some(call) = message.tool_calls.iter_mut().find(|c| c.id == self.call_id) else {
            return false;
        };
        call.result.clone_from(&self.result);
        call.is_error = self.is_error;
        if !self.subagent_session.is_empty() {
            call.subagent_session.clone_from(&self.subagent_session);
        }
        true
    }
}

/// Messages on a branch the user left: ordinals `first..end` on one side of `sidechain` (a
/// subagent's records logged among them are not part of the branch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abandoned {
    pub first: u64,
    pub end: u64,
    pub sidechain: bool,
}

impl Abandoned {
    pub fn covers(&self, message: &Message) -> bool {
        (self.first..self.end).contains(&message.ordinal) && message.sidechain == self.sidechain
    }

    /// Flags `message` when the range covers it; `true` if that changed it.
    pub fn apply_to(&self, message: &mut Message) -> bool {
        if self.covers(message) && !message.abandoned {
            message.abandoned = true;
            return true;
        }
        false
    }
}

/// What a tool result carries back to its call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutcome {
    pub result: String,
    pub is_error: bool,
    pub subagent_session: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    next_ordinal: u64,
    /// Messages not yet handed out, in ordinal order.
    held: VecDeque<Message>,
    /// Calls whose result has not arrived: call id → ordinal of the message holding the call.
    awaiting: BTreeMap<String, u64>,
    /// Calls given up on: call id → ordinal (the most recent [`MAX_GIVEN_UP`]).
    #[serde(default)]
    given_up: BTreeMap<String, u64>,
    /// Results for messages handed out already, until the host takes them.
    #[serde(default)]
    late: Vec<LateResult>,
    /// Abandoned ranges of messages handed out already, until the host takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    abandoned: Vec<Abandoned>,
}

impl Transcript {
    /// Appends `message` at the next ordinal, which it returns. Calls with an id await their
    /// result; calls without one (a web search run by the model provider) have none to await.
    pub fn push(&mut self, mut message: Message) -> u64 {
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        message.ordinal = ordinal;
        for call in &message.tool_calls {
            if !call.id.is_empty() {
                self.awaiting.insert(call.id.clone(), ordinal);
            }
        }
        self.held.push_back(message);
        ordinal
    }

    /// Stops awaiting a result for `call_id` (one a document already holds beside its call).
    pub fn stop_awaiting(&mut self, call_id: &str) {
        self.awaiting.remove(call_id);
    }

    /// The ordinal the next message appended gets.
    pub fn next_ordinal(&self) -> u64 {
        self.next_ordinal
    }

    /// The ordinal of the last message appended, if any.
    pub fn last_ordinal(&self) -> Option<u64> {
        self.next_ordinal.checked_sub(1)
    }

    /// Attaches a result to the call `call_id`, awaited or given up on (then to the held
    /// message, or as a [`LateResult`] for one handed out); `false` if no such call is known.
    pub fn attach(&mut self, call_id: &str, outcome: ToolOutcome) -> bool {
        let ordinal = match self.awaiting.remove(call_id) {
            Some(ordinal) => ordinal,
            None => match self.given_up.remove(call_id) {
                Some(ordinal) => ordinal,
                None => return false,
            },
        };
        if let Some(call) = self.held_call(ordinal, call_id) {
            call.result = outcome.result;
            call.is_error = outcome.is_error;
            if !outcome.subagent_session.is_empty() {
                call.subagent_session = outcome.subagent_session;
            }
            return true;
        }
        if self.held.front().is_none_or(|m| m.ordinal > ordinal) {
            self.late.push(LateResult {
                ordinal,
                call_id: call_id.to_owned(),
                result: outcome.result,
                is_error: outcome.is_error,
                subagent_session: outcome.subagent_session,
            });
            return true;
        }
        false
    }

    /// Results that arrived for messages handed out already (see [`LateResult`]).
    pub fn take_late(&mut self) -> Vec<LateResult> {
        std::mem::take(&mut self.late)
    }

    /// Flags the messages of `range` as on an abandoned branch: held ones at once; for ones
    /// handed out already the range is kept for the host (see [`Transcript::take_abandoned`]).
    pub fn abandon(&mut self, range: Abandoned) {
        for message in &mut self.held {
            range.apply_to(message);
        }
        let first_held = self.held.front().map_or(self.next_ordinal, |m| m.ordinal);
        let handed_out = Abandoned {
            end: range.end.min(first_held),
            ..range
        };
        if handed_out.first < handed_out.end {
            self.abandoned.push(handed_out);
        }
    }

    /// Ranges of [`Transcript::abandon`] that cover messages handed out already.
    pub fn take_abandoned(&mut self) -> Vec<Abandoned> {
        std::mem::take(&mut self.abandoned)
    }

    /// Stops waiting for the calls `which` selects, remembering them for a late result.
    fn give_up(&mut self, which: impl Fn(&str, u64) -> bool) {
        let given: Vec<(String, u64)> = self
            .awaiting
            .iter()
            .filter(|(id, ordinal)| which(id, **ordinal))
            .map(|(id, ordinal)| (id.clone(), *ordinal))
            .collect();
        for (id, ordinal) in given {
            self.awaiting.remove(&id);
            self.given_up.insert(id, ordinal);
        }
        if self.given_up.len() > MAX_GIVEN_UP {
            // Forget the oldest in one pass (one scan per removal was quadratic for a message
            // with many thousands of calls given up at once).
            let mut by_age: Vec<(u64, String)> = self
                .given_up
                .iter()
                .map(|(id, ordinal)| (*ordinal, id.clone()))
                .collect();
            by_age.sort_unstable();
            let excess = self.given_up.len() - MAX_GIVEN_UP;
            for (_, id) in by_age.into_iter().take(excess) {
                self.given_up.remove(&id);
            }
        }
    }

    fn held_call(&mut self, ordinal: u64, call_id: &str) -> Option<&mut ToolCall> {
        let first = self.held.front()?.ordinal;
        let index = usize::try_from(ordinal.checked_sub(first)?).ok()?;
        self.held
            .get_mut(index)?
            .tool_calls
            .iter_mut()
            .find(|call| call.id == call_id)
    }

    /// Gives up on the awaiting calls of held messages that match `which`.
    pub fn give_up_where(&mut self, which: impl Fn(&Message) -> bool) {
        let matching: std::collections::BTreeSet<u64> = self
            .held
            .iter()
            .filter(|m| which(m))
            .map(|m| m.ordinal)
            .collect();
        self.give_up(|_, ordinal| matching.contains(&ordinal));
    }

    pub fn give_up_all(&mut self) {
        self.give_up(|_, _| true);
    }

    /// Moves out every held message that no longer waits for a result, nor behind one that does.
    pub fn release(&mut self, out: &mut Vec<Message>) {
        while self.held.len() > MAX_HELD_MESSAGES {
            let oldest = self.held.front().map(|m| m.ordinal);
            self.give_up(|_, ordinal| Some(ordinal) == oldest);
            let before = out.len();
            self.release_ready(out);
            if out.len() == before {
                break;
            }
        }
        self.release_ready(out);
    }

    fn release_ready(&mut self, out: &mut Vec<Message>) {
        let first_waiting = self.awaiting.values().min().copied().unwrap_or(u64::MAX);
        while self.held.front().is_some_and(|m| m.ordinal < first_waiting) {
            if let Some(mut message) = self.held.pop_front() {
                fit_message(&mut message);
                out.push(message);
            }
        }
    }

    /// Messages still held.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: &str) -> Message {
        Message {
            role: role.into(),
            content: "text".into(),
            ..Message::default()
        }
    }

    fn calling(ids: &[&str]) -> Message {
        Message {
            role: "assistant".into(),
            tool_calls: ids
                .iter()
                .map(|id| ToolCall {
                    id: (*id).into(),
                    name: "Bash".into(),
                    ..ToolCall::default()
                })
                .collect(),
            ..Message::default()
        }
    }

    fn ordinals(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|m| m.ordinal).collect()
    }

    #[test]
    fn messages_wait_for_their_results_in_order() {
        let mut t = Transcript::default();
        let mut out = Vec::new();
        t.push(text("user"));
        t.push(calling(&["a", "b"]));
        t.push(text("assistant"));
        t.release(&mut out);
        assert_eq!(ordinals(&out), [0]);

        let ok = |result: &str| ToolOutcome {
            result: result.into(),
            ..ToolOutcome::default()
        };
        assert!(t.attach("b", ok("B")));
        t.release(&mut out);
        assert_eq!(ordinals(&out), [0]);
        assert!(!t.attach("b", ok("again")), "a result attaches once");
        assert!(t.attach("a", ok("A")));
        t.release(&mut out);
        assert_eq!(ordinals(&out), [0, 1, 2]);
        let results: Vec<&str> = out[1]
            .tool_calls
            .iter()
            .map(|c| c.result.as_str())
            .collect();
        assert_eq!(results, ["A", "B"]);
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn given_up_calls_keep_empty_results() {
        let mut t = Transcript::default();
        let mut out = Vec::new();
        let mut side = calling(&["s"]);
        side.sidechain = true;
        t.push(side);
        t.push(calling(&["m"]));
        t.give_up_where(|m| !m.sidechain);
        t.release(&mut out);
        assert!(out.is_empty(), "the sidechain call still holds everything");
        t.give_up_all();
        t.release(&mut out);
        assert_eq!(ordinals(&out), [0, 1]);
        assert!(out.iter().all(|m| m.tool_calls[0].result.is_empty()));
    }

    #[test]
    fn unresolved_calls_hold_a_bounded_number_of_messages() {
        let mut t = Transcript::default();
        let mut out = Vec::new();
        t.push(calling(&["never"]));
        for _ in 1..MAX_HELD_MESSAGES {
            t.push(text("assistant"));
        }
        t.release(&mut out);
        assert!(out.is_empty());
        t.push(text("user"));
        t.release(&mut out);
        assert_eq!(out.len(), MAX_HELD_MESSAGES + 1);
        assert_eq!(t.last_ordinal(), Some(MAX_HELD_MESSAGES as u64));
    }
}
