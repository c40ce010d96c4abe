//! Employer identifiers used by the agencies: NPWP (tax), NIB (OSS licensing), NPP (BPJS
//! Ketenagakerjaan) and the KBLI sector code.

use std::fmt;

use super::region::{RegionCode, RegionLevel};

/// Tax number, always held in the 16-digit form introduced in 2024.
///
/// Accepted input: the old 15-digit number, bare or punctuated as `NN.NNN.NNN.N-NNN.NNN`, whose
/// ninth digit is a Luhn check digit over the first nine; or 16 digits — `0` followed by an old
/// number (whose check digit is then verified too), or else a resident's NIK, checked as
/// [`check_nik`] describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Npwp(String);

const NPWP_PUNCTUATED_SHAPE: &str = "NN.NNN.NNN.N-NNN.NNN";

impl Npwp {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an NPWP is required".into());
        }
        let digits = if text.chars().all(|c| c.is_ascii_digit()) {
            text.to_owned()
        } else if matches_shape(text, NPWP_PUNCTUATED_SHAPE) {
            text.chars().filter(char::is_ascii_digit).collect()
        } else {
            return Err(format!(
                "an NPWP is 15 or 16 digits, optionally written as `{NPWP_PUNCTUATED_SHAPE}`"
            ));
        };
        let old_form = match digits.len() {
            15 => Some(digits.as_str()),
            16 => digits.strip_prefix('0'),
            _ => {
                return Err(format!(
                    "an NPWP has 15 or 16 digits, this one has {}",
                    digits.len()
                ));
            }
        };
        match old_form {
            Some(old) if !luhn_valid(&old[..9]) => {
                return Err("the NPWP check digit (the ninth digit) does not match; \
                     check the number for a typing error"
                    .into());
            }
            Some(_) => {}
            None => check_nik(&digits).map_err(|problem| {
                format!("a 16-digit NPWP not starting with 0 is a NIK, and this one {problem}")
            })?,
        }
        Ok(Self(if digits.len() == 15 {
            format!("0{digits}")
        } else {
            digits
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Npwp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` follows `shape`, where `N` stands for a digit and anything else for itself.
fn matches_shape(text: &str, shape: &str) -> bool {
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            'N' => c.is_ascii_digit(),
            literal => c == literal,
        })
}

/// The Luhn (mod 10) check over a string of ASCII digits whose last digit is the check digit.
fn luhn_valid(digits: &str) -> bool {
    digits
        .split_at_checked(digits.len().saturating_sub(1))
        .is_some_and(|(body, check)| !body.is_empty() && check.starts_with(luhn_check_digit(body)))
}

/// The Luhn check digit that makes `digits` followed by it valid (the ninth digit of an old
/// NPWP, over its first eight).
pub fn luhn_check_digit(digits: &str) -> char {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10).unwrap_or('0')
}

/// Checks what the structure of a NIK (`PPRRSS DDMMYY XXXX`, 16 ASCII digits) allows, since it
/// carries no check digit: `PPRR` a regency or city on the Kemendagri list, `SS` a district
/// number (01 and up), `DDMMYY` a real birth date (women's days have 40 added, so 41–71), and a
/// serial other than `0000`. The century is not written: a date valid in 19YY or in 20YY is
/// accepted (29 February of `00` is, because 2000 was a leap year). The error completes the
/// sentence "this NIK …".
pub fn check_nik(digits: &str) -> Result<(), &'static str> {
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not 16 digits");
    }
    let number = |range: std::ops::Range<usize>| -> u32 {
        digits[range]
            .bytes()
            .fold(0, |value, digit| value * 10 + u32::from(digit - b'0'))
    };
    let regency = format!("{}.{}", &digits[0..2], &digits[2..4]);
    if !RegionCode::parse(&regency).is_ok_and(|code| code.level() == RegionLevel::RegencyOrCity) {
        return Err("does not start with a regency or city code on the Kemendagri list");
    }
    if number(4..6) == 0 {
        return Err("has district number 00");
    }
    let day = match number(6..8) {
        day @ 1..=31 => day,
        day @ 41..=71 => day - 40,
        _ => return Err("has no birth day 01–31 (or 41–71 for women)"),
    };
    let month =
        time::Month::try_from(number(8..10) as u8).map_err(|_| "has no birth month 01–12")?;
    let year = number(10..12) as i32;
    let real_date = [1900 + year, 2000 + year]
        .into_iter()
        .any(|year| time::Date::from_calendar_date(year, month, day as u8).is_ok());
    if !real_date {
        return Err("has a birth date that does not exist");
    }
    if number(12..16) == 0 {
        return Err("has serial number 0000");
    }
    Ok(())
}

/// Parses a code that must be exactly `len` ASCII digits.
fn fixed_digits(text: &str, len: usize, what: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() == len && text.chars().all(|c| c.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{what} is exactly {len} digits"))
    }
}

/// Business identification number issued by OSS: exactly 13 digits, with no public check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nib(String);

impl Nib {
    pub fn parse(text: &str) -> Result<Self, String> {
        fixed_digits(text, 13, "an NIB").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// BPJS Ketenagakerjaan employer registration number (NPP): 8 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Npp(String);

impl Npp {
    pub fn parse(text: &str) -> Result<Self, String> {
        fixed_digits(text, 8, "an NPP").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// KBLI 2020 business sector code: 5 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kbli(String);

impl Kbli {
    pub fn parse(text: &str) -> Result<Self, String> {
        fixed_digits(text, 5, "a KBLI code").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 01.234.567.4-…: Luhn over 0,1,2,3,4,5,6,7 gives check digit 4.
    const VALID_15: &str = "012345674901000";

    #[test]
    fn luhn_matches_known_numbers() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(luhn_valid("012345674"));
    }

    #[test]
    fn fifteen_digits_normalise_to_sixteen() {
        assert_eq!(Npwp::parse(VALID_15).unwrap().as_str(), "0012345674901000");
        assert_eq!(
            Npwp::parse("01.234.567.4-901.000").unwrap().as_str(),
            "0012345674901000"
        );
    }

    #[test]
    fn sixteen_digits_are_kept() {
        assert_eq!(
            Npwp::parse("0012345674901000").unwrap().as_str(),
            "0012345674901000"
        );
        // A resident's NIK used as NPWP carries no NPWP check digit.
        assert_eq!(
            Npwp::parse("3375014501900001").unwrap().as_str(),
            "3375014501900001"
        );
    }

    #[test]
    fn nik_form_npwps_are_checked() {
        // Kota Pekalongan, district 01, a woman born 5 January 1990, serial 0001.
        assert!(check_nik("3375014501900001").is_ok());
        // 29 February 2000 (day 69 for a woman) exists, 29 February 1901/2001 does not.
        assert!(check_nik("3375016902000001").is_ok());
        assert!(check_nik("3375012902010001").is_err());
        for (bad, problem) in [
            ("3399014501900001", "regency"),  // 33.99 is on no list
            ("3300014501900001", "regency"),  // a province alone
            ("3375004501900001", "district"), // district 00
            ("3375013201900001", "day"),      // day 32
            ("3375017201900001", "day"),      // day 72 (32 + 40)
            ("3375010001900001", "day"),      // day 00
            ("3375011567900001", "month"),    // birth month 67
            ("3375011500900001", "month"),    // birth month 00
            ("3375013102900001", "date"),     // 31 February
            ("3375011501900000", "serial"),   // serial 0000
        ] {
            let error = Npwp::parse(bad).expect_err(bad);
            assert!(error.contains("is a NIK"), "{bad}: {error}");
            let reason = check_nik(bad).expect_err(bad);
            let named = match problem {
                "regency" => reason.contains("regency"),
                "district" => reason.contains("district"),
                "day" => reason.contains("day"),
                "month" => reason.contains("month"),
                "date" => reason.contains("does not exist"),
                _ => reason.contains("serial"),
            };
            assert!(named, "{bad}: {reason}");
        }
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        assert!(Npwp::parse("012345672901000").is_err());
        assert!(Npwp::parse("0012345672901000").is_err());
        assert!(Npwp::parse("01.234.567.2-901.000").is_err());
    }

    #[test]
    fn malformed_npwp_is_rejected() {
        for bad in [
            "",
            "12345",
            "01234567490100",
            "00123456749010001",
            "01-234-567-4-901-000",
            "01.234.567.4901.000",
            "0123456749010OO",
        ] {
            assert!(Npwp::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn fixed_length_codes() {
        assert!(Nib::parse("1234567890123").is_ok());
        assert!(Nib::parse("123456789012").is_err());
        assert!(Nib::parse("12345678901234").is_err());
        assert!(Nib::parse("12345678901a3").is_err());
        assert!(Npp::parse("12345678").is_ok());
        assert!(Npp::parse("1234567").is_err());
        assert!(Kbli::parse("10750").is_ok());
        assert!(Kbli::parse("1075").is_err());
        assert!(Kbli::parse("107500").is_err());
    }
}
