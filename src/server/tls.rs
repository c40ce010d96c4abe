//! TLS for the gRPC port (rustls): the server's certificate from files and, when client CAs
//! are configured, mutual TLS, whose client certificates access tokens are then bound to
//! (see [`crate::auth::client_certificate_thumbprint`]).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0} is needed with {1}")]
    Incomplete(&'static str, &'static str),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NotPem(PathBuf),
}

/// The rustls set-up `config` asks for; `None` when TLS is off.
pub fn server_config(config: &TlsConfig) -> Result<Option<ServerTlsConfig>, TlsError> {
    if !config.enabled() {
        if config.client_ca_file.is_some() {
            return Err(TlsError::Incomplete("tls.cert_file", "tls.client_ca_file"));
        }
        return Ok(None);
    }
    let cert_file = config
        .cert_file
        .as_deref()
        .ok_or(TlsError::Incomplete("tls.cert_file", "tls.key_file"))?;
    let key_file = config
        .key_file
        .as_deref()
        .ok_or(TlsError::Incomplete("tls.key_file", "tls.cert_file"))?;
    let identity = Identity::from_pem(read_pem(cert_file)?, read(key_file)?);
    let mut tls = ServerTlsConfig::new()
        .identity(identity)
        .timeout(config.handshake_timeout());
    if let Some(client_ca_file) = &config.client_ca_file {
        tls = tls
            .client_ca_root(Certificate::from_pem(read_pem(client_ca_file)?))
            .client_auth_optional(!config.client_cert_required);
    } else if config.client_cert_required {
        return Err(TlsError::Incomplete(
            "tls.client_ca_file",
            "tls.client_cert_required",
        ));
    }
    Ok(Some(tls))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A file that must hold at least one PEM certificate: caught here with the file's name,
/// rather than as an opaque handshake failure later.
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = read(path)?;
    if !bytes
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|window| window == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(TlsError::NotPem(path.to_owned()));
    }
    Ok(bytes)
}
