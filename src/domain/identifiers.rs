//! Employer identifiers used by the agencies: NPWP (tax), NIB (OSS licensing), NPP (BPJS
//! Ketenagakerjaan) and the KBLI sector code.

use std::fmt;

/// Tax number, always held in the 16-digit form introduced in 2024.
///
/// Accepted input: the old 15-digit number, bare or punctuated as `NN.NNN.NNN.N-NNN.NNN`, whose
/// ninth digit is a Luhn check digit over the first nine; or 16 digits — a resident's NIK, or `0`
/// followed by an old number (whose check digit is then verified too).
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
        if let Some(old) = old_form
            && !luhn_valid(&old[..9])
        {
            return Err("the NPWP check digit (the ninth digit) does not match; \
                 check the number for a typing error"
                .into());
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
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
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
