//! Progress bars for long work: on a terminal only, never under `--json` or in a pipe.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Bars show when stderr is a terminal and the output is not JSON.
    pub fn new(json: bool) -> Self {
        Progress {
            visible: !json && std::io::stderr().is_terminal(),
        }
    }

    pub fn bar(&self, label: &'static str, len: u64) -> Bar {
        if !self.visible {
            return Bar(None);
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label);
        Bar(Some(bar))
    }

    /// A line that spins while work of unknown length runs.
    pub fn spinner(&self, message: &'static str) -> Bar {
        if !self.visible {
            return Bar(None);
        }
        let spinner = ProgressBar::new_spinner().with_message(message);
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        Bar(Some(spinner))
    }
}

/// A bar, or nothing when bars are hidden.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar that never shows.
    pub fn hidden() -> Bar {
        Bar(None)
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// Moves the bar to `done` of `total` (a total of 0 leaves the length as it is).
    pub fn set(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
