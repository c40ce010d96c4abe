//! Public keys in JWK form (RFC 7517): Ed25519 (`OKP`, RFC 8037) and P-256 (`EC`, RFC 7518).
//! Keys are validated as real curve points when registered, identified by their RFC 7638
//! thumbprint, and never carry private material.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::agency::KeyAlgorithm;

pub const MAX_JWK_BYTES: usize = 4096;

/// A validated public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub algorithm: KeyAlgorithm,
    /// Base64url public key (Ed25519) or x coordinate (P-256).
    pub x: String,
    /// Base64url y coordinate, P-256 only.
    pub y: Option<String>,
}

fn coordinate(members: &Map<String, Value>, name: &str) -> Result<(String, Vec<u8>), String> {
    let text = members
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the JWK has no `{name}`"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("the JWK's `{name}` is not base64url without padding"))?;
    if bytes.len() != 32 {
        return Err(format!("the JWK's `{name}` must be 32 bytes"));
    }
    Ok((text.to_owned(), bytes))
}

impl PublicJwk {
    /// Parses and checks a JWK JSON object.
    pub fn parse(json: &str) -> Result<Self, String> {
        if json.len() > MAX_JWK_BYTES {
            return Err(format!("a JWK is at most {MAX_JWK_BYTES} bytes"));
        }
        let members: Map<String, Value> =
            serde_json::from_str(json).map_err(|_| "the key is not a JSON object".to_owned())?;
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|private| members.contains_key(*private))
        {
            return Err(
                "the JWK contains private key material; register only the public key".into(),
            );
        }
        let text = |name: &str| members.get(name).and_then(Value::as_str);
        let algorithm = match (text("kty"), text("crv")) {
            (Some("OKP"), Some("Ed25519")) => KeyAlgorithm::EdDsa,
            (Some("EC"), Some("P-256")) => KeyAlgorithm::Es256,
            _ => {
                return Err(
                    "only Ed25519 (kty OKP, crv Ed25519) and P-256 (kty EC, crv P-256) keys are accepted"
                        .into(),
                );
            }
        };
        if let Some(alg) = text("alg")
            && alg != algorithm.as_str()
        {
            return Err(format!("the JWK's alg `{alg}` does not fit its curve"));
        }
        let (x, x_bytes) = coordinate(&members, "x")?;
        let y = match algorithm {
            KeyAlgorithm::EdDsa => {
                let bytes: [u8; 32] = x_bytes.try_into().map_err(|_| "bad x".to_owned())?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| "the JWK is not a valid Ed25519 public key".to_owned())?;
                None
            }
            KeyAlgorithm::Es256 => {
                let (y, y_bytes) = coordinate(&members, "y")?;
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(&x_bytes);
                sec1.extend_from_slice(&y_bytes);
                p256::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| "the JWK is not a point on P-256".to_owned())?;
                Some(y)
            }
        };
        Ok(Self { algorithm, x, y })
    }

    /// The members that define the key, in the lexicographic order RFC 7638 prescribes, as
    /// compact JSON: both the stored form and the thumbprint input.
    pub fn canonical_json(&self) -> String {
        match &self.y {
            None => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.x),
            Some(y) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                self.x, y
            ),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: the key id.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    pub fn curve(&self) -> &'static str {
        match self.algorithm {
            KeyAlgorithm::EdDsa => "Ed25519",
            KeyAlgorithm::Es256 => "P-256",
        }
    }

    pub fn key_type(&self) -> &'static str {
        match self.algorithm {
            KeyAlgorithm::EdDsa => "OKP",
            KeyAlgorithm::Es256 => "EC",
        }
    }

    /// The key in the form signatures are checked with.
    pub fn decoding_key(&self) -> Result<DecodingKey, String> {
        match &self.y {
            None => DecodingKey::from_ed_components(&self.x),
            Some(y) => DecodingKey::from_ec_components(&self.x, y),
        }
        .map_err(|error| format!("unusable key: {error}"))
    }

    /// The JWK with its `kid`, `alg` and `use` members, as published in a JWK Set.
    pub fn to_published_json(&self) -> Value {
        let mut members = Map::new();
        members.insert("kty".into(), self.key_type().into());
        members.insert("crv".into(), self.curve().into());
        members.insert("x".into(), self.x.clone().into());
        if let Some(y) = &self.y {
            members.insert("y".into(), y.clone().into());
        }
        members.insert("kid".into(), self.thumbprint().into());
        members.insert("alg".into(), self.algorithm.as_str().into());
        members.insert("use".into(), "sig".into());
        Value::Object(members)
    }
}

/// Whether a `kid` is of the shape Sinergi issues (a base64url thumbprint), so nothing else —
/// paths, SQL, control characters — ever reaches a lookup or a log.
pub fn is_plausible_kid(kid: &str) -> bool {
    (1..=128).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8037 appendix A.2 public key and A.3 thumbprint.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    #[test]
    fn rfc8037_thumbprint() {
        let jwk = PublicJwk::parse(&format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#
        ))
        .unwrap();
        assert_eq!(jwk.algorithm, KeyAlgorithm::EdDsa);
        assert_eq!(jwk.thumbprint(), RFC8037_KID);
    }

    #[test]
    fn p256_points_are_checked() {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let jwk = secret.public_key().to_jwk_string();
        let parsed = PublicJwk::parse(&jwk).unwrap();
        assert_eq!(parsed.algorithm, KeyAlgorithm::Es256);
        // Flip the y coordinate: no longer on the curve.
        let value: Value = serde_json::from_str(&jwk).unwrap();
        let y = value["y"].as_str().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(y).unwrap();
        bytes[31] ^= 1;
        let off_curve = jwk.replace(y, &URL_SAFE_NO_PAD.encode(bytes));
        assert!(PublicJwk::parse(&off_curve).is_err());
    }

    #[test]
    fn private_or_foreign_keys_are_refused() {
        let with_d = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","d":"x"}}"#);
        assert!(PublicJwk::parse(&with_d).is_err());
        assert!(PublicJwk::parse(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_err());
        assert!(PublicJwk::parse(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).is_err());
        let wrong_alg =
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","alg":"ES256"}}"#);
        assert!(PublicJwk::parse(&wrong_alg).is_err());
        assert!(PublicJwk::parse("[]").is_err());
    }

    #[test]
    fn kids_are_narrow() {
        assert!(is_plausible_kid(RFC8037_KID));
        for bad in [
            "",
            "../../etc/passwd",
            "x' OR '1'='1",
            "a b",
            &"a".repeat(129),
        ] {
            assert!(!is_plausible_kid(bad), "{bad}");
        }
    }
}
