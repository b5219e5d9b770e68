//! Hybrid logical clock timestamps and their text form.
//!
//! The text form is fixed-width, UTC, sortable as bytes in the same order as the values, and free
//! of `:` and of every other character Windows forbids in file names:
//! `YYYYMMDDTHHMMSS.mmmZ-cccc`, with `cccc` the logical counter in lowercase hex, e.g.
//! `20261125T134314.123Z-000a`. The clock itself (now/observe) is part of the curation ledger.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

/// An HLC timestamp: milliseconds since the Unix epoch (UTC) and a logical counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    pub millis: u64,
    pub counter: u16,
}

/// 9999-12-31T23:59:59.999Z, the largest time the text form can hold.
pub const MAX_MILLIS: u64 = 253_402_300_799_999;
pub const TEXT_LEN: usize = 25;

impl Hlc {
    pub fn new(millis: u64, counter: u16) -> Result<Self, Error> {
        if millis > MAX_MILLIS {
            return Err(Error::InvalidName {
                what: "hlc",
                name: format!("{millis}ms"),
                reason: "after year 9999",
            });
        }
        Ok(Hlc { millis, counter })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.millis / 86_400_000) as i64;
        let ms_of_day = self.millis % 86_400_000;
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z-{:04x}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000,
            self.counter
        )
    }
}

impl FromStr for Hlc {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidName {
            what: "hlc",
            name: s.chars().take(80).collect(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() != TEXT_LEN {
            return Err(invalid("must be 25 characters: YYYYMMDDTHHMMSS.mmmZ-cccc"));
        }
        if b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' || b[20] != b'-' {
            return Err(invalid("must be YYYYMMDDTHHMMSS.mmmZ-cccc"));
        }
        let digits = |range: core::ops::Range<usize>| -> Result<u64, Error> {
            let part = &b[range];
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(invalid("date and time must be decimal digits"));
            }
            Ok(part
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
        };
        let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
        let (hour, minute, second, milli) = (
            digits(9..11)?,
            digits(11..13)?,
            digits(13..15)?,
            digits(16..19)?,
        );
        if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month)
        {
            return Err(invalid("not a calendar date from 1970 on"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(invalid("not a time of day"));
        }
        let counter_text = &s[21..25];
        if !counter_text
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid("counter must be 4 lowercase hex digits"));
        }
        let counter =
            u16::from_str_radix(counter_text, 16).map_err(|_| invalid("counter is not hex"))?;
        let days = days_from_civil(year as i64, month as u32, day as u32) as u64;
        let millis = days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + milli;
        Ok(Hlc { millis, counter })
    }
}

impl serde::Serialize for Hlc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hlc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants_render_as_expected() {
        let h = Hlc::new(1_764_078_194_123, 10).unwrap();
        assert_eq!(h.to_string(), "20251125T134314.123Z-000a");
        assert_eq!(
            Hlc::new(0, 0).unwrap().to_string(),
            "19700101T000000.000Z-0000"
        );
        assert_eq!(
            Hlc::new(MAX_MILLIS, u16::MAX).unwrap().to_string(),
            "99991231T235959.999Z-ffff"
        );
        assert!(Hlc::new(MAX_MILLIS + 1, 0).is_err());
    }

    #[test]
    fn text_form_has_no_character_windows_forbids() {
        let text = Hlc::new(1_764_078_194_123, 65535).unwrap().to_string();
        assert!(!text.contains([':', '<', '>', '"', '/', '\\', '|', '?', '*']));
    }

    #[test]
    fn malformed_text_is_rejected() {
        for bad in [
            "",
            "2025-11-25T13:43:14.123Z-0000",
            "20251125T134314.123Z-000A",
            "20251131T134314.123Z-0000",
            "20250229T000000.000Z-0000",
            "19691231T235959.999Z-0000",
            "20251125T244314.123Z-0000",
            "20251125T134314.123Z-00000",
            "20251125T134314,123Z-0000",
            "2025112５T134314.123Z-000",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad}");
        }
        assert!("20240229T000000.000Z-0000".parse::<Hlc>().is_ok());
    }

    proptest! {
        #[test]
        fn text_round_trips_and_sorts_like_values(
            a in 0..=MAX_MILLIS, ca: u16, b in 0..=MAX_MILLIS, cb: u16
        ) {
            let (x, y) = (Hlc::new(a, ca).unwrap(), Hlc::new(b, cb).unwrap());
            let (tx, ty) = (x.to_string(), y.to_string());
            prop_assert_eq!(tx.len(), TEXT_LEN);
            prop_assert_eq!(tx.parse::<Hlc>().unwrap(), x);
            prop_assert_eq!(tx.cmp(&ty), x.cmp(&y));
        }
    }
}
