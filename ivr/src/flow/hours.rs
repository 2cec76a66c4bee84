//! Service hours with a holiday / special-day calendar.
//!
//! The hotline's default is 7×12 (08:00–20:00 every day, holidays included: 全年无休), so
//! the special-day list mostly exists for the exceptions an operator announces (a shortened
//! day, a closure). Local time is computed at a fixed UTC offset, which is exact for
//! Asia/Shanghai (no daylight saving).

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::civil::{Date, TimeOfDay, UtcOffset, Weekday, local};

/// When the hotline has people on the phones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceHours {
    /// `+08:00` or `Asia/Shanghai` (treated as +08:00).
    #[serde(default, alias = "timezone")]
    pub utc_offset: UtcOffset,
    #[serde(default = "default_open")]
    pub open: TimeOfDay,
    #[serde(default = "default_close")]
    pub close: TimeOfDay,
    /// Weekdays with service; every day by default.
    #[serde(default = "all_days")]
    pub days: Vec<Weekday>,
    /// Dates that differ from the weekly pattern (holidays, announced closures).
    #[serde(default)]
    pub special: Vec<SpecialDay>,
}

/// One date that overrides the weekly pattern: closed all day, or other hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialDay {
    pub date: Date,
    #[serde(default)]
    pub closed: bool,
    pub open: Option<TimeOfDay>,
    pub close: Option<TimeOfDay>,
    /// Free text for operators (春节, 系统维护, …).
    #[serde(default)]
    pub note: String,
}

fn default_open() -> TimeOfDay {
    TimeOfDay { hour: 8, minute: 0 }
}

fn default_close() -> TimeOfDay {
    TimeOfDay {
        hour: 20,
        minute: 0,
    }
}

fn all_days() -> Vec<Weekday> {
    use Weekday::*;
    vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun]
}

impl Default for ServiceHours {
    fn default() -> Self {
        Self {
            utc_offset: UtcOffset::SHANGHAI,
            open: default_open(),
            close: default_close(),
            days: all_days(),
            special: Vec::new(),
        }
    }
}

impl ServiceHours {
    /// Whether `now` falls inside service hours (open inclusive, close exclusive). `open`
    /// equal to `close` means the whole day (a 24-hour service).
    pub fn is_open(&self, now: UnixMillis) -> bool {
        let (date, time) = local(now, self.utc_offset);
        let (open, close) = match self.special.iter().find(|s| s.date == date) {
            Some(s) if s.closed => return false,
            Some(s) => (s.open.unwrap_or(self.open), s.close.unwrap_or(self.close)),
            None if !self.days.contains(&date.weekday()) => return false,
            None => (self.open, self.close),
        };
        open == close || (open <= time && time < close)
    }
}

impl ServiceHours {
    /// Adds `days` to the special days; a date already listed takes the given day instead
    /// (the administrators' calendar in the database overrides the flow file's). The list
    /// stays sorted by date so that operators read it in order.
    pub fn merge_special(&mut self, days: &[SpecialDay]) {
        for d in days {
            match self.special.iter_mut().find(|s| s.date == d.date) {
                Some(s) => *s = d.clone(),
                None => self.special.push(d.clone()),
            }
        }
        self.special.sort_by_key(|s| s.date);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::instant;

    fn at(date: &str, time: &str) -> UnixMillis {
        instant(
            date.parse().unwrap(),
            time.parse().unwrap(),
            UtcOffset::SHANGHAI,
        )
    }

    #[test]
    fn default_is_seven_by_twelve() {
        let h = ServiceHours::default();
        let table = [
            ("2026-11-29", "07:59", false),
            ("2026-11-29", "08:00", true),
            ("2026-11-29", "12:00", true),
            ("2026-11-29", "19:59", true),
            ("2026-11-29", "20:00", false),
            ("2026-11-29", "23:30", false),
            // Spring festival: still open, 全年无休.
            ("2026-02-17", "10:00", true),
        ];
        for (d, t, want) in table {
            assert_eq!(h.is_open(at(d, t)), want, "{d} {t}");
        }
    }

    #[test]
    fn special_days_and_weekdays() {
        let h: ServiceHours = toml::from_str(
            r#"
            utc_offset = "Asia/Shanghai"
            open = "09:00"
            close = "17:00"
            days = ["mon", "tue", "wed", "thu", "fri"]
            [[special]]
            date = "2026-12-01"
            closed = true
            note = "系统维护"
            [[special]]
            date = "2026-12-05"
            open = "10:00"
            close = "12:00"
            "#,
        )
        .unwrap();
        let table = [
            ("2026-11-30", "09:00", true),  // Monday
            ("2026-11-30", "17:00", false), // closing time is exclusive
            ("2026-11-29", "10:00", false), // Sunday
            ("2026-12-01", "10:00", false), // special: closed
            ("2026-12-05", "11:00", true),  // Saturday, special hours
            ("2026-12-05", "12:30", false),
        ];
        for (d, t, want) in table {
            assert_eq!(h.is_open(at(d, t)), want, "{d} {t}");
        }
    }

    #[test]
    fn merged_days_override_the_file_for_the_same_date() {
        let mut h = ServiceHours::default();
        let day = |date: &str, closed: bool, note: &str| SpecialDay {
            date: date.parse().unwrap(),
            closed,
            open: (!closed).then(|| "10:00".parse().unwrap()),
            close: (!closed).then(|| "12:00".parse().unwrap()),
            note: note.into(),
        };
        h.special = vec![day("2026-12-05", false, "文件")];
        h.merge_special(&[
            day("2026-12-05", true, "系统维护"),
            day("2026-12-01", true, "春节"),
        ]);
        let notes: Vec<&str> = h.special.iter().map(|s| s.note.as_str()).collect();
        assert_eq!(notes, ["春节", "系统维护"]);
        assert!(!h.is_open(at("2026-12-05", "11:00")));
        assert!(!h.is_open(at("2026-12-01", "11:00")));
        assert!(h.is_open(at("2026-12-02", "11:00")));
    }

    #[test]
    fn equal_open_and_close_is_round_the_clock() {
        let h: ServiceHours = toml::from_str(
            r#"
            utc_offset = "Asia/Shanghai"
            open = "00:00"
            close = "00:00"
            "#,
        )
        .unwrap();
        for t in ["00:00", "07:59", "12:00", "23:59"] {
            assert!(h.is_open(at("2026-11-29", t)), "{t}");
        }
    }
}
