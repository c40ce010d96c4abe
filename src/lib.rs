//! Sinergi: employer social-security compliance data exchanged between Indonesian agencies
//! (Disnaker, BPJS Kesehatan, BPJS Ketenagakerjaan, Kejaksaan) over one gRPC contract.

pub mod app;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod feed;
pub mod framing;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod statuses;
pub mod store;
pub mod task;
pub mod telemetry;
pub mod tls;

/// Code generated from `proto/sinergi/v1`.
#[allow(
    clippy::doc_lazy_continuation,
    clippy::doc_overindented_list_items,
    clippy::large_enum_variant
)]
pub mod proto {
    tonic::include_proto!("sinergi.v1");
}
