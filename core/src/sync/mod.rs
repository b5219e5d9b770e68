//! Sync planning: what to write, what to fetch, what to import, what GC may delete.
//!
//! The core performs no I/O here either. Export and GC are pure functions of the host's state
//! and a listing. Import is a state machine that asks for batches of store requests and is fed
//! their responses ([`import::Import`]), so a host may run the requests however it likes (the
//! native host in a loop, the browser with async fetch). Exchange relays between two stores
//! through the [`store::Store`] trait, which a synchronous host implements.

pub mod engine;
pub mod exchange;
pub mod export;
pub mod gc;
pub mod import;
pub mod placement;
pub mod problem;
pub mod roots;
pub mod store;
