//! Ingest: agents' logs into the archive. The parsers live in `agentsync-logs`; this finds the
//! logs (`find`) and reads what changed into the archive (`pass`).

pub mod find;
pub mod pass;
