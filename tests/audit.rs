//! The audit log over real gRPC, on SQLite and PostgreSQL: every call recorded once, proofs
//! that verify, roots identical across backends, contiguous numbering across replicas, and no
//! answer without a record.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Backend, TestApp, spawn_app};
use prost::Message;
use sinergi::{
    audit::{
        PendingEntry, checkpoint,
        merkle::{self, Frontier},
    },
    config::Config,
    proto::{self, AgencyKind, audit_service_client::AuditServiceClient},
    store,
};
use tonic::Code;

/// An agency that may read the whole log.
async fn auditor(app: &TestApp) -> AuditServiceClient<common::Authed> {
    let agency = app.agency(AgencyKind::Admin, &[("audit.read", &[])]).await;
    AuditServiceClient::new(app.authed(&agency.token))
}

/// Waits until the log holds at least `size` entries; entries are sequenced moments after the
/// calls that made them.
async fn checkpoint_of_at_least(
    client: &mut AuditServiceClient<common::Authed>,
    size: u64,
) -> proto::GetCheckpointResponse {
    let started = Instant::now();
    loop {
        let checkpoint = client
            .get_checkpoint(proto::GetCheckpointRequest {})
            .await
            .unwrap()
            .into_inner();
        if checkpoint.tree_size >= size {
            return checkpoint;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the log stayed at {} entries, expected {size}",
            checkpoint.tree_size
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The whole log, once it satisfies `ready` (entries are sequenced moments after their calls).
async fn entries_once(
    client: &mut AuditServiceClient<common::Authed>,
    ready: impl Fn(&[proto::AuditEntry]) -> bool,
) -> Vec<proto::AuditEntry> {
    let started = Instant::now();
    loop {
        let size = checkpoint_of_at_least(client, 0).await.tree_size;
        let entries = decode(&all_entries(client, size).await);
        if ready(&entries) {
            return entries;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the expected entries never reached the log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_entries(client: &mut AuditServiceClient<common::Authed>, size: u64) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    while (entries.len() as u64) < size {
        let page = client
            .get_entries(proto::GetEntriesRequest {
                start: entries.len() as u64,
                end: size,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!page.entries.is_empty());
        entries.extend(page.entries);
    }
    entries
}

fn decode(entries: &[Vec<u8>]) -> Vec<proto::AuditEntry> {
    entries
        .iter()
        .map(|bytes| proto::AuditEntry::decode(bytes.as_slice()).unwrap())
        .collect()
}

async fn every_call_is_recorded_with_its_outcome(app: TestApp) {
    let mut auditor = auditor(&app).await;
    let created = common::create(&app, common::employer("PT Tercatat")).await;

    // An unauthenticated call, a call lacking the scope, an invalid one, and a read.
    let _ = common::EmployerServiceClient::new(app.channel.clone())
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    let forum = app.agency(AgencyKind::Forum, &[]).await;
    let _ = app
        .employers_as(&forum.token)
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    let _ = app
        .employers()
        .upsert_employer(proto::UpsertEmployerRequest::default())
        .await
        .unwrap_err();
    let mut read = tonic::Request::new(proto::GetEmployerRequest {
        key: Some(proto::get_employer_request::Key::Id(created.id.clone())),
    });
    read.metadata_mut()
        .insert("x-purpose", "verifikasi data".parse().unwrap());
    read.metadata_mut()
        .insert("x-request-id", "read-0001".parse().unwrap());
    app.employers().get_employer(read).await.unwrap();

    // Every call before the read was answered before the read was made, so once the read is
    // in the log (it is sequenced moments after it was answered), so are they.
    let entries = entries_once(&mut auditor, |entries| {
        entries.iter().any(|e| e.request_id == "read-0001")
    })
    .await;

    let of = |method: &str| -> Vec<&proto::AuditEntry> {
        entries
            .iter()
            .filter(|e| e.method.ends_with(method))
            .collect()
    };
    let upserts = of("EmployerService/UpsertEmployer");
    let write = upserts
        .iter()
        .find(|e| e.status_code == 0)
        .expect("the write");
    assert_eq!(write.decision(), proto::Decision::Allowed);
    assert_eq!(write.agency_id, app.registry.id);
    assert_eq!(write.resource_ids, std::slice::from_ref(&created.id));
    assert_eq!(
        write.request_sha256.len(),
        32,
        "writes carry the request digest"
    );
    assert!(!write.subject.is_empty());
    assert!(write.peer.starts_with("127.0.0.1:"));
    let invalid = upserts
        .iter()
        .find(|e| e.status_code != 0)
        .expect("the invalid write");
    assert_eq!(invalid.decision(), proto::Decision::Invalid);
    assert_eq!(invalid.status_code, Code::InvalidArgument as i32);
    assert!(invalid.request_sha256.is_empty(), "nothing was written");

    let lists = of("EmployerService/ListEmployers");
    let anonymous = lists
        .iter()
        .find(|e| e.agency_id == "anonymous")
        .expect("anonymous call");
    assert_eq!(anonymous.decision(), proto::Decision::Denied);
    assert_eq!(anonymous.status_code, Code::Unauthenticated as i32);
    let denied = lists
        .iter()
        .find(|e| e.agency_id == forum.id)
        .expect("forum call");
    assert_eq!(denied.status_code, Code::PermissionDenied as i32);

    let reads = of("EmployerService/GetEmployer");
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].purpose, "verifikasi data");
    assert_eq!(reads[0].request_id, "read-0001");
    assert_eq!(reads[0].resource_ids, std::slice::from_ref(&created.id));

    // Administrative changes carry their detail.
    let grants = of("AgencyAdminService/GrantScope");
    assert!(
        grants
            .iter()
            .any(|e| e.detail.contains("\"scope\":\"audit.read\"")
                && e.detail.contains(&format!("\"by\":\"{}\"", app.admin.id)))
    );

    // Token issuance is recorded under the agency it was for.
    assert!(
        of("AuthService/IssueToken")
            .iter()
            .any(|e| e.agency_id == forum.id)
    );

    // Filters.
    let by_resource = auditor
        .list_events(proto::ListEventsRequest {
            resource_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(by_resource.len(), 2, "the write and the read");
    let denied_only = auditor
        .list_events(proto::ListEventsRequest {
            decision: proto::Decision::Denied.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(denied_only.len() >= 2);
    assert!(
        denied_only
            .iter()
            .all(|e| e.entry.as_ref().unwrap().decision() == proto::Decision::Denied)
    );
    // A filter no record can hold is refused as bad input on either backend (PostgreSQL
    // cannot compare text holding NUL).
    for field in ["resource_id", "agency_id", "method"] {
        let mut request = proto::ListEventsRequest::default();
        let value = format!("{}\0x", created.id);
        match field {
            "resource_id" => request.resource_id = value,
            "agency_id" => request.agency_id = value,
            _ => request.method = value,
        }
        let refused = auditor.list_events(request).await.expect_err("a NUL");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with(field), "{refused:?}");
    }
}

async fn agencies_without_audit_read_see_only_their_own_records(app: TestApp) {
    let writer = app
        .agency(
            AgencyKind::Disnaker,
            &[("employers.write", &[]), ("employers.read", &[])],
        )
        .await;
    let reader = app
        .agency(AgencyKind::BpjsKesehatan, &[("employers.read", &[])])
        .await;
    let created = app
        .employers_as(&writer.token)
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(common::employer("PT Milik Disnaker")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employer
        .unwrap();
    app.employers_as(&reader.token)
        .get_employer(proto::GetEmployerRequest {
            key: Some(proto::get_employer_request::Key::Id(created.id.clone())),
        })
        .await
        .unwrap();
    let mut auditor = auditor(&app).await;
    checkpoint_of_at_least(&mut auditor, 1).await;
    let mut as_writer = AuditServiceClient::new(app.authed(&writer.token));
    let mut visible = Vec::new();
    for _ in 0..500 {
        visible = as_writer
            .list_events(proto::ListEventsRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        if visible
            .iter()
            .any(|e| e.entry.as_ref().unwrap().agency_id == reader.id)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let agencies: HashSet<String> = visible
        .iter()
        .map(|e| e.entry.as_ref().unwrap().agency_id.clone())
        .collect();
    assert!(
        agencies.contains(&reader.id),
        "the writer sees who read its record"
    );
    assert!(agencies.contains(&writer.id));
    assert!(!agencies.contains(&app.admin.id), "but not unrelated calls");
    let status = as_writer
        .get_entries(proto::GetEntriesRequest { start: 0, end: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// The calls an agency without `audit.read` sees, as `audit.proto` words the rule: its own, and
/// those that touched records it wrote — the employer it registered, its report, its case —
/// never another agency's call that only touched the same employer, nor another's token id.
async fn records_written_are_what_an_agency_sees_others_touch(app: TestApp) {
    use proto::{
        compliance_service_client::ComplianceServiceClient,
        inspection_service_client::InspectionServiceClient, report_submission,
    };

    let registry = app
        .agency(
            AgencyKind::Disnaker,
            &[("employers.write", &[]), ("employers.read", &[])],
        )
        .await;
    let bpjs = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("reports.write", &[]), ("inspections.read", &[])],
        )
        .await;
    let inspector = app
        .agency(
            AgencyKind::DisnakertransProvinsi,
            &[
                ("employers.read", &[]),
                ("compliance.read", &[]),
                ("inspections.write", &[]),
            ],
        )
        .await;
    let employer = app
        .employers_as(&registry.token)
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(common::employer("PT Jejak Akses")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employer
        .unwrap();
    let today = time::OffsetDateTime::now_utc();
    let last_month = today.date().replace_day(1).unwrap().previous_day().unwrap();
    ComplianceServiceClient::new(app.authed(&bpjs.token))
        .submit_report(proto::SubmitReportRequest {
            report: Some(proto::ReportSubmission {
                employer: Some(report_submission::Employer::EmployerId(employer.id.clone())),
                period: Some(proto::Period {
                    year: last_month.year(),
                    month: i32::from(u8::from(last_month.month())),
                }),
                figures: Some(report_submission::Figures::Registration(
                    proto::RegistrationFigures {
                        programme_group: proto::ProgrammeGroup::Jkn.into(),
                        registered_workers: 900,
                        enrolled_programmes: vec![proto::Programme::Jkn.into()],
                        reported_wage_total: 900 * 4_000_000,
                        ..Default::default()
                    },
                )),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let inspection = InspectionServiceClient::new(app.authed(&inspector.token))
        .open_inspection(proto::OpenInspectionRequest {
            employer_id: employer.id.clone(),
            note: "Pengaduan serikat pekerja".into(),
            effective_date: today.date().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // The inspector reads the employer (the registry's record only) and its status (derived
    // from the BPJS report); BPJS reads the inspection (the inspector's case).
    let key = Some(proto::get_employer_request::Key::Id(employer.id.clone()));
    app.employers_as(&inspector.token)
        .get_employer(proto::GetEmployerRequest { key })
        .await
        .unwrap();
    ComplianceServiceClient::new(app.authed(&inspector.token))
        .get_compliance_status(proto::GetComplianceStatusRequest {
            employer_id: employer.id.clone(),
        })
        .await
        .unwrap();
    InspectionServiceClient::new(app.authed(&bpjs.token))
        .get_inspection(proto::GetInspectionRequest {
            inspection_id: inspection.id.clone(),
        })
        .await
        .unwrap();

    let seen_by = |agency: &common::TestAgency| {
        let mut client = AuditServiceClient::new(app.authed(&agency.token));
        let me = agency.id.clone();
        async move {
            let events = client
                .list_events(proto::ListEventsRequest {
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .events;
            let mut calls = HashSet::new();
            for event in events {
                let entry = event.entry.unwrap();
                assert_eq!(
                    entry.subject.is_empty(),
                    entry.agency_id != me,
                    "token ids are shown for the viewer's own calls only: {entry:?}"
                );
                let method = entry
                    .method
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                calls.insert((entry.agency_id, method));
            }
            calls
        }
    };
    let call = |agency: &common::TestAgency, method: &str| (agency.id.clone(), method.to_owned());

    let by_bpjs = seen_by(&bpjs).await;
    assert!(
        by_bpjs.contains(&call(&inspector, "GetComplianceStatus")),
        "{by_bpjs:?}"
    );
    assert!(
        !by_bpjs.contains(&call(&inspector, "GetEmployer")),
        "{by_bpjs:?}"
    );
    assert!(
        !by_bpjs.contains(&call(&registry, "UpsertEmployer")),
        "{by_bpjs:?}"
    );
    assert!(
        !by_bpjs.contains(&call(&inspector, "OpenInspection")),
        "{by_bpjs:?}"
    );
    assert!(by_bpjs.contains(&call(&bpjs, "SubmitReport")));

    let by_inspector = seen_by(&inspector).await;
    assert!(
        by_inspector.contains(&call(&bpjs, "GetInspection")),
        "{by_inspector:?}"
    );
    assert!(
        !by_inspector.contains(&call(&bpjs, "SubmitReport")),
        "{by_inspector:?}"
    );
    assert!(!by_inspector.contains(&call(&registry, "UpsertEmployer")));

    // The registry wrote the employer, so every call on it is on its record.
    let by_registry = seen_by(&registry).await;
    for seen in [
        call(&inspector, "GetEmployer"),
        call(&bpjs, "SubmitReport"),
        call(&inspector, "OpenInspection"),
        call(&bpjs, "GetInspection"),
    ] {
        assert!(by_registry.contains(&seen), "{seen:?} in {by_registry:?}");
    }
}

async fn checkpoints_and_proofs_verify(app: TestApp) {
    let mut auditor = auditor(&app).await;
    for i in 0..5 {
        common::create(&app, common::employer(&format!("PT Bukti {i}"))).await;
    }
    let first = checkpoint_of_at_least(&mut auditor, 8).await;
    let verified = checkpoint::verify(&first.checkpoint, &first.verifier_key).unwrap();
    assert_eq!(verified.size, first.tree_size);
    assert_eq!(verified.root.to_vec(), first.root_hash);
    assert_eq!(verified.origin, "sinergi/audit");
    // The verifier key is the published signing key.
    let jwks = app
        .auth()
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let (_, public) = checkpoint::parse_verifier_key(&first.verifier_key).unwrap();
    assert_eq!(
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            public.as_bytes()
        ),
        jwks.keys[0].x
    );

    for i in 0..5 {
        common::create(&app, common::employer(&format!("PT Bukti Lagi {i}"))).await;
    }
    let second = checkpoint_of_at_least(&mut auditor, first.tree_size + 5).await;
    let entries = all_entries(&mut auditor, second.tree_size).await;
    let mut frontier = Frontier::default();
    for entry in &entries {
        frontier.append(merkle::leaf_hash(entry));
    }
    assert_eq!(
        frontier.root().to_vec(),
        second.root_hash,
        "the root recomputed from the entries"
    );

    let root: merkle::Hash = second.root_hash.clone().try_into().unwrap();
    for (index, entry) in entries.iter().enumerate() {
        let proof = auditor
            .get_inclusion_proof(proto::GetInclusionProofRequest {
                index: index as u64,
                tree_size: second.tree_size,
            })
            .await
            .unwrap()
            .into_inner()
            .proof;
        let proof: Vec<merkle::Hash> = proof.into_iter().map(|h| h.try_into().unwrap()).collect();
        assert!(merkle::verify_inclusion(
            index as u64,
            second.tree_size,
            &merkle::leaf_hash(entry),
            &proof,
            &root
        ));
    }
    let consistency: Vec<merkle::Hash> = auditor
        .get_consistency_proof(proto::GetConsistencyProofRequest {
            old_size: first.tree_size,
            new_size: second.tree_size,
        })
        .await
        .unwrap()
        .into_inner()
        .proof
        .into_iter()
        .map(|h| h.try_into().unwrap())
        .collect();
    let old_root: merkle::Hash = first.root_hash.clone().try_into().unwrap();
    assert!(merkle::verify_consistency(
        first.tree_size,
        second.tree_size,
        &old_root,
        &root,
        &consistency
    ));

    let status = auditor
        .get_inclusion_proof(proto::GetInclusionProofRequest {
            index: second.tree_size + 100,
            tree_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// A call's entry is numbered in the log before the call is answered, after the entries of
/// the writes committed before it: an agency can look up a call it has just made.
async fn an_answered_call_is_already_in_the_log(app: TestApp) {
    let mut auditor = auditor(&app).await;
    let created = common::create(&app, common::employer("PT Segera Tercatat")).await;
    let mut read = tonic::Request::new(proto::GetEmployerRequest {
        key: Some(proto::get_employer_request::Key::Id(created.id.clone())),
    });
    read.metadata_mut()
        .insert("x-request-id", "read-now".parse().unwrap());
    app.employers().get_employer(read).await.unwrap();

    // One look, no waiting.
    let size = auditor
        .get_checkpoint(proto::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size;
    let entries = decode(&all_entries(&mut auditor, size).await);
    let read_at = entries
        .iter()
        .position(|e| e.request_id == "read-now")
        .expect("the read is in the log once answered");
    let write_at = entries
        .iter()
        .position(|e| {
            e.method.ends_with("EmployerService/UpsertEmployer")
                && e.resource_ids.contains(&created.id)
        })
        .expect("the write is in the log");
    assert!(write_at < read_at, "the write is numbered before the read");
    assert_eq!(entries[read_at].resource_ids, vec![created.id]);
}

on_both_backends!(
    an_answered_call_is_already_in_the_log,
    every_call_is_recorded_with_its_outcome,
    agencies_without_audit_read_see_only_their_own_records,
    records_written_are_what_an_agency_sees_others_touch,
    checkpoints_and_proofs_verify,
);

/// Deterministic entries, so both backends must produce the same tree.
fn fixed_entry(i: u64) -> PendingEntry {
    let entry = proto::AuditEntry {
        time_unix_micros: 1_700_000_000_000_000 + i as i64,
        agency_id: format!("agency-{}", i % 7),
        method: "/sinergi.v1.EmployerService/GetEmployer".into(),
        decision: proto::Decision::Allowed.into(),
        resource_ids: vec![format!("employer-{i}")],
        ..Default::default()
    };
    PendingEntry::from_entry(&entry)
}

const PINNED_SIZES: [u64; 8] = [1, 2, 3, 7, 96, 871, 1000, 1024];

async fn roots_at_pinned_sizes(config: Config) -> Vec<(u64, merkle::Hash)> {
    let store = store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let mut roots = Vec::new();
    let mut appended = 0;
    for size in PINNED_SIZES {
        let entries: Vec<PendingEntry> = (appended..size).map(fixed_entry).collect();
        // Several appends, as concurrent calls would make them.
        for chunk in entries.chunks(100) {
            store.append_audit(chunk).await.unwrap();
        }
        appended = size;
        while store.sequence_audit(300).await.unwrap() > 0 {}
        let (head_size, root) = store.audit_head().await.unwrap();
        assert_eq!(head_size, size);
        roots.push((size, root));
    }
    roots
}

#[tokio::test]
async fn roots_are_identical_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = roots_at_pinned_sizes(Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    })
    .await;
    let database = common::TestDatabase::create().await;
    let postgres = roots_at_pinned_sizes(Config {
        database_url: Some(database.url().to_owned()),
        ..Config::default()
    })
    .await;
    assert_eq!(sqlite, postgres);

    let mut frontier = Frontier::default();
    let mut expected = HashMap::new();
    for i in 0..1024 {
        frontier.append(merkle::leaf_hash(&fixed_entry(i).bytes));
        expected.insert(i + 1, frontier.root());
    }
    for (size, root) in &sqlite {
        assert_eq!(*root, expected[size], "root at {size}");
    }
}

/// Entry `i` of the record searches: every third agency's, touching two records, every fourth
/// one an employer write, every seventh one reading records another agency wrote.
fn record_entry(i: u64) -> PendingEntry {
    let write = i.is_multiple_of(4);
    let mut resource_ids = vec![format!("record-{}", i % 5), format!("other-{}", i % 11)];
    if i.is_multiple_of(7) {
        resource_ids.push(sinergi::audit::written_by(&format!("agency-{}", i % 2)));
    }
    let entry = proto::AuditEntry {
        time_unix_micros: 1_700_000_000_000_000 + i as i64,
        agency_id: format!("agency-{}", i % 3),
        method: if write {
            sinergi::audit::EMPLOYER_WRITE_METHOD.into()
        } else {
            "/sinergi.v1.EmployerService/GetEmployer".into()
        },
        decision: proto::Decision::Allowed.into(),
        resource_ids,
        request_sha256: if write { vec![7; 32] } else { Vec::new() },
        ..Default::default()
    };
    PendingEntry::from_entry(&entry)
}

/// What a search by record and one limited to an agency's view must find among entries
/// `entries` (numbered from 0), worked out from the entries themselves.
fn expected_searches(entries: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let decoded: Vec<proto::AuditEntry> = entries
        .iter()
        .map(|&i| proto::AuditEntry::decode(record_entry(i).bytes.as_slice()).unwrap())
        .collect();
    let by_record = (0..entries.len() as u64)
        .filter(|&seq| {
            decoded[seq as usize]
                .resource_ids
                .contains(&"record-2".to_owned())
        })
        .collect();
    let changed: HashSet<&String> = decoded
        .iter()
        .filter(|e| e.agency_id == "agency-1" && !e.request_sha256.is_empty())
        .flat_map(|e| &e.resource_ids)
        .collect();
    let mark = sinergi::audit::written_by("agency-1");
    let visible = (0..entries.len() as u64)
        .filter(|&seq| {
            let entry = &decoded[seq as usize];
            entry.agency_id == "agency-1"
                || entry
                    .resource_ids
                    .iter()
                    .any(|r| changed.contains(r) || *r == mark)
        })
        .collect();
    (by_record, visible)
}

/// Both searches, read in pages of 7 so that pages start on either side of the record index's
/// horizon.
async fn searches(store: &dyn store::Store) -> (Vec<u64>, Vec<u64>) {
    let mut results = Vec::new();
    for filter in [
        store::AuditFilter {
            resource_id: Some("record-2".into()),
            ..Default::default()
        },
        store::AuditFilter {
            visible_to: Some("agency-1".into()),
            ..Default::default()
        },
    ] {
        let mut found = Vec::new();
        loop {
            let page = store
                .list_audit_events(&filter, found.last().copied(), 7)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            found.extend(page.into_iter().map(|(seq, _)| seq));
        }
        results.push(found);
    }
    (results.remove(0), results.remove(0))
}

/// Searches by record find the same entries whether the record index (which SQLite fills after
/// the append) covers none of them, some or all.
async fn searches_by_record_do_not_depend_on_the_index(config: Config) {
    let store = store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let entries: Vec<u64> = (0..300).collect();
    for chunk in entries.chunks(64) {
        let batch: Vec<PendingEntry> = chunk.iter().map(|&i| record_entry(i)).collect();
        store.append_audit(&batch).await.unwrap();
    }
    let expected = expected_searches(&entries);
    assert!(!expected.0.is_empty() && expected.1.len() > expected.0.len());

    assert_eq!(searches(store.as_ref()).await, expected, "nothing indexed");
    store.index_audit_records(137).await.unwrap();
    assert_eq!(searches(store.as_ref()).await, expected, "partly indexed");
    while store.index_audit_records(100).await.unwrap() > 0 {}
    assert_eq!(searches(store.as_ref()).await, expected, "all indexed");
}

/// A connection to a store's database from outside the server.
enum RawConnection {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl RawConnection {
    async fn open(config: &Config) -> Self {
        use sqlx::Connection;
        match &config.database_url {
            Some(url) => Self::Postgres(sqlx::PgConnection::connect(url).await.unwrap()),
            None => {
                let path = config.data_dir.join("sinergi.db");
                Self::Sqlite(
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap(),
                )
            }
        }
    }

    async fn execute(&mut self, sql: &str) {
        match self {
            Self::Postgres(connection) => sqlx::query(sql).execute(connection).await.map(drop),
            Self::Sqlite(connection) => sqlx::query(sql).execute(connection).await.map(drop),
        }
        .unwrap();
    }

    async fn insert_node(&mut self, key: i64, hash: merkle::Hash) {
        let insert = "INSERT INTO audit_nodes (key, hash) VALUES ($1, $2)";
        match self {
            Self::Postgres(connection) => {
                let query = sqlx::query(insert).bind(key).bind(hash.to_vec());
                query.execute(connection).await.map(drop)
            }
            Self::Sqlite(connection) => {
                let query = sqlx::query(insert).bind(key).bind(hash.to_vec());
                query.execute(connection).await.map(drop)
            }
        }
        .unwrap();
    }
}

/// A log whose tree nodes were stored under their earlier keys (level << 56 | index) is
/// renumbered by migration 9 and goes on as before: proofs from the stored nodes verify, and a
/// store that reads the tree's edge back from them extends the log to the right root.
async fn a_log_stored_under_the_earlier_node_keys_is_renumbered(config: Config) {
    let store = store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let entries: Vec<PendingEntry> = (0..871).map(fixed_entry).collect();
    store.append_audit(&entries).await.unwrap();
    let mut frontier = Frontier::default();
    let mut raw = RawConnection::open(&config).await;
    raw.execute("DELETE FROM audit_nodes").await;
    for entry in &entries {
        for (node, hash) in frontier.append(merkle::leaf_hash(&entry.bytes)) {
            raw.insert_node((u64::from(node.level) << 56 | node.index) as i64, hash)
                .await;
        }
    }
    raw.execute("DELETE FROM _sqlx_migrations WHERE version = 9")
        .await;
    store.migrate().await.unwrap();

    let reopened = store::connect(&config).await.unwrap();
    let root = frontier.root();
    assert_eq!(reopened.audit_head().await.unwrap(), (871, root));
    for index in [0, 1, 95, 512, 870] {
        let nodes = reopened
            .audit_nodes(&merkle::inclusion_nodes(index, 871))
            .await
            .unwrap();
        let proof = merkle::inclusion_proof(index, 871, &nodes).unwrap();
        let leaf = merkle::leaf_hash(&entries[index as usize].bytes);
        assert!(
            merkle::verify_inclusion(index, 871, &leaf, &proof, &root),
            "leaf {index}"
        );
    }
    let mut old_tree = Frontier::default();
    for entry in &entries[..96] {
        old_tree.append(merkle::leaf_hash(&entry.bytes));
    }
    let nodes = reopened
        .audit_nodes(&merkle::consistency_nodes(96, 871))
        .await
        .unwrap();
    let proof = merkle::consistency_proof(96, 871, &nodes).unwrap();
    assert!(merkle::verify_consistency(
        96,
        871,
        &old_tree.root(),
        &root,
        &proof
    ));

    let more: Vec<PendingEntry> = (871..1000).map(fixed_entry).collect();
    reopened.append_audit(&more).await.unwrap();
    for entry in &more {
        frontier.append(merkle::leaf_hash(&entry.bytes));
    }
    assert_eq!(
        reopened.audit_head().await.unwrap(),
        (1000, frontier.root())
    );
}

/// Tests of the store alone, each run on a fresh SQLite file and a fresh PostgreSQL database.
macro_rules! on_both_stores {
    ($($name:ident: $test:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                $test(Config {
                    data_dir: dir.path().to_owned(),
                    ..Config::default()
                })
                .await;
            }

            #[tokio::test]
            async fn postgres() {
                let database = common::TestDatabase::create().await;
                $test(Config {
                    database_url: Some(database.url().to_owned()),
                    ..Config::default()
                })
                .await;
            }
        }
    )*};
}

on_both_stores!(
    record_searches: searches_by_record_do_not_depend_on_the_index,
    earlier_node_keys: a_log_stored_under_the_earlier_node_keys_is_renumbered,
);

/// `VACUUM INTO`: a consistent copy of a live SQLite file.
async fn copy_sqlite_file(from: &std::path::Path, to: &std::path::Path) {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", from.display()))
        .await
        .unwrap();
    sqlx::query("VACUUM INTO $1")
        .bind(to.display().to_string())
        .execute(&mut connection)
        .await
        .unwrap();
}

fn sqlite_config(database: &std::path::Path) -> Config {
    Config {
        database_url: Some(format!("sqlite://{}", database.display())),
        ..Config::default()
    }
}

/// A record index is only used with the log it was built from: one that has indexed entries a
/// restored log no longer holds is rebuilt, one that matches is kept.
#[tokio::test]
async fn a_record_index_is_kept_only_with_its_own_log() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let index_of = |database: &std::path::Path| {
        std::path::PathBuf::from(format!("{}-audit-index", database.display()))
    };
    let store = store::connect(&sqlite_config(&live)).await.unwrap();
    store.migrate().await.unwrap();
    let first: Vec<PendingEntry> = (0..60).map(record_entry).collect();
    store.append_audit(&first).await.unwrap();
    while store.index_audit_records(1000).await.unwrap() > 0 {}

    // A consistent pair: the log and the index that covers all of it.
    let matching = dir.path().join("matching.db");
    copy_sqlite_file(&live, &matching).await;
    copy_sqlite_file(&index_of(&live), &index_of(&matching)).await;

    // A backup of the log at 60 entries, restored next to an index of 100.
    let backup = dir.path().join("backup.db");
    copy_sqlite_file(&live, &backup).await;
    let more: Vec<PendingEntry> = (60..100).map(record_entry).collect();
    store.append_audit(&more).await.unwrap();
    while store.index_audit_records(1000).await.unwrap() > 0 {}
    copy_sqlite_file(&index_of(&live), &index_of(&backup)).await;

    let kept = store::connect(&sqlite_config(&matching)).await.unwrap();
    assert_eq!(
        kept.index_audit_records(1000).await.unwrap(),
        0,
        "a matching index is kept"
    );
    assert_eq!(
        searches(kept.as_ref()).await,
        expected_searches(&(0..60).collect::<Vec<_>>())
    );

    // The restored log goes on with other entries than the live one did.
    let restored = store::connect(&sqlite_config(&backup)).await.unwrap();
    let other: Vec<u64> = (0..60).chain(501..541).collect();
    assert_ne!(
        expected_searches(&other),
        expected_searches(&(0..100).collect::<Vec<_>>()),
        "the restored log's entries differ in what the searches find"
    );
    let diverging: Vec<PendingEntry> = other[60..].iter().map(|&i| record_entry(i)).collect();
    restored.append_audit(&diverging).await.unwrap();
    assert_eq!(
        restored.index_audit_records(1000).await.unwrap(),
        100,
        "a stale index is rebuilt from the first entry"
    );
    assert_eq!(searches(restored.as_ref()).await, expected_searches(&other));
}

/// 64 callers on two servers sharing one PostgreSQL database: the log numbers entries without
/// gaps or repeats, and every call appears exactly once.
#[tokio::test]
async fn concurrent_calls_on_two_replicas_get_contiguous_unique_entries() {
    let first = spawn_app(Backend::Postgres).await;
    let second = common::spawn_replica(&first).await;
    let created = common::create(&first, common::employer("PT Serentak")).await;
    let mut auditor = auditor(&first).await;
    let before = checkpoint_of_at_least(&mut auditor, 1).await.tree_size;

    let calls = (0..64).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let mut client = app.employers();
        let id = created.id.clone();
        async move {
            for round in 0..5 {
                let mut request = tonic::Request::new(proto::GetEmployerRequest {
                    key: Some(proto::get_employer_request::Key::Id(id.clone())),
                });
                request.metadata_mut().insert(
                    "x-request-id",
                    format!("caller-{i}-{round}").parse().unwrap(),
                );
                client.get_employer(request).await.unwrap();
            }
        }
    });
    futures_join(calls).await;

    // The auditor's own calls are logged too, so the size alone does not say that every
    // caller's entry is in: wait for the entries themselves.
    let callers = |entries: &[proto::AuditEntry]| {
        entries
            .iter()
            .filter(|entry| entry.request_id.starts_with("caller-"))
            .count()
    };
    let entries = entries_once(&mut auditor, |entries| callers(entries) >= 320).await;
    let after = checkpoint_of_at_least(&mut auditor, entries.len() as u64).await;
    assert!(after.tree_size >= before + 320);
    let entries = decode(&all_entries(&mut auditor, after.tree_size).await);
    assert_eq!(entries.len() as u64, after.tree_size, "no gaps");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for entry in &entries {
        if entry.request_id.starts_with("caller-") {
            *seen.entry(entry.request_id.clone()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 320, "every call has an entry");
    assert!(seen.values().all(|&count| count == 1), "no call has two");
    // Both replicas' entries are in the one tree, whose root the entries reproduce.
    let mut frontier = Frontier::default();
    for bytes in all_entries(&mut auditor, after.tree_size).await {
        frontier.append(merkle::leaf_hash(&bytes));
    }
    assert_eq!(frontier.root().to_vec(), after.root_hash);
}

async fn futures_join<F: Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut set = Vec::new();
    for future in futures {
        set.push(future);
    }
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    // Poll all together on this task.
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Runs one statement on the test's database from outside the server.
async fn execute_on(app: &TestApp, sql: &str) {
    RawConnection::open(app.config()).await.execute(sql).await;
}

async fn calls_fail_unavailable_while_the_log_cannot_be_written(app: TestApp) {
    let existing = common::create(&app, common::employer("PT Sebelum")).await;
    execute_on(
        &app,
        "ALTER TABLE audit_pending RENAME TO audit_pending_offline",
    )
    .await;

    let read = app
        .employers()
        .get_employer(proto::GetEmployerRequest {
            key: Some(proto::get_employer_request::Key::Id(existing.id.clone())),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
    let unaudited = common::employer("PT Tanpa Jejak");
    let npwp = unaudited.npwp.clone();
    let write = app
        .employers()
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(unaudited.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::Unavailable, "{write:?}");
    let anonymous = common::EmployerServiceClient::new(app.channel.clone())
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        anonymous.code(),
        Code::Unavailable,
        "even a refusal is not answered unrecorded"
    );

    execute_on(
        &app,
        "ALTER TABLE audit_pending_offline RENAME TO audit_pending",
    )
    .await;
    // Recovered without a restart; the write that failed left nothing behind.
    let status = app
        .employers()
        .get_employer(proto::GetEmployerRequest {
            key: Some(proto::get_employer_request::Key::Npwp(npwp)),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    common::create(&app, unaudited).await;
}

mod faults {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        calls_fail_unavailable_while_the_log_cannot_be_written(spawn_app(Backend::Sqlite).await)
            .await;
    }

    #[tokio::test]
    async fn postgres() {
        calls_fail_unavailable_while_the_log_cannot_be_written(spawn_app(Backend::Postgres).await)
            .await;
    }
}

/// Puts the entry kept from sequence number `from` at sequence number `to`.
async fn copy_kept_entry(app: &TestApp, from: u64, to: u64) {
    let sql = format!(
        "UPDATE audit_log SET entry = (SELECT entry FROM kept WHERE kept.seq = {from}) WHERE seq = {to}"
    );
    execute_on(app, &sql).await;
}

/// Runs the `sinergi` binary with `args` and returns (success, output). It runs off the test's
/// runtime, which serves the app it talks to.
async fn run_cli(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sinergi"))
            .args(args)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Changing one byte of a stored entry, deleting one, or swapping two is caught by
/// `sinergi audit verify`, which names the first bad index and exits non-zero; so is a
/// tampered export.
#[tokio::test]
async fn the_verifier_catches_tampering() {
    let app = spawn_app(Backend::Sqlite).await;
    let agency = app.agency(AgencyKind::Admin, &[("audit.read", &[])]).await;
    for i in 0..4 {
        common::create(&app, common::employer(&format!("PT Diperiksa {i}"))).await;
    }
    let mut auditor = AuditServiceClient::new(app.authed(&agency.token));
    checkpoint_of_at_least(&mut auditor, 10).await;

    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("checkpoint.txt");
    let server = format!("http://{}", app.addr);
    let saved_text = saved.to_str().unwrap().to_owned();
    let verify = async || {
        run_cli(&[
            "audit",
            "verify",
            "--server",
            &server,
            "--token",
            &agency.token,
            "--checkpoint",
            &saved_text,
            "--all-entries",
        ])
        .await
    };
    let (ok, output) = verify().await;
    assert!(ok, "{output}");
    assert!(output.contains("audit log verified"), "{output}");
    assert!(saved.exists() && dir.path().join("checkpoint.key").exists());

    // One byte of entry 3.
    execute_on(
        &app,
        "CREATE TABLE kept AS SELECT * FROM audit_log WHERE seq IN (2, 3, 4, 5)",
    )
    .await;
    execute_on(
        &app,
        "UPDATE audit_log SET entry = CAST(substr(entry, 1, 5) AS BLOB) || \
         CAST(char(unicode(substr(CAST(entry AS TEXT), 6, 1)) + 1) AS BLOB) || \
         CAST(substr(entry, 7) AS BLOB) WHERE seq = 3",
    )
    .await;
    let (ok, output) = verify().await;
    assert!(!ok, "a changed byte went unnoticed: {output}");
    assert!(output.contains("first bad index 3"), "{output}");
    copy_kept_entry(&app, 3, 3).await;
    let (ok, output) = verify().await;
    assert!(ok, "restored: {output}");

    // Entry 5 deleted.
    execute_on(&app, "DELETE FROM audit_log WHERE seq = 5").await;
    let (ok, output) = verify().await;
    assert!(!ok, "a deleted entry went unnoticed: {output}");
    assert!(output.contains("first bad index 5"), "{output}");
    execute_on(
        &app,
        "INSERT INTO audit_log SELECT * FROM kept WHERE seq = 5",
    )
    .await;

    // Entries 2 and 4 swapped.
    copy_kept_entry(&app, 4, 2).await;
    copy_kept_entry(&app, 2, 4).await;
    let (ok, output) = verify().await;
    assert!(!ok, "swapped entries went unnoticed: {output}");
    assert!(output.contains("first bad index 2"), "{output}");
    copy_kept_entry(&app, 2, 2).await;
    copy_kept_entry(&app, 4, 4).await;
    let (ok, output) = verify().await;
    assert!(ok, "restored: {output}");

    // An export verifies offline; a tampered export does not, and the server locates the entry.
    let export = dir.path().join("export.jsonl");
    let (ok, output) = run_cli(&[
        "audit",
        "export",
        "--server",
        &server,
        "--token",
        &agency.token,
        "--out",
        export.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{output}");
    let (ok, output) = run_cli(&["audit", "verify", "--entries", export.to_str().unwrap()]).await;
    assert!(ok, "{output}");
    let text = std::fs::read_to_string(&export).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[5]).unwrap();
    let mut bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        line["entry"].as_str().unwrap(),
    )
    .unwrap();
    bytes[4] ^= 1;
    line["entry"] =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes).into();
    lines[5] = line.to_string();
    std::fs::write(&export, lines.join("\n")).unwrap();
    let (ok, output) = run_cli(&["audit", "verify", "--entries", export.to_str().unwrap()]).await;
    assert!(!ok, "{output}");
    let (ok, output) = run_cli(&[
        "audit",
        "verify",
        "--entries",
        export.to_str().unwrap(),
        "--server",
        &server,
        "--token",
        &agency.token,
    ])
    .await;
    assert!(!ok, "{output}");
    assert!(output.contains("first bad index 4"), "{output}");
}

/// After Sinergi's signing key is rotated, the verifier refuses the new checkpoints until it
/// is given the new key, then checks the saved checkpoint under the old key, links it to the
/// new one by a consistency proof, and pins the new key.
#[tokio::test]
async fn the_verifier_follows_a_key_rotation_it_is_told_about() {
    let app = spawn_app(Backend::Sqlite).await;
    let saved_dir = tempfile::tempdir().unwrap();
    let saved = saved_dir.path().join("checkpoint.txt");
    let mut before = auditor(&app).await;
    let first = sinergi::client::verify::verify_server(&mut before, &saved, None, false)
        .await
        .expect("first verification pins the key");

    let old_key = app.config().data_dir.join("keys/signing-key.pem");
    let new_key = app.config().data_dir.join("keys/signing-key-2.pem");
    let (_, pem) =
        sinergi::auth::keys::SigningKey::generate(sinergi::domain::agency::KeyAlgorithm::EdDsa)
            .unwrap();
    sinergi::auth::keys::SigningKey::write_pem(&new_key, &pem).unwrap();
    let rotated = common::spawn_replica_with(&app, |config| {
        config.auth.signing_key_file = Some(new_key.clone());
        config.auth.previous_signing_key_files = vec![old_key.clone()];
    })
    .await;
    let mut after = auditor(&rotated).await;
    let refused = sinergi::client::verify::verify_server(&mut after, &saved, None, false)
        .await
        .expect_err("a checkpoint under an unknown key");
    assert!(refused.to_string().contains("different key"), "{refused}");

    let new_verifier = after
        .get_checkpoint(proto::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .verifier_key;
    let linked =
        sinergi::client::verify::verify_server(&mut after, &saved, Some(&new_verifier), false)
            .await
            .expect("the saved checkpoint links to the new key's");
    assert_eq!(linked.previous_size, Some(first.checkpoint.size));
    assert!(linked.checkpoint.size > first.checkpoint.size);
    sinergi::client::verify::verify_server(&mut after, &saved, None, true)
        .await
        .expect("the new key is pinned from now on");
}
