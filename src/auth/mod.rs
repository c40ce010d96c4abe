//! Who is calling and what it may do.
//!
//! Two steps, as in RFC 7523 and SMART Backend Services: an agency proves itself once with a
//! client assertion signed by its own private key ([`Authenticator::issue_token`]) and receives
//! a short-lived access token signed by Sinergi; every other call carries that token, which
//! [`Authenticator::authenticate`] checks. Verified tokens are cached by their SHA-256, so the
//! per-call cost is a hash, a cache lookup and a look at the in-memory grants
//! ([`registry`]) — which are consulted on every call, so revocations apply to live tokens.

pub mod assertion;
pub mod jwk;
pub mod keys;
pub mod layer;
pub mod principal;
pub mod registry;

use std::{collections::BTreeSet, path::Path, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use self::assertion::{
    ASSERTION_LEEWAY_SECS, AssertionClaims, MAX_ASSERTION_BYTES, MAX_ASSERTION_LIFETIME_SECS,
    MAX_JTI_CHARS, MAX_PURPOSE_CHARS,
};
use self::jwk::{PublicJwk, is_plausible_kid};
use self::keys::{KeyError, SigningKey};
use self::principal::{Principal, VerifiedToken};
use self::registry::AuthRegistry;
use crate::config::AuthConfig;
use crate::domain::agency::{AgencyId, KeyAlgorithm};
use crate::domain::region::RegionCode;
use crate::domain::scope::Scope;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// The `typ` of Sinergi access tokens (RFC 9068), so no other JWT can pass for one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Largest `authorization` value looked at; anything longer is refused unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;
/// Clock skew tolerated between replicas on access tokens.
const ACCESS_TOKEN_LEEWAY_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No valid credentials. The reason is for the log only: callers learn nothing about
    /// which check failed.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Valid credentials without the right; the message tells a legitimate caller what is
    /// missing.
    #[error("{0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    pub fn missing_scope(scope: Scope) -> Self {
        Self::PermissionDenied(format!("this call needs the `{scope}` scope"))
    }

    pub fn outside_region(scope: Scope, region: &RegionCode) -> Self {
        Self::PermissionDenied(format!(
            "the caller's `{scope}` grant does not cover region {region}"
        ))
    }
}

/// Creates the first administrator agency, holding `public_jwk` and the `admin` scope, straight
/// in the database: how a new deployment gets its first caller. Refused once an administrator
/// exists.
pub async fn bootstrap_admin(
    store: &dyn Store,
    id: &str,
    display_name: &str,
    public_jwk: &str,
) -> Result<(crate::domain::agency::Agency, String), BootstrapError> {
    use crate::domain::{
        Violations,
        agency::{AgencyKind, NewAgency},
    };
    use crate::store::NewKey;

    let mut violations = Violations::new();
    let id = violations.check("agency", AgencyId::parse(id));
    let name = violations.check(
        "display_name",
        crate::domain::agency::display_name(display_name),
    );
    let jwk = violations.check("public_key", PublicJwk::parse(public_jwk));
    let (Some(id), Some(display_name), Some(jwk)) = (id, name, jwk) else {
        return Err(violations.into_error().into());
    };
    let kid = jwk.thumbprint();
    // Recorded like any administrative change, on the authority of the command line.
    let audit = crate::audit::CallAudit::new("sinergi admin bootstrap", "local".into(), "", "");
    audit.identify(id.as_str(), "", None);
    audit.touch(id.as_str());
    let detail = serde_json::json!({
        "action": "bootstrap_admin", "agency": id.as_str(), "kid": kid, "scope": "admin",
    });
    let entry = audit.entry(
        0,
        Some(crate::audit::digest(&crate::proto::RegisterKeyRequest {
            agency_id: id.as_str().to_owned(),
            public_jwk: jwk.canonical_json(),
        })),
        Some(detail.to_string()),
    );
    let agency = store
        .bootstrap_admin(
            &NewAgency {
                id: id.clone(),
                kind: AgencyKind::Admin,
                display_name,
                home_region: None,
            },
            &NewKey {
                agency_id: id,
                kid: kid.clone(),
                algorithm: jwk.algorithm,
                public_jwk: jwk.canonical_json(),
            },
            &entry,
        )
        .await?;
    Ok((agency, kid))
}

/// Why the first administrator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Invalid(#[from] crate::domain::ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An access token handed out by [`Authenticator::issue_token`].
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    /// The access token's `jti`.
    pub token_id: String,
    pub expires_at: OffsetDateTime,
    pub scopes: Vec<Scope>,
    pub agency: AgencyId,
    pub purpose: Option<String>,
    /// The client certificate the token is bound to (`x5t#S256`), if any.
    pub certificate_thumbprint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    /// The agency key the token was obtained with.
    akid: String,
    /// The version of agencies, keys and grants the token was issued against: a replica
    /// that has not seen that version yet catches up before judging the token.
    av: i64,
    /// RFC 8705 confirmation: the client certificate the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Confirmation {
    #[serde(rename = "x5t#S256")]
    certificate_thumbprint: String,
}

/// The verified client certificate (the leaf, DER) of a call that came through the HTTP door
/// over mutual TLS; calls on the gRPC port carry tonic's `TlsConnectInfo` instead.
#[derive(Debug, Clone)]
pub struct ClientCertificate(Arc<[u8]>);

impl ClientCertificate {
    pub fn new(der: &[u8]) -> Self {
        Self(der.into())
    }
}

/// The RFC 8705 `x5t#S256` thumbprint of the client certificate on a call's TLS connection:
/// the base64url SHA-256 of the leaf certificate's DER.
pub fn client_certificate_thumbprint(extensions: &http::Extensions) -> Option<String> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let thumbprint = |leaf: &[u8]| URL_SAFE_NO_PAD.encode(Sha256::digest(leaf));
    if let Some(ClientCertificate(leaf)) = extensions.get::<ClientCertificate>() {
        return Some(thumbprint(leaf));
    }
    let certificates = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    Some(thumbprint(certificates.first()?.as_ref()))
}

/// Sinergi's own signing keys: the current one signs, previous ones still verify until the
/// tokens they signed have expired.
pub struct ServiceKeys {
    current: SigningKey,
    previous: Vec<SigningKey>,
}

impl ServiceKeys {
    /// The configured key (PEM text, or a file), else `keys/signing-key.pem` in the data
    /// directory, generated there on first start.
    pub fn load(config: &AuthConfig, data_dir: &Path) -> Result<Self, KeyError> {
        let current = match (&config.signing_key_pem, &config.signing_key_file) {
            (Some(pem), _) => SigningKey::from_pem(pem)?,
            (None, Some(file)) => SigningKey::read(file)?,
            (None, None) => SigningKey::read_or_generate(&data_dir.join("keys/signing-key.pem"))?,
        };
        if current.algorithm() != KeyAlgorithm::EdDsa {
            return Err(KeyError::Invalid(
                "Sinergi's signing key must be Ed25519".into(),
            ));
        }
        let previous = config
            .previous_signing_key_files
            .iter()
            .map(|file| SigningKey::read(file))
            .collect::<Result<_, _>>()?;
        Ok(Self { current, previous })
    }

    fn all(&self) -> impl Iterator<Item = &SigningKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// The public keys, current first.
    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.all().map(|key| key.public().clone()).collect()
    }
}

pub struct Authenticator {
    config: AuthConfig,
    keys: ServiceKeys,
    /// Verification keys of `keys`, by kid.
    verifiers: Vec<(String, DecodingKey)>,
    registry: Arc<AuthRegistry>,
    store: Arc<dyn Store>,
    cache: quick_cache::sync::Cache<[u8; 32], Arc<VerifiedToken>>,
    metrics: Arc<Metrics>,
}

/// The parts of a client assertion's header that matter, after the header passed policy.
struct AssertionHeader {
    algorithm: KeyAlgorithm,
    kid: String,
}

fn decode_json_part(part: &str) -> Option<serde_json::Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Checks a client assertion's header against policy before any key is looked at (RFC 8725):
/// only EdDSA and ES256, a `kid` of the expected shape, and no header that would point at a
/// key elsewhere (`jku`, `x5u`) or carry one (`jwk`, `x5c`), nor extensions (`crit`).
fn inspect_assertion(assertion: &str) -> Result<(AssertionHeader, String), AuthError> {
    let malformed = AuthError::Unauthenticated("malformed client assertion");
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let header = decode_json_part(header).ok_or(malformed)?;
    if ["jku", "x5u", "jwk", "x5c", "crit"]
        .iter()
        .any(|member| header.contains_key(*member))
    {
        return Err(AuthError::Unauthenticated(
            "assertion header names a key source",
        ));
    }
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(KeyAlgorithm::parse)
        .ok_or(AuthError::Unauthenticated(
            "assertion algorithm not allowed",
        ))?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|kid| is_plausible_kid(kid))
        .ok_or(AuthError::Unauthenticated(
            "assertion kid missing or malformed",
        ))?
        .to_owned();
    let issuer = decode_json_part(payload)
        .and_then(|claims| claims.get("iss").and_then(Value::as_str).map(str::to_owned))
        .ok_or(AuthError::Unauthenticated("assertion has no issuer"))?;
    Ok((AssertionHeader { algorithm, kid }, issuer))
}

fn jwt_algorithm(algorithm: KeyAlgorithm) -> Algorithm {
    match algorithm {
        KeyAlgorithm::EdDsa => Algorithm::EdDSA,
        KeyAlgorithm::Es256 => Algorithm::ES256,
    }
}

impl Authenticator {
    pub fn new(
        config: AuthConfig,
        keys: ServiceKeys,
        registry: Arc<AuthRegistry>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, KeyError> {
        let verifiers = keys
            .all()
            .map(|key| {
                Ok((
                    key.kid(),
                    key.public().decoding_key().map_err(KeyError::Invalid)?,
                ))
            })
            .collect::<Result<_, KeyError>>()?;
        let cache = quick_cache::sync::Cache::new(config.token_cache_capacity.max(1));
        Ok(Self {
            config,
            keys,
            verifiers,
            registry,
            store,
            cache,
            metrics,
        })
    }

    pub fn registry(&self) -> &Arc<AuthRegistry> {
        &self.registry
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.keys.public_keys()
    }

    /// Sinergi's current Ed25519 key, which also signs audit checkpoints.
    pub fn current_ed25519(&self) -> Option<&ed25519_dalek::SigningKey> {
        self.keys.current.ed25519()
    }

    /// Checks a client assertion and, if every check passes, signs an access token, bound to
    /// `certificate_thumbprint` (the connection's client certificate) when there is one.
    pub async fn issue_token(
        &self,
        assertion: &str,
        certificate_thumbprint: Option<String>,
    ) -> Result<IssuedToken, AuthError> {
        if assertion.len() > MAX_ASSERTION_BYTES {
            return Err(AuthError::Unauthenticated("assertion too large"));
        }
        let (header, issuer) = inspect_assertion(assertion)?;
        let agency = AgencyId::parse(&issuer)
            .map_err(|_| AuthError::Unauthenticated("assertion issuer is not an agency id"))?;
        let mut snapshot = self.registry.snapshot();
        if snapshot.enabled_agency(agency.as_str()).is_none()
            || snapshot.valid_key(agency.as_str(), &header.kid).is_none()
        {
            // Perhaps registered a moment ago through another replica.
            self.registry.refresh().await?;
            snapshot = self.registry.snapshot();
        }
        snapshot
            .enabled_agency(agency.as_str())
            .ok_or(AuthError::Unauthenticated("unknown or disabled agency"))?;
        let key = snapshot
            .valid_key(agency.as_str(), &header.kid)
            .ok_or(AuthError::Unauthenticated("unknown or revoked key"))?;
        if key.key.algorithm != header.algorithm {
            return Err(AuthError::Unauthenticated(
                "algorithm does not match the key",
            ));
        }

        let mut validation = Validation::new(jwt_algorithm(header.algorithm));
        validation.leeway = ASSERTION_LEEWAY_SECS as u64;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[agency.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key.decoding, &validation)
            .map_err(|_| AuthError::Unauthenticated("assertion signature or claims invalid"))?
            .claims;

        let now = OffsetDateTime::now_utc();
        if claims.sub != claims.iss {
            return Err(AuthError::Unauthenticated(
                "assertion subject is not its issuer",
            ));
        }
        if claims.iat > now.unix_timestamp() + ASSERTION_LEEWAY_SECS {
            return Err(AuthError::Unauthenticated("assertion issued in the future"));
        }
        if claims.exp - claims.iat > MAX_ASSERTION_LIFETIME_SECS {
            return Err(AuthError::Unauthenticated("assertion lifetime too long"));
        }
        if claims.jti.is_empty() || claims.jti.chars().count() > MAX_JTI_CHARS {
            return Err(AuthError::Unauthenticated(
                "assertion jti missing or too long",
            ));
        }
        let purpose = claims
            .purpose
            .as_deref()
            .map(str::trim)
            .filter(|purpose| !purpose.is_empty());
        if purpose.is_some_and(|p| {
            p.chars().count() > MAX_PURPOSE_CHARS || p.chars().any(char::is_control)
        }) {
            return Err(AuthError::Unauthenticated("assertion purpose malformed"));
        }

        let granted: BTreeSet<Scope> = snapshot
            .active_grants(agency.as_str(), now)
            .map(|grant| grant.scope)
            .collect();
        let scopes = match claims.scope.as_deref() {
            None => granted.into_iter().collect(),
            Some(requested) => {
                let requested =
                    Scope::parse_list(requested).map_err(AuthError::PermissionDenied)?;
                if let Some(missing) = requested.iter().find(|scope| !granted.contains(scope)) {
                    return Err(AuthError::PermissionDenied(format!(
                        "scope `{missing}` is not granted to {agency}"
                    )));
                }
                requested
            }
        };

        let jti_expiry = OffsetDateTime::from_unix_timestamp(claims.exp + ASSERTION_LEEWAY_SECS)
            .map_err(|_| AuthError::Unauthenticated("assertion expiry out of range"))?;
        match self
            .store
            .record_assertion(&agency, &claims.jti, jti_expiry)
            .await
        {
            Err(StoreError::Duplicate { .. }) => {
                return Err(AuthError::Unauthenticated("assertion jti replayed"));
            }
            other => other?,
        }

        let issued_at = now.unix_timestamp();
        let expires_at = issued_at + self.config.access_token_ttl_secs as i64;
        let access = AccessClaims {
            iss: self.config.issuer.clone(),
            sub: agency.as_str().to_owned(),
            aud: self.config.audience.clone(),
            iat: issued_at,
            nbf: issued_at,
            exp: expires_at,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: Scope::join(&scopes),
            purpose: purpose.map(str::to_owned),
            akid: header.kid,
            av: snapshot.version,
            cnf: certificate_thumbprint.map(|thumbprint| Confirmation {
                certificate_thumbprint: thumbprint,
            }),
        };
        let access_token = self
            .keys
            .current
            .sign(ACCESS_TOKEN_TYPE, &access)
            .map_err(|error| {
                tracing::error!(%error, "cannot sign an access token");
                AuthError::Unauthenticated("signing failed")
            })?;
        Ok(IssuedToken {
            token_id: access.jti.clone(),
            access_token,
            expires_at: OffsetDateTime::from_unix_timestamp(expires_at).unwrap_or(now),
            scopes,
            agency,
            purpose: access.purpose,
            certificate_thumbprint: access.cnf.map(|cnf| cnf.certificate_thumbprint),
        })
    }

    /// Checks the `authorization` metadata of a call made over a connection presenting the
    /// client certificate `certificate_thumbprint` (if any).
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        certificate_thumbprint: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let verified = self.verified_token(authorization)?;
        if let Some(bound) = &verified.certificate_thumbprint
            && certificate_thumbprint != Some(bound.as_str())
        {
            return Err(AuthError::Unauthenticated(
                "token bound to another client certificate",
            ));
        }
        if self.registry.snapshot().version < verified.auth_version {
            self.registry.refresh().await?;
        }
        if let Some(principal) = self.resolve(&verified) {
            return Ok(principal);
        }
        // A genuine token whose agency or key this replica does not know as valid: created a
        // moment ago through another replica, or disabled or revoked since. Look again before
        // refusing.
        self.registry.refresh().await?;
        self.resolve(&verified)
            .ok_or(AuthError::Unauthenticated("agency disabled or key revoked"))
    }

    /// The claims of a genuine, unexpired access token, from the cache when it was seen before.
    fn verified_token(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Arc<VerifiedToken>, AuthError> {
        let value = authorization.ok_or(AuthError::Unauthenticated("no authorization"))?;
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Err(AuthError::Unauthenticated("authorization too large"));
        }
        let token = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
            .ok_or(AuthError::Unauthenticated("not a bearer token"))?;
        let token = std::str::from_utf8(token)
            .map_err(|_| AuthError::Unauthenticated("token is not text"))?
            .trim();

        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.cache.get(&digest);
        self.metrics.record_token_lookup(cached.is_some());
        let verified = match cached {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify_access_token(token)?);
                self.cache.insert(digest, Arc::clone(&verified));
                verified
            }
        };
        if verified.expires_at <= OffsetDateTime::now_utc().unix_timestamp() {
            self.cache.remove(&digest);
            return Err(AuthError::Unauthenticated("token expired"));
        }
        Ok(verified)
    }

    /// The caller a verified token stands for, if its agency is enabled and the key it was
    /// obtained with is not revoked.
    fn resolve(&self, verified: &Arc<VerifiedToken>) -> Option<Principal> {
        let snapshot = self.registry.snapshot();
        let kind = snapshot.enabled_agency(verified.agency.as_str())?.kind;
        snapshot.valid_key(verified.agency.as_str(), &verified.agency_kid)?;
        Some(Principal::new(
            Arc::clone(verified),
            kind,
            snapshot,
            OffsetDateTime::now_utc(),
        ))
    }

    fn verify_access_token(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let invalid = AuthError::Unauthenticated("access token invalid");
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Unauthenticated("access token malformed"))?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(invalid);
        }
        let kid = header
            .kid
            .ok_or(AuthError::Unauthenticated("access token has no kid"))?;
        let (_, key) = self
            .verifiers
            .iter()
            .find(|(known, _)| *known == kid)
            .ok_or(AuthError::Unauthenticated(
                "access token from another deployment",
            ))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = ACCESS_TOKEN_LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|_| invalid)?
            .claims;
        Ok(VerifiedToken {
            agency: AgencyId::parse(&claims.sub)
                .map_err(|_| AuthError::Unauthenticated("access token subject malformed"))?,
            scopes: Scope::parse_list(&claims.scope)
                .map_err(|_| AuthError::Unauthenticated("access token scope malformed"))?,
            purpose: claims.purpose,
            agency_kid: claims.akid,
            token_id: claims.jti,
            expires_at: claims.exp,
            auth_version: claims.av,
            certificate_thumbprint: claims.cnf.map(|cnf| cnf.certificate_thumbprint),
        })
    }
}
