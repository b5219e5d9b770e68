//! Unix milliseconds ↔ the RFC 3339 form agents write (`2025-09-29T17:07:50.508Z`), and the
//! date parts of Codex rollout paths. UTC only: the corpus has no time zones to get wrong.

/// Civil date and time of a Unix millisecond: (year, month, day, hour, minute, second, ms).
pub fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = rem / 1000;
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
        (rem % 1000) as u32,
    )
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_num(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut n = n;
    for i in (0..width).rev() {
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Appends `2025-09-29T17:07:50.508Z` (without quotes).
pub fn push_rfc3339(out: &mut Vec<u8>, ms: i64) {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    push_num(out, y as u32, 4);
    out.push(b'-');
    push_num(out, mo, 2);
    out.push(b'-');
    push_num(out, d, 2);
    out.push(b'T');
    push_num(out, h, 2);
    out.push(b':');
    push_num(out, mi, 2);
    out.push(b':');
    push_num(out, s, 2);
    out.push(b'.');
    push_num(out, milli, 3);
    out.push(b'Z');
}

#[cfg(test)]
pub fn rfc3339(ms: i64) -> String {
    let mut out = Vec::with_capacity(24);
    push_rfc3339(&mut out, ms);
    String::from_utf8(out).unwrap_or_default()
}

/// The `YYYY/MM/DD` folder and the `YYYY-MM-DDTHH-MM-SS` file-name stamp of a Codex rollout.
pub fn rollout_stamp(ms: i64) -> (String, String) {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    (
        format!("{y:04}/{mo:02}/{d:02}"),
        format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}"),
    )
}

/// Reads back the form [`push_rfc3339`] writes (and any `YYYY-MM-DDTHH:MM:SS[.fff]Z`).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        b.get(from..from + len)?.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let days = days_from_civil(num(0, 4)?, num(5, 2)? as u32, num(8, 2)? as u32);
    let secs = days * 86_400 + num(11, 2)? * 3600 + num(14, 2)? * 60 + num(17, 2)?;
    let millis = if b[19] == b'.' {
        num(20, 3).unwrap_or(0)
    } else {
        0
    };
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [0, 1_759_165_670_508, 1_704_067_199_999, 951_782_400_000] {
            let text = rfc3339(ms);
            assert_eq!(parse_rfc3339(&text), Some(ms), "{text}");
        }
        assert_eq!(rfc3339(1_759_165_670_508), "2025-09-29T17:07:50.508Z");
        assert_eq!(
            rollout_stamp(1_757_844_131_459),
            ("2025/09/14".into(), "2025-09-14T10-02-11".into())
        );
    }
}
