//! Loads a [`World`] into a running server through the public RPCs, as the agencies themselves
//! would: the administrator onboards each agency with its own key and grants, each Disnaker
//! registers its employers and files their workforce and layoffs, each BPJS files its
//! registrations, and the cases move step by step, each by the party whose step it is. The
//! audit log, the feed and the statuses are therefore exactly what real use makes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::progress::Progress;
use super::world::{
    ADMIN, AgencySpec, CENTRAL_WORKERS, EmployerSpec, Month, PERIODS, ReferralEnd, ReferralPlan,
    Registration, World,
};
use crate::auth::keys::SigningKey;
use crate::client::{
    AdminClient, BearerToken, ClientError, grant_scopes, issue_token, onboard_agency,
};
use crate::domain::agency::{AgencyKind, KeyAlgorithm};
use crate::domain::compliance::ProgrammeGroup;
use crate::grpc::agency_admin::convert::agency_kind_to_proto;
use crate::grpc::compliance::convert::programme_group_to_proto;
use crate::grpc::convert::programme_to_proto;
use crate::grpc::employer::convert::size_class_to_proto;
use crate::proto::{
    self, compliance_service_client::ComplianceServiceClient,
    employer_service_client::EmployerServiceClient,
    inspection_service_client::InspectionServiceClient,
    referral_service_client::ReferralServiceClient, sanction_service_client::SanctionServiceClient,
};

/// Items per report batch: one chunk, so each batch's statuses are computed in its own
/// transaction and every list is current the moment the load ends.
const BATCH: usize = 1_000;

/// Employers one Disnaker registers at a time.
const UPSERTS_IN_FLIGHT: usize = 8;

/// The audience tokens are issued for (the server's default).
pub const AUDIENCE: &str = "sinergi";

type Authed = InterceptedService<Channel, BearerToken>;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the server refused {what}: {}", .status.message())]
    Refused { what: String, status: tonic::Status },
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] crate::auth::keys::KeyError),
    #[error("no token for {0}: it was not onboarded")]
    NoToken(String),
}

fn refused(what: impl Into<String>) -> impl FnOnce(tonic::Status) -> LoadError {
    let what = what.into();
    move |status| LoadError::Refused { what, status }
}

/// An agency's key and current token, as the demo keeps them in `agencies/<id>/`.
pub struct Credentials {
    pub id: String,
    pub key: SigningKey,
    pub token: String,
}

/// Where an agency's files are.
pub fn agency_dir(dir: &Path, agency: &str) -> PathBuf {
    dir.join("agencies").join(agency)
}

/// The purpose each agency's tokens declare: every call it makes is recorded with it.
pub fn purpose_of(kind: AgencyKind) -> &'static str {
    match kind {
        AgencyKind::Disnaker => "pelaporan ketenagakerjaan (WLKP, PHK)",
        AgencyKind::DisnakertransProvinsi => "pengawasan ketenagakerjaan",
        AgencyKind::BpjsKesehatan | AgencyKind::BpjsKetenagakerjaan => {
            "pencocokan dan penegakan kepatuhan kepesertaan"
        }
        AgencyKind::Kejaksaan => "penanganan perkara SKK",
        AgencyKind::LicensingOffice => "layanan perizinan (TMP2T)",
        AgencyKind::Forum => "pemantauan kepatuhan (agregat)",
        AgencyKind::Admin => "administrasi akses",
    }
}

/// Writes `text` to `path`, creating its directory.
pub fn write_file(path: &Path, text: &str) -> Result<(), LoadError> {
    let file_error = |source| LoadError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(file_error)?;
    }
    std::fs::write(path, text).map_err(file_error)
}

/// A fresh token for `agency`, written beside its key.
pub async fn refresh_token(
    channel: &Channel,
    dir: &Path,
    agency: &str,
    kind: AgencyKind,
    key: &SigningKey,
) -> Result<String, LoadError> {
    let token = issue_token(
        channel.clone(),
        agency,
        key,
        AUDIENCE,
        None,
        Some(purpose_of(kind)),
    )
    .await?
    .access_token;
    write_file(&agency_dir(dir, agency).join("token"), &token)?;
    Ok(token)
}

/// What a load made.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub employers: usize,
    pub reports: usize,
    /// The id Sinergi gave the central case's employer.
    pub central_employer_id: String,
}

/// Loads `world` into the server behind `channel`, whose administrator `admin` is; keys and
/// tokens go to `dir/agencies/<id>/`.
pub async fn load(
    channel: Channel,
    admin: &Credentials,
    world: &World,
    dir: &Path,
    progress: &mut Progress,
) -> Result<Loaded, LoadError> {
    let mut loader = Loader {
        channel,
        dir: dir.to_owned(),
        tokens: HashMap::new(),
        employer_ids: Vec::new(),
    };
    loader
        .tokens
        .insert(ADMIN.into(), BearerToken::new(&admin.token)?);

    progress.stage("agencies", world.agencies.len());
    for agency in &world.agencies {
        if agency.id == ADMIN {
            loader.grant_admin(admin, agency).await?;
        } else {
            loader.onboard(agency).await?;
        }
        progress.advance(1);
    }

    progress.stage("employers", world.employers.len());
    loader.register_employers(world, progress).await?;

    progress.stage("reports", world.report_count());
    loader.file_reports(world, progress).await?;

    let steps = 1 + world.referrals.len();
    progress.stage("cases", steps);
    loader.central_case(world).await?;
    progress.advance(1);
    for plan in &world.referrals {
        loader.referral(world, plan).await?;
        progress.advance(1);
    }
    progress.done();

    Ok(Loaded {
        employers: world.employers.len(),
        reports: world.report_count(),
        central_employer_id: loader.employer_ids[world.central].clone(),
    })
}

struct Loader {
    channel: Channel,
    dir: PathBuf,
    tokens: HashMap<String, BearerToken>,
    /// Sinergi's id of each employer of the world, in its order.
    employer_ids: Vec<String>,
}

impl Loader {
    fn as_agency(&self, agency: &str) -> Result<Authed, LoadError> {
        let bearer = self
            .tokens
            .get(agency)
            .ok_or_else(|| LoadError::NoToken(agency.to_owned()))?;
        Ok(InterceptedService::new(
            self.channel.clone(),
            bearer.clone(),
        ))
    }

    /// Gives the bootstrapped administrator the grants of its `spec` (it starts with the
    /// admin scope only), and a token that carries them.
    async fn grant_admin(
        &mut self,
        admin: &Credentials,
        spec: &AgencySpec,
    ) -> Result<(), LoadError> {
        let mut client: AdminClient =
            proto::agency_admin_service_client::AgencyAdminServiceClient::new(
                self.as_agency(ADMIN)?,
            );
        grant_scopes(&mut client, &admin.id, &grants_of(spec)).await?;
        let token = refresh_token(&self.channel, &self.dir, ADMIN, spec.kind, &admin.key).await?;
        self.tokens.insert(ADMIN.into(), BearerToken::new(&token)?);
        Ok(())
    }

    /// Creates `agency` with a key of its own and its grants, and gets its first token.
    async fn onboard(&mut self, agency: &AgencySpec) -> Result<(), LoadError> {
        let (key, pem) = SigningKey::generate(KeyAlgorithm::EdDsa)?;
        let key_path = agency_dir(&self.dir, agency.id).join("key.pem");
        write_file(&key_path, &pem)?;
        let mut client: AdminClient =
            proto::agency_admin_service_client::AgencyAdminServiceClient::new(
                self.as_agency(ADMIN)?,
            );
        onboard_agency(
            &mut client,
            proto::Agency {
                id: agency.id.into(),
                kind: agency_kind_to_proto(agency.kind).into(),
                display_name: agency.name.into(),
                home_region: agency
                    .home_region
                    .map(|code| proto::RegionCode { code: code.into() }),
                ..Default::default()
            },
            &key,
            &grants_of(agency),
        )
        .await?;
        let token = refresh_token(&self.channel, &self.dir, agency.id, agency.kind, &key).await?;
        self.tokens
            .insert(agency.id.into(), BearerToken::new(&token)?);
        Ok(())
    }

    /// Each Disnaker registers the employers of its regency, a few at a time.
    async fn register_employers(
        &mut self,
        world: &World,
        progress: &mut Progress,
    ) -> Result<(), LoadError> {
        let mut ids = vec![String::new(); world.employers.len()];
        let mut running = tokio::task::JoinSet::new();
        let mut next = 0;
        while next < world.employers.len() || !running.is_empty() {
            while next < world.employers.len() && running.len() < UPSERTS_IN_FLIGHT {
                let employer = &world.employers[next];
                let mut client =
                    EmployerServiceClient::new(self.as_agency(employer.region.disnaker)?);
                let request = proto::UpsertEmployerRequest {
                    employer: Some(employer_message(employer)),
                    etag: String::new(),
                    request_id: format!("demo-employer-{next}"),
                };
                let index = next;
                running.spawn(async move {
                    let response = client.upsert_employer(request).await;
                    (index, response)
                });
                next += 1;
            }
            if let Some(finished) = running.join_next().await {
                let (index, response) = finished.expect("an upsert task does not panic");
                let employer = response
                    .map_err(refused(format!("employer {}", world.employers[index].name)))?
                    .into_inner()
                    .employer
                    .map(|employer| employer.id)
                    .unwrap_or_default();
                ids[index] = employer;
                progress.advance(1);
            }
        }
        self.employer_ids = ids;
        Ok(())
    }

    /// Month by month: each Disnaker's workforce and layoff reports, then each BPJS's
    /// registrations, in batches.
    async fn file_reports(&self, world: &World, progress: &mut Progress) -> Result<(), LoadError> {
        for (month_index, period) in PERIODS.iter().enumerate() {
            let mut by_agency: HashMap<&str, Vec<proto::ReportSubmission>> = HashMap::new();
            for (index, employer) in world.employers.iter().enumerate() {
                let month = &employer.months[month_index];
                let id = &self.employer_ids[index];
                let disnaker = by_agency.entry(employer.region.disnaker).or_default();
                disnaker.push(workforce(id, month));
                if month.laid_off > 0 {
                    disnaker.push(layoff(id, index, month));
                }
                by_agency
                    .entry(employer.region.bpjs_kesehatan)
                    .or_default()
                    .push(registration(id, month, ProgrammeGroup::Jkn, &month.jkn));
                by_agency
                    .entry(employer.region.bpjs_ketenagakerjaan)
                    .or_default()
                    .push(registration(
                        id,
                        month,
                        ProgrammeGroup::Ketenagakerjaan,
                        &month.ketenagakerjaan,
                    ));
            }
            // Disnaker first: a registration is judged against the month's workforce.
            let mut agencies: Vec<&str> = by_agency.keys().copied().collect();
            agencies.sort_by_key(|agency| (!agency.starts_with("disnaker"), *agency));
            for agency in agencies {
                for (batch, items) in by_agency[agency].chunks(BATCH).enumerate() {
                    let request_id = format!("demo-{agency}-{}-{:02}-{batch}", period.0, period.1);
                    self.submit(agency, &request_id, items).await?;
                    progress.advance(items.len());
                }
            }
        }
        Ok(())
    }

    async fn submit(
        &self,
        agency: &str,
        request_id: &str,
        items: &[proto::ReportSubmission],
    ) -> Result<(), LoadError> {
        let mut messages: Vec<proto::BulkSubmitReportsRequest> = items
            .iter()
            .map(|item| proto::BulkSubmitReportsRequest {
                item: Some(item.clone()),
                ..Default::default()
            })
            .collect();
        if let Some(first) = messages.first_mut() {
            first.request_id = request_id.into();
        }
        messages.push(proto::BulkSubmitReportsRequest {
            end_of_batch: true,
            ..Default::default()
        });
        ComplianceServiceClient::new(self.as_agency(agency)?)
            .bulk_submit_reports(tokio_stream::iter(messages))
            .await
            .map_err(refused(format!("the reports of {agency} ({request_id})")))?;
        Ok(())
    }

    /// The articles' central case: BPJS Kesehatan warns and fines the employer with 1,500
    /// workers and 1,000 registered, provincial inspectors inspect it jointly with BPJS,
    /// the licensing office withholds its licences on BPJS's request, and BPJS refers it to
    /// the Kejari (below, with the other referrals).
    async fn central_case(&self, world: &World) -> Result<(), LoadError> {
        let employer_id = self.employer_ids[world.central].clone();
        let bpjs = "bpjs-kes-pekalongan";
        let jkn = proto::ProgrammeGroup::Jkn as i32;

        let mut sanctions = SanctionServiceClient::new(self.as_agency(bpjs)?);
        let step = |step: proto::SanctionStep, track: &proto::SanctionTrack, date: &str| {
            proto::TakeSanctionStepRequest {
                track_id: track.id.clone(),
                step: step.into(),
                etag: track.etag.clone(),
                effective_date: date.into(),
                request_id: format!("demo-sanction-{}", step.as_str_name()),
                ..Default::default()
            }
        };
        let track = sanctions
            .take_sanction_step(proto::TakeSanctionStepRequest {
                employer_id: employer_id.clone(),
                step: proto::SanctionStep::Warning1.into(),
                effective_date: "2026-10-05".into(),
                document_ref: "B/1107/KES-PKL/X/2026".into(),
                note: format!(
                    "{} of {CENTRAL_WORKERS} workers not registered in JKN",
                    CENTRAL_WORKERS - super::world::CENTRAL_REGISTERED
                ),
                request_id: "demo-sanction-WARNING_1".into(),
                ..Default::default()
            })
            .await
            .map_err(refused("the first written warning"))?
            .into_inner();

        let mut inspections = InspectionServiceClient::new(self.as_agency("disnakertrans-jateng")?);
        let inspection = inspections
            .open_inspection(proto::OpenInspectionRequest {
                employer_id: employer_id.clone(),
                joint_agency_id: bpjs.into(),
                triggered_by_group: jkn,
                note: "joint inspection with BPJS Kesehatan after the registration gap".into(),
                request_id: "demo-inspection-open".into(),
                effective_date: "2026-10-12".into(),
            })
            .await
            .map_err(refused("the inspection"))?
            .into_inner();
        let inspection_steps = [
            (
                proto::InspectionStep::IssueNotaI,
                "2026-10-14",
                "2026-10-28",
                "NP-I/041/PPK-JTG/X/2026",
            ),
            (
                proto::InspectionStep::IssueNotaIi,
                "2026-10-29",
                "2026-11-12",
                "NP-II/017/PPK-JTG/X/2026",
            ),
            (proto::InspectionStep::RecordResponse, "2026-11-10", "", ""),
        ];
        let mut inspection = inspection;
        for (step, date, due, document) in inspection_steps {
            inspection = inspections
                .advance_inspection(proto::AdvanceInspectionRequest {
                    inspection_id: inspection.id.clone(),
                    step: step.into(),
                    etag: inspection.etag.clone(),
                    effective_date: date.into(),
                    response_due: due.into(),
                    document_ref: document.into(),
                    note: match step {
                        proto::InspectionStep::RecordResponse => {
                            "the employer promises to register 200 more workers".into()
                        }
                        _ => String::new(),
                    },
                    ..Default::default()
                })
                .await
                .map_err(refused(format!(
                    "the inspection step {}",
                    step.as_str_name()
                )))?
                .into_inner();
        }

        let track = sanctions
            .take_sanction_step(proto::TakeSanctionStepRequest {
                document_ref: "B/1189/KES-PKL/X/2026".into(),
                ..step(proto::SanctionStep::Warning2, &track, "2026-10-20")
            })
            .await
            .map_err(refused("the second written warning"))?
            .into_inner();
        let track = sanctions
            .take_sanction_step(proto::TakeSanctionStepRequest {
                document_ref: "KEP-DENDA/052/KES-PKL/XI/2026".into(),
                // 0.1 % a month of the contributions due for the unregistered workers.
                fine_amount: 180_000,
                ..step(proto::SanctionStep::Fine, &track, "2026-11-04")
            })
            .await
            .map_err(refused("the fine"))?
            .into_inner();
        let track = sanctions
            .take_sanction_step(proto::TakeSanctionStepRequest {
                document_ref: "B/1254/KES-PKL/XI/2026".into(),
                withheld_services: vec![
                    proto::WithheldService::BusinessLicence.into(),
                    proto::WithheldService::Tender.into(),
                ],
                ..step(proto::SanctionStep::RequestTmp2t, &track, "2026-11-06")
            })
            .await
            .map_err(refused("the TMP2T request"))?
            .into_inner();
        SanctionServiceClient::new(self.as_agency("dpmptsp-batang")?)
            .take_sanction_step(proto::TakeSanctionStepRequest {
                document_ref: "KEP-TMP2T/009/DPMPTSP-BTG/XI/2026".into(),
                ..step(proto::SanctionStep::ActivateTmp2t, &track, "2026-11-09")
            })
            .await
            .map_err(refused("the TMP2T activation"))?;

        inspections
            .advance_inspection(proto::AdvanceInspectionRequest {
                inspection_id: inspection.id.clone(),
                step: proto::InspectionStep::Close.into(),
                etag: inspection.etag.clone(),
                effective_date: "2026-11-16".into(),
                outcome: proto::InspectionOutcome::RecommendedForSanction.into(),
                note: "200 workers registered since; 300 still missing".into(),
                ..Default::default()
            })
            .await
            .map_err(refused("closing the inspection"))?;
        Ok(())
    }

    /// A referral from its SKK to its end, each step by its party: BPJS issues the SKK, the
    /// Kejari takes every step after it; BPJS files the registrations of an employer that
    /// complied before the Kejari closes the case.
    async fn referral(&self, world: &World, plan: &ReferralPlan) -> Result<(), LoadError> {
        let employer = &world.employers[plan.employer];
        let employer_id = &self.employer_ids[plan.employer];
        let central = plan.employer == world.central;
        let skk_date = if central {
            "2026-11-10".to_owned()
        } else {
            format!("2026-09-{:02}", plan.skk_day)
        };
        let latest = employer.latest();
        let wage = latest.wage_bill / u64::from(latest.workers.max(1));
        let registered = match plan.group {
            ProgrammeGroup::Jkn => latest.jkn.registered,
            ProgrammeGroup::Ketenagakerjaan => latest.ketenagakerjaan.registered,
        };
        // Three months of the contributions the unregistered workers were owed.
        let claimed = u64::from(latest.workers - registered) * wage / 10 * 3;
        let view = ReferralServiceClient::new(self.as_agency(plan.bpjs)?)
            .create_referral(proto::CreateReferralRequest {
                employer_id: employer_id.clone(),
                kejari_agency_id: plan.kejari.into(),
                skk_number: plan.skk_number.clone(),
                skk_date: skk_date.clone(),
                amount_claimed: claimed,
                note: "workers registered in part only, after written warnings".into(),
                request_id: format!("demo-referral-{}", plan.skk_number),
                ..Default::default()
            })
            .await
            .map_err(refused(format!("the referral {}", plan.skk_number)))?
            .into_inner();
        let mut referral = view.referral.unwrap_or_default();

        use proto::ReferralStep::*;
        let mut steps: Vec<(proto::ReferralStep, String, String)> = if central {
            vec![
                (ReceiveSkk, "2026-11-12".into(), String::new()),
                (SendDemand, "2026-11-16".into(), "2026-11-30".into()),
                (HoldMeeting, "2026-11-30".into(), "2026-12-14".into()),
            ]
        } else {
            vec![
                (
                    ReceiveSkk,
                    format!("2026-09-{:02}", plan.skk_day + 3),
                    String::new(),
                ),
                (SendDemand, "2026-09-25".into(), "2026-10-09".into()),
            ]
        };
        match plan.end {
            ReferralEnd::Open => {}
            ReferralEnd::Returned => {
                steps.push((Fail, "2026-10-15".into(), String::new()));
                steps.push((ReturnSkk, "2026-10-20".into(), String::new()));
            }
            ReferralEnd::Failed => {
                steps.push((HoldMeeting, "2026-10-12".into(), String::new()));
                steps.push((Fail, "2026-10-26".into(), String::new()));
            }
            ReferralEnd::Paid => {
                steps.push((HoldMeeting, "2026-10-12".into(), String::new()));
                steps.push((RecordUndertaking, "2026-10-19".into(), String::new()));
                steps.push((ResolvePaid, "2026-11-18".into(), String::new()));
            }
            ReferralEnd::Complied => {
                steps.push((HoldMeeting, "2026-10-12".into(), String::new()));
                steps.push((ResolveComplied, "2026-11-02".into(), String::new()));
            }
        }
        let mut kejari = ReferralServiceClient::new(self.as_agency(plan.kejari)?);
        for (step, date, due) in steps {
            if step == ResolveComplied {
                self.registered_in_full(plan, employer, employer_id).await?;
            }
            let instalments = if step == RecordUndertaking {
                vec![
                    proto::Instalment {
                        due_date: "2026-11-02".into(),
                        amount: claimed / 2,
                    },
                    proto::Instalment {
                        due_date: "2026-11-16".into(),
                        amount: claimed - claimed / 2,
                    },
                ]
            } else {
                Vec::new()
            };
            referral = kejari
                .advance_referral(proto::AdvanceReferralRequest {
                    referral_id: referral.id.clone(),
                    step: step.into(),
                    etag: referral.etag.clone(),
                    effective_date: date,
                    due_date: due,
                    instalments,
                    amount_recovered: if step == ResolvePaid { claimed } else { 0 },
                    document_ref: format!("{}/{}", plan.skk_number, step.as_str_name()),
                    ..Default::default()
                })
                .await
                .map_err(refused(format!(
                    "the step {} of {}",
                    step.as_str_name(),
                    plan.skk_number
                )))?
                .into_inner()
                .referral
                .unwrap_or_default();
        }
        Ok(())
    }

    /// BPJS files the latest month again with every worker registered in every mandatory
    /// programme: the employer complied during mediation.
    async fn registered_in_full(
        &self,
        plan: &ReferralPlan,
        employer: &EmployerSpec,
        employer_id: &str,
    ) -> Result<(), LoadError> {
        let latest = employer.latest();
        let wage = latest.wage_bill / u64::from(latest.workers.max(1));
        let full = Registration {
            registered: latest.workers,
            enrolled: plan.group.mandatory(Some(employer.size)).to_vec(),
            declared_wages: wage * u64::from(latest.workers),
            arrears_months: 0,
            arrears_amount: 0,
        };
        ComplianceServiceClient::new(self.as_agency(plan.bpjs)?)
            .submit_report(proto::SubmitReportRequest {
                report: Some(registration(employer_id, latest, plan.group, &full)),
                request_id: format!("demo-complied-{}", plan.skk_number),
            })
            .await
            .map_err(refused(format!(
                "the registration after {}",
                plan.skk_number
            )))?;
        Ok(())
    }
}

/// An agency's grants as the client's onboarding takes them.
fn grants_of(agency: &AgencySpec) -> Vec<(&'static str, &[&'static str])> {
    agency
        .grants
        .iter()
        .map(|(scope, regions)| (scope.as_str(), regions.as_slice()))
        .collect()
}

fn employer_message(employer: &EmployerSpec) -> proto::Employer {
    proto::Employer {
        npwp: employer.npwp.clone(),
        nib: employer.nib.clone(),
        name: employer.name.clone(),
        address: employer.address.clone(),
        region: Some(proto::RegionCode {
            code: employer.region.code.into(),
        }),
        kbli: employer.kbli.into(),
        size_class: size_class_to_proto(Some(employer.size)).into(),
        workforce_declared: Some(employer.months[0].workers),
        ..Default::default()
    }
}

fn period_of(month: &Month) -> proto::Period {
    proto::Period {
        year: month.period.0,
        month: i32::from(month.period.1),
    }
}

fn submission(
    employer_id: &str,
    period: Option<proto::Period>,
    figures: proto::report_submission::Figures,
) -> proto::ReportSubmission {
    proto::ReportSubmission {
        employer: Some(proto::report_submission::Employer::EmployerId(
            employer_id.into(),
        )),
        period,
        figures: Some(figures),
    }
}

fn workforce(employer_id: &str, month: &Month) -> proto::ReportSubmission {
    submission(
        employer_id,
        Some(period_of(month)),
        proto::report_submission::Figures::Workforce(proto::WorkforceFigures {
            total_workers: month.workers,
            total_wage_bill: Some(month.wage_bill),
            wage_bands: Vec::new(),
        }),
    )
}

fn layoff(employer_id: &str, number: usize, month: &Month) -> proto::ReportSubmission {
    let (year, month_number) = month.period;
    submission(
        employer_id,
        None,
        proto::report_submission::Figures::Layoff(proto::LayoffFigures {
            layoff_date: format!("{year}-{month_number:02}-15"),
            workers: month.laid_off,
            document_reference: format!("PHK/{number:04}/{month_number:02}/{year}"),
        }),
    )
}

fn registration(
    employer_id: &str,
    month: &Month,
    group: ProgrammeGroup,
    figures: &Registration,
) -> proto::ReportSubmission {
    submission(
        employer_id,
        Some(period_of(month)),
        proto::report_submission::Figures::Registration(proto::RegistrationFigures {
            programme_group: programme_group_to_proto(group).into(),
            registered_workers: figures.registered,
            enrolled_programmes: figures
                .enrolled
                .iter()
                .map(|programme| programme_to_proto(*programme).into())
                .collect(),
            reported_wage_total: figures.declared_wages,
            arrears_amount: figures.arrears_amount,
            arrears_months: figures.arrears_months,
        }),
    )
}
