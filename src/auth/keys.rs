//! Private signing keys in PEM files: Sinergi's own (Ed25519, signs access tokens) and an
//! agency's (Ed25519 or P-256, signs client assertions — used by the command line and tests;
//! the service itself never sees an agency's private key); and public keys as an agency's own
//! tools write them (PEM or JWK), for registering.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, KeypairBytes,
    spki::der::pem::{self, LineEnding},
};
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
    /// Reads a PEM private key, as `sinergi keygen` and the agencies' own tools write them:
    /// PKCS#8 (`PRIVATE KEY`, versions 1 and 2) for Ed25519 and P-256, and SEC1
    /// (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes, after its `EC PARAMETERS`
    /// block) for P-256.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        for (label, der) in pem_blocks(pem)? {
            match label.as_str() {
                "PRIVATE KEY" => {
                    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_der(&der) {
                        return Self::from_ed25519(&key);
                    }
                    if let Ok(key) = p256::SecretKey::from_pkcs8_der(&der) {
                        return Self::from_p256(&key);
                    }
                    return Err(KeyError::Invalid(
                        "the PKCS#8 key is neither Ed25519 nor P-256".into(),
                    ));
                }
                "EC PRIVATE KEY" => {
                    let key = p256::SecretKey::from_sec1_der(&der).map_err(|_| {
                        KeyError::Invalid("the SEC1 EC key is not a P-256 (prime256v1) key".into())
                    })?;
                    return Self::from_p256(&key);
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(KeyError::Invalid(
                        "the key is encrypted; decrypt it first, e.g. `openssl pkey -in KEY -out PLAIN`"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
        Err(KeyError::Invalid(
            "no Ed25519 or P-256 private key in PEM form (PRIVATE KEY or EC PRIVATE KEY)".into(),
        ))
    }

    fn from_ed25519(key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Invalid(format!("Ed25519 key: {e}")))?;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public: ed25519_jwk(&key.verifying_key())?,
            ed25519: Some(key.clone()),
        })
    }

    fn from_p256(key: &p256::SecretKey) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Invalid(format!("P-256 key: {e}")))?;
        Ok(Self {
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            public: p256_jwk(&key.public_key())?,
            ed25519: None,
        })
    }

    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let pem = fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem)
    }

    /// A new key of the given algorithm and its PKCS#8 PEM text. Ed25519 keys are written as
    /// PKCS#8 version 1 (RFC 8410), as `openssl genpkey -algorithm ed25519` writes them: the
    /// version 2 form, with the public key attached, is refused by OpenSSL 3.0 and Python's
    /// `cryptography`, so an agency could not use the key with any tool but this one.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<(Self, String), KeyError> {
        let pem = match algorithm {
            KeyAlgorithm::EdDsa => KeypairBytes {
                secret_key: ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng).to_bytes(),
                public_key: None,
            }
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

/// Every PEM block of `text` with its label, in order, so a file holding several (an
/// `EC PARAMETERS` block before the key, a certificate beside it) is read like OpenSSL reads it.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let label_end = block[BEGIN.len()..]
            .find("-----")
            .ok_or_else(|| KeyError::Invalid("a PEM header is not closed".into()))?;
        let label = &block[BEGIN.len()..BEGIN.len() + label_end];
        let end_line = format!("-----END {label}-----");
        let end = block
            .find(&end_line)
            .ok_or_else(|| KeyError::Invalid(format!("the PEM block {label} has no end line")))?
            + end_line.len();
        let (_, der) = pem::decode_vec(&block.as_bytes()[..end])
            .map_err(|_| KeyError::Invalid(format!("the PEM block {label} is malformed")))?;
        blocks.push((label.to_owned(), der));
        rest = &block[end..];
    }
    Ok(blocks)
}

fn ed25519_jwk(key: &ed25519_dalek::VerifyingKey) -> Result<PublicJwk, KeyError> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    PublicJwk::parse(&format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#))
        .map_err(KeyError::Invalid)
}

fn p256_jwk(key: &p256::PublicKey) -> Result<PublicJwk, KeyError> {
    PublicJwk::parse(&key.to_jwk_string()).map_err(KeyError::Invalid)
}

/// A public key to register, in any form an agency's tools produce: a JWK, a `PUBLIC KEY` PEM
/// (SubjectPublicKeyInfo, what `openssl pkey -pubout` writes), or a private key PEM, of which
/// only the public half is taken.
pub fn public_key_from_text(text: &str) -> Result<PublicJwk, KeyError> {
    if text.trim_start().starts_with('{') {
        return PublicJwk::parse(text).map_err(KeyError::Invalid);
    }
    let blocks = pem_blocks(text)?;
    if let Some((_, der)) = blocks.iter().find(|(label, _)| label == "PUBLIC KEY") {
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return ed25519_jwk(&key);
        }
        if let Ok(key) = p256::PublicKey::from_public_key_der(der) {
            return p256_jwk(&key);
        }
        return Err(KeyError::Invalid(
            "the public key is neither Ed25519 nor P-256".into(),
        ));
    }
    SigningKey::from_pem(text)
        .map(|key| key.public)
        .map_err(|_| {
            KeyError::Invalid(
                "not a public key: give a JWK, a PUBLIC KEY PEM or a private key PEM".into(),
            )
        })
}
