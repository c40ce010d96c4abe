//! The server runtime: building and serving the gRPC server ([`app`]), the one stack of tower
//! layers around every call ([`middleware`]) and the layers it is made of (load shedding, rate
//! limits, deadlines and the database gate in [`limits`], request framing in [`framing`]),
//! the audit layer that records every call ([`audit_layer`]), transport security ([`tls`]),
//! and logs and traces ([`telemetry`]). The metrics they record are `crate::metrics`, below
//! every room, since auth, the audit log and the store record them too.

pub mod app;
pub mod audit_layer;
pub mod framing;
pub mod limits;
pub mod middleware;
pub mod telemetry;
pub mod tls;
