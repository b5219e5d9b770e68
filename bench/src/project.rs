//! The projects sessions work in: a working directory, a language, and source files whose
//! content is a pure function of the directory's path.
//!
//! Deriving everything from the path (not from the corpus seed) lets [`crate::append`] rebuild
//! a session's project from the `cwd` in its log alone. Re-reading a file gives the same text,
//! as in real sessions, where agents read the same files again and again: that repetition is
//! part of what makes logs compress.

use crate::rng::Rng;
use crate::shape;
use crate::text::{self, Lang};

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the project's root.
    pub path: String,
    pub lines: usize,
    seed: u64,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub cwd: String,
    pub lang: Lang,
    pub files: Vec<SourceFile>,
}

/// FNV-1a: a stable hash of a path (std's hashers are not guaranteed stable across releases).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Project {
    pub fn new(cwd: &str) -> Project {
        let mut rng = Rng::new(stable_hash(cwd));
        let lang = Lang::ALL[rng.index(Lang::ALL.len())];
        let count = 8 + rng.below(32) as usize;
        let mut files: Vec<SourceFile> = Vec::with_capacity(count);
        while files.len() < count {
            let mut path = String::new();
            match rng.below(10) {
                0..=5 => path.push_str(lang.src()),
                6..=7 => {
                    path.push_str(lang.src());
                    path.push('/');
                    path.push_str(text::noun(&mut rng));
                }
                _ => path.push_str("tests"),
            }
            path.push('/');
            path.push_str(text::noun(&mut rng));
            if rng.chance(0.3) {
                path.push('_');
                path.push_str(text::noun(&mut rng));
            }
            path.push('.');
            path.push_str(lang.ext());
            if files.iter().any(|f| f.path == path) {
                continue;
            }
            let lines = shape::FILE_LINES.draw(&mut rng);
            files.push(SourceFile {
                path,
                lines,
                seed: rng.next_u64(),
            });
        }
        Project {
            cwd: cwd.to_owned(),
            lang,
            files,
        }
    }

    /// The last component of the working directory.
    pub fn name(&self) -> &str {
        self.cwd.rsplit('/').next().unwrap_or(&self.cwd)
    }

    /// Claude Code's folder for the project: the working directory with every character other
    /// than letters and digits replaced by `-`.
    pub fn claude_folder(&self) -> String {
        self.cwd
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    }

    pub fn abs(&self, relative: &str) -> String {
        format!("{}/{}", self.cwd, relative)
    }

    /// A file, the often-touched ones more often.
    pub fn pick_file(&self, rng: &mut Rng) -> usize {
        rng.skewed(self.files.len())
    }

    /// The whole text of file `index`: exactly its `lines` lines, each ending in `\n`.
    pub fn text(&self, index: usize) -> String {
        let file = &self.files[index];
        let mut rng = Rng::new(file.seed);
        let mut out = String::with_capacity(file.lines * 40);
        text::code(&mut rng, &mut out, self.lang, file.lines);
        let end = out
            .match_indices('\n')
            .nth(file.lines.saturating_sub(1))
            .map_or(out.len(), |(i, _)| i + 1);
        out.truncate(end);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_is_a_function_of_its_path() {
        let a = Project::new("/home/dev/src/tally");
        let b = Project::new("/home/dev/src/tally");
        assert_eq!(a.files.len(), b.files.len());
        assert_eq!(a.text(0), b.text(0));
        assert_eq!(a.text(0).lines().count(), a.files[0].lines);
        assert_eq!(a.claude_folder(), "-home-dev-src-tally");
        assert_eq!(a.name(), "tally");
        let c = Project::new("/home/dev/src/other");
        assert_ne!(a.text(0), c.text(0));
    }
}
