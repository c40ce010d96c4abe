//! Sinergi: employer social-security compliance data exchanged between Indonesian agencies
//! (Disnaker, BPJS Kesehatan, BPJS Ketenagakerjaan, Kejaksaan) over one gRPC contract.

pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod server;
pub mod store;
pub mod workers;

/// Code generated from `proto/sinergi/v1`.
#[allow(
    clippy::doc_lazy_continuation,
    clippy::doc_overindented_list_items,
    clippy::large_enum_variant
)]
pub mod proto {
    tonic::include_proto!("sinergi.v1");
}
