//! Properties of the domain rules over generated inputs (proptest), beside the examples the other
//! tests hold: status computation, the inspection, sanction and referral lifecycles, and the
//! Merkle tree against a naive RFC 6962 reference.

use std::collections::HashMap;

use proptest::prelude::*;
use sinergi::audit::merkle::{self, Frontier, Hash};
use sinergi::domain::agency::{AgencyId, AgencyKind};
use sinergi::domain::cases::Subject;
use sinergi::domain::compliance::{
    Category, ComplianceStatus, EmployerFacts, Figures, Period, ProgrammeGroup, Report,
    compute_status,
};
use sinergi::domain::employer::SizeClass;
use sinergi::domain::inspection::{
    Inspection, InspectionOutcome, InspectionStatus, InspectionStep, StepFields,
};
use sinergi::domain::referral::{
    Evidence, NewReferral, Referral, ReferralStatus, ReferralStep, StepFields as ReferralFields,
};
use sinergi::domain::sanction::{
    SanctionStatus, SanctionStep, SanctionTrack, StepFields as SanctionFields,
    WARNING_PERIOD_WORKING_DAYS,
};
use sinergi::domain::scope::Programme;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-11-20 10:00 UTC)
}

fn report(figures: Figures) -> Report {
    Report {
        id: Uuid::now_v7(),
        employer_id: Uuid::nil(),
        period: Period {
            year: 2026,
            month: 10,
        },
        version: 1,
        supersedes: None,
        superseded: false,
        source_agency: "test".into(),
        submitted_at: now(),
        figures,
    }
}

/// The JKN status of an employer of `size` with `workers` reported at `wage` each, `registered`
/// of them registered (declared at `declared` each, `arrears` months unpaid), enrolled or not.
fn jkn_status(
    size: SizeClass,
    workers: u32,
    wage: u64,
    registered: u32,
    declared: u64,
    arrears: u32,
    enrolled: bool,
) -> ComplianceStatus {
    let reports = [
        report(Figures::Workforce {
            total_workers: workers,
            total_wage_bill: Some(wage * u64::from(workers)),
            wage_bands: Vec::new(),
        }),
        report(Figures::Registration {
            group: ProgrammeGroup::Jkn,
            registered_workers: registered,
            enrolled: if enrolled {
                vec![Programme::Jkn]
            } else {
                Vec::new()
            },
            reported_wage_total: declared * u64::from(registered),
            arrears_amount: u64::from(arrears) * 100_000,
            arrears_months: arrears,
        }),
    ];
    compute_status(
        Uuid::nil(),
        ProgrammeGroup::Jkn,
        EmployerFacts {
            size_class: Some(size),
        },
        &reports,
        now(),
    )
}

fn size_class() -> impl Strategy<Value = SizeClass> {
    prop_oneof![
        Just(SizeClass::Micro),
        Just(SizeClass::Small),
        Just(SizeClass::Medium),
        Just(SizeClass::Large),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// COMPLIANT stands exactly when no other category does; registering more workers never
    /// widens the gap, and the gap is what is left unregistered.
    #[test]
    fn statuses_follow_the_registered_count(
        size in size_class(),
        workers in 1u32..5_000,
        wage in 1_000_000u64..12_000_000,
        registered in 0u32..6_000,
        more in 0u32..2_000,
        declared_share in 50u64..=100,
        arrears in 0u32..12,
        enrolled in any::<bool>(),
    ) {
        let declared = wage * declared_share / 100;
        let status = jkn_status(size, workers, wage, registered, declared, arrears, enrolled);
        let compliant = status.categories.contains(&Category::Compliant);
        prop_assert_eq!(compliant, status.categories == [Category::Compliant]);
        prop_assert_eq!(
            compliant,
            !status.categories.iter().any(|c| c.is_non_compliance())
        );
        prop_assert_eq!(status.gap, workers.saturating_sub(registered));
        prop_assert_eq!(
            status.categories.contains(&Category::PdsTk) || status.categories.contains(&Category::Pwbd),
            registered < workers
        );
        prop_assert_eq!(status.categories.contains(&Category::Tunggakan), arrears > 0);

        let better = jkn_status(size, workers, wage, registered + more, declared, arrears, enrolled);
        prop_assert!(better.gap <= status.gap);
        if registered >= workers && arrears == 0 && enrolled && declared_share == 100 {
            prop_assert!(compliant, "{:?}", status.categories);
        }
    }
}

/// Where the documented inspection lifecycle (lifecycle B) allows a step to lead.
fn documented(from: InspectionStatus, step: InspectionStep) -> Option<InspectionStatus> {
    use InspectionStatus::*;
    use InspectionStep::*;
    match (from, step) {
        (Open, IssueNotaI) => Some(NotaI),
        (NotaI, IssueNotaII) => Some(NotaII),
        (NotaI | NotaII, RecordResponse) => Some(from),
        (Open | NotaI | NotaII, Close) => Some(Closed),
        _ => None,
    }
}

/// A step to attempt: one the lifecycle offers when `follow` is set (the `pick`th of them),
/// else `any`; dated `after` days after the previous attempt, with a due date (a nota's
/// response, a demand's deadline) `response_days` after that.
#[derive(Debug, Clone)]
struct Attempt<S> {
    follow: bool,
    pick: usize,
    any: S,
    after: i64,
    response_days: i64,
    outcome: Option<InspectionOutcome>,
}

fn attempt<S: Clone + std::fmt::Debug + 'static>(
    all: &'static [S],
) -> impl Strategy<Value = Attempt<S>> {
    (
        any::<bool>(),
        any::<usize>(),
        prop::sample::select(all.to_vec()),
        0i64..20,
        1i64..30,
        prop::option::of(prop::sample::select(InspectionOutcome::ALL.to_vec())),
    )
        .prop_map(
            |(follow, pick, any, after, response_days, outcome)| Attempt {
                follow,
                pick,
                any,
                after,
                response_days,
                outcome,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No sequence of steps takes an inspection where the documented lifecycle does not go; a
    /// refused step changes nothing; the history grows by exactly the steps taken; and a step
    /// the lifecycle offers, given what it needs, is taken.
    #[test]
    fn inspections_move_only_as_documented(steps in prop::collection::vec(attempt(InspectionStep::ALL), 1..12)) {
        let office = AgencyId::parse("disnakertrans-jateng").expect("an id");
        let opened: Date = time::macros::date!(2026 - 1 - 5);
        let mut inspection = Inspection::open(
            Subject { id: Uuid::nil(), employer_id: Uuid::nil(), region_code: "33.26" },
            &office,
            None,
            None,
            String::new(),
            now(),
            opened,
        );
        let mut day = opened;
        let today = opened + Duration::days(400);
        for attempt in steps {
            day += Duration::days(attempt.after);
            let offered = inspection.allowed_steps(day);
            let following = attempt.follow && !offered.is_empty();
            let step = if following {
                offered[attempt.pick % offered.len()]
            } else {
                attempt.any
            };
            // What an offered step needs: before nota II, only COMPLIED closes.
            let outcome = match step {
                InspectionStep::Close if following && inspection.status != InspectionStatus::NotaII => {
                    Some(InspectionOutcome::Complied)
                }
                InspectionStep::Close if following => {
                    attempt.outcome.or(Some(InspectionOutcome::Complied))
                }
                _ => attempt.outcome,
            };
            let response_days = attempt.response_days;
            let effective = day.to_string();
            let due = (day + Duration::days(response_days)).to_string();
            let fields = StepFields {
                step: Some(step),
                effective_date: &effective,
                response_due: &due,
                outcome,
                note: "",
                document_ref: "NP/1",
            };
            let validated = fields.validate(today);
            prop_assert!(!following || validated.is_ok(), "{:?}", validated);
            let Ok(request) = validated else { continue };
            let before = inspection.clone();
            let taken = inspection.advance(&office, AgencyKind::DisnakertransProvinsi, request, now());
            prop_assert!(!following || taken.is_ok(), "{:?} {:?}", step, taken);
            match taken {
                Ok(()) => {
                    prop_assert_eq!(Some(inspection.status), documented(before.status, step));
                    prop_assert_eq!(inspection.history.len(), before.history.len() + 1);
                    if inspection.status == InspectionStatus::Closed {
                        let outcome = inspection.outcome.expect("a closed inspection's outcome");
                        prop_assert!(
                            outcome == InspectionOutcome::Complied
                                || before.status == InspectionStatus::NotaII
                        );
                    }
                }
                Err(_) => prop_assert_eq!(&inspection, &before),
            }
        }
    }
}

/// RFC 6962's MTH, computed the slow way.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let split = split_point(n);
            merkle::node_hash(&naive_root(&leaves[..split]), &naive_root(&leaves[split..]))
        }
    }
}

/// The largest power of two below `n` (n > 1).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962's PATH(m, D[n]).
fn naive_path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let split = split_point(leaves.len());
    if index < split {
        let mut path = naive_path(index, &leaves[..split]);
        path.push(naive_root(&leaves[split..]));
        path
    } else {
        let mut path = naive_path(index - split, &leaves[split..]);
        path.push(naive_root(&leaves[..split]));
        path
    }
}

/// RFC 6962's SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole {
            Vec::new()
        } else {
            vec![naive_root(leaves)]
        };
    }
    let split = split_point(n);
    if m <= split {
        let mut proof = naive_subproof(m, &leaves[..split], whole);
        proof.push(naive_root(&leaves[split..]));
        proof
    } else {
        let mut proof = naive_subproof(m - split, &leaves[split..], false);
        proof.push(naive_root(&leaves[..split]));
        proof
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The tree's roots and proofs are those of the naive reference, for sizes up to 10,000;
    /// a proof with any one bit changed is refused.
    #[test]
    fn the_tree_agrees_with_the_reference(
        size in 1usize..=10_000,
        salt in any::<u64>(),
        index_seed in any::<u64>(),
        old_seed in any::<u64>(),
        bit in 0usize..256,
    ) {
        let leaves: Vec<Hash> = (0..size)
            .map(|i| merkle::leaf_hash(format!("{salt}/{i}").as_bytes()))
            .collect();
        let mut frontier = Frontier::default();
        let mut nodes = HashMap::new();
        for leaf in &leaves {
            nodes.extend(frontier.append(*leaf));
        }
        let root = naive_root(&leaves);
        prop_assert_eq!(frontier.root(), root);
        prop_assert_eq!(merkle::root_from_nodes(size as u64, &nodes), Some(root));

        let index = (index_seed % size as u64) as usize;
        let proof = merkle::inclusion_proof(index as u64, size as u64, &nodes).expect("a proof");
        prop_assert_eq!(&proof, &naive_path(index, &leaves));
        prop_assert!(merkle::verify_inclusion(index as u64, size as u64, &leaves[index], &proof, &root));

        let old = 1 + (old_seed % size as u64) as usize;
        let old_root = naive_root(&leaves[..old]);
        let consistency = merkle::consistency_proof(old as u64, size as u64, &nodes).expect("a proof");
        prop_assert_eq!(&consistency, &naive_subproof(old, &leaves, true));
        prop_assert!(merkle::verify_consistency(old as u64, size as u64, &old_root, &root, &consistency));

        if let Some(first) = proof.first() {
            let mut bent = proof.clone();
            let mut hash = *first;
            hash[bit / 8] ^= 1 << (bit % 8);
            bent[0] = hash;
            prop_assert!(!merkle::verify_inclusion(index as u64, size as u64, &leaves[index], &bent, &root));
        }
    }
}

/// Where the documented referral lifecycle (lifecycle C) allows the Kejari's step to lead.
fn documented_referral(from: ReferralStatus, step: ReferralStep) -> Option<ReferralStatus> {
    use ReferralStatus as S;
    use ReferralStep::*;
    let open = matches!(from, S::DemandSent | S::Meeting | S::Undertaking);
    match (from, step) {
        (S::SkkIssued, ReceiveSkk) => Some(S::SkkReceived),
        (S::SkkReceived | S::DemandSent, SendDemand) => Some(S::DemandSent),
        (S::DemandSent | S::Meeting, HoldMeeting) => Some(S::Meeting),
        (S::Meeting | S::Undertaking, RecordUndertaking) => Some(S::Undertaking),
        (_, ResolveComplied) if open => Some(S::ResolvedComplied),
        (_, ResolvePaid) if open => Some(S::ResolvedPaid),
        (S::SkkReceived, Fail) => Some(S::Failed),
        (_, Fail) if open => Some(S::Failed),
        (S::Failed, ReturnSkk) => Some(S::SkkReturned),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No sequence of steps takes a referral where the documented lifecycle does not go; only
    /// the addressed Kejari moves it; a refused step changes nothing; and a step the lifecycle
    /// offers, given what it needs, is taken.
    #[test]
    fn referrals_move_only_as_documented(
        steps in prop::collection::vec((attempt(ReferralStep::ALL), any::<bool>()), 1..12),
    ) {
        let bpjs = AgencyId::parse("bpjs-kes-pekalongan").expect("an id");
        let kejari = AgencyId::parse("kejari-batang").expect("an id");
        let opened: Date = time::macros::date!(2026 - 1 - 5);
        let status = jkn_status(SizeClass::Large, 1_500, 2_400_000, 1_000, 2_400_000, 0, true);
        let evidence = Evidence::of(Some(status), ProgrammeGroup::Jkn, Vec::new()).expect("evidence");
        let mut referral = Referral::open(
            Subject { id: Uuid::nil(), employer_id: Uuid::nil(), region_code: "33.25" },
            NewReferral {
                employer_id: Uuid::nil(),
                kejari_agency: kejari.clone(),
                skk_number: "SKK-1/2026".into(),
                skk_date: opened,
                amount_claimed: 1_000_000,
                previous_referral: None,
                note: String::new(),
            },
            &bpjs,
            ProgrammeGroup::Jkn,
            evidence,
            None,
            now(),
        )
        .expect("a referral");
        let mut day = opened;
        let today = opened + Duration::days(400);
        for (attempt, by_bpjs) in steps {
            day += Duration::days(attempt.after);
            let offered = referral.status.allowed_steps();
            let following = attempt.follow && !by_bpjs && !offered.is_empty();
            let step = if following {
                offered[attempt.pick % offered.len()]
            } else {
                attempt.any
            };
            let effective = day.to_string();
            let due = (day + Duration::days(attempt.response_days)).to_string();
            // What an offered step needs: an undertaking its instalments, a payment its amount.
            let instalments = if step == ReferralStep::RecordUndertaking {
                vec![(due.as_str(), 500_000)]
            } else {
                Vec::new()
            };
            let fields = ReferralFields {
                step: Some(step),
                effective_date: &effective,
                due_date: if matches!(step, ReferralStep::SendDemand | ReferralStep::HoldMeeting) {
                    &due
                } else {
                    ""
                },
                instalments,
                amount_recovered: if step == ReferralStep::ResolvePaid { 1_000_000 } else { 0 },
                note: "",
                document_ref: "B/1",
            };
            let validated = fields.validate(today);
            prop_assert!(!following || validated.is_ok(), "{:?}", validated);
            let Ok(request) = validated else { continue };
            let (actor, kind) = if by_bpjs {
                (&bpjs, AgencyKind::BpjsKesehatan)
            } else {
                (&kejari, AgencyKind::Kejaksaan)
            };
            let before = referral.clone();
            let taken = referral.advance(actor, kind, request, now());
            prop_assert!(!following || taken.is_ok(), "{:?} {:?}", step, taken);
            match taken {
                Ok(()) => {
                    prop_assert!(!by_bpjs);
                    prop_assert_eq!(Some(referral.status), documented_referral(before.status, step));
                    prop_assert_eq!(referral.history.len(), before.history.len() + 1);
                }
                Err(_) => prop_assert_eq!(&referral, &before),
            }
        }
    }
}

/// Where the documented BPJS administrative track (lifecycle A) allows a step to lead, with the
/// employer compliant in the track's group now or not.
fn documented_sanction(
    from: SanctionStatus,
    step: SanctionStep,
    compliant: bool,
) -> Option<SanctionStatus> {
    use SanctionStatus as S;
    use SanctionStep::*;
    match (from, step) {
        (S::Warning1, Warning2) if !compliant => Some(S::Warning2),
        (S::Warning2, Fine) if !compliant => Some(S::Fine),
        (S::Fine, RequestTmp2t) if !compliant => Some(S::Tmp2tRequested),
        (S::Tmp2tRequested, ActivateTmp2t) => Some(S::Tmp2tActive),
        (S::Tmp2tActive, RequestRevocation) if compliant => Some(S::RevocationRequested),
        (S::Warning1 | S::Warning2 | S::Fine | S::Tmp2tRequested, RequestRevocation)
            if compliant =>
        {
            Some(S::ClosedComplied)
        }
        (S::RevocationRequested, LiftTmp2t) => Some(S::Lifted),
        _ => None,
    }
}

/// The Monday-to-Friday days after `start`, up to and including `end`.
fn weekdays_after(start: Date, end: Date) -> u32 {
    let mut count = 0;
    let mut day = start;
    while day < end {
        day += Duration::days(1);
        if !matches!(
            day.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        ) {
            count += 1;
        }
    }
    count
}

/// Who attempts a sanction step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SanctionParty {
    Bpjs,
    Licensing,
    Kejari,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No sequence of steps, by any party and whatever the employer's status, takes a sanction
    /// track where lifecycle A does not go: BPJS takes its steps, the licensing office imposes
    /// and lifts TMP2T, a warning runs its ten working days, and services are withheld exactly
    /// from activation to lifting. A refused step changes nothing, and a step the lifecycle
    /// offers, taken by its party when the status allows, is taken.
    #[test]
    fn sanction_tracks_move_only_as_documented(
        steps in prop::collection::vec(
            (
                attempt(SanctionStep::ALL),
                prop::sample::select(vec![
                    SanctionParty::Bpjs,
                    SanctionParty::Licensing,
                    SanctionParty::Kejari,
                ]),
                any::<bool>(),
            ),
            1..12,
        ),
    ) {
        let bpjs = AgencyId::parse("bpjs-kes-pekalongan").expect("an id");
        let licensing = AgencyId::parse("dpmptsp-batang").expect("an id");
        let kejari = AgencyId::parse("kejari-batang").expect("an id");
        let compliant = jkn_status(SizeClass::Large, 1_000, 2_400_000, 1_000, 2_400_000, 0, true);
        let non_compliant = jkn_status(SizeClass::Large, 1_500, 2_400_000, 1_000, 2_400_000, 0, true);
        prop_assert_eq!(&compliant.categories, &vec![Category::Compliant]);
        prop_assert!(non_compliant.is_non_compliant());
        let opened: Date = time::macros::date!(2026 - 1 - 5);
        let today = opened + Duration::days(800);
        let warning = SanctionFields {
            step: Some(SanctionStep::Warning1),
            effective_date: &opened.to_string(),
            document_ref: "B/1",
            note: "",
            fine_amount: 0,
            services: Vec::new(),
        }
        .validate(today)
        .expect("a first warning");
        let mut track = SanctionTrack::open(
            Subject { id: Uuid::nil(), employer_id: Uuid::nil(), region_code: "33.25" },
            ProgrammeGroup::Jkn,
            &bpjs,
            warning,
            Some(&non_compliant),
            now(),
        )
        .expect("a track");
        let mut day = opened;
        for (attempt, party, is_compliant) in steps {
            day += Duration::days(attempt.after);
            let offered = track.status.allowed_steps();
            let following = attempt.follow && !offered.is_empty();
            let (step, party, is_compliant) = if following {
                let step = offered[attempt.pick % offered.len()];
                let party = if step.is_licensing_step() {
                    SanctionParty::Licensing
                } else {
                    SanctionParty::Bpjs
                };
                // What an offered step needs: the warning run out, and the status it rests on.
                if let Some(end) = track.warning_period_end {
                    day = day.max(end + Duration::days(1));
                }
                (step, party, step == SanctionStep::RequestRevocation)
            } else {
                (attempt.any, party, is_compliant)
            };
            let status_now = if is_compliant { &compliant } else { &non_compliant };
            let effective = day.to_string();
            let fields = SanctionFields {
                step: Some(step),
                effective_date: &effective,
                document_ref: "B/2",
                note: "",
                fine_amount: 5_000_000,
                services: vec![Some(sinergi::domain::sanction::WithheldService::Tender)],
            };
            let validated = fields.validate(today);
            prop_assert!(!following || validated.is_ok(), "{:?}", validated);
            let Ok(request) = validated else { continue };
            let (actor, kind) = match party {
                SanctionParty::Bpjs => (&bpjs, AgencyKind::BpjsKesehatan),
                SanctionParty::Licensing => (&licensing, AgencyKind::LicensingOffice),
                SanctionParty::Kejari => (&kejari, AgencyKind::Kejaksaan),
            };
            let before = track.clone();
            let taken = track.advance(actor, kind, request, Some(status_now), now());
            prop_assert!(!following || taken.is_ok(), "{:?} {:?}", step, taken);
            match taken {
                Ok(()) => {
                    let expected = documented_sanction(before.status, step, is_compliant);
                    prop_assert_eq!(Some(track.status), expected);
                    let by = if step.is_licensing_step() {
                        SanctionParty::Licensing
                    } else {
                        SanctionParty::Bpjs
                    };
                    prop_assert_eq!(party, by);
                    if matches!(step, SanctionStep::Warning2 | SanctionStep::Fine) {
                        let warned_on = before.history.last().expect("a warning").step.effective_on;
                        // The warning's ten working days all lie before the step's date.
                        prop_assert!(
                            weekdays_after(warned_on, day - Duration::days(1))
                                >= WARNING_PERIOD_WORKING_DAYS,
                            "{} within the warning of {}", day, warned_on
                        );
                    }
                    prop_assert_eq!(track.history.len(), before.history.len() + 1);
                }
                Err(_) => prop_assert_eq!(&track, &before),
            }
            prop_assert_eq!(
                track.status.withholds(),
                matches!(track.status, SanctionStatus::Tmp2tActive | SanctionStatus::RevocationRequested)
            );
            prop_assert_eq!(track.closed_at.is_some(), !track.status.is_open());
        }
    }
}
