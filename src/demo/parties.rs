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

/// The agencies of the source articles (and the offices their stories need), each with the
/// grants of its kind's row (`AgencyKind::allowed_scopes`) over its regions, less what its
/// part in the story does not need: reading the whole audit log is for the administrators,
/// and the registry is Disnaker's to write.
pub fn agencies() -> Vec<AgencySpec> {
    use Scope::*;
    let agency =
        |id, kind: AgencyKind, name, home, regions: &[&'static str], except: &[Scope]| AgencySpec {
            id,
            kind,
            name,
            home_region: home,
            grants: grants_of(kind, regions, except),
        };
    let mut agencies = vec![
        // Administrators read everything to support the parties, and audit every call.
        agency(
            ADMIN,
            AgencyKind::Admin,
            "Sinergi administrators",
            None,
            &[],
            &[Admin],
        ),
        agency(
            "bpjs-kes-pekalongan",
            AgencyKind::BpjsKesehatan,
            "BPJS Kesehatan Cabang Pekalongan",
            Some("33.75"),
            PEKALONGAN_BRANCH,
            &[EmployersWrite, AuditRead],
        ),
        agency(
            "bpjs-tk-pekalongan",
            AgencyKind::BpjsKetenagakerjaan,
            "BPJS Ketenagakerjaan Cabang Pekalongan",
            Some("33.75"),
            PEKALONGAN_BRANCH,
            &[EmployersWrite, AuditRead],
        ),
        agency(
            "bpjs-kes-banten",
            AgencyKind::BpjsKesehatan,
            "BPJS Kesehatan Kedeputian Wilayah Banten",
            Some("36"),
            &["36"],
            &[EmployersWrite, AuditRead],
        ),
        agency(
            "bpjs-tk-banten",
            AgencyKind::BpjsKetenagakerjaan,
            "BPJS Ketenagakerjaan Kantor Wilayah Banten",
            Some("36"),
            &["36"],
            &[EmployersWrite, AuditRead],
        ),
    ];
    for region in &REGIONS {
        agencies.push(agency(
            region.disnaker,
            AgencyKind::Disnaker,
            disnaker_name(region.code),
            Some(region.code),
            &[region.code],
            &[AuditRead],
        ));
    }
    for (id, name, province) in [
        (
            "disnakertrans-jateng",
            "Disnakertrans Provinsi Jawa Tengah",
            "33",
        ),
        (
            "disnakertrans-banten",
            "Disnakertrans Provinsi Banten",
            "36",
        ),
    ] {
        let kind = AgencyKind::DisnakertransProvinsi;
        agencies.push(agency(
            id,
            kind,
            name,
            Some(province),
            &[province],
            &[AuditRead],
        ));
    }
    for (id, name, region) in [
        (
            "kejari-kota-pekalongan",
            "Kejaksaan Negeri Kota Pekalongan",
            "33.75",
        ),
        ("kejari-batang", "Kejaksaan Negeri Batang", "33.25"),
    ] {
        let kind = AgencyKind::Kejaksaan;
        agencies.push(agency(
            id,
            kind,
            name,
            Some(region),
            &[region],
            &[AuditRead],
        ));
    }
    agencies.push(agency(
        "dpmptsp-batang",
        AgencyKind::LicensingOffice,
        "DPMPTSP Kabupaten Batang",
        Some("33.25"),
        &["33.25"],
        &[],
    ));
    agencies.push(agency(
        "perjaka-banten",
        AgencyKind::Forum,
        "Tim Perjaka Wilayah Banten",
        Some("36"),
        &["36"],
        &[],
    ));
    agencies
}

/// The scopes of `kind`'s row but `except`, limited to `regions` (none: everywhere) — all but
/// the coverage aggregates and the sanction check, which answer for any region.
fn grants_of(
    kind: AgencyKind,
    regions: &[&'static str],
    except: &[Scope],
) -> Vec<(Scope, Vec<&'static str>)> {
    kind.allowed_scopes()
        .iter()
        .filter(|scope| !except.contains(scope))
        .map(|scope| match scope {
            Scope::CoverageRead | Scope::SanctionsCheck => (*scope, Vec::new()),
            _ => (*scope, regions.to_vec()),
        })
        .collect()
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
