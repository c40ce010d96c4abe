//! The command line's subcommands that talk to a running server. They belong to the `sinergi`
//! binary, not to the library: each is a client of the same public RPCs any agency calls.

pub mod admin;
pub mod audit;
pub mod remote;
