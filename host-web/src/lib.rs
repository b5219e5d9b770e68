//! agentsync-web: the browser-only archive viewer.
//!
//! It runs in a dedicated Web Worker: the archive is the same `agentsync-archive` SQLite
//! database the CLI keeps (on `sqlite-wasm-rs`, persisted in OPFS), a sync is the core's engine
//! driven through the archive's own host half (`Archive::take_output`), and the bucket is
//! reached with the CLI's S3 client (`agentsync-remote`) over `fetch`. The page talks to the
//! worker; the worker talks to this crate's [`Viewer`] in JSON.
//!
//! The modules other than `viewer` are plain Rust, so native `cargo test` checks them too.

pub mod connection;
pub mod queries;
pub mod sync_run;

#[cfg(test)]
mod fixture;

#[cfg(target_arch = "wasm32")]
mod viewer;

#[cfg(target_arch = "wasm32")]
pub use viewer::Viewer;
