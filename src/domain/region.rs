//! Kemendagri region codes, checked against the official list shipped with the service
//! (`data/regions.csv`, the MIT-licensed "wilayah" data set: 38 provinces, 514 regencies and
//! cities). Embedding the list means a region code is valid or not regardless of deployment.

use std::{collections::HashMap, fmt, sync::LazyLock};

const REGIONS_CSV: &str = include_str!("../../data/regions.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLevel {
    Province,
    RegencyOrCity,
}

struct RegionEntry {
    name: &'static str,
    level: RegionLevel,
}

static REGIONS: LazyLock<HashMap<&'static str, RegionEntry>> = LazyLock::new(|| {
    REGIONS_CSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut columns = line.splitn(3, ',');
            let code = columns.next()?.trim();
            let name = columns.next()?.trim();
            let level = match columns.next()?.trim() {
                "province" => RegionLevel::Province,
                _ => RegionLevel::RegencyOrCity,
            };
            Some((code, RegionEntry { name, level }))
        })
        .collect()
});

/// A code present on the Kemendagri list: `33` (province) or `33.75` (regency or city).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegionCode(&'static str);

impl RegionCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("a region code is required, for example `33.75`".into());
        }
        REGIONS
            .get_key_value(text)
            .map(|(code, _)| Self(code))
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a Kemendagri province (`33`) or regency/city (`33.75`) code"
                )
            })
    }

    /// A regency or city, as an employer's location must be.
    pub fn parse_regency(text: &str) -> Result<Self, String> {
        let code = Self::parse(text)?;
        match code.level() {
            RegionLevel::RegencyOrCity => Ok(code),
            RegionLevel::Province => Err(format!(
                "`{}` is a province; give the regency or city, for example `{}.01`",
                code.0, code.0
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    pub fn level(&self) -> RegionLevel {
        REGIONS[self.0].level
    }

    pub fn name(&self) -> &'static str {
        REGIONS[self.0].name
    }

    /// The two-digit province the code lies in (itself, for a province).
    pub fn province(&self) -> RegionCode {
        let province = self.0.split('.').next().unwrap_or(self.0);
        Self::parse(province).unwrap_or_else(|_| self.clone())
    }

    /// Whether `other` lies inside this region (a region contains itself).
    pub fn contains(&self, other: &RegionCode) -> bool {
        match self.level() {
            RegionLevel::Province => other.province() == *self,
            RegionLevel::RegencyOrCity => other == self,
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_is_complete() {
        let provinces = REGIONS
            .values()
            .filter(|r| r.level == RegionLevel::Province)
            .count();
        assert_eq!(provinces, 38);
        assert_eq!(REGIONS.len() - provinces, 514);
    }

    #[test]
    fn known_codes_parse_with_their_level_and_name() {
        let pekalongan = RegionCode::parse("33.75").unwrap();
        assert_eq!(pekalongan.level(), RegionLevel::RegencyOrCity);
        assert_eq!(pekalongan.name(), "Kota Pekalongan");
        assert_eq!(pekalongan.province().as_str(), "33");
        assert_eq!(RegionCode::parse("33").unwrap().name(), "Jawa Tengah");
    }

    #[test]
    fn unknown_or_malformed_codes_are_rejected() {
        for bad in ["", "99", "33.99", "3375", "33.7", "33.75.01", "x"] {
            assert!(RegionCode::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn employers_need_a_regency_not_a_province() {
        assert!(RegionCode::parse_regency("33").is_err());
        assert!(RegionCode::parse_regency("36.71").is_ok());
    }

    #[test]
    fn containment_follows_the_hierarchy() {
        let central_java = RegionCode::parse("33").unwrap();
        let batang = RegionCode::parse("33.25").unwrap();
        let banten_city = RegionCode::parse("36.71").unwrap();
        assert!(central_java.contains(&batang));
        assert!(batang.contains(&batang));
        assert!(!batang.contains(&central_java));
        assert!(!central_java.contains(&banten_city));
    }
}
