//! Ingest: agents' logs into the archive. The parsers live in `agentsync-logs`; this is the
//! pass that finds the logs, resumes each where the last pass stopped, and stores the result.

pub mod pass;
