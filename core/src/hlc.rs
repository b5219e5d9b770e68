//! Hybrid logical clock timestamps and their text form.
//!
//! The text form is fixed-width, UTC, sortable as bytes in the same order as the values, and free
//! of `:` and of every other character Windows forbids in file names:
//! `YYYYMMDDTHHMMSS.mmmZ-cccc`, with `cccc` the logical counter in lowercase hex, e.g.
//! `20261125T134314.123Z-000a`.
//!
//! [`HlcClock`] is the clock of Kulkarni et al. (2014) with the wall time passed in: the core
//! reads no clock. Every timestamp it issues is greater than every timestamp it issued or
//! observed before, so a machine whose wall clock lags still orders its edits after the remote
//! edits it has seen.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

/// An HLC timestamp: milliseconds since the Unix epoch (UTC) and a logical counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Default bound on how far a remote timestamp may run ahead of the local wall clock.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 5 * 60 * 1000;

/// A remote timestamp too far ahead of the local wall clock: the event is deferred and the
/// clock does not move, so a forged far-future stamp cannot drag every later edit with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "timestamp {remote} is more than {max_drift_ms} ms ahead of the local clock ({wall_ms} ms)"
)]
pub struct TooFarAhead {
    pub remote: Hlc,
    pub wall_ms: u64,
    pub max_drift_ms: u64,
}

/// A hybrid logical clock. Persist [`HlcClock::last`] and restore it with [`HlcClock::resume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlcClock {
    last: Hlc,
    max_drift_ms: u64,
}

impl Default for HlcClock {
    fn default() -> Self {
        HlcClock::resume(Hlc::default())
    }
}

impl HlcClock {
    /// A clock that continues after `last` (the greatest timestamp issued or observed).
    pub fn resume(last: Hlc) -> Self {
        HlcClock {
            last,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
        }
    }

    pub fn with_max_drift(mut self, max_drift_ms: u64) -> Self {
        self.max_drift_ms = max_drift_ms;
        self
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// A new timestamp for a local event: greater than everything issued or observed.
    /// The counter never wraps: on overflow the physical part moves one millisecond on.
    pub fn now(&mut self, wall_ms: u64) -> Hlc {
        let wall_ms = wall_ms.min(MAX_MILLIS);
        let next = if wall_ms > self.last.millis {
            Hlc {
                millis: wall_ms,
                counter: 0,
            }
        } else if self.last.counter < u16::MAX {
            Hlc {
                millis: self.last.millis,
                counter: self.last.counter + 1,
            }
        } else {
            Hlc {
                millis: (self.last.millis + 1).min(MAX_MILLIS),
                counter: 0,
            }
        };
        self.last = next;
        next
    }

    /// Merges a remote timestamp, before the remote event is applied. A timestamp more than the
    /// max drift ahead of `wall_ms` is refused and leaves the clock unchanged.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Result<(), TooFarAhead> {
        if remote.millis > wall_ms.saturating_add(self.max_drift_ms) {
            return Err(TooFarAhead {
                remote,
                wall_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        self.last = self.last.max(remote);
        Ok(())
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
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
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

    #[test]
    fn a_lagging_wall_clock_still_orders_after_what_it_observed() {
        let mut clock = HlcClock::default();
        let remote = Hlc::new(1_000_000, 7).unwrap();
        clock.observe(remote, 999_000).unwrap();
        let mine = clock.now(999_500);
        assert!(mine > remote, "{mine} must follow {remote}");
    }

    #[test]
    fn far_future_timestamps_are_refused_without_moving_the_clock() {
        let mut clock = HlcClock::default();
        let before = clock.now(1_000_000);
        let forged = Hlc::new(1_000_000 + DEFAULT_MAX_DRIFT_MS + 1, 0).unwrap();
        assert!(clock.observe(forged, 1_000_000).is_err());
        assert_eq!(clock.last(), before);
        let within = Hlc::new(1_000_000 + DEFAULT_MAX_DRIFT_MS, 0).unwrap();
        assert!(clock.observe(within, 1_000_000).is_ok());
        assert!(
            HlcClock::default()
                .with_max_drift(10)
                .observe(Hlc::new(1011, 0).unwrap(), 1000)
                .is_err()
        );
    }

    #[test]
    fn counter_overflow_advances_the_physical_part() {
        let mut clock = HlcClock::resume(Hlc::new(5_000, u16::MAX - 1).unwrap());
        assert_eq!(clock.now(4_000), Hlc::new(5_000, u16::MAX).unwrap());
        assert_eq!(clock.now(4_000), Hlc::new(5_001, 0).unwrap());
        assert_eq!(clock.now(4_000), Hlc::new(5_001, 1).unwrap());
    }

    proptest! {
        #[test]
        fn issued_timestamps_strictly_increase(
            steps in proptest::collection::vec((0u64..10_000, proptest::option::of((0u64..10_400, any::<u16>()))), 1..200)
        ) {
            let mut clock = HlcClock::default();
            let mut last_issued: Option<Hlc> = None;
            let mut seen = Hlc::new(0, 0).unwrap();
            for (wall, remote) in steps {
                if let Some((m, c)) = remote {
                    let r = Hlc::new(m, c).unwrap();
                    if clock.observe(r, wall).is_ok() {
                        seen = seen.max(r);
                    }
                }
                let t = clock.now(wall);
                prop_assert!(t > seen);
                if let Some(prev) = last_issued {
                    prop_assert!(t > prev);
                }
                last_issued = Some(t);
                seen = t;
            }
        }

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
