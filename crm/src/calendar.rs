//! Local civil time at a fixed UTC offset (Tianjin: +08:00, no daylight saving), so that
//! hours, days and months of reports are the ones people in the call centre live in.
//! Civil-date arithmetic after Howard Hinnant's `days_from_civil` algorithm.

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

pub const MS_PER_MIN: i64 = 60_000;
pub const MS_PER_HOUR: i64 = 3_600_000;
pub const MS_PER_DAY: i64 = 86_400_000;
/// China Standard Time, in minutes east of UTC.
pub const CST_OFFSET_MIN: i32 = 480;

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// A local date-time broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub fn offset_ms(offset_min: i32) -> i64 {
    i64::from(offset_min) * MS_PER_MIN
}

pub fn to_local(t: UnixMillis, offset_min: i32) -> LocalTime {
    let local = t + offset_ms(offset_min);
    let days = local.div_euclid(MS_PER_DAY);
    let ms = local.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    LocalTime {
        year,
        month,
        day,
        hour: (ms / MS_PER_HOUR) as u32,
        minute: (ms % MS_PER_HOUR / MS_PER_MIN) as u32,
        second: (ms % MS_PER_MIN / 1000) as u32,
    }
}

/// The UTC instant of a local wall-clock time.
pub fn from_local(y: i32, m: u32, d: u32, hour: u32, minute: u32, offset_min: i32) -> UnixMillis {
    days_from_civil(y, m, d) * MS_PER_DAY
        + i64::from(hour) * MS_PER_HOUR
        + i64::from(minute) * MS_PER_MIN
        - offset_ms(offset_min)
}

/// Milliseconds since local midnight.
pub fn ms_of_local_day(t: UnixMillis, offset_min: i32) -> i64 {
    (t + offset_ms(offset_min)).rem_euclid(MS_PER_DAY)
}

/// Start of the local day containing `t`.
pub fn local_day_start(t: UnixMillis, offset_min: i32) -> UnixMillis {
    t - ms_of_local_day(t, offset_min)
}

/// A calendar month, e.g. `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12).contains(&month).then_some(Self { year, month })
    }
    pub fn of(t: UnixMillis, offset_min: i32) -> Self {
        let l = to_local(t, offset_min);
        Self {
            year: l.year,
            month: l.month,
        }
    }
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
    /// `[start, end)` of the month in UTC milliseconds.
    pub fn range(self, offset_min: i32) -> (UnixMillis, UnixMillis) {
        let n = self.next();
        (
            from_local(self.year, self.month, 1, 0, 0, offset_min),
            from_local(n.year, n.month, 1, 0, 0, offset_min),
        )
    }
    pub fn days(self) -> u32 {
        let (a, b) = self.range(0);
        ((b - a) / MS_PER_DAY) as u32
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for YearMonth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (y, m) = s
            .split_once('-')
            .ok_or_else(|| format!("月份格式应为 YYYY-MM: {s}"))?;
        let year: i32 = y
            .parse()
            .map_err(|_| format!("月份格式应为 YYYY-MM: {s}"))?;
        let month: u32 = m
            .parse()
            .map_err(|_| format!("月份格式应为 YYYY-MM: {s}"))?;
        YearMonth::new(year, month).ok_or_else(|| format!("月份无效: {s}"))
    }
}

/// `2026-11-29 09:05:00` in local time.
pub fn format_local(t: UnixMillis, offset_min: i32) -> String {
    let l = to_local(t, offset_min);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        l.year, l.month, l.day, l.hour, l.minute, l.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in [-1, 0, 1, 10_957, 20_000, 20_786, 60_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn local_time_at_plus_eight() {
        // 2026-11-29 00:30 UTC is 08:30 in Tianjin.
        let t = from_local(2026, 11, 29, 0, 30, 0);
        let l = to_local(t, CST_OFFSET_MIN);
        assert_eq!(
            (l.year, l.month, l.day, l.hour, l.minute),
            (2026, 11, 29, 8, 30)
        );
        assert_eq!(from_local(2026, 11, 29, 8, 30, CST_OFFSET_MIN), t);
        assert_eq!(format_local(t, CST_OFFSET_MIN), "2026-11-29 08:30:00");
        // 23:30 UTC on 30 Nov is already 1 Dec locally
        let t = from_local(2026, 11, 30, 23, 30, 0);
        assert_eq!(
            YearMonth::of(t, CST_OFFSET_MIN),
            YearMonth::new(2026, 12).unwrap()
        );
    }

    #[test]
    fn months() {
        let m: YearMonth = "2026-02".parse().unwrap();
        assert_eq!(m.days(), 28);
        assert_eq!("2024-02".parse::<YearMonth>().unwrap().days(), 29);
        assert_eq!(
            "2026-12".parse::<YearMonth>().unwrap().next().to_string(),
            "2027-01"
        );
        assert!("2026-13".parse::<YearMonth>().is_err());
        let (a, b) = m.range(CST_OFFSET_MIN);
        assert_eq!(b - a, 28 * MS_PER_DAY);
        assert_eq!(format_local(a, CST_OFFSET_MIN), "2026-02-01 00:00:00");
    }
}
