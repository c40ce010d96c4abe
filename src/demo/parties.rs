//! Who takes part in the demo: the agencies of the source articles (and the offices their
//! stories need) with the grants each kind needs, and the regencies and cities whose employers
//! they register, report on and pursue, with the figures the articles give for each.

use crate::domain::agency::AgencyKind;
use crate::domain::scope::Scope;

/// The administrator the demo bootstraps.
pub const ADMIN: &str = "sinergi-admin";

/// The share of Banten's employers that are not compliant in JKN: 480 of the default world's
/// 1,200 (the Perjaka forum counted 480 in April 2021).
const BANTEN_NON_COMPLIANT: f64 = 0.40;

/// An agency of the demo, with the grants its kind needs: scope and the regions it covers
/// (none: everywhere).
#[derive(Debug, Clone)]
pub struct AgencySpec {
    pub id: &'static str,
    pub kind: AgencyKind,
    pub name: &'static str,
    pub home_region: Option<&'static str>,
    pub grants: Vec<(Scope, Vec<&'static str>)>,
}

/// A regency or city of the demo: who keeps its registry and the figures its employers land
/// near.
#[derive(Debug, Clone, Copy)]
pub struct RegionSpec {
    pub code: &'static str,
    pub name: &'static str,
    /// The Disnaker that registers its employers and files their workforce and layoffs.
    pub disnaker: &'static str,
    /// The BPJS Kesehatan and BPJS Ketenagakerjaan agencies that file its registrations.
    pub bpjs_kesehatan: &'static str,
    pub bpjs_ketenagakerjaan: &'static str,
    /// Share of the world's employers.
    pub share: f64,
    /// JKN and BPJS Ketenagakerjaan coverage of its wage earners in the latest month.
    pub jkn_coverage: f64,
    pub tk_coverage: f64,
    /// Share of its employers not compliant in JKN (Banten's is fixed by the forum's count).
    pub jkn_non_compliant: f64,
    /// Average monthly wage (about the regency's minimum wage).
    pub wage: u64,
    pub industries: &'static [(&'static str, &'static str)],
    pub street: &'static str,
}

/// Batik, textiles and garments, the trades of the Pekalongan coast.
const PEKALONGAN_TRADES: &[(&str, &str)] = &[
    ("13134", "Batik"),
    ("13134", "Batik Tulis"),
    ("13112", "Tenun"),
    ("14111", "Garmen"),
    ("13139", "Tekstil"),
    ("10792", "Makanan"),
];

/// The Batang industrial parks: garments, footwear, components.
const BATANG_TRADES: &[(&str, &str)] = &[
    ("14111", "Garmen"),
    ("15201", "Alas Kaki"),
    ("27320", "Kabel"),
    ("22291", "Plastik"),
    ("13134", "Batik"),
];

/// Banten's industry belt: steel, chemicals, logistics.
const BANTEN_TRADES: &[(&str, &str)] = &[
    ("24101", "Baja"),
    ("20119", "Kimia"),
    ("52101", "Logistik"),
    ("22291", "Plastik"),
    ("15201", "Alas Kaki"),
    ("10792", "Makanan"),
];

pub const REGIONS: [RegionSpec; 8] = [
    RegionSpec {
        code: "33.75",
        name: "Kota Pekalongan",
        disnaker: "disnaker-kota-pekalongan",
        bpjs_kesehatan: "bpjs-kes-pekalongan",
        bpjs_ketenagakerjaan: "bpjs-tk-pekalongan",
        share: 0.20,
        jkn_coverage: 0.86,
        tk_coverage: 0.30,
        jkn_non_compliant: 0.30,
        wage: 2_400_000,
        industries: PEKALONGAN_TRADES,
        street: "Jl. Hayam Wuruk",
    },
    RegionSpec {
        code: "33.26",
        name: "Kabupaten Pekalongan",
        disnaker: "disnaker-kab-pekalongan",
        bpjs_kesehatan: "bpjs-kes-pekalongan",
        bpjs_ketenagakerjaan: "bpjs-tk-pekalongan",
        share: 0.15,
        jkn_coverage: 0.84,
        tk_coverage: 0.38,
        jkn_non_compliant: 0.30,
        wage: 2_300_000,
        industries: PEKALONGAN_TRADES,
        street: "Jl. Raya Wiradesa",
    },
    RegionSpec {
        code: "33.25",
        name: "Kabupaten Batang",
        disnaker: "disnaker-batang",
        bpjs_kesehatan: "bpjs-kes-pekalongan",
        bpjs_ketenagakerjaan: "bpjs-tk-pekalongan",
        share: 0.15,
        jkn_coverage: 0.74,
        tk_coverage: 0.40,
        jkn_non_compliant: 0.45,
        wage: 2_400_000,
        industries: BATANG_TRADES,
        street: "Kawasan Industri Batang",
    },
    RegionSpec {
        code: "33.27",
        name: "Kabupaten Pemalang",
        disnaker: "disnaker-pemalang",
        bpjs_kesehatan: "bpjs-kes-pekalongan",
        bpjs_ketenagakerjaan: "bpjs-tk-pekalongan",
        share: 0.10,
        jkn_coverage: 0.85,
        tk_coverage: 0.36,
        jkn_non_compliant: 0.30,
        wage: 2_300_000,
        industries: PEKALONGAN_TRADES,
        street: "Jl. Jenderal Sudirman",
    },
    RegionSpec {
        code: "36.03",
        name: "Kabupaten Tangerang",
        disnaker: "disnaker-kab-tangerang",
        bpjs_kesehatan: "bpjs-kes-banten",
        bpjs_ketenagakerjaan: "bpjs-tk-banten",
        share: 0.12,
        jkn_coverage: 0.83,
        tk_coverage: 0.45,
        jkn_non_compliant: BANTEN_NON_COMPLIANT,
        wage: 4_900_000,
        industries: BANTEN_TRADES,
        street: "Jl. Raya Serang",
    },
    RegionSpec {
        code: "36.04",
        name: "Kabupaten Serang",
        disnaker: "disnaker-kab-serang",
        bpjs_kesehatan: "bpjs-kes-banten",
        bpjs_ketenagakerjaan: "bpjs-tk-banten",
        share: 0.08,
        jkn_coverage: 0.84,
        tk_coverage: 0.42,
        jkn_non_compliant: BANTEN_NON_COMPLIANT,
        wage: 4_800_000,
        industries: BANTEN_TRADES,
        street: "Jl. Raya Cikande",
    },
    RegionSpec {
        code: "36.71",
        name: "Kota Tangerang",
        disnaker: "disnaker-kota-tangerang",
        bpjs_kesehatan: "bpjs-kes-banten",
        bpjs_ketenagakerjaan: "bpjs-tk-banten",
        share: 0.12,
        jkn_coverage: 0.83,
        tk_coverage: 0.46,
        jkn_non_compliant: BANTEN_NON_COMPLIANT,
        wage: 4_900_000,
        industries: BANTEN_TRADES,
        street: "Jl. Gatot Subroto",
    },
    RegionSpec {
        code: "36.72",
        name: "Kota Cilegon",
        disnaker: "disnaker-kota-cilegon",
        bpjs_kesehatan: "bpjs-kes-banten",
        bpjs_ketenagakerjaan: "bpjs-tk-banten",
        share: 0.08,
        jkn_coverage: 0.84,
        tk_coverage: 0.48,
        jkn_non_compliant: BANTEN_NON_COMPLIANT,
        wage: 4_900_000,
        industries: BANTEN_TRADES,
        street: "Jl. Industri Krakatau",
    },
];

/// The Jawa Tengah regencies of the BPJS branches of Pekalongan.
const PEKALONGAN_BRANCH: &[&str] = &["33.25", "33.26", "33.27", "33.75"];

/// The agencies of the source articles (and the offices their stories need), with the grants
/// each kind needs under the cooperation agreements.
pub fn agencies() -> Vec<AgencySpec> {
    use Scope::*;
    // The administrators support every party: they read what the parties write and audit
    // every call.
    let mut agencies = vec![AgencySpec {
        id: ADMIN,
        kind: AgencyKind::Admin,
        name: "Sinergi administrators",
        home_region: None,
        grants: [
            EmployersRead,
            ComplianceRead,
            InspectionsRead,
            SanctionsRead,
            ReferralsRead,
            CoverageRead,
            AuditRead,
        ]
        .into_iter()
        .map(|scope| (scope, Vec::new()))
        .collect(),
    }];
    let bpjs = |id, kind, name, home, regions: &'static [&'static str]| AgencySpec {
        id,
        kind,
        name,
        home_region: Some(home),
        grants: vec![
            (EmployersRead, regions.to_vec()),
            (ReportsWrite, regions.to_vec()),
            (ComplianceRead, regions.to_vec()),
            (InspectionsRead, regions.to_vec()),
            (SanctionsRead, regions.to_vec()),
            (SanctionsWrite, regions.to_vec()),
            (ReferralsRead, regions.to_vec()),
            (ReferralsCreate, regions.to_vec()),
            (FeedRead, regions.to_vec()),
            (CoverageRead, Vec::new()),
        ],
    };
    agencies.extend([
        bpjs(
            "bpjs-kes-pekalongan",
            AgencyKind::BpjsKesehatan,
            "BPJS Kesehatan Cabang Pekalongan",
            "33.75",
            PEKALONGAN_BRANCH,
        ),
        bpjs(
            "bpjs-tk-pekalongan",
            AgencyKind::BpjsKetenagakerjaan,
            "BPJS Ketenagakerjaan Cabang Pekalongan",
            "33.75",
            PEKALONGAN_BRANCH,
        ),
        bpjs(
            "bpjs-kes-banten",
            AgencyKind::BpjsKesehatan,
            "BPJS Kesehatan Kedeputian Wilayah Banten",
            "36",
            &["36"],
        ),
        bpjs(
            "bpjs-tk-banten",
            AgencyKind::BpjsKetenagakerjaan,
            "BPJS Ketenagakerjaan Kantor Wilayah Banten",
            "36",
            &["36"],
        ),
    ]);
    for region in &REGIONS {
        let own = vec![region.code];
        agencies.push(AgencySpec {
            id: region.disnaker,
            kind: AgencyKind::Disnaker,
            name: disnaker_name(region.code),
            home_region: Some(region.code),
            grants: vec![
                (EmployersRead, own.clone()),
                (EmployersWrite, own.clone()),
                (ReportsWrite, own.clone()),
                (ComplianceRead, own.clone()),
                (SanctionsRead, own.clone()),
                (FeedRead, own),
                (CoverageRead, Vec::new()),
            ],
        });
    }
    let inspectors = |id, name, province| AgencySpec {
        id,
        kind: AgencyKind::DisnakertransProvinsi,
        name,
        home_region: Some(province),
        grants: vec![
            (EmployersRead, vec![province]),
            (ComplianceRead, vec![province]),
            (InspectionsRead, vec![province]),
            (InspectionsWrite, vec![province]),
            (SanctionsRead, vec![province]),
            (ReferralsRead, vec![province]),
            (FeedRead, vec![province]),
            (CoverageRead, Vec::new()),
        ],
    };
    agencies.push(inspectors(
        "disnakertrans-jateng",
        "Disnakertrans Provinsi Jawa Tengah",
        "33",
    ));
    agencies.push(inspectors(
        "disnakertrans-banten",
        "Disnakertrans Provinsi Banten",
        "36",
    ));
    let kejari = |id, name, region| AgencySpec {
        id,
        kind: AgencyKind::Kejaksaan,
        name,
        home_region: Some(region),
        grants: vec![
            (EmployersRead, vec![region]),
            (ComplianceRead, vec![region]),
            (InspectionsRead, vec![region]),
            (SanctionsRead, vec![region]),
            (ReferralsRead, vec![region]),
            (ReferralsProgress, vec![region]),
            (CoverageRead, Vec::new()),
        ],
    };
    agencies.push(kejari(
        "kejari-kota-pekalongan",
        "Kejaksaan Negeri Kota Pekalongan",
        "33.75",
    ));
    agencies.push(kejari("kejari-batang", "Kejaksaan Negeri Batang", "33.25"));
    agencies.push(AgencySpec {
        id: "dpmptsp-batang",
        kind: AgencyKind::LicensingOffice,
        name: "DPMPTSP Kabupaten Batang",
        home_region: Some("33.25"),
        grants: vec![
            (SanctionsCheck, Vec::new()),
            (SanctionsRead, vec!["33.25"]),
            (SanctionsWrite, vec!["33.25"]),
            (CoverageRead, Vec::new()),
        ],
    });
    agencies.push(AgencySpec {
        id: "perjaka-banten",
        kind: AgencyKind::Forum,
        name: "Tim Perjaka Wilayah Banten",
        home_region: Some("36"),
        grants: vec![(CoverageRead, Vec::new()), (ReferralsRead, vec!["36"])],
    });
    agencies
}

fn disnaker_name(code: &str) -> &'static str {
    match code {
        "33.75" => "Disnaker Kota Pekalongan",
        "33.26" => "Disnaker Kabupaten Pekalongan",
        "33.25" => "Disnaker Kabupaten Batang",
        "33.27" => "Disnaker Kabupaten Pemalang",
        "36.03" => "Disnaker Kabupaten Tangerang",
        "36.04" => "Disnaker Kabupaten Serang",
        "36.71" => "Disnaker Kota Tangerang",
        _ => "Disnaker Kota Cilegon",
    }
}
