//! The employer registry over real gRPC, on SQLite and PostgreSQL.

mod common;

use std::collections::HashSet;

use common::{TestApp, create, employer, nib, npwp15, npwp16, unique_number};
use sinergi::proto::{
    self, GetEmployerRequest, ListEmployersRequest, SearchEmployersRequest, UpsertEmployerRequest,
    get_employer_request::Key,
};
use tonic::Code;
use tonic_types::StatusExt;

fn upsert(employer: proto::Employer) -> UpsertEmployerRequest {
    UpsertEmployerRequest {
        employer: Some(employer),
        ..Default::default()
    }
}

/// The fields named by the status's `google.rpc.BadRequest` detail.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn expect_invalid(app: &TestApp, employer: proto::Employer, field: &str) {
    let status = app
        .employers()
        .upsert_employer(upsert(employer))
        .await
        .expect_err("invalid employer accepted");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), [field], "{status:?}");
    assert!(!status.message().is_empty());
}

async fn get_by(app: &TestApp, key: Key) -> Result<proto::Employer, tonic::Status> {
    app.employers()
        .get_employer(GetEmployerRequest { key: Some(key) })
        .await
        .map(|response| response.into_inner().employer.expect("employer"))
}

async fn count_all(app: &TestApp) -> usize {
    let response = app
        .employers()
        .list_employers(ListEmployersRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    response.employers.len()
}

async fn valid_employers_are_stored_in_normal_form(app: TestApp) {
    let n = unique_number();
    let mut punctuated = employer("PT Batik Pesisir");
    let bare = npwp15(n);
    punctuated.npwp = format!(
        "{}.{}.{}.{}-{}.{}",
        &bare[0..2],
        &bare[2..5],
        &bare[5..8],
        &bare[8..9],
        &bare[9..12],
        &bare[12..15]
    );
    let stored = create(&app, punctuated).await;
    assert_eq!(stored.npwp, npwp16(n));
    assert_eq!(stored.name, "PT Batik Pesisir");
    assert_eq!(stored.region.as_ref().unwrap().code, "33.75");
    assert!(uuid::Uuid::parse_str(&stored.id).is_ok());
    assert!(!stored.etag.is_empty());
    assert!(stored.create_time.is_some());

    let mut sixteen = employer("CV Sixteen");
    sixteen.npwp = npwp16(unique_number());
    let stored = create(&app, sixteen.clone()).await;
    assert_eq!(stored.npwp, sixteen.npwp);

    let mut resident = employer("Toko Pak Slamet");
    resident.npwp = "3375014501900001".into();
    resident.nib = String::new();
    resident.bpjs_tk_npp.clear();
    resident.kbli = String::new();
    resident.workforce_declared = None;
    let stored = create(&app, resident).await;
    assert_eq!(stored.npwp, "3375014501900001");
    assert_eq!(stored.nib, "");
    assert_eq!(stored.workforce_declared, None);

    let fetched = get_by(&app, Key::Id(stored.id.clone())).await.unwrap();
    assert_eq!(
        fetched, stored,
        "a read returns exactly what the write returned"
    );
}

/// Makes one field of a valid employer invalid.
type Breakage = Box<dyn Fn(&mut proto::Employer)>;

async fn each_rule_rejects_with_the_field_named(app: TestApp) {
    let bare = npwp15(unique_number());
    let wrong_check = format!(
        "{}{}{}",
        &bare[..8],
        (bare.as_bytes()[8] - b'0' + 1) % 10,
        &bare[9..]
    );
    let cases: Vec<(&str, Breakage)> = vec![
        (
            "employer.npwp",
            Box::new(move |e| e.npwp = wrong_check.clone()),
        ),
        ("employer.npwp", Box::new(|e| e.npwp = "12345".into())),
        ("employer.npwp", Box::new(|e| e.npwp = String::new())),
        (
            "employer.npwp",
            Box::new(|e| e.npwp = "01-234-567-4-901-000".into()),
        ),
        ("employer.nib", Box::new(|e| e.nib = "123456789012".into())),
        (
            "employer.nib",
            Box::new(|e| e.nib = "12345678901234".into()),
        ),
        ("employer.nib", Box::new(|e| e.nib = "12345678901a3".into())),
        (
            "employer.bpjs_tk_npp[1]",
            Box::new(|e| e.bpjs_tk_npp.push("1234".into())),
        ),
        ("employer.region.code", Box::new(|e| e.region = None)),
        (
            "employer.region.code",
            Box::new(|e| {
                e.region = Some(proto::RegionCode {
                    code: "33.99".into(),
                })
            }),
        ),
        (
            "employer.region.code",
            Box::new(|e| e.region = Some(proto::RegionCode { code: "33".into() })),
        ),
        ("employer.kbli", Box::new(|e| e.kbli = "1313".into())),
        ("employer.kbli", Box::new(|e| e.kbli = "13a34".into())),
        ("employer.name", Box::new(|e| e.name = "   ".into())),
        ("employer.name", Box::new(|e| e.name = "x".repeat(201))),
        (
            "employer.address",
            Box::new(|e| e.address = "a".repeat(501)),
        ),
        (
            "employer.bpjs_kes_code",
            Box::new(|e| e.bpjs_kes_code = "k".repeat(33)),
        ),
        ("employer.size_class", Box::new(|e| e.size_class = 42)),
        ("employer.id", Box::new(|e| e.id = "not-a-uuid".into())),
    ];
    for (field, break_it) in cases {
        let mut invalid = employer("PT Valid Otherwise");
        break_it(&mut invalid);
        expect_invalid(&app, invalid, field).await;
    }
    let status = app
        .employers()
        .upsert_employer(UpsertEmployerRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["employer"]);

    // Bounds are inclusive: exactly 200 characters (not bytes) is a valid name.
    let mut longest = employer("");
    longest.name = "é".repeat(200);
    create(&app, longest).await;

    assert_eq!(count_all(&app).await, 1, "no rejected employer was stored");
}

async fn several_violations_are_reported_together(app: TestApp) {
    let mut invalid = employer("");
    invalid.nib = "1".into();
    invalid.kbli = "1".into();
    let status = app
        .employers()
        .upsert_employer(upsert(invalid))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["employer.nib", "employer.name", "employer.kbli"]
    );
}

async fn updates_with_a_stale_etag_are_aborted_and_change_nothing(app: TestApp) {
    let created = create(&app, employer("PT Etag")).await;

    let mut renamed = created.clone();
    renamed.name = "PT Etag Baru".into();
    let updated = app
        .employers()
        .upsert_employer(UpsertEmployerRequest {
            employer: Some(renamed.clone()),
            etag: created.etag.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.created);
    let updated = updated.employer.unwrap();
    assert_eq!(updated.name, "PT Etag Baru");
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);

    let mut stale = created.clone();
    stale.name = "PT Lost Update".into();
    let status = app
        .employers()
        .upsert_employer(UpsertEmployerRequest {
            employer: Some(stale),
            etag: created.etag.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "ETAG_MISMATCH");
    assert_eq!(info.metadata["current_etag"], updated.etag);

    let current = get_by(&app, Key::Id(created.id.clone())).await.unwrap();
    assert_eq!(current, updated, "the stale write changed nothing");

    // Without an etag the write is unconditional.
    let mut last_writer = created.clone();
    last_writer.name = "PT Unconditional".into();
    let written = create(&app, last_writer).await;
    assert_eq!(written.name, "PT Unconditional");
}

async fn unknown_employers_are_not_found(app: TestApp) {
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = get_by(&app, Key::Id(unknown.clone())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = get_by(&app, Key::Npwp(npwp15(unique_number())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = get_by(&app, Key::Nib(nib(unique_number())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let mut conditional = employer("PT Ghost");
    conditional.id = unknown;
    let status = app
        .employers()
        .upsert_employer(UpsertEmployerRequest {
            employer: Some(conditional),
            etag: "r1".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(count_all(&app).await, 0);

    let status = app
        .employers()
        .get_employer(GetEmployerRequest { key: None })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = get_by(&app, Key::Id("nope".into())).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
}

async fn a_client_chosen_id_creates_the_employer(app: TestApp) {
    let id = uuid::Uuid::now_v7().to_string();
    let mut chosen = employer("PT Chosen Id");
    chosen.id = id.clone();
    let response = app
        .employers()
        .upsert_employer(upsert(chosen))
        .await
        .unwrap()
        .into_inner();
    assert!(response.created);
    assert_eq!(response.employer.unwrap().id, id);
}

async fn employers_are_found_by_id_npwp_and_nib(app: TestApp) {
    let created = create(&app, employer("PT Lookup")).await;
    let by_id = get_by(&app, Key::Id(created.id.clone())).await.unwrap();
    // Any accepted NPWP form finds the employer: the 16-digit form and the old 15 digits.
    let by_npwp16 = get_by(&app, Key::Npwp(created.npwp.clone())).await.unwrap();
    let by_npwp15 = get_by(&app, Key::Npwp(created.npwp[1..].to_owned()))
        .await
        .unwrap();
    let by_nib = get_by(&app, Key::Nib(created.nib.clone())).await.unwrap();
    for found in [by_id, by_npwp16, by_npwp15, by_nib] {
        assert_eq!(found.id, created.id);
    }
}

async fn duplicate_identifiers_are_refused_with_the_field_named(app: TestApp) {
    let first = create(&app, employer("PT Pertama")).await;

    let mut same_npwp = employer("PT Kedua");
    same_npwp.npwp = first.npwp[1..].to_owned();
    let status = app
        .employers()
        .upsert_employer(upsert(same_npwp))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "DUPLICATE_IDENTIFIER");
    assert_eq!(info.metadata["field"], "npwp");
    assert_eq!(info.metadata["employer_id"], first.id);

    let mut same_nib = employer("PT Ketiga");
    same_nib.nib = first.nib.clone();
    let status = app
        .employers()
        .upsert_employer(upsert(same_nib))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["field"],
        "nib"
    );

    let mut same_npp = employer("PT Keempat");
    same_npp.bpjs_tk_npp = first.bpjs_tk_npp.clone();
    let status = app
        .employers()
        .upsert_employer(upsert(same_npp))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["field"],
        "bpjs_tk_npp"
    );

    // Moving another employer onto an existing NPWP by update is refused too.
    let second = create(&app, employer("PT Kedua")).await;
    let mut clash = second.clone();
    clash.npwp = first.npwp.clone();
    let status = app
        .employers()
        .upsert_employer(upsert(clash))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    assert_eq!(count_all(&app).await, 2);
    assert_eq!(
        get_by(&app, Key::Id(second.id.clone())).await.unwrap(),
        second
    );
}

async fn a_retried_request_returns_the_first_result_and_writes_once(app: TestApp) {
    let request = UpsertEmployerRequest {
        employer: Some(employer("PT Idempoten")),
        etag: String::new(),
        request_id: "batch-2026-11-0001".into(),
    };
    let first = app
        .employers()
        .upsert_employer(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = app
        .employers()
        .upsert_employer(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry);
    assert!(retry.created, "the retry answers as the first call did");
    assert_eq!(count_all(&app).await, 1);

    // Concurrent retries all get the same answer and still write once.
    let concurrent = UpsertEmployerRequest {
        employer: Some(employer("PT Serentak")),
        etag: String::new(),
        request_id: "concurrent-0001".into(),
    };
    let calls = (0..8).map(|_| {
        let mut client = app.employers();
        let request = concurrent.clone();
        async move {
            client
                .upsert_employer(request)
                .await
                .map(|r| r.into_inner())
        }
    });
    let answers: Vec<_> = futures_join_all(calls).await;
    let ids: HashSet<String> = answers
        .into_iter()
        .map(|answer| answer.expect("retry succeeds").employer.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(count_all(&app).await, 2);

    // The same key for a different request is refused, not answered with the old result.
    let mut different = request.clone();
    different.employer = Some(employer("PT Lain"));
    let status = app
        .employers()
        .upsert_employer(different)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_eq!(count_all(&app).await, 2);
}

async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}

async fn list_pages(app: &TestApp, mut request: ListEmployersRequest) -> Vec<Vec<proto::Employer>> {
    let mut pages = Vec::new();
    loop {
        let page = app
            .employers()
            .list_employers(request.clone())
            .await
            .unwrap()
            .into_inner();
        pages.push(page.employers);
        if page.next_page_token.is_empty() {
            return pages;
        }
        request.page_token = page.next_page_token;
    }
}

async fn listing_pages_through_everything_without_duplicates_or_gaps(app: TestApp) {
    let mut expected = HashSet::new();
    for i in 0..23 {
        let mut e = employer(&format!("PT Halaman {i:02}"));
        if i % 3 == 0 {
            e.region = Some(proto::RegionCode {
                code: "33.25".into(),
            });
        }
        if i % 4 == 0 {
            e.region = Some(proto::RegionCode {
                code: "36.71".into(),
            });
        }
        expected.insert(create(&app, e).await.id);
    }

    let pages = list_pages(
        &app,
        ListEmployersRequest {
            page_size: 5,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [5, 5, 5, 5, 3]
    );
    let seen: Vec<String> = pages.into_iter().flatten().map(|e| e.id).collect();
    assert_eq!(seen.len(), 23);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), expected);

    // Province prefix `33` takes both Central Java regencies and leaves out Banten's `36.71`.
    let central_java: Vec<proto::Employer> = list_pages(
        &app,
        ListEmployersRequest {
            region_prefix: Some(proto::RegionCode { code: "33".into() }),
            page_size: 4,
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    let banten_count = (0..23).filter(|i| i % 4 == 0).count();
    assert_eq!(central_java.len(), 23 - banten_count);
    assert!(
        central_java
            .iter()
            .all(|e| e.region.as_ref().unwrap().code.starts_with("33."))
    );

    let batang: Vec<proto::Employer> = list_pages(
        &app,
        ListEmployersRequest {
            region_prefix: Some(proto::RegionCode {
                code: "33.25".into(),
            }),
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    let batang_count = (0..23).filter(|i| i % 3 == 0 && i % 4 != 0).count();
    assert_eq!(batang.len(), batang_count);

    // A token only continues the listing it came from.
    let first = app
        .employers()
        .list_employers(ListEmployersRequest {
            page_size: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = app
        .employers()
        .list_employers(ListEmployersRequest {
            page_size: 5,
            kbli: "13134".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = app
        .employers()
        .list_employers(ListEmployersRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = app
        .employers()
        .list_employers(ListEmployersRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
    let status = app
        .employers()
        .list_employers(ListEmployersRequest {
            region_prefix: Some(proto::RegionCode { code: "99".into() }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["region_prefix.code"]);
}

async fn listing_filters_by_size_class_and_sector(app: TestApp) {
    let mut large = employer("PT Besar");
    large.size_class = proto::SizeClass::Large.into();
    large.kbli = "10750".into();
    let large = create(&app, large).await;
    create(&app, employer("PT Menengah")).await;

    let by_size = app
        .employers()
        .list_employers(ListEmployersRequest {
            size_class: proto::SizeClass::Large.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers;
    assert_eq!(by_size, std::slice::from_ref(&large));
    let by_kbli = app
        .employers()
        .list_employers(ListEmployersRequest {
            kbli: "10750".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers;
    assert_eq!(by_kbli, [large]);
}

async fn search_ignores_case_and_pages_in_name_order(app: TestApp) {
    for name in [
        "PT Batik Pesisir Utara",
        "CV BATIK Kauman",
        "Koperasi Batik 50%_Diskon",
        "PT Tekstil Jaya",
        "UD batik kecil",
        "PT Batik Pesisir Selatan",
    ] {
        create(&app, employer(name)).await;
    }
    let mut request = SearchEmployersRequest {
        query: "bAtIk".into(),
        page_size: 2,
        page_token: String::new(),
    };
    let mut names = Vec::new();
    loop {
        let page = app
            .employers()
            .search_employers(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(page.employers.len() <= 2);
        names.extend(page.employers.into_iter().map(|e| e.name));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(
        names,
        [
            "CV BATIK Kauman",
            "Koperasi Batik 50%_Diskon",
            "PT Batik Pesisir Selatan",
            "PT Batik Pesisir Utara",
            "UD batik kecil",
        ]
    );

    // Wildcards in the query match literally.
    let literal = app
        .employers()
        .search_employers(SearchEmployersRequest {
            query: "50%_".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers;
    assert_eq!(literal.len(), 1);
    let none = app
        .employers()
        .search_employers(SearchEmployersRequest {
            query: "%%".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers;
    assert!(none.is_empty());

    let status = app
        .employers()
        .search_employers(SearchEmployersRequest {
            query: "b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["query"]);
}

/// Idempotency records are kept for their retention period, then forgotten: a `request_id`
/// reused after that is a new request.
async fn request_ids_are_remembered_for_their_retention_only(app: TestApp) {
    let request = UpsertEmployerRequest {
        employer: Some(employer("PT Ingatan")),
        etag: String::new(),
        request_id: "retained-0001".into(),
    };
    app.employers()
        .upsert_employer(request.clone())
        .await
        .expect("first call");
    let store = sinergi::store::connect(app.config())
        .await
        .expect("open store");
    let now = time::OffsetDateTime::now_utc();
    let kept = store
        .purge_idempotency_keys(now - time::Duration::days(1))
        .await
        .expect("purge");
    assert_eq!(kept, 0, "a record younger than the retention stays");
    let mut different = request.clone();
    different.employer = Some(employer("PT Lain Lagi"));
    let refused = app
        .employers()
        .upsert_employer(different.clone())
        .await
        .expect_err("the key is still remembered");
    assert_eq!(violated_fields(&refused), ["request_id"]);

    let purged = store
        .purge_idempotency_keys(now + time::Duration::minutes(1))
        .await
        .expect("purge");
    assert!(purged >= 1);
    let reused = app
        .employers()
        .upsert_employer(different)
        .await
        .expect("a forgotten request_id is a new request")
        .into_inner();
    assert!(reused.created);
    assert_eq!(count_all(&app).await, 2);
}

on_both_backends!(
    request_ids_are_remembered_for_their_retention_only,
    valid_employers_are_stored_in_normal_form,
    each_rule_rejects_with_the_field_named,
    several_violations_are_reported_together,
    updates_with_a_stale_etag_are_aborted_and_change_nothing,
    unknown_employers_are_not_found,
    a_client_chosen_id_creates_the_employer,
    employers_are_found_by_id_npwp_and_nib,
    duplicate_identifiers_are_refused_with_the_field_named,
    a_retried_request_returns_the_first_result_and_writes_once,
    listing_pages_through_everything_without_duplicates_or_gaps,
    listing_filters_by_size_class_and_sector,
    search_ignores_case_and_pages_in_name_order,
);
