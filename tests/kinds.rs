//! What an agency's kind bounds: for every kind, every scope outside its row is refused when an
//! administrator grants it, and a grant of it stored before the rule (written straight to the
//! store, as an older version did) is never honoured — not in tokens, not at call time — and is
//! listed by `sinergi admin list-grants --violations`.

mod common;

use common::{TestAgency, TestApp};
use sinergi::{
    audit::CallAudit,
    domain::agency::{AgencyId, AgencyKind, NewGrant},
    domain::scope::Scope,
    grpc::agency_admin::convert::agency_kind_to_proto,
    proto,
};
use tonic::{Code, Request};
use tonic_types::StatusExt;
use uuid::Uuid;

/// One call that needs `scope`, with a request the handler judges only after the scope.
async fn call_needing(app: &TestApp, token: &str, scope: Scope) -> Result<(), tonic::Status> {
    use proto::{
        agency_admin_service_client::AgencyAdminServiceClient as Admin,
        audit_service_client::AuditServiceClient as Audit,
        compliance_service_client::ComplianceServiceClient as Compliance,
        feed_service_client::FeedServiceClient as Feed,
        inspection_service_client::InspectionServiceClient as Inspections,
        referral_service_client::ReferralServiceClient as Referrals,
        sanction_service_client::SanctionServiceClient as Sanctions,
    };
    let channel = app.authed(token);
    match scope {
        Scope::EmployersRead => app
            .employers_as(token)
            .list_employers(proto::ListEmployersRequest::default())
            .await
            .map(drop),
        Scope::EmployersWrite => app
            .employers_as(token)
            .upsert_employer(proto::UpsertEmployerRequest {
                employer: Some(common::employer("PT Tidak Boleh")),
                ..Default::default()
            })
            .await
            .map(drop),
        Scope::ReportsWrite => Compliance::new(channel)
            .submit_report(proto::SubmitReportRequest::default())
            .await
            .map(drop),
        Scope::ComplianceRead => Compliance::new(channel)
            .list_non_compliant(proto::ListNonCompliantRequest::default())
            .await
            .map(drop),
        Scope::CoverageRead => Compliance::new(channel)
            .get_coverage(proto::GetCoverageRequest::default())
            .await
            .map(drop),
        Scope::InspectionsRead => Inspections::new(channel)
            .list_inspections(proto::ListInspectionsRequest::default())
            .await
            .map(drop),
        Scope::InspectionsWrite => Inspections::new(channel)
            .open_inspection(proto::OpenInspectionRequest::default())
            .await
            .map(drop),
        Scope::SanctionsRead => Sanctions::new(channel)
            .list_sanction_tracks(proto::ListSanctionTracksRequest::default())
            .await
            .map(drop),
        Scope::SanctionsWrite => Sanctions::new(channel)
            .take_sanction_step(proto::TakeSanctionStepRequest::default())
            .await
            .map(drop),
        Scope::SanctionsCheck => Sanctions::new(channel)
            .check_employer_sanctions(proto::CheckEmployerSanctionsRequest::default())
            .await
            .map(drop),
        Scope::ReferralsRead => Referrals::new(channel)
            .get_referral_stats(proto::GetReferralStatsRequest::default())
            .await
            .map(drop),
        Scope::ReferralsCreate => Referrals::new(channel)
            .create_referral(proto::CreateReferralRequest::default())
            .await
            .map(drop),
        Scope::ReferralsProgress => Referrals::new(channel)
            .advance_referral(proto::AdvanceReferralRequest::default())
            .await
            .map(drop),
        Scope::FeedRead => Feed::new(channel)
            .watch(proto::WatchRequest::default())
            .await
            .map(drop),
        Scope::AuditRead => Audit::new(channel)
            .get_entries(proto::GetEntriesRequest::default())
            .await
            .map(drop),
        Scope::Admin => Admin::new(channel)
            .list_agencies(proto::ListAgenciesRequest::default())
            .await
            .map(drop),
    }
}

async fn grant(app: &TestApp, agency: &str, scope: Scope) -> Result<(), tonic::Status> {
    app.admin_client()
        .grant_scope(proto::GrantScopeRequest {
            agency_id: agency.to_owned(),
            scope: scope.as_str().to_owned(),
            ..Default::default()
        })
        .await
        .map(drop)
}

async fn each_kind_holds_only_the_scopes_of_its_row(app: TestApp) {
    // A second handle on the server's database, to store grants the way an older version did.
    let store = sinergi::store::connect(app.config())
        .await
        .expect("the app's database");
    let mut legacy_grants = 0;
    for kind in AgencyKind::ALL {
        let agency = app.agency(agency_kind_to_proto(kind), &[]).await;
        let refused: Vec<Scope> = Scope::ALL
            .into_iter()
            .filter(|scope| !kind.may_hold(*scope))
            .collect();

        // Refused at grant time, naming the kind and the row.
        for scope in &refused {
            let status = grant(&app, &agency.id, *scope).await.unwrap_err();
            assert_eq!(status.code(), Code::FailedPrecondition, "{kind:?} {scope}");
            let info = status.get_details_error_info().expect("ErrorInfo");
            assert_eq!(info.reason, "SCOPE_NOT_ALLOWED_FOR_KIND");
            assert_eq!(info.metadata["kind"], kind.as_str());
            assert_eq!(info.metadata["scope"], scope.as_str());
            assert_eq!(
                info.metadata["allowed_scopes"],
                Scope::join(kind.allowed_scopes())
            );
        }

        // Stored anyway, as before the rule.
        let audit = CallAudit::new("/test/LegacyGrant", String::new(), "", "");
        for scope in &refused {
            store
                .grant_scope(
                    &NewGrant {
                        id: Uuid::now_v7(),
                        agency_id: AgencyId::parse(&agency.id).unwrap(),
                        scope: *scope,
                        regions: Vec::new(),
                        programmes: Vec::new(),
                        expires_at: None,
                    },
                    &AgencyId::parse(&app.admin.id).unwrap(),
                    &audit.entry(0, None, None),
                )
                .await
                .expect("a legacy grant");
            legacy_grants += 1;
        }
        // Everything in the row is grantable; this change also makes the server reload its
        // view of grants at once, legacy ones included.
        for scope in kind.allowed_scopes() {
            grant(&app, &agency.id, *scope)
                .await
                .unwrap_or_else(|status| panic!("{kind:?} {scope}: {status:?}"));
        }

        // A token carries the row and nothing more; asking for more is refused.
        let issued = sinergi::client::issue_token(
            app.channel.clone(),
            &agency.id,
            &agency.key,
            "sinergi",
            None,
            None,
        )
        .await
        .expect("a token");
        let expected: Vec<&str> = {
            let mut row = kind.allowed_scopes().to_vec();
            row.sort();
            row.iter().map(|scope| scope.as_str()).collect()
        };
        assert_eq!(issued.scopes, expected, "{kind:?}");
        let holder = TestAgency {
            token: issued.access_token,
            ..agency.clone()
        };
        for scope in &refused {
            let asked = app.token(&holder, Some(scope.as_str())).await.unwrap_err();
            assert!(
                matches!(&asked, sinergi::client::ClientError::Call(status) if status.code() == Code::PermissionDenied),
                "{kind:?} asking for {scope}: {asked:?}"
            );
            let status = call_needing(&app, &holder.token, *scope).await.unwrap_err();
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{kind:?} calling with {scope}: {status:?}"
            );
        }
    }

    // Run as a child the test's runtime awaits, so the server on that runtime keeps serving.
    let listed = tokio::process::Command::new(env!("CARGO_BIN_EXE_sinergi"))
        .args(["admin", "list-grants", "--violations", "--server"])
        .arg(format!("http://{}", app.addr))
        .arg("--token")
        .arg(&app.admin.token)
        .output()
        .await
        .expect("sinergi admin list-grants");
    assert!(listed.status.success(), "{listed:?}");
    let violations: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(violations.len(), legacy_grants);
    assert!(violations.iter().all(|grant| {
        grant["violation"]
            .as_str()
            .is_some_and(|v| v.contains("may not hold"))
    }));
}

/// A forum reads referral statistics with `referrals.read`, never a referral itself.
async fn a_forum_reads_referral_statistics_only(app: TestApp) {
    let forum = app
        .agency(
            proto::AgencyKind::Forum,
            &[("referrals.read", &[]), ("coverage.read", &[])],
        )
        .await;
    let mut referrals =
        proto::referral_service_client::ReferralServiceClient::new(app.authed(&forum.token));
    let mut stats = Request::new(proto::GetReferralStatsRequest {
        opened_from: "2026-01-01".into(),
        opened_to: "2026-12-31".into(),
        ..Default::default()
    });
    stats
        .metadata_mut()
        .insert("x-purpose", "pemantauan forum".parse().unwrap());
    referrals
        .get_referral_stats(stats)
        .await
        .expect("statistics");
    let listed = referrals
        .list_referrals(proto::ListReferralsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(listed.code(), Code::PermissionDenied);
}

on_both_backends!(a_forum_reads_referral_statistics_only);

/// The scope test asks for a token for every scope each kind may not hold, some 80 in a few
/// seconds from one address: more than the per-address token limit lets through.
fn room_for_every_token_request(config: &mut sinergi::config::Config) {
    config.limits.token_request_burst_per_address = 500;
}

mod each_kind {
    use crate::common::{Backend, spawn_app_with};

    #[tokio::test]
    async fn holds_only_the_scopes_of_its_row_on_sqlite() {
        let app = spawn_app_with(Backend::Sqlite, super::room_for_every_token_request).await;
        super::each_kind_holds_only_the_scopes_of_its_row(app).await;
    }

    #[tokio::test]
    async fn holds_only_the_scopes_of_its_row_on_postgres() {
        let app = spawn_app_with(Backend::Postgres, super::room_for_every_token_request).await;
        super::each_kind_holds_only_the_scopes_of_its_row(app).await;
    }
}
