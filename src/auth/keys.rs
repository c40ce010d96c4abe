//! Private signing keys in PKCS#8 PEM files: Sinergi's own (Ed25519, signs access tokens) and
//! an agency's (Ed25519 or P-256, signs client assertions — used by the command line and
//! tests; the service itself never sees an agency's private key).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, EncodingKey};

use super::jwk::PublicJwk;
use crate::domain::agency::KeyAlgorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write key file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A private key able to sign JWTs, with its public half.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    public: PublicJwk,
    /// The raw key, for signatures outside JWTs (audit checkpoints); Ed25519 keys only.
    ed25519: Option<ed25519_dalek::SigningKey>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .finish()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key: Ed25519 or P-256.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_ed25519(&key);
        }
        if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
            let der = key
                .to_pkcs8_der()
                .map_err(|e| KeyError::Invalid(format!("P-256 key: {e}")))?;
            let public =
                PublicJwk::parse(&key.public_key().to_jwk_string()).map_err(KeyError::Invalid)?;
            return Ok(Self {
                encoding: EncodingKey::from_ec_der(der.as_bytes()),
                public,
                ed25519: None,
            });
        }
        Err(KeyError::Invalid(
            "not a PKCS#8 PEM Ed25519 or P-256 private key".into(),
        ))
    }

    fn from_ed25519(key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Invalid(format!("Ed25519 key: {e}")))?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let public = PublicJwk::parse(&format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#))
            .map_err(KeyError::Invalid)?;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public,
            ed25519: Some(key.clone()),
        })
    }

    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let pem = fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem)
    }

    /// A new key of the given algorithm and its PKCS#8 PEM text.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<(Self, String), KeyError> {
        let pem = match algorithm {
            KeyAlgorithm::EdDsa => ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| KeyError::Invalid(e.to_string()))?
                .to_string(),
            KeyAlgorithm::Es256 => p256::SecretKey::random(&mut rand_core::OsRng)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| KeyError::Invalid(e.to_string()))?
                .to_string(),
        };
        Ok((Self::from_pem(&pem)?, pem))
    }

    /// Writes PEM text readable by the owner only, failing if the file exists.
    pub fn write_pem(path: &Path, pem: &str) -> Result<(), KeyError> {
        let io_error = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_error)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io_error)?;
        file.write_all(pem.as_bytes()).map_err(io_error)?;
        file.sync_all().map_err(io_error)
    }

    /// Reads the key at `path`, first generating an Ed25519 key there if there is none.
    pub fn read_or_generate(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::read(path);
        }
        let (key, pem) = Self::generate(KeyAlgorithm::EdDsa)?;
        Self::write_pem(path, &pem)?;
        tracing::info!(path = %path.display(), kid = %key.kid(), "generated a new signing key");
        Ok(key)
    }

    /// The Ed25519 key itself, when this is one.
    pub fn ed25519(&self) -> Option<&ed25519_dalek::SigningKey> {
        self.ed25519.as_ref()
    }

    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    pub fn kid(&self) -> String {
        self.public.thumbprint()
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm
    }

    pub fn jwt_algorithm(&self) -> Algorithm {
        match self.public.algorithm {
            KeyAlgorithm::EdDsa => Algorithm::EdDSA,
            KeyAlgorithm::Es256 => Algorithm::ES256,
        }
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Signs `claims` as a compact JWS with this key's algorithm, its `kid` and `typ`.
    pub fn sign<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = jsonwebtoken::Header::new(self.jwt_algorithm());
        header.kid = Some(self.kid());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| KeyError::Invalid(format!("cannot sign: {e}")))
    }
}
