//! Identity, tokens and scopes over real gRPC, on SQLite and PostgreSQL: the attacks a token
//! endpoint must withstand, each answered with the right status and changing nothing.

mod common;

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{Backend, TestAgency, TestApp, spawn_app};
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use sinergi::{
    auth::keys::SigningKey,
    domain::agency::KeyAlgorithm,
    proto::{self, AgencyKind},
};
use tonic::Code;

const AUDIENCE: &str = "sinergi";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An Ed25519 key held as raw bytes, to sign any header and claims the attack needs.
struct RawKey {
    signing: ed25519_dalek::SigningKey,
    kid: String,
}

impl RawKey {
    fn jwk(signing: &ed25519_dalek::SigningKey) -> String {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(signing.verifying_key().as_bytes())})
            .to_string()
    }

    /// A compact JWS over exactly this header and these claims.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(signature.to_bytes()))
    }

    fn header(&self) -> Value {
        json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid})
    }
}

/// An agency with the registry scopes for Central Java and a raw Ed25519 key.
async fn agency_with_raw_key(app: &TestApp) -> (TestAgency, RawKey) {
    let agency = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("employers.read", &["33"]), ("employers.write", &["33.75"])],
        )
        .await;
    let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let kid = app
        .admin_client()
        .register_key(proto::RegisterKeyRequest {
            agency_id: agency.id.clone(),
            public_jwk: RawKey::jwk(&signing),
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap()
        .kid;
    (agency, RawKey { signing, kid })
}

fn claims(agency: &str) -> Value {
    let now = now();
    json!({
        "iss": agency, "sub": agency, "aud": AUDIENCE,
        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn exchange(
    app: &TestApp,
    assertion: String,
) -> Result<proto::IssueTokenResponse, tonic::Status> {
    app.auth()
        .issue_token(proto::IssueTokenRequest {
            client_assertion: assertion,
        })
        .await
        .map(|r| r.into_inner())
}

async fn expect_refused(app: &TestApp, assertion: String, what: &str) {
    let status = exchange(app, assertion).await.expect_err(what);
    assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    assert_eq!(
        status.message(),
        "missing or invalid credentials",
        "{what}: the refusal must not say which check failed"
    );
}

async fn registered_employer_count(app: &TestApp) -> usize {
    app.employers()
        .list_employers(proto::ListEmployersRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers
        .len()
}

async fn a_well_formed_assertion_gets_a_token_with_its_scopes(app: TestApp) {
    let (agency, key) = agency_with_raw_key(&app).await;
    let mut wanted = claims(&agency.id);
    wanted["scope"] = json!("employers.read");
    wanted["purpose"] = json!("pemeriksaan kepatuhan");
    let issued = exchange(&app, key.sign(&key.header(), &wanted))
        .await
        .unwrap();
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.agency_id, agency.id);
    assert_eq!(issued.scopes, ["employers.read"]);
    assert_eq!(issued.purpose, "pemeriksaan kepatuhan");
    let lifetime = issued.expire_time.unwrap().seconds - now();
    assert!(
        (590..=600).contains(&lifetime),
        "default lifetime is 10 minutes, got {lifetime}"
    );

    // Without `scope` the token carries every granted scope.
    let issued = exchange(&app, key.sign(&key.header(), &claims(&agency.id)))
        .await
        .unwrap();
    assert_eq!(issued.scopes, ["employers.read", "employers.write"]);
}

async fn p256_keys_sign_assertions_too(app: TestApp) {
    let agency = app
        .agency(AgencyKind::Kejaksaan, &[("employers.read", &[])])
        .await;
    let (key, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    app.admin_client()
        .register_key(proto::RegisterKeyRequest {
            agency_id: agency.id.clone(),
            public_jwk: key.public().canonical_json(),
        })
        .await
        .unwrap();
    let p256_agency = TestAgency {
        key,
        ..agency.clone()
    };
    let token = app.token(&p256_agency, None).await.unwrap();
    let listed = app
        .employers_as(&token)
        .list_employers(proto::ListEmployersRequest::default())
        .await;
    assert!(listed.is_ok(), "{listed:?}");
}

async fn forged_and_malformed_assertions_are_refused(app: TestApp) {
    let (agency, key) = agency_with_raw_key(&app).await;
    let (other, other_key) = agency_with_raw_key(&app).await;
    let id = agency.id.as_str();

    // alg: none, with and without a signature.
    let mut header = key.header();
    header["alg"] = json!("none");
    let unsigned = format!(
        "{}.{}.",
        b64(header.to_string()),
        b64(claims(id).to_string())
    );
    expect_refused(&app, unsigned, "alg none").await;
    expect_refused(&app, key.sign(&header, &claims(id)), "alg none, signed").await;

    // HS256 with the registered public key as the HMAC secret (algorithm confusion).
    for secret in [
        RawKey::jwk(&key.signing).into_bytes(),
        key.signing.verifying_key().as_bytes().to_vec(),
    ] {
        let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs_header.kid = Some(key.kid.clone());
        let forged = jsonwebtoken::encode(
            &hs_header,
            &claims(id),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        expect_refused(&app, forged, "HS256 with the public key as secret").await;
    }

    // Another agency's kid, signed with that agency's key but claiming to be this agency.
    let mut borrowed = other_key.header();
    borrowed["kid"] = json!(other_key.kid);
    expect_refused(
        &app,
        other_key.sign(&borrowed, &claims(id)),
        "another agency's kid",
    )
    .await;
    // And this agency's kid with the other agency's key.
    expect_refused(
        &app,
        other_key.sign(&key.header(), &claims(id)),
        "wrong key for kid",
    )
    .await;
    assert!(!other.id.is_empty());

    for kid in [
        "../../../etc/passwd",
        "x' OR '1'='1",
        "kid; DROP TABLE agencies; --",
    ] {
        let mut header = key.header();
        header["kid"] = json!(kid);
        expect_refused(&app, key.sign(&header, &claims(id)), "hostile kid").await;
    }

    for (member, value) in [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        (
            "jwk",
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.signing.verifying_key().as_bytes())}),
        ),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
    ] {
        let mut header = key.header();
        header[member] = value;
        expect_refused(&app, key.sign(&header, &claims(id)), member).await;
    }

    let mut string_exp = claims(id);
    string_exp["exp"] = json!((now() + 60).to_string());
    expect_refused(
        &app,
        key.sign(&key.header(), &string_exp),
        "exp as a string",
    )
    .await;

    let mut expired = claims(id);
    expired["iat"] = json!(now() - 200);
    expired["exp"] = json!(now() - 61 - 5);
    expect_refused(
        &app,
        key.sign(&key.header(), &expired),
        "expired beyond leeway",
    )
    .await;

    let mut not_yet = claims(id);
    not_yet["nbf"] = json!(now() + 300);
    expect_refused(&app, key.sign(&key.header(), &not_yet), "nbf in the future").await;

    let mut wrong_audience = claims(id);
    wrong_audience["aud"] = json!("another-deployment");
    expect_refused(&app, key.sign(&key.header(), &wrong_audience), "wrong aud").await;

    let mut long_lived = claims(id);
    long_lived["exp"] = json!(now() + 301);
    expect_refused(
        &app,
        key.sign(&key.header(), &long_lived),
        "lifetime over 5 minutes",
    )
    .await;

    let mut other_subject = claims(id);
    other_subject["sub"] = json!(other.id);
    expect_refused(
        &app,
        key.sign(&key.header(), &other_subject),
        "sub differs from iss",
    )
    .await;

    let assertion = key.sign(&key.header(), &claims(id));
    let mut bit_flipped = assertion.clone().into_bytes();
    let middle = bit_flipped.len() / 2;
    bit_flipped[middle] ^= 0x01;
    expect_refused(
        &app,
        String::from_utf8(bit_flipped).unwrap(),
        "bit-flipped assertion",
    )
    .await;
    expect_refused(
        &app,
        assertion[..assertion.len() - 10].to_owned(),
        "truncated assertion",
    )
    .await;
    expect_refused(&app, "x".repeat(9000), "oversized assertion").await;

    // After all of that, the genuine assertion still works.
    exchange(&app, assertion)
        .await
        .expect("the untouched assertion is accepted");
}

async fn a_replayed_jti_is_refused(app: TestApp) {
    let (agency, key) = agency_with_raw_key(&app).await;
    let assertion = key.sign(&key.header(), &claims(&agency.id));
    exchange(&app, assertion.clone()).await.expect("first use");
    expect_refused(&app, assertion, "replayed assertion").await;
    // The same jti in a freshly signed assertion is a replay too.
    let mut reused = claims(&agency.id);
    reused["jti"] = json!("fixed-jti");
    exchange(&app, key.sign(&key.header(), &reused))
        .await
        .expect("first use of jti");
    reused["iat"] = json!(now() - 1);
    expect_refused(&app, key.sign(&key.header(), &reused), "replayed jti").await;
}

async fn ungranted_scopes_are_denied(app: TestApp) {
    let (agency, key) = agency_with_raw_key(&app).await;
    let mut asking = claims(&agency.id);
    asking["scope"] = json!("employers.read admin");
    let status = exchange(&app, key.sign(&key.header(), &asking))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // A token without the scope a call needs is denied, distinct from unauthenticated.
    let reader = app.token(&agency, Some("employers.read")).await.unwrap();
    let before = registered_employer_count(&app).await;
    let status = app
        .employers_as(&reader)
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(common::employer("PT Tanpa Izin")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("employers.write"));
    assert_eq!(registered_employer_count(&app).await, before);

    let status =
        proto::agency_admin_service_client::AgencyAdminServiceClient::new(app.authed(&reader))
            .list_agencies(proto::ListAgenciesRequest::default())
            .await
            .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn region_limited_grants_limit_reads_and_writes(app: TestApp) {
    // Grants: read Central Java (33), write Kota Pekalongan (33.75) only.
    let (agency, _) = agency_with_raw_key(&app).await;
    let mut batang = common::employer("PT Batang");
    batang.region = Some(proto::RegionCode {
        code: "33.25".into(),
    });
    let batang = common::create(&app, batang).await;
    let mut serang = common::employer("PT Serang");
    serang.region = Some(proto::RegionCode {
        code: "36.73".into(),
    });
    let serang = common::create(&app, serang).await;
    let pekalongan = common::create(&app, common::employer("PT Pekalongan")).await;

    let mut client = app.employers_as(&agency.token);
    let listed: Vec<String> = client
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .employers
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(listed.contains(&batang.id) && listed.contains(&pekalongan.id));
    assert!(!listed.contains(&serang.id), "Banten is outside the grant");
    let searched = client
        .search_employers(proto::SearchEmployersRequest {
            query: "pt".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers;
    assert!(searched.iter().all(|e| e.id != serang.id));

    let status = client
        .list_employers(proto::ListEmployersRequest {
            region_prefix: Some(proto::RegionCode { code: "36".into() }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .get_employer(proto::GetEmployerRequest {
            key: Some(proto::get_employer_request::Key::Id(serang.id.clone())),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Writing in 33.75 is allowed; in Batang (readable but not writable) it is not, whether
    // creating there, updating an employer there, or moving one there.
    let mut renamed = pekalongan.clone();
    renamed.name = "PT Pekalongan Baru".into();
    client
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(renamed),
            ..Default::default()
        })
        .await
        .expect("write inside the grant");
    let mut new_in_batang = common::employer("PT Baru Batang");
    new_in_batang.region = Some(proto::RegionCode {
        code: "33.25".into(),
    });
    let mut batang_renamed = batang.clone();
    batang_renamed.name = "PT Batang Diubah".into();
    batang_renamed.region = Some(proto::RegionCode {
        code: "33.75".into(),
    });
    let mut moved_away = pekalongan.clone();
    moved_away.region = Some(proto::RegionCode {
        code: "33.25".into(),
    });
    let before = registered_employer_count(&app).await;
    for attempt in [new_in_batang, batang_renamed, moved_away] {
        let status = client
            .upsert_employer(proto::UpsertEmployerRequest {
                employer: Some(attempt),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    assert_eq!(registered_employer_count(&app).await, before);
    let unchanged = app
        .employers()
        .get_employer(proto::GetEmployerRequest {
            key: Some(proto::get_employer_request::Key::Id(batang.id.clone())),
        })
        .await
        .unwrap()
        .into_inner()
        .employer
        .unwrap();
    assert_eq!(unchanged, batang);
}

async fn revoked_keys_and_disabled_agencies_stop_tokens(app: TestApp) {
    let (agency, key) = agency_with_raw_key(&app).await;
    let token = exchange(&app, key.sign(&key.header(), &claims(&agency.id)))
        .await
        .unwrap()
        .access_token;
    app.employers_as(&token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .expect("token works before revocation");

    app.admin_client()
        .revoke_key(proto::RevokeKeyRequest {
            agency_id: agency.id.clone(),
            kid: key.kid.clone(),
        })
        .await
        .unwrap();
    expect_refused(
        &app,
        key.sign(&key.header(), &claims(&agency.id)),
        "revoked key",
    )
    .await;
    let status = app
        .employers_as(&token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "a token of a revoked key stops"
    );

    // The agency's other key still works until the agency is disabled.
    let other_token = agency.token.clone();
    app.employers_as(&other_token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .expect("other key's token still valid");
    app.admin_client()
        .disable_agency(proto::DisableAgencyRequest {
            id: agency.id.clone(),
        })
        .await
        .unwrap();
    let status = app
        .employers_as(&other_token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = app.token(&agency, None).await.unwrap_err();
    assert!(
        matches!(status, sinergi::client::ClientError::Call(s) if s.code() == Code::Unauthenticated)
    );
}

async fn bad_access_tokens_are_unauthenticated(app: TestApp) {
    let before = registered_employer_count(&app).await;
    let token = app.registry.token.clone();
    let mut flipped = token.clone().into_bytes();
    let index = flipped.len() - 20;
    flipped[index] = if flipped[index] == b'A' { b'B' } else { b'A' };
    let candidates = [
        String::new(),
        "not-a-jwt".to_owned(),
        token[..token.len() - 5].to_owned(),
        String::from_utf8(flipped).unwrap(),
        // A client assertion is not an access token.
        sinergi::auth::assertion::AssertionClaims::new(&app.registry.id, AUDIENCE, None, None)
            .sign(&app.registry.key)
            .unwrap(),
    ];
    for candidate in candidates {
        let status = app
            .employers_as(&candidate)
            .upsert_employer(proto::UpsertEmployerRequest {
                employer: Some(common::employer("PT Palsu")),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{candidate:.20}: {status:?}"
        );
    }

    // No authorization at all.
    let status = common::EmployerServiceClient::new(app.channel.clone())
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");

    // An authorization value over the 8 KiB the service reads is refused unread.
    let status = app
        .employers_as(&"A".repeat(20 * 1024))
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A one-megabyte header is stopped by the HTTP/2 layer before it is even assembled: the
    // connection is told to calm down, which the client reports as RESOURCE_EXHAUSTED.
    let status = app
        .employers_as(&"A".repeat(1024 * 1024))
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Nothing was written, and the server still answers normally.
    assert_eq!(registered_employer_count(&app).await, before);
}

/// The agency's grants in force.
async fn grants_of(app: &TestApp, agency_id: &str) -> Vec<proto::Grant> {
    app.admin_client()
        .list_grants(proto::ListGrantsRequest {
            agency_id: agency_id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants
}

async fn a_revoked_grant_stops_a_live_token_within_two_seconds(app: TestApp) {
    let agency = app
        .agency(AgencyKind::Disnaker, &[("employers.read", &["33.75"])])
        .await;
    let grants = grants_of(&app, &agency.id).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].granted_by, app.admin.id);
    let mut client = app.employers_as(&agency.token);
    client
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .expect("granted");

    let revoked = app
        .admin_client()
        .revoke_grant(proto::RevokeGrantRequest {
            id: grants[0].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .grant
        .unwrap();
    assert_eq!(revoked.revoked_by, app.admin.id);
    let status = refused_within_two_seconds(&mut client).await;
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// Lists employers until the call is refused and returns the refusal; a call still served two
/// seconds after the revocation fails the test.
async fn refused_within_two_seconds(
    client: &mut common::EmployerServiceClient<common::Authed>,
) -> tonic::Status {
    let started = Instant::now();
    loop {
        match client
            .list_employers(proto::ListEmployersRequest::default())
            .await
        {
            Err(status) => return status,
            Ok(_) if started.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(_) => panic!("the revoked grant still worked after 2 s"),
        }
    }
}

async fn admin_inputs_are_validated(app: TestApp) {
    let mut admin = app.admin_client();
    let status = admin
        .create_agency(proto::CreateAgencyRequest {
            agency: Some(proto::Agency {
                id: "Bad Id".into(),
                display_name: String::new(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let agency = app.agency(AgencyKind::Forum, &[]).await;
    let status = admin
        .create_agency(proto::CreateAgencyRequest {
            agency: Some(proto::Agency {
                id: agency.id.clone(),
                kind: AgencyKind::Forum.into(),
                display_name: "Again".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    for (scope, region) in [("employers.delete", "33"), ("employers.read", "99")] {
        let status = admin
            .grant_scope(proto::GrantScopeRequest {
                agency_id: agency.id.clone(),
                scope: scope.into(),
                regions: vec![proto::RegionCode {
                    code: region.into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    let with_private =
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64([7u8; 32]), "d": b64([1u8; 32])});
    let status = admin
        .register_key(proto::RegisterKeyRequest {
            agency_id: agency.id.clone(),
            public_jwk: with_private.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = admin
        .register_key(proto::RegisterKeyRequest {
            agency_id: agency.id.clone(),
            public_jwk: agency.key.public().canonical_json(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "the same key twice");
    let status = admin
        .get_agency(proto::GetAgencyRequest {
            id: "no-such-agency".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn the_jwks_publishes_the_signing_key(app: TestApp) {
    let jwks = app
        .auth()
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].crv, "Ed25519");
    assert_eq!(jwks.audience, AUDIENCE);
    let header = jsonwebtoken::decode_header(&app.registry.token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(jwks.keys[0].kid.as_str()));
    // Anyone can verify an access token with the published key.
    let key = jsonwebtoken::DecodingKey::from_ed_components(&jwks.keys[0].x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    let verified = jsonwebtoken::decode::<Value>(&app.registry.token, &key, &validation).unwrap();
    assert_eq!(verified.claims["sub"], app.registry.id);
    let document: Value = serde_json::from_str(&jwks.jwks_json).unwrap();
    assert_eq!(document["keys"][0]["kid"], jwks.keys[0].kid);
}

on_both_backends!(
    a_well_formed_assertion_gets_a_token_with_its_scopes,
    p256_keys_sign_assertions_too,
    forged_and_malformed_assertions_are_refused,
    a_replayed_jti_is_refused,
    ungranted_scopes_are_denied,
    region_limited_grants_limit_reads_and_writes,
    revoked_keys_and_disabled_agencies_stop_tokens,
    bad_access_tokens_are_unauthenticated,
    a_revoked_grant_stops_a_live_token_within_two_seconds,
    admin_inputs_are_validated,
    the_jwks_publishes_the_signing_key,
);

/// A token signed by one deployment means nothing to another, even with the same agency ids.
#[tokio::test]
async fn tokens_of_another_deployment_are_unauthenticated() {
    let first = spawn_app(Backend::Sqlite).await;
    let second = spawn_app(Backend::Sqlite).await;
    let status = second
        .employers_as(&first.registry.token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = second
        .employers_as(&first.admin.token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// Two servers on one PostgreSQL database: a grant withdrawn through one stops a token on the
/// other within two seconds.
#[tokio::test]
async fn a_revocation_reaches_another_replica_within_two_seconds() {
    let first = spawn_app(Backend::Postgres).await;
    let second = common::spawn_replica(&first).await;
    let agency = first
        .agency(AgencyKind::Disnaker, &[("employers.read", &[])])
        .await;
    let mut on_second = second.employers_as(&agency.token);
    on_second
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .expect("the replica accepts the token");
    let grant = grants_of(&first, &agency.id).await.remove(0);
    first
        .admin_client()
        .revoke_grant(proto::RevokeGrantRequest { id: grant.id })
        .await
        .unwrap();
    let status = refused_within_two_seconds(&mut on_second).await;
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// After a key rotation the previous key keeps verifying the tokens it signed; a deployment
/// that dropped it refuses them.
#[tokio::test]
async fn rotation_keeps_tokens_of_the_previous_key_valid() {
    let app = spawn_app(Backend::Sqlite).await;
    let old_key = app.config().data_dir.join("keys/signing-key.pem");
    let new_key = app.config().data_dir.join("keys/signing-key-2.pem");
    let (_, pem) = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    SigningKey::write_pem(&new_key, &pem).unwrap();

    let rotated = common::spawn_replica_with(&app, |config| {
        config.auth.signing_key_file = Some(new_key.clone());
        config.auth.previous_signing_key_files = vec![old_key.clone()];
    })
    .await;
    rotated
        .employers_as(&app.registry.token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .expect("a token of the previous key is still valid");
    let jwks = rotated
        .auth()
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(jwks.keys.len(), 2, "both keys are published");
    // New tokens are signed with the new key.
    let fresh = rotated.token(&app.registry, None).await.unwrap();
    let kid = jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap();
    assert_eq!(kid, jwks.keys[0].kid);

    let forgetful = common::spawn_replica_with(&app, |config| {
        config.auth.signing_key_file = Some(new_key.clone());
    })
    .await;
    let status = forgetful
        .employers_as(&app.registry.token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}
