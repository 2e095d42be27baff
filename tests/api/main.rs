//! One integration-test binary (linked once) with a module per capability. Every test starts
//! the real server on an ephemeral port; see `helpers.rs` for how the database is chosen.

mod accounts;
mod browser;
mod catalog;
mod circles;
mod cli;
mod conventions;
mod federation;
mod helpers;
mod import;
mod indexing;
mod institutions;
mod media;
mod oai;
mod relevance;
mod search;
