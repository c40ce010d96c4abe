//! What Sinergi's fuzz targets check, one function a target. Each takes the raw bytes libFuzzer
//! gives, feeds them to a parser an outside caller can reach, and asserts what must hold of
//! whatever the parser accepts, not only that nothing panics: an accepted identifier or key is
//! in its canonical form and reads back as itself, a token or signature with any byte changed is
//! never accepted, a verifier never accepts a mutated proof.
//!
//! `fuzz_targets/` runs these under libFuzzer (`cargo +nightly fuzz run TARGET`, see `run.sh`);
//! `tests/fuzz_corpus.rs` replays the committed corpus and crash inputs through them on stable.

use std::sync::OnceLock;

use sinergi::audit::checkpoint;
use sinergi::audit::merkle::{self, Frontier, Hash};
use sinergi::auth::jwk::PublicJwk;
use sinergi::auth::keys::{SigningKey, public_key_from_text};
use sinergi::domain::identifiers::{Kbli, Nib, Npp, Npwp, check_nik};
use sinergi::domain::region::{RegionCode, RegionLevel};

/// What a target checks of one input; it panics when a property does not hold.
pub type Property = fn(&[u8]);

/// The targets by name, as `fuzz_targets/` and the corpus directories name them.
pub const TARGETS: &[(&str, Property)] = &[
    ("identifiers", identifiers),
    ("keys", keys),
    ("checkpoint", signed_checkpoint),
    ("merkle_proofs", merkle_proofs),
    ("json_requests", json_requests),
    ("requests", requests),
    ("http_requests", http_requests),
    ("access_token", access_token),
    ("client_assertion", client_assertion),
];

/// NPWP (15 and 16 digits), NIK, NIB, NPP, KBLI and region codes: what is accepted is
/// canonical, reads back as itself, and keeps to its shape.
pub fn identifiers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(npwp) = Npwp::parse(text) {
        let canonical = npwp.as_str();
        assert_eq!(canonical.len(), 16, "{text:?} gave {canonical:?}");
        assert!(canonical.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(Npwp::parse(canonical).as_ref(), Ok(&npwp));
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        assert!(
            canonical == digits || canonical == format!("0{digits}"),
            "{text:?} gave {canonical:?}"
        );
        if !canonical.starts_with('0') {
            assert_eq!(check_nik(canonical), Ok(()));
        }
    }
    if check_nik(text).is_ok() {
        assert_eq!(text.len(), 16);
        if !text.starts_with('0') {
            assert!(
                Npwp::parse(text).is_ok(),
                "the NIK {text:?} is a valid NPWP"
            );
        }
    }
    for (accepted, len) in [
        (Nib::parse(text).map(|n| n.as_str().to_owned()), 13),
        (Npp::parse(text).map(|n| n.as_str().to_owned()), 8),
        (Kbli::parse(text).map(|n| n.as_str().to_owned()), 5),
    ] {
        if let Ok(number) = accepted {
            assert_eq!(number, text.trim());
            assert_eq!(number.len(), len);
            assert!(number.bytes().all(|b| b.is_ascii_digit()));
        }
    }
    if let Ok(code) = RegionCode::parse(text) {
        assert_eq!(code.as_str(), text.trim());
        assert_eq!(RegionCode::parse(code.as_str()), Ok(code.clone()));
        assert!(code.province().contains(&code));
        assert_eq!(
            RegionCode::parse_regency(text).is_ok(),
            code.level() == RegionLevel::RegencyOrCity
        );
    }
}

/// Public keys as JWK or PEM and private keys as PEM: an accepted key carries no private
/// material in what it publishes, and its published JWK parses back to the same key with the
/// same thumbprint.
pub fn keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let round_trips = |key: &PublicJwk| {
        let published = key.to_published_json();
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(published.get(private).is_none());
        }
        let again = PublicJwk::parse(&key.canonical_json()).expect("a canonical JWK parses");
        assert_eq!(&again, key);
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert!(key.decoding_key().is_ok());
    };
    if let Ok(key) = PublicJwk::parse(text) {
        round_trips(&key);
    }
    if let Ok(key) = public_key_from_text(text) {
        round_trips(&key);
    }
    if let Ok(key) = SigningKey::from_pem(text) {
        round_trips(key.public());
        assert_eq!(key.kid(), key.public().thumbprint());
    }
}

/// A signing key the checkpoint target's notes are signed with, made once.
fn checkpoint_key() -> &'static ed25519_dalek::SigningKey {
    static KEY: OnceLock<ed25519_dalek::SigningKey> = OnceLock::new();
    KEY.get_or_init(|| ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
}

/// The byte a mutation property changes: the input's bytes read as a number, folded into `len`
/// so that every position of the genuine value is reachable whatever the input's length.
fn position_in(position: &[u8], len: usize) -> usize {
    position
        .iter()
        .fold(0usize, |at, byte| at.wrapping_mul(256) ^ usize::from(*byte))
        % len
}

/// The signed-note checkpoint parser: arbitrary text never verifies against a key it was not
/// signed with, and a genuine checkpoint with any one byte changed no longer verifies, unless
/// the change is in a part the signature does not cover (another signer's line) and the
/// checkpoint read is the same.
pub fn signed_checkpoint(data: &[u8]) {
    let key = checkpoint_key();
    let verifier = checkpoint::verifier_key("sinergi.test/log", &key.verifying_key());
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(
            checkpoint::verify(text, &verifier).is_err(),
            "unsigned text {text:?} verified"
        );
        let _ = checkpoint::parse_verifier_key(text);
    }
    let [first, second, position @ .., change] = data else {
        return;
    };
    let size = u64::from_le_bytes([*first, *second, 0, 0, 0, 0, 0, 0]);
    let root = merkle::leaf_hash(data);
    let note = checkpoint::sign("sinergi.test/log", size, &root, key);
    let genuine = checkpoint::verify(&note, &verifier).expect("a genuine checkpoint verifies");
    assert_eq!((genuine.size, genuine.root), (size, root));
    let at = position_in(position, note.len());
    let mut bent = note.clone().into_bytes();
    bent[at] ^= change | 1;
    let Ok(bent) = String::from_utf8(bent) else {
        return;
    };
    if let Ok(read) = checkpoint::verify(&bent, &verifier) {
        assert_eq!(
            read, genuine,
            "a changed checkpoint {bent:?} verified as another"
        );
    }
}

/// Inclusion and consistency proofs over a tree of the input's leaves: genuine proofs verify,
/// one with a hash, the index or the old size changed does not, and a proof made of the input's own
/// bytes is accepted only if it is the genuine one. An audit export (entries and the signed
/// checkpoint) with any entry changed does not reproduce the signed root.
pub fn merkle_proofs(data: &[u8]) {
    let [count, index, old, change, rest @ ..] = data else {
        return;
    };
    let size = usize::from(*count % 64) + 1;
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| {
            let mut entry = rest.get(i..i + 8).unwrap_or_default().to_vec();
            entry.push(i as u8);
            entry
        })
        .collect();
    let hashes: Vec<Hash> = entries
        .iter()
        .map(|entry| merkle::leaf_hash(entry))
        .collect();
    let mut frontier = Frontier::default();
    let mut nodes = std::collections::HashMap::new();
    let mut roots = vec![frontier.root()];
    for hash in &hashes {
        nodes.extend(frontier.append(*hash));
        roots.push(frontier.root());
    }
    let root = frontier.root();
    let (size, index) = (size as u64, u64::from(*index) % size as u64);
    let leaf = &hashes[index as usize];
    let proof = merkle::inclusion_proof(index, size, &nodes).expect("every node of a proof");
    assert!(merkle::verify_inclusion(index, size, leaf, &proof, &root));
    let forged: Vec<Hash> = rest
        .chunks_exact(32)
        .filter_map(|chunk| chunk.try_into().ok())
        .collect();
    if merkle::verify_inclusion(index, size, leaf, &forged, &root) {
        assert_eq!(forged, proof, "a forged inclusion proof verified");
    }
    if let Some(last) = proof.len().checked_sub(1) {
        let mut bent = proof.clone();
        bent[usize::from(*change) % proof.len()][usize::from(*change) % 32] ^= 1;
        assert!(!merkle::verify_inclusion(index, size, leaf, &bent, &root));
        assert!(!merkle::verify_inclusion(
            index,
            size,
            leaf,
            &proof[..last],
            &root
        ));
        let other = (index + 1) % size;
        if hashes[other as usize] != *leaf {
            assert!(!merkle::verify_inclusion(other, size, leaf, &proof, &root));
        }
    }

    let old_size = u64::from(*old) % size + 1;
    let old_root = &roots[old_size as usize];
    let consistency =
        merkle::consistency_proof(old_size, size, &nodes).expect("every node of a proof");
    assert!(merkle::verify_consistency(
        old_size,
        size,
        old_root,
        &root,
        &consistency
    ));
    if merkle::verify_consistency(old_size, size, old_root, &root, &forged) {
        assert_eq!(forged, consistency, "a forged consistency proof verified");
    }
    if !consistency.is_empty() {
        let mut bent = consistency.clone();
        bent[usize::from(*change) % consistency.len()][0] ^= 0x80;
        assert!(!merkle::verify_consistency(
            old_size, size, old_root, &root, &bent
        ));
    }
    if old_size < size {
        assert!(!merkle::verify_consistency(
            old_size + 1,
            size,
            old_root,
            &root,
            &consistency
        ));
    }

    let signed = checkpoint::Checkpoint {
        origin: "sinergi.test/log".into(),
        size,
        root,
    };
    let export = |entries: &[Vec<u8>]| {
        block_on(sinergi::client::verify::check_against(
            entries, &signed, None,
        ))
        .is_ok()
    };
    assert!(export(&entries));
    let mut bent = entries.clone();
    let entry = &mut bent[usize::from(*change) % entries.len()];
    let at = usize::from(*change) % entry.len();
    entry[at] ^= 1;
    assert!(!export(&bent));
    assert!(!export(&entries[1..]));
}

/// Runs a future to completion on a runtime made once.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
        })
        .block_on(future)
}

/// The request messages of every RPC, in their order in the contract.
fn request_descriptors() -> &'static [prost_reflect::MessageDescriptor] {
    static REQUESTS: OnceLock<Vec<prost_reflect::MessageDescriptor>> = OnceLock::new();
    REQUESTS.get_or_init(|| {
        let pool = sinergi::http::descriptor_pool().expect("the contract's descriptors");
        pool.services()
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| method.input())
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// The HTTP door's JSON mapping, for every request message of the contract: a body is accepted
/// exactly when the proto3 JSON mapping accepts it with unknown fields refused and no integer
/// beyond 2^53 written as a number, it reads as the mapping reads it, and what it reads prints
/// back as JSON that reads as the same message.
pub fn json_requests(data: &[u8]) {
    use prost_reflect::{DeserializeOptions, DynamicMessage};
    let [selector, text @ ..] = data else {
        return;
    };
    let requests = request_descriptors();
    let descriptor = &requests[usize::from(*selector) % requests.len()];
    let read = sinergi::http::request::parse_json(descriptor, text, "");
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let reference = serde_json::from_slice::<serde_json::Value>(text)
        .ok()
        .filter(|json| !has_inexact_integer(json))
        .and_then(|json| {
            DynamicMessage::deserialize_with_options(descriptor.clone(), json, &options).ok()
        });
    match (read, reference) {
        (Ok(read), Some(reference)) => {
            assert_eq!(read, reference);
            let printed = serde_json::to_vec(&read).expect("a message prints as JSON");
            let again = sinergi::http::request::parse_json(descriptor, &printed, "")
                .expect("printed JSON reads back");
            assert_eq!(again, read);
        }
        (Err(refusal), None) => {
            assert_eq!(refusal.code(), tonic::Code::InvalidArgument);
        }
        (read, reference) => panic!(
            "the door read {:?}, the mapping {reference:?}",
            read.map_err(|status| status.message().to_owned())
        ),
    }
}

/// Whether a JSON tree holds an integer a double cannot hold exactly (2^53 or beyond).
fn has_inexact_integer(json: &serde_json::Value) -> bool {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match json {
        serde_json::Value::Number(number) => {
            number.as_u64().is_some_and(|n| n > 1 << 53)
                || number.as_i64().is_some_and(|n| n.unsigned_abs() > 1 << 53)
                || number.as_f64().is_some_and(|n| {
                    n.fract() == 0.0 && n.abs() > EXACT && !number.is_u64() && !number.is_i64()
                })
        }
        serde_json::Value::Array(items) => items.iter().any(has_inexact_integer),
        serde_json::Value::Object(fields) => fields.values().any(has_inexact_integer),
        _ => false,
    }
}

/// The agencies the served targets call as: a kind, the scopes it holds, and the methods it
/// is the natural caller of (so requests reach the rules behind the scopes).
const CALLERS: &[(sinergi::proto::AgencyKind, &[&str])] = {
    use sinergi::proto::AgencyKind::*;
    &[
        (
            BpjsKesehatan,
            &[
                "employers.read",
                "employers.write",
                "reports.write",
                "compliance.read",
                "inspections.read",
                "sanctions.read",
                "sanctions.write",
                "referrals.read",
                "referrals.create",
                "coverage.read",
                "feed.read",
                "audit.read",
            ],
        ),
        (
            DisnakertransProvinsi,
            &["employers.read", "inspections.read", "inspections.write"],
        ),
        (Kejaksaan, &["referrals.read", "referrals.progress"]),
        (LicensingOffice, &["sanctions.check", "sanctions.read"]),
    ]
};

/// A running Sinergi over SQLite in a temporary directory with an agency of each kind, made
/// once for the targets that call the service, as agencies call it: over gRPC on loopback.
struct Served {
    runtime: tokio::runtime::Runtime,
    channel: tonic::transport::Channel,
    authenticator: std::sync::Arc<sinergi::auth::Authenticator>,
    /// The administrator's token, then one for each of [`CALLERS`].
    tokens: Vec<String>,
    /// An agency and its key, for client assertions.
    agency: (String, SigningKey),
    /// Every RPC: its path, and whether the client or the server streams.
    methods: Vec<(String, bool, bool)>,
    /// The HTTP/JSON door, and every binding of an RPC to it: its verb and path template.
    http: std::net::SocketAddr,
    bindings: Vec<(http::Method, String)>,
    http_connection: std::sync::Mutex<Option<HttpSender>>,
    _data_dir: tempfile::TempDir,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let data_dir = tempfile::tempdir().expect("a data directory");
        let served = runtime.block_on(start(data_dir.path()));
        let pool = sinergi::http::descriptor_pool().expect("the contract's descriptors");
        let methods = pool
            .services()
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| {
                        (
                            format!("/{}/{}", service.full_name(), method.name()),
                            method.is_client_streaming(),
                            method.is_server_streaming(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let bindings = sinergi::http::routes::Bindings::from_pool(&pool)
            .expect("the contract's HTTP bindings")
            .iter()
            .map(|binding| (binding.verb.clone(), binding.template.text.clone()))
            .collect();
        let (channel, http, authenticator, tokens, agency) = served;
        Served {
            runtime,
            channel,
            authenticator,
            tokens,
            agency,
            methods,
            http,
            bindings,
            http_connection: Default::default(),
            _data_dir: data_dir,
        }
    })
}

type Started = (
    tonic::transport::Channel,
    std::net::SocketAddr,
    std::sync::Arc<sinergi::auth::Authenticator>,
    Vec<String>,
    (String, SigningKey),
);

async fn start(data_dir: &std::path::Path) -> Started {
    use sinergi::client::{BearerToken, issue_token, onboard_agency};
    use sinergi::domain::agency::KeyAlgorithm;
    use sinergi::proto::agency_admin_service_client::AgencyAdminServiceClient;

    let mut config = sinergi::config::Config {
        data_dir: data_dir.to_owned(),
        ..Default::default()
    };
    // Every listener on a port of its own, beside whatever else runs on the machine.
    config.metrics.listen = "127.0.0.1:0".parse().expect("an address");
    config.http.listen = "127.0.0.1:0".parse().expect("an address");
    config.auth.access_token_ttl_secs = 24 * 3600;
    config.limits.agency_calls_per_second = 1_000_000;
    config.limits.agency_burst = 1_000_000;
    config.limits.request_timeout_ms = 2_000;
    let (admin_key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).expect("a key");
    let store = sinergi::store::connect(&config).await.expect("the store");
    store.migrate().await.expect("migrations");
    sinergi::auth::bootstrap_admin(
        store.as_ref(),
        "sinergi-admin",
        "Sinergi administrators",
        &admin_key.public().canonical_json(),
    )
    .await
    .expect("the first administrator");
    drop(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let app = sinergi::server::app::App::build(config, listener)
        .await
        .expect("the service");
    let authenticator = app.authenticator();
    let http = app.http_addr().expect("the HTTP door is on");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr()))
        .expect("an address")
        .connect_lazy();
    tokio::spawn(app.serve(std::future::pending()));
    let token = |id: String, key: SigningKey| {
        let channel = channel.clone();
        async move {
            issue_token(channel, &id, &key, "sinergi", None, None)
                .await
                .expect("a token")
                .access_token
        }
    };
    let admin_token = token("sinergi-admin".into(), admin_key).await;
    let mut admin = AgencyAdminServiceClient::with_interceptor(
        channel.clone(),
        BearerToken::new(&admin_token).expect("a token"),
    );
    let mut tokens = vec![admin_token];
    let mut agency = None;
    for (number, (kind, scopes)) in CALLERS.iter().enumerate() {
        let id = format!("fuzz-agency-{number}");
        let (key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).expect("a key");
        let grants: Vec<(&str, &[&str])> = scopes.iter().map(|scope| (*scope, &[][..])).collect();
        onboard_agency(
            &mut admin,
            sinergi::proto::Agency {
                id: id.clone(),
                kind: (*kind).into(),
                display_name: format!("Fuzzing agency {number}"),
                ..Default::default()
            },
            &key,
            &grants,
        )
        .await
        .expect("an agency");
        tokens.push(token(id.clone(), key.clone()).await);
        agency.get_or_insert((id, key));
    }
    (
        channel,
        http,
        authenticator,
        tokens,
        agency.expect("at least one agency"),
    )
}

/// Request and response bodies as the bytes on the wire.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let remaining = bytes::Buf::remaining(buf);
        Ok(Some(bytes::Buf::copy_to_bytes(buf, remaining).to_vec()))
    }
}

/// The items of a client stream: each a length byte, then that many bytes.
fn length_prefixed(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    while let [length, rest @ ..] = bytes {
        let (item, after) = rest.split_at(usize::from(*length).min(rest.len()));
        items.push(item.to_vec());
        bytes = after;
    }
    items
}

/// Every RPC given arbitrary protobuf bytes as its request (a client stream, such as the bulk
/// report batch, as length-prefixed items), as each caller (the administrator,
/// an agency of each kind, no token at all): the request is decoded and converted to its
/// domain command by the service itself, and whatever it makes of the bytes, the answer is a
/// success or a refusal, never an internal error.
pub fn requests(data: &[u8]) {
    let [caller, method, body @ ..] = data else {
        return;
    };
    let served = served();
    let (path, client_streams, server_streams) =
        &served.methods[usize::from(*method) % served.methods.len()];
    let token = served
        .tokens
        .get(usize::from(*caller) % (served.tokens.len() + 1));
    let code = served.runtime.block_on(async {
        let mut grpc = tonic::client::Grpc::new(served.channel.clone());
        grpc.ready().await.expect("the service is up");
        let path = http::uri::PathAndQuery::try_from(path.as_str()).expect("a path");
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Some(token) = token {
            metadata.insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ASCII"),
            );
        }
        metadata.insert("x-purpose", "fuzzing".parse().expect("ASCII"));
        let body = body.to_vec();
        let outcome = match (client_streams, server_streams) {
            (false, false) => {
                let request = tonic::Request::from_parts(metadata, Default::default(), body);
                grpc.unary(request, path, Raw).await.map(drop)
            }
            (true, _) => {
                let items = tokio_stream::iter(length_prefixed(&body));
                let request = tonic::Request::from_parts(metadata, Default::default(), items);
                grpc.client_streaming(request, path, Raw).await.map(drop)
            }
            (false, true) => {
                let request = tonic::Request::from_parts(metadata, Default::default(), body);
                match grpc.server_streaming(request, path, Raw).await {
                    // The first message or the refusal tells; a feed then waits for more.
                    Ok(mut stream) => match tokio::time::timeout(
                        std::time::Duration::from_millis(100),
                        stream.get_mut().message(),
                    )
                    .await
                    {
                        Ok(Err(status)) => Err(status),
                        _ => Ok(()),
                    },
                    Err(status) => Err(status),
                }
            }
        };
        outcome
            .err()
            .map(|status| (status.code(), status.message().to_owned()))
    });
    if let Some((code, message)) = code {
        assert!(
            !matches!(
                code,
                tonic::Code::Internal
                    | tonic::Code::Unknown
                    | tonic::Code::DataLoss
                    | tonic::Code::Unimplemented
            ),
            "{path} answered {code:?}: {message}"
        );
    }
}

/// The HTTP/JSON door given arbitrary requests: an RPC's binding (or a path made of the input)
/// with its path variables, query string and body made of the input's bytes, under each kind of
/// content type, as each caller. Whatever the bytes, the answer comes, is never a server error,
/// a JSON answer parses, and a refusal is a `google.rpc.Status` (a code and a message), the one
/// shape a REST client is documented to handle.
pub fn http_requests(data: &[u8]) {
    const VERBS: [http::Method; 5] = [
        http::Method::GET,
        http::Method::POST,
        http::Method::PUT,
        http::Method::PATCH,
        http::Method::DELETE,
    ];
    const CONTENT_TYPES: [Option<&str>; 5] = [
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/x-ndjson"),
        Some("text/plain"),
        None,
    ];
    let [caller, binding, content, rest @ ..] = data else {
        return;
    };
    let served = served();
    let parts = length_prefixed(rest);
    let part = |n: usize| parts.get(n).map(Vec::as_slice).unwrap_or_default();
    let (verb, path) = match served.bindings.get(usize::from(*binding)) {
        Some((verb, template)) => (verb.clone(), filled(template, part(0))),
        None => (
            VERBS[usize::from(*binding) % VERBS.len()].clone(),
            format!("/{}", uri_text(part(0), false)),
        ),
    };
    let query = uri_text(part(1), true);
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut request = http::Request::builder()
        .method(verb)
        .uri(&uri)
        .header(http::header::HOST, "sinergi.test")
        .header("x-purpose", "fuzzing");
    if let Some(token) = served
        .tokens
        .get(usize::from(*caller) % (served.tokens.len() + 1))
    {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = CONTENT_TYPES[usize::from(*content) % CONTENT_TYPES.len()] {
        request = request.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(
            part(2).to_vec(),
        )))
        .expect("a request of visible ASCII");
    served.runtime.block_on(async {
        use http_body_util::BodyExt;
        // One connection kept for the next input, as a REST client keeps it: a connection per
        // input would leave the machine's ports in TIME_WAIT within a minute.
        let kept = served.http_connection.lock().expect("unpoisoned").take();
        let mut sender = match kept {
            Some(mut sender) => match sender.ready().await {
                Ok(()) => sender,
                Err(_) => http_connection(served.http).await,
            },
            None => http_connection(served.http).await,
        };
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            sender.send_request(request),
        )
        .await
        .unwrap_or_else(|_| panic!("{uri} went unanswered"))
        .unwrap_or_else(|error| panic!("{uri} got no answer: {error}"));
        let status = response.status();
        assert!(
            !matches!(
                status,
                http::StatusCode::INTERNAL_SERVER_ERROR | http::StatusCode::NOT_IMPLEMENTED
            ),
            "{uri} answered {status}"
        );
        let is_json = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
        assert!(
            status.is_success() || is_json,
            "{uri} was refused with {status} without a JSON status"
        );
        if !is_json {
            // A feed streams its changes for as long as the caller stays.
            return;
        }
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            response.into_body().collect(),
        )
        .await
        .unwrap_or_else(|_| panic!("{uri}'s answer never ended"))
        .unwrap_or_else(|error| panic!("{uri}'s answer broke off: {error}"))
        .to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|error| panic!("{uri} answered {status} with bad JSON: {error}"));
        *served.http_connection.lock().expect("unpoisoned") = Some(sender);
        if !status.is_success() {
            let code = answer.get("code").and_then(serde_json::Value::as_i64);
            assert!(
                code.is_some_and(|code| (1..=16).contains(&code))
                    && answer
                        .get("message")
                        .is_some_and(serde_json::Value::is_string),
                "{uri} was refused with {status} but {answer}"
            );
        }
    });
}

type HttpSender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

async fn http_connection(addr: std::net::SocketAddr) -> HttpSender {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the HTTP door accepts");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    sender
}

/// `template` with each `{variable}` replaced by `value`, as text a URI may hold.
fn filled(template: &str, value: &[u8]) -> String {
    let value = uri_text(value, false);
    let mut path = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        path.push_str(before);
        path.push_str(&value);
        rest = after.split_once('}').map_or("", |(_, after)| after);
    }
    path.push_str(rest);
    path
}

/// `bytes` as URI text: the characters a path segment (or a query) may hold as they are, `%`
/// too, so that malformed escapes reach the server's own decoding; any other byte escaped.
fn uri_text(bytes: &[u8], query: bool) -> String {
    let mut text = String::new();
    for &byte in bytes {
        let plain = byte.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/%".contains(&byte)
            || (query && byte == b'?');
        if plain {
            text.push(char::from(byte));
        } else {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    text
}

/// Access-token verification: arbitrary bytes in `authorization` never authenticate, and a
/// genuine token with any one byte changed is refused.
pub fn access_token(data: &[u8]) {
    let served = served();
    let genuine = &served.tokens[1];
    let authenticate = |authorization: &[u8]| {
        served
            .runtime
            .block_on(served.authenticator.authenticate(Some(authorization), None))
    };
    let accepted = authenticate(data);
    if let Ok(principal) = &accepted {
        let presented = std::str::from_utf8(data).unwrap_or_default();
        assert!(
            presented.contains(genuine.as_str()),
            "{presented:?} authenticated as {}",
            principal.agency_id()
        );
    }
    let [position @ .., change] = data else {
        return;
    };
    let at = position_in(position, genuine.len());
    let mut bent = format!("Bearer {genuine}").into_bytes();
    bent["Bearer ".len() + at] ^= change | 1;
    let trimmed = std::str::from_utf8(&bent["Bearer ".len()..]).map(str::trim);
    if trimmed != Ok(genuine.as_str()) {
        assert!(
            authenticate(&bent).is_err(),
            "a token with byte {at} changed authenticated"
        );
    }
}

/// Client-assertion verification: arbitrary text never obtains a token, and a genuine
/// assertion (signed by a registered agency's key a moment ago) with any one byte changed is
/// refused.
pub fn client_assertion(data: &[u8]) {
    use sinergi::auth::assertion::AssertionClaims;
    let served = served();
    let issue = |assertion: &str| {
        served
            .runtime
            .block_on(served.authenticator.issue_token(assertion, None))
    };
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(issue(text).is_err(), "{text:?} obtained a token");
    }
    let [position @ .., change] = data else {
        return;
    };
    let (agency, key) = &served.agency;
    let genuine = AssertionClaims::new(agency, "sinergi", None, None)
        .sign(key)
        .expect("an assertion");
    let at = position_in(position, genuine.len());
    let mut bent = genuine.clone().into_bytes();
    bent[at] ^= change | 1;
    if let Ok(bent) = String::from_utf8(bent) {
        assert!(
            issue(&bent).is_err(),
            "an assertion with byte {at} changed obtained a token"
        );
    }
}
