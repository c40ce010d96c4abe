//! TLS for the gRPC port and the HTTP door (rustls): the server's certificate from files and,
//! when client CAs are configured, mutual TLS, whose client certificates access tokens are then
//! bound to (see [`crate::auth::client_certificate_thumbprint`]). Both doors use the same files,
//! so a token bound to an agency's certificate works through either.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::auth::ClientCertificate;
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
    #[error("{path} is not usable: {reason}")]
    Unusable { path: PathBuf, reason: String },
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

/// TLS for the HTTP door, where the connection is accepted by Sinergi rather than by tonic.
#[derive(Clone)]
pub struct HttpTls {
    acceptor: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl HttpTls {
    /// The handshake on `stream`, within the configured time, and the client's certificate
    /// when it presented one (already verified against the client CAs).
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<ClientCertificate>)> {
        let stream = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(|leaf| ClientCertificate::new(leaf.as_ref()));
        Ok((stream, leaf))
    }
}

/// The HTTP door's TLS, from the same settings as [`server_config`] (which checks their
/// combinations and is called first); `None` when TLS is off. It offers HTTP/2 and HTTP/1.1.
pub fn http_config(config: &TlsConfig) -> Result<Option<HttpTls>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    let chain = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_slice(&read(key_file)?)
        .map_err(|error| unusable(key_file, error.to_string()))?;
    // The provider is named rather than taken from the process default, which is unset
    // whenever more than one is compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| unusable(cert_file, error.to_string()))?;
    let builder = match &config.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            let (_, ignored) = roots.add_parsable_certificates(certificates(ca_file)?);
            if ignored > 0 || roots.is_empty() {
                return Err(unusable(ca_file, "a CA certificate does not parse".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if config.client_cert_required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|error| unusable(ca_file, error.to_string()))?,
            )
        }
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .map_err(|error| unusable(cert_file, error.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(HttpTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        handshake_timeout: config.handshake_timeout(),
    }))
}

fn unusable(path: &Path, reason: String) -> TlsError {
    TlsError::Unusable {
        path: path.to_owned(),
        reason,
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(&read_pem(path)?)
        .collect::<Result<_, _>>()
        .map_err(|error| unusable(path, error.to_string()))
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
