//! Parsing of the values found in the auction system's and the bank's files: dates and times
//! (Beijing time, UTC+8, no daylight saving), money, periods, and the name comparison used
//! to match bank payers to bidders.

use hotline_core::UnixMillis;

/// Beijing time is UTC+8 all year.
pub const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub y: i64,
    pub m: u32,
    pub d: u32,
}

impl Date {
    pub fn new(y: i64, m: u32, d: u32) -> Option<Self> {
        ((1900..=2200).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m))
            .then_some(Self { y, m, d })
    }

    /// `2025-11-05`, `2025/11/5`, `2025.11.05`, `20251105`, or `2025年11月5日`; a time part
    /// after a space or `T` is ignored.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.split([' ', 'T']).next().unwrap_or("");
        if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
            return Self::new(
                s[..4].parse().ok()?,
                s[4..6].parse().ok()?,
                s[6..].parse().ok()?,
            );
        }
        let parts: Vec<&str> = s
            .split(['-', '/', '.', '年', '月', '日'])
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() != 3 || parts[0].len() != 4 {
            return None;
        }
        Self::new(
            parts[0].parse().ok()?,
            parts[1].parse().ok()?,
            parts[2].parse().ok()?,
        )
    }

    /// From an Excel serial day number (1900 date system, as calamine reports it).
    pub fn from_excel_serial(serial: f64) -> Option<Self> {
        if !(1.0..=200_000.0).contains(&serial) {
            return None;
        }
        // Day 0 is 1899-12-30 (Excel's 1900 leap-year bug is absorbed by this epoch).
        let days = days_from_civil(1899, 12, 30) + serial.floor() as i64;
        let (y, m, d) = civil_from_days(days);
        Self::new(y, m, d)
    }

    pub fn days(self) -> i64 {
        days_from_civil(self.y, self.m, self.d)
    }

    /// The UTC milliseconds of `hh:mm:ss` Beijing time on this date.
    pub fn at_beijing(self, h: u32, min: u32, sec: u32) -> UnixMillis {
        self.days() * 86_400_000 + i64::from(h * 3600 + min * 60 + sec) * 1000 - BEIJING_OFFSET_MS
    }

    pub fn iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }

    /// The Beijing date of a UTC instant.
    pub fn of_beijing(t: UnixMillis) -> Self {
        let (y, m, d) = civil_from_days((t + BEIJING_OFFSET_MS).div_euclid(86_400_000));
        Self { y, m, d }
    }
}

/// `HH:MM` or `HH:MM:SS` → (h, m, s).
pub fn parse_hms(s: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
        return None;
    }
    let h: u32 = parts[0].parse().ok()?;
    let m: u32 = parts[1].parse().ok()?;
    let sec: u32 = parts.get(2).map_or(Some(0), |p| p.parse().ok())?;
    (h < 24 && m < 60 && sec < 60).then_some((h, m, sec))
}

/// A Beijing date-time (`2025-11-10 16:59:59`, `2025/11/10 16:59`, `20251110165959`) as UTC
/// milliseconds.
pub fn parse_beijing_datetime(s: &str) -> Option<UnixMillis> {
    let s = s.trim();
    if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        let date = Date::parse(&s[..8])?;
        let (h, m, sec) = parse_hms(&format!("{}:{}:{}", &s[8..10], &s[10..12], &s[12..]))?;
        return Some(date.at_beijing(h, m, sec));
    }
    let (d, t) = s.split_once([' ', 'T'])?;
    let date = Date::parse(d)?;
    let (h, m, sec) = parse_hms(t)?;
    Some(date.at_beijing(h, m, sec))
}

/// An Excel serial date-time (days with a fraction) in Beijing time → UTC milliseconds.
pub fn excel_serial_to_beijing(serial: f64) -> Option<UnixMillis> {
    let date = Date::from_excel_serial(serial)?;
    let ms_of_day = ((serial - serial.floor()) * 86_400_000.0).round() as i64;
    Some(date.at_beijing(0, 0, 0) + ms_of_day)
}

/// An auction period `YYYY-MM` (also accepts `YYYYMM`), normalised to `YYYY-MM`.
pub fn parse_period(s: &str) -> Option<String> {
    let s = s.trim();
    let (y, m) = if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        (&s[..4], &s[4..])
    } else {
        s.split_once('-')?
    };
    let y: i64 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    Date::new(y, m, 1).map(|_| format!("{y:04}-{m:02}"))
}

/// Money in yuan (`2000`, `2000.00`, `¥10,500.5`, `10500元`) → cents (fen). Negative and
/// more than two decimals are refused.
pub fn parse_money_cents(s: &str) -> Option<i64> {
    let s: String = s
        .trim()
        .trim_start_matches(['¥', '￥'])
        .trim_end_matches('元')
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s.as_str(), ""),
    };
    if int.is_empty()
        || int.len() > 12
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut cents = int.parse::<i64>().ok()? * 100;
    if !frac.is_empty() {
        let f: i64 = frac.parse().ok()?;
        cents += if frac.len() == 1 { f * 10 } else { f };
    }
    Some(cents)
}

/// Cents → `2000.00`.
pub fn format_cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, (c % 100).abs())
}

/// Folds a name for comparison between the bidder record and the bank's payer name: full-width
/// forms to ASCII, ASCII upper-case, and no spaces, middle dots or full stops. So
/// `John  Smith`, `JOHN SMITH` and `ＪＯＨＮ　ＳＭＩＴＨ` compare equal, as do `阿卜杜·艾力` and
/// `阿卜杜艾力`, and the two forms of brackets in company names.
pub fn fold_name(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '・' | '.' | '‧' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2025, 11, 30), (2100, 12, 31)] {
            let days = days_from_civil(y, m, d);
            assert_eq!(civil_from_days(days), (y, m, d));
        }
        assert_eq!(days_from_civil(1970, 1, 2), 1);
        let want = Date::new(2025, 11, 5);
        for s in [
            "2025-11-05",
            "2025/11/5",
            "2025.11.05",
            "20251105",
            "2025年11月5日",
            "2025-11-05 10:00:00",
        ] {
            assert_eq!(Date::parse(s), want, "{s}");
        }
        for s in ["2025-02-30", "25-11-05", "", "2025-13-01", "abc"] {
            assert_eq!(Date::parse(s), None, "{s}");
        }
        // 45966 is 2025-11-05 in Excel's 1900 system
        assert_eq!(Date::from_excel_serial(45966.0), want);
    }

    #[test]
    fn beijing_times() {
        // 2025-11-10 17:00 Beijing = 09:00 UTC
        let t = parse_beijing_datetime("2025-11-10 17:00:00").unwrap();
        assert_eq!(t, Date::new(2025, 11, 10).unwrap().at_beijing(17, 0, 0));
        assert_eq!(t % 86_400_000, 9 * 3_600_000);
        assert_eq!(parse_beijing_datetime("20251110170000"), Some(t));
        assert_eq!(parse_beijing_datetime("2025/11/10 17:00"), Some(t));
        assert_eq!(parse_beijing_datetime("2025-11-10"), None);
        assert_eq!(parse_beijing_datetime("2025-11-10 24:00:00"), None);
        assert_eq!(Date::of_beijing(t - 17 * 3_600_000 - 1).d, 9);
        assert_eq!(Date::of_beijing(t - 17 * 3_600_000).d, 10);
        assert_eq!(excel_serial_to_beijing(45971.0 + 17.0 / 24.0), Some(t));
    }

    #[test]
    fn money_and_periods() {
        assert_eq!(parse_money_cents("2000"), Some(200_000));
        assert_eq!(parse_money_cents("2000.5"), Some(200_050));
        assert_eq!(parse_money_cents("¥10,500.05"), Some(1_050_005));
        assert_eq!(parse_money_cents("2000元"), Some(200_000));
        for bad in ["", "-1", "1.234", "abc", "1e3"] {
            assert_eq!(parse_money_cents(bad), None, "{bad}");
        }
        assert_eq!(format_cents(200_050), "2000.50");
        assert_eq!(parse_period("2025-11").as_deref(), Some("2025-11"));
        assert_eq!(parse_period("202511").as_deref(), Some("2025-11"));
        assert_eq!(parse_period("2025-1").as_deref(), Some("2025-01"));
        assert_eq!(parse_period("2025-13"), None);
    }

    #[test]
    fn names_fold() {
        assert_eq!(fold_name("John  Smith"), fold_name("JOHN SMITH"));
        assert_eq!(fold_name("ＪＯＨＮ　ＳＭＩＴＨ"), "JOHNSMITH");
        assert_eq!(fold_name("阿卜杜·艾力"), fold_name("阿卜杜艾力"));
        assert_eq!(
            fold_name("天津某某有限公司（分公司）"),
            fold_name("天津某某有限公司(分公司)")
        );
        assert_ne!(fold_name("张三"), fold_name("张四"));
    }
}
