//! The NIK and NPWP checks against an independent implementation: python-stdnum's
//! `stdnum.id.nik` and `stdnum.id.npwp`, whose verdicts on a few thousand generated numbers are
//! committed in `tests/fixtures/identifiers/` with the script that made them. Where Sinergi is
//! stricter (the rules the script's header lists), the fixture says which rule refuses.

use sinergi::domain::identifiers::{Npwp, check_nik};

const CROSS_CHECK: &str = include_str!("fixtures/identifiers/stdnum_cross_check.csv");

#[test]
fn nik_and_npwp_verdicts_match_python_stdnum() {
    let mut checked = 0;
    let mut disagreements = Vec::new();
    let mut stricter = 0;
    for line in CROSS_CHECK.lines().skip(1) {
        let columns: Vec<&str> = line.split(',').collect();
        let [kind, number, stdnum, expected, note] = columns[..] else {
            panic!("malformed fixture line {line:?}");
        };
        let ours = match kind {
            "nik" => check_nik(number).is_ok(),
            "npwp" => Npwp::parse(number).is_ok(),
            other => panic!("unknown kind {other:?}"),
        };
        if stdnum != expected {
            stricter += 1;
        }
        if ours != (expected == "1") {
            disagreements.push(format!("{kind} {number}: expected {expected} ({note})"));
        }
        checked += 1;
    }
    assert!(checked > 5_000, "only {checked} numbers in the fixture");
    assert!(
        stricter > 100,
        "the sample should exercise the stricter rules"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {checked} disagree, e.g. {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(10)]
    );
}
