//! How long sessions are: the heavy-tailed distributions in one place, to tune the corpus.
//!
//! Each is drawn with [`Rng::heavy`]`(scale, q, cap)`: `scale · (1+u) · 2^G`, where each
//! doubling happens with probability `q`, so the tail falls like a Pareto law with exponent
//! `log2(1/q)`. With these values a gigabyte holds about 10,000 logs: the median session has a
//! dozen or so messages and 30 KB, one in a hundred has thousands of messages and megabytes.

use crate::rng::Rng;

pub struct Heavy {
    scale: f64,
    q: f64,
    cap: f64,
}

impl Heavy {
    pub fn draw(&self, rng: &mut Rng) -> usize {
        rng.heavy(self.scale, self.q, self.cap) as usize
    }
}

/// Prompts per session: most sessions are one or two, a few run to hundreds.
pub const TURNS: Heavy = Heavy {
    scale: 1.0,
    q: 0.31,
    cap: 300.0,
};

/// Model calls with tools per prompt, plus 2: a median of about three calls.
pub const STEPS: Heavy = Heavy {
    scale: 3.0,
    q: 0.37,
    cap: 120.0,
};

/// Model calls with tools in a subagent's run.
pub const SUBAGENT_STEPS: Heavy = Heavy {
    scale: 2.0,
    q: 0.45,
    cap: 60.0,
};

/// Lines of a source file: mostly short, a few thousand lines (the 10–100 KB reads).
pub const FILE_LINES: Heavy = Heavy {
    scale: 12.0,
    q: 0.42,
    cap: 2000.0,
};

/// Tokens in the model's context past which a session is compacted at its next prompt, as
/// agents do near the context window's end. Context is counted roughly, as a log's bytes / 8.
pub const COMPACT_AT_TOKENS: u64 = 160_000;
