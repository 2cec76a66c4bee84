//! Civil dates and times of day, and the conversion from [`UnixMillis`] to local time.
//!
//! The hotline lives in Asia/Shanghai, which has had no daylight saving since 1991, so a fixed
//! UTC offset (+08:00 by default) is exact and no time-zone database is needed. The
//! days-from-civil arithmetic is Howard Hinnant's public-domain algorithm.

use std::fmt;
use std::str::FromStr;

use hotline_core::UnixMillis;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

/// A time of day, minute precision (what prompts and service hours need).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

/// Day of the week, Monday first as in China.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A fixed offset from UTC in minutes (e.g. +480 for Asia/Shanghai).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset(pub i32);

impl UtcOffset {
    /// Asia/Shanghai: +08:00 all year.
    pub const SHANGHAI: UtcOffset = UtcOffset(8 * 60);
}

impl Default for UtcOffset {
    fn default() -> Self {
        Self::SHANGHAI
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: expected {expected}")]
pub struct CivilParseError {
    pub what: &'static str,
    pub input: String,
    pub expected: &'static str,
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// A checked constructor.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        // days_in_month is 0 for a month outside 1..=12, so one comparison checks both.
        (day >= 1 && day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        const DAYS: [Weekday; 7] = [
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
        ];
        DAYS[self.days_since_epoch().rem_euclid(7) as usize]
    }
}

impl TimeOfDay {
    pub fn new(hour: u8, minute: u8) -> Option<TimeOfDay> {
        // 24:00 is allowed as "end of day" for service hours that run to midnight.
        (hour < 24 && minute < 60 || hour == 24 && minute == 0)
            .then_some(TimeOfDay { hour, minute })
    }

    pub fn minutes(self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }
}

/// Local date and time of day for an instant at a fixed offset.
pub fn local(now: UnixMillis, offset: UtcOffset) -> (Date, TimeOfDay) {
    let local_min = now.div_euclid(60_000) + i64::from(offset.0);
    let days = local_min.div_euclid(1440);
    let min_of_day = local_min.rem_euclid(1440);
    (
        Date::from_days_since_epoch(days),
        TimeOfDay {
            hour: (min_of_day / 60) as u8,
            minute: (min_of_day % 60) as u8,
        },
    )
}

/// The instant of a local date and time at a fixed offset (tests and data import use it).
pub fn instant(date: Date, time: TimeOfDay, offset: UtcOffset) -> UnixMillis {
    let min = date.days_since_epoch() * 1440 + i64::from(time.minutes()) - i64::from(offset.0);
    min * 60_000
}

impl FromStr for Date {
    type Err = CivilParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CivilParseError {
            what: "date",
            input: s.to_string(),
            expected: "YYYY-MM-DD",
        };
        let mut parts = s.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(err());
        }
        let year = y.parse().map_err(|_| err())?;
        let month = m.parse().map_err(|_| err())?;
        let day = d.parse().map_err(|_| err())?;
        Date::new(year, month, day).ok_or_else(err)
    }
}

impl FromStr for TimeOfDay {
    type Err = CivilParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CivilParseError {
            what: "time",
            input: s.to_string(),
            expected: "HH:MM (00:00-24:00)",
        };
        let (h, m) = s.split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        TimeOfDay::new(h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?).ok_or_else(err)
    }
}

impl FromStr for UtcOffset {
    type Err = CivilParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CivilParseError {
            what: "UTC offset",
            input: s.to_string(),
            expected: "+HH:MM, -HH:MM or Asia/Shanghai",
        };
        if s == "Asia/Shanghai" || s == "Asia/Chongqing" || s == "PRC" {
            return Ok(UtcOffset::SHANGHAI);
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(err()),
        };
        let t: TimeOfDay = rest.parse().map_err(|_| err())?;
        if t.hour > 14 {
            return Err(err());
        }
        Ok(UtcOffset(sign * t.minutes() as i32))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(Date);
serde_via_str!(TimeOfDay);

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let m = self.0.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}
serde_via_str!(UtcOffset);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_weekday() {
        for (s, days, wd) in [
            ("1970-01-01", 0, Weekday::Thu),
            ("2000-02-29", 11_016, Weekday::Tue),
            ("2025-03-12", 20_159, Weekday::Wed),
            ("2026-11-29", 20_786, Weekday::Sun),
            ("1969-12-31", -1, Weekday::Wed),
        ] {
            let d: Date = s.parse().unwrap();
            assert_eq!(d.days_since_epoch(), days, "{s}");
            assert_eq!(Date::from_days_since_epoch(days), d, "{s}");
            assert_eq!(d.weekday(), wd, "{s}");
            assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn local_time_in_shanghai() {
        // 2026-11-29T12:38:00Z is 20:38 in Shanghai.
        let d: Date = "2026-11-29".parse().unwrap();
        let now = instant(d, TimeOfDay::new(12, 38).unwrap(), UtcOffset(0));
        assert_eq!(
            local(now, UtcOffset::SHANGHAI),
            (d, TimeOfDay::new(20, 38).unwrap())
        );
        // 17:00Z is already the next day there.
        let late = instant(d, TimeOfDay::new(17, 0).unwrap(), UtcOffset(0));
        assert_eq!(local(late, UtcOffset::SHANGHAI).0.day, 30);
    }

    #[test]
    fn parse_errors() {
        for bad in ["2025-13-01", "2025-02-29", "25-01-01", "2025/01/01", ""] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        for bad in ["24:01", "8:00", "12:60", "x"] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
        }
        assert_eq!("+08:00".parse::<UtcOffset>().unwrap(), UtcOffset(480));
        assert_eq!(
            "Asia/Shanghai".parse::<UtcOffset>().unwrap(),
            UtcOffset(480)
        );
        assert_eq!("-05:30".parse::<UtcOffset>().unwrap(), UtcOffset(-330));
        assert!("+8".parse::<UtcOffset>().is_err());
    }
}
