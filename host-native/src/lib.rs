//! The native host of agentsync as a library: the `agentsync` binary (`main.rs`) is its
//! command line, and the integration tests link it directly.
//!
//! The host answers the core's sync engine (`sync`) from its stores (`store`) and its SQLite
//! archive, ingests agent logs (`ingest`), and runs the core natively or as a WebAssembly
//! component (`wasm`). It makes no protocol decision: that is the core's.

pub mod commands;
pub mod compress;
pub mod config;
pub mod conformance;
pub mod crash_point;
pub mod demo;
pub mod home;
pub mod import_writer;
pub mod ingest;
pub mod inspect;
pub mod lock;
pub mod origin;
pub mod progress;
pub mod serve;
pub mod session_reader;
pub mod store;
pub mod sync;
pub mod target;
pub mod terminal;
pub mod wasm;
