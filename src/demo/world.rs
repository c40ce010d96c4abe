//! The demo world, generated from a seed: a population of fictional employers in the regions
//! of [`super::parties`], whose monthly figures land near the articles' figures, plus the plan
//! of the cases opened on them. Nothing here talks to a server; [`super::load`] does.

pub use super::parties::{ADMIN, AgencySpec, REGIONS, RegionSpec, agencies};
use crate::domain::compliance::ProgrammeGroup;
use crate::domain::employer::SizeClass;
use crate::domain::identifiers::luhn_check_digit;
use crate::domain::scope::Programme;

/// The employers of the default world: enough for the lists and statistics to look like a
/// real district's, few enough to load in well under a minute.
pub const DEFAULT_EMPLOYERS: usize = 3_000;

/// The reporting months, oldest first: the half year before the cases come to a head.
pub const PERIODS: [(i32, u8); 6] = [
    (2026, 5),
    (2026, 6),
    (2026, 7),
    (2026, 8),
    (2026, 9),
    (2026, 10),
];

/// The employer of the articles' central case: 1,500 workers, 1,000 registered in JKN.
pub const CENTRAL_WORKERS: u32 = 1_500;
pub const CENTRAL_REGISTERED: u32 = 1_000;
pub const CENTRAL_ARREARS_MONTHS: u32 = 6;

/// JKN gaps of the generated employers stay below this, so that the central case is the
/// largest gap of its regency as it was in the articles.
const LARGEST_OTHER_GAP: u32 = 450;

/// What a BPJS agency's registration report of one month says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub registered: u32,
    pub enrolled: Vec<Programme>,
    /// The wages the registered workers are declared on, in total.
    pub declared_wages: u64,
    pub arrears_months: u32,
    pub arrears_amount: u64,
}

/// One employer's month: the workforce report, the layoffs since the previous month, and both
/// registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    pub period: (i32, u8),
    pub workers: u32,
    pub wage_bill: u64,
    /// Workers laid off during the month (a PHK report dated in it); none in the first month.
    pub laid_off: u32,
    pub jkn: Registration,
    pub ketenagakerjaan: Registration,
}

#[derive(Debug, Clone)]
pub struct EmployerSpec {
    pub npwp: String,
    pub nib: String,
    pub name: String,
    pub address: String,
    pub region: RegionSpec,
    pub kbli: &'static str,
    pub size: SizeClass,
    pub months: Vec<Month>,
}

impl EmployerSpec {
    pub fn latest(&self) -> &Month {
        &self.months[self.months.len() - 1]
    }
}

/// How a referral of the plan ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralEnd {
    /// The employer registered its workers; BPJS files the new registration first.
    Complied,
    /// The arrears were paid under an instalment plan.
    Paid,
    /// The employer did not respond; the SKK goes back to BPJS.
    Returned,
    /// Mediation failed.
    Failed,
    /// Still in mediation.
    Open,
}

/// A referral to plan: which employer (index into [`World::employers`]), by which BPJS, to
/// which Kejari, and how it ends.
#[derive(Debug, Clone)]
pub struct ReferralPlan {
    pub employer: usize,
    pub bpjs: &'static str,
    pub group: ProgrammeGroup,
    pub kejari: &'static str,
    pub skk_number: String,
    /// Day of September 2026 the SKK is dated.
    pub skk_day: u8,
    pub end: ReferralEnd,
}

#[derive(Debug, Clone)]
pub struct World {
    pub agencies: Vec<AgencySpec>,
    pub employers: Vec<EmployerSpec>,
    /// The employer of the central case.
    pub central: usize,
    pub referrals: Vec<ReferralPlan>,
}

impl World {
    /// The world of `employers` employers (at least 100) drawn from `seed`.
    pub fn generate(employers: usize, seed: u64) -> Self {
        let employers = employers.max(100);
        let mut random = SplitMix64(seed);
        let mut all = Vec::with_capacity(employers);
        let mut central = 0;
        for region in &REGIONS {
            let count = ((employers as f64) * region.share).round() as usize;
            let start = all.len();
            for _ in 0..count {
                let number = all.len();
                all.push(generated_employer(number, *region, &mut random));
            }
            if region.code == "33.25" {
                central = all.len();
                all.push(central_employer(all.len(), *region));
            }
            let members: Vec<usize> = (start..all.len()).collect();
            register(&mut all, &members, *region, central, &mut random);
        }
        let referrals = plan_referrals(&all, central, &mut random);
        Self {
            agencies: agencies(),
            employers: all,
            central,
            referrals,
        }
    }

    /// Reports the world files: per month, workforce, layoffs and both registrations.
    pub fn report_count(&self) -> usize {
        self.employers
            .iter()
            .map(|employer| {
                employer.months.len() * 3
                    + employer.months.iter().filter(|m| m.laid_off > 0).count()
            })
            .sum()
    }
}

/// A deterministic generator (SplitMix64): the same seed gives the same world everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: u32, high: u32) -> u32 {
        low + self.below(u64::from(high - low + 1)) as u32
    }
}

const NAME_WORDS: &[&str] = &[
    "Sejahtera",
    "Makmur",
    "Lestari",
    "Abadi",
    "Sentosa",
    "Jaya",
    "Mandiri",
    "Pesisir",
    "Utama",
    "Sinar",
    "Mulia",
    "Karya",
];

/// A valid old-style NPWP (Luhn check digit over its first nine digits) for employer `number`
/// of a region whose tax office is `office`, written as taxpayers write it.
fn npwp(number: usize, office: &str) -> String {
    let body = format!("{:08}", 20_000_000 + number * 7 + 3);
    let check = luhn_check_digit(&body);
    format!(
        "{}.{}.{}.{check}-{office}.000",
        &body[0..2],
        &body[2..5],
        &body[5..8]
    )
}

fn tax_office(region: &RegionSpec) -> &'static str {
    if region.code.starts_with("36") {
        "402"
    } else {
        "502"
    }
}

fn generated_employer(number: usize, region: RegionSpec, random: &mut SplitMix64) -> EmployerSpec {
    let (kbli, trade) = region.industries[random.below(region.industries.len() as u64) as usize];
    let roll = random.unit();
    let (size, workers) = if roll < 0.40 {
        (SizeClass::Micro, random.between(3, 9))
    } else if roll < 0.75 {
        (SizeClass::Small, random.between(10, 49))
    } else if roll < 0.93 {
        (SizeClass::Medium, random.between(50, 249))
    } else {
        (SizeClass::Large, random.between(250, 1_200))
    };
    let word = NAME_WORDS[random.below(NAME_WORDS.len() as u64) as usize];
    let legal = if size == SizeClass::Micro { "CV" } else { "PT" };
    let wage = region.wage * u64::from(random.between(95, 130)) / 100;
    let months = workforce_months(workers, wage, random);
    EmployerSpec {
        npwp: npwp(number, tax_office(&region)),
        nib: format!("{:013}", 8_120_000_000_000u64 + number as u64),
        name: format!("{legal} Contoh {trade} {word} {number:04}"),
        address: format!(
            "{} No. {}, {}",
            region.street,
            1 + number % 250,
            region.name
        ),
        region,
        kbli,
        size,
        months,
    }
}

/// Monthly workforce figures from `workers` in the first month: hires and layoffs between
/// months, as the articles say every employer's numbers move.
fn workforce_months(workers: u32, wage: u64, random: &mut SplitMix64) -> Vec<Month> {
    let mut months = Vec::with_capacity(PERIODS.len());
    let mut current = workers;
    for (index, period) in PERIODS.iter().enumerate() {
        let mut laid_off = 0;
        if index > 0 {
            let hired = random.below(u64::from(current / 20 + 2)) as u32;
            if random.unit() < 0.12 {
                laid_off = (current / 10).max(1).min(current.saturating_sub(1));
            }
            current = current + hired - laid_off;
        }
        months.push(Month {
            period: *period,
            workers: current,
            wage_bill: u64::from(current) * wage,
            laid_off,
            jkn: Registration::empty(),
            ketenagakerjaan: Registration::empty(),
        });
    }
    months
}

fn central_employer(number: usize, region: RegionSpec) -> EmployerSpec {
    let wage = region.wage;
    // Workers and layoffs per month: hires, and two layoffs, on the way to the 1,500 the
    // articles name.
    let figures: [(u32, u32); PERIODS.len()] = [
        (1_420, 0),
        (1_445, 0),
        (1_470, 0),
        (1_455, 30),
        (1_540, 0),
        (CENTRAL_WORKERS, 40),
    ];
    let months = PERIODS
        .iter()
        .zip(figures)
        .map(|(period, (workers, laid_off))| Month {
            period: *period,
            workers,
            wage_bill: u64::from(workers) * wage,
            laid_off,
            jkn: Registration::empty(),
            ketenagakerjaan: Registration::empty(),
        })
        .collect();
    EmployerSpec {
        npwp: npwp(number, tax_office(&region)),
        nib: format!("{:013}", 8_120_000_000_000u64 + number as u64),
        name: "PT Contoh Garmen Kawasan Batang".into(),
        address: "Kawasan Industri Batang Blok A-7, Kabupaten Batang".into(),
        region,
        kbli: "14111",
        size: SizeClass::Large,
        months,
    }
}

impl Registration {
    fn empty() -> Self {
        Self {
            registered: 0,
            enrolled: Vec::new(),
            declared_wages: 0,
            arrears_months: 0,
            arrears_amount: 0,
        }
    }
}

/// How much of its workforce an employer leaves unregistered in a group: 0 for a compliant
/// one, up to 1 for one that registered nobody.
#[derive(Debug, Clone, Copy)]
struct Shortfall {
    unregistered: f64,
    arrears_months: u32,
    /// Declares wages this much below the workforce report's.
    wage_cut: f64,
    /// Leaves out a mandatory programme.
    missing_programme: bool,
}

impl Shortfall {
    const NONE: Shortfall = Shortfall {
        unregistered: 0.0,
        arrears_months: 0,
        wage_cut: 0.0,
        missing_programme: false,
    };

    fn registration(&self, month: &Month, group: ProgrammeGroup, size: SizeClass) -> Registration {
        let mut unregistered =
            ((f64::from(month.workers) * self.unregistered).round() as u32).min(month.workers);
        // An employer that falls short leaves out at least one worker, however small it is.
        if self.unregistered > 0.0 && month.workers > 0 {
            unregistered = unregistered.max(1);
        }
        let registered = month.workers - unregistered;
        let mut enrolled = group.mandatory(Some(size)).to_vec();
        if self.missing_programme && enrolled.len() > 1 {
            enrolled.pop();
        }
        let wage = month.wage_bill / u64::from(month.workers.max(1));
        let declared = (wage as f64 * (1.0 - self.wage_cut)) as u64;
        // A month of contributions: 5 % of wages for JKN, about 10 % for the labour programmes.
        let rate = match group {
            ProgrammeGroup::Jkn => 5,
            ProgrammeGroup::Ketenagakerjaan => 10,
        };
        Registration {
            registered,
            enrolled: if registered == 0 {
                Vec::new()
            } else {
                enrolled
            },
            declared_wages: declared * u64::from(registered),
            arrears_months: self.arrears_months,
            arrears_amount: u64::from(self.arrears_months) * u64::from(registered) * wage * rate
                / 100,
        }
    }
}

/// Fills in both registrations of every month for the employers `members` of `region`, so
/// that the region's coverage in the latest month lands on its figures.
fn register(
    all: &mut [EmployerSpec],
    members: &[usize],
    region: RegionSpec,
    central: usize,
    random: &mut SplitMix64,
) {
    for (group, coverage, share) in [
        (
            ProgrammeGroup::Jkn,
            region.jkn_coverage,
            region.jkn_non_compliant,
        ),
        (
            ProgrammeGroup::Ketenagakerjaan,
            region.tk_coverage,
            // Most employers fall short in the labour programmes.
            0.85,
        ),
    ] {
        let mut shortfalls = vec![Shortfall::NONE; members.len()];
        let mut fixed_gap = 0u64;
        let mut candidates = Vec::new();
        for (slot, &index) in members.iter().enumerate() {
            if index == central {
                let unregistered = match group {
                    ProgrammeGroup::Jkn => CENTRAL_WORKERS - CENTRAL_REGISTERED,
                    ProgrammeGroup::Ketenagakerjaan => 900,
                };
                shortfalls[slot].unregistered =
                    f64::from(unregistered) / f64::from(CENTRAL_WORKERS);
                // Half a year of JKN contributions unpaid as well: the case the inspectors of
                // the province are to take up first.
                if group == ProgrammeGroup::Jkn {
                    shortfalls[slot].arrears_months = CENTRAL_ARREARS_MONTHS;
                }
                fixed_gap += u64::from(unregistered);
            } else {
                candidates.push(slot);
            }
        }
        // The non-compliant: a fixed share of the region's employers, drawn without repeats.
        let wanted = ((members.len() as f64) * share).round() as usize;
        for pick in 0..wanted.min(candidates.len()) {
            let chosen = pick + random.below((candidates.len() - pick) as u64) as usize;
            candidates.swap(pick, chosen);
        }
        let chosen = &candidates[..wanted.min(candidates.len())];
        let total: u64 = members
            .iter()
            .map(|&i| u64::from(all[i].latest().workers))
            .sum();
        let missing = ((1.0 - coverage) * total as f64) as u64;
        let chosen_workers: u64 = chosen
            .iter()
            .map(|&slot| u64::from(all[members[slot]].latest().workers))
            .sum();
        let to_spread = missing.saturating_sub(fixed_gap) as f64;
        let level = if chosen_workers == 0 {
            0.0
        } else {
            to_spread / chosen_workers as f64
        };
        for &slot in chosen {
            let workers = all[members[slot]].latest().workers;
            let jitter = 0.6 + 0.8 * random.unit();
            let mut unregistered = (level * jitter).clamp(0.05, 1.0);
            unregistered = unregistered.min(gap_cap(workers, group));
            shortfalls[slot] = Shortfall {
                unregistered,
                arrears_months: if random.unit() < 0.3 {
                    random.between(1, 6)
                } else {
                    0
                },
                // Under-declared wages weigh on priority with every registered worker; among
                // large employers they would outrank the central case.
                wage_cut: if random.unit() < 0.15 && all[members[slot]].size != SizeClass::Large {
                    0.3
                } else {
                    0.0
                },
                missing_programme: group == ProgrammeGroup::Ketenagakerjaan && random.unit() < 0.4,
            };
        }
        // Every share rounds the same way; close the remaining distance on the largest
        // shortfalls so the region lands on its figure.
        settle(all, members, &mut shortfalls, missing, central, group);
        for (slot, &index) in members.iter().enumerate() {
            let employer = &mut all[index];
            let size = employer.size;
            for month in &mut employer.months {
                let registration = shortfalls[slot].registration(month, group, size);
                match group {
                    ProgrammeGroup::Jkn => month.jkn = registration,
                    ProgrammeGroup::Ketenagakerjaan => month.ketenagakerjaan = registration,
                }
            }
        }
    }
}

/// The largest share of `workers` an employer may leave unregistered in `group`: JKN gaps stay
/// below the central case's.
fn gap_cap(workers: u32, group: ProgrammeGroup) -> f64 {
    match group {
        ProgrammeGroup::Jkn => (f64::from(LARGEST_OTHER_GAP) / f64::from(workers.max(1))).min(1.0),
        ProgrammeGroup::Ketenagakerjaan => 1.0,
    }
}

/// Moves the shortfalls of the non-compliant (never the central case) until the region's
/// unregistered workers in the latest month are within a worker or so of `missing`.
fn settle(
    all: &[EmployerSpec],
    members: &[usize],
    shortfalls: &mut [Shortfall],
    missing: u64,
    central: usize,
    group: ProgrammeGroup,
) {
    let unregistered = |shortfalls: &[Shortfall]| -> i64 {
        members
            .iter()
            .zip(shortfalls)
            .map(|(&i, shortfall)| {
                let month = all[i].latest();
                let size = all[i].size;
                i64::from(month.workers - shortfall.registration(month, group, size).registered)
            })
            .sum()
    };
    for _ in 0..4 {
        let distance = missing as i64 - unregistered(shortfalls);
        let adjustable: Vec<usize> = (0..members.len())
            .filter(|&slot| members[slot] != central && shortfalls[slot].unregistered > 0.0)
            .collect();
        if distance == 0 || adjustable.is_empty() {
            return;
        }
        let per_employer = distance as f64 / adjustable.len() as f64;
        for slot in adjustable {
            let latest = all[members[slot]].latest().workers;
            let workers = f64::from(latest);
            let cap = gap_cap(latest, group);
            let shortfall = &mut shortfalls[slot];
            shortfall.unregistered =
                (shortfall.unregistered + per_employer / workers).clamp(0.05, cap);
        }
    }
}

/// Referrals to the two Kejari: BPJS Ketenagakerjaan Pekalongan refers employers of Kota
/// Pekalongan and Batang that fall short in its programmes, about half of which comply (the
/// 50 % the articles report), and BPJS Kesehatan refers the central case, still in mediation.
fn plan_referrals(
    all: &[EmployerSpec],
    central: usize,
    random: &mut SplitMix64,
) -> Vec<ReferralPlan> {
    let mut plans = vec![ReferralPlan {
        employer: central,
        bpjs: "bpjs-kes-pekalongan",
        group: ProgrammeGroup::Jkn,
        kejari: "kejari-batang",
        skk_number: "SKK-001/KES-PKL/IX/2026".into(),
        skk_day: 21,
        end: ReferralEnd::Open,
    }];
    let mut referable: Vec<usize> = (0..all.len())
        .filter(|&i| i != central)
        .filter(|&i| matches!(all[i].region.code, "33.75" | "33.25"))
        .filter(|&i| {
            let latest = all[i].latest();
            latest.ketenagakerjaan.registered < latest.workers && latest.workers >= 10
        })
        .collect();
    // Largest shortfalls first: those are what a branch refers.
    referable.sort_by_key(|&i| {
        let latest = all[i].latest();
        std::cmp::Reverse(latest.workers - latest.ketenagakerjaan.registered)
    });
    let count = (all.len() / 150).clamp(6, 24) & !1;
    let ends = [
        ReferralEnd::Complied,
        ReferralEnd::Returned,
        ReferralEnd::Paid,
        ReferralEnd::Failed,
    ];
    for (n, &employer) in referable.iter().take(count).enumerate() {
        let kejari = match all[employer].region.code {
            "33.75" => "kejari-kota-pekalongan",
            _ => "kejari-batang",
        };
        plans.push(ReferralPlan {
            employer,
            bpjs: "bpjs-tk-pekalongan",
            group: ProgrammeGroup::Ketenagakerjaan,
            kejari,
            skk_number: format!("SKK-{:03}/TK-PKL/IX/2026", n + 2),
            skk_day: 1 + random.below(14) as u8,
            end: ends[n % ends.len()],
        });
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identifiers::Npwp;

    #[test]
    fn the_same_seed_gives_the_same_world() {
        let first = World::generate(300, 7);
        let second = World::generate(300, 7);
        let names = |world: &World| -> Vec<String> {
            world.employers.iter().map(|e| e.name.clone()).collect()
        };
        assert_eq!(names(&first), names(&second));
        assert_eq!(first.employers[5].latest(), second.employers[5].latest());
        assert_ne!(names(&first), names(&World::generate(300, 8)));
    }

    #[test]
    fn identifiers_are_valid_and_unique() {
        let world = World::generate(DEFAULT_EMPLOYERS, 1);
        let mut seen = std::collections::HashSet::new();
        for employer in &world.employers {
            let npwp = Npwp::parse(&employer.npwp).expect("a valid NPWP");
            assert!(seen.insert(npwp.as_str().to_owned()), "{}", employer.npwp);
        }
    }

    #[test]
    fn the_regions_land_near_their_figures() {
        let world = World::generate(DEFAULT_EMPLOYERS, 1);
        for region in &REGIONS {
            let members: Vec<&EmployerSpec> = world
                .employers
                .iter()
                .filter(|e| e.region.code == region.code)
                .collect();
            let workers: u64 = members.iter().map(|e| u64::from(e.latest().workers)).sum();
            let jkn: u64 = members
                .iter()
                .map(|e| u64::from(e.latest().jkn.registered))
                .sum();
            let coverage = jkn as f64 / workers as f64;
            assert!(
                (coverage - region.jkn_coverage).abs() < 0.01,
                "{} {coverage}",
                region.code
            );
            let labour: u64 = members
                .iter()
                .map(|e| u64::from(e.latest().ketenagakerjaan.registered))
                .sum();
            let coverage = labour as f64 / workers as f64;
            assert!(
                (coverage - region.tk_coverage).abs() < 0.02,
                "{} {coverage}",
                region.code
            );
        }
        let banten_short = world
            .employers
            .iter()
            .filter(|e| e.region.code.starts_with("36"))
            .filter(|e| {
                let latest = e.latest();
                latest.jkn.registered < latest.workers || latest.jkn.arrears_months > 0
            })
            .count();
        assert_eq!(banten_short, 480);
    }

    #[test]
    fn the_central_case_has_the_largest_gap_of_its_regency() {
        let world = World::generate(DEFAULT_EMPLOYERS, 1);
        let central = &world.employers[world.central];
        assert_eq!(central.latest().workers, CENTRAL_WORKERS);
        assert_eq!(central.latest().jkn.registered, CENTRAL_REGISTERED);
        let largest_other = world
            .employers
            .iter()
            .enumerate()
            .filter(|(i, e)| *i != world.central && e.region.code == "33.25")
            .map(|(_, e)| e.latest().workers - e.latest().jkn.registered)
            .max();
        assert!(largest_other < Some(CENTRAL_WORKERS - CENTRAL_REGISTERED));
    }
}
