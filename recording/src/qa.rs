//! Quality review, pure parts: the weighted review form and its score, timestamps as
//! `mm:ss`, ISO weeks, and the weekly sample of each agent's calls.

use std::collections::BTreeMap;

use hotline_core::{Rng, UnixMillis};
use serde::{Deserialize, Serialize};

/// One criterion of the review form; points are 0..=100, the weight is relative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub key: String,
    pub label: String,
    pub weight: u32,
}

fn c(key: &str, label: &str, weight: u32) -> Criterion {
    Criterion {
        key: key.into(),
        label: label.into(),
        weight,
    }
}

/// Greeting, accuracy of information, attitude, compliance, closing.
pub fn default_criteria() -> Vec<Criterion> {
    vec![
        c("greeting", "开场问候", 15),
        c("accuracy", "信息准确", 30),
        c("attitude", "服务态度", 25),
        c("compliance", "规范合规", 20),
        c("closing", "结束语", 10),
    ]
}

pub fn validate_criteria(criteria: &[Criterion]) -> Result<(), String> {
    if criteria.is_empty() {
        return Err("recording.criteria must not be empty".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in criteria {
        if c.key.is_empty() || !seen.insert(c.key.as_str()) {
            return Err(format!(
                "recording.criteria: empty or repeated key `{}`",
                c.key
            ));
        }
    }
    if criteria.iter().map(|c| u64::from(c.weight)).sum::<u64>() == 0 {
        return Err("recording.criteria: the weights add up to 0".into());
    }
    Ok(())
}

/// The weighted score in hundredths of a point (0..=10000) of a filled form. Every criterion
/// must be scored 0..=100 and no unknown key given; the messages are for the reviewer.
pub fn score(criteria: &[Criterion], points: &BTreeMap<String, u32>) -> Result<i64, String> {
    for k in points.keys() {
        if !criteria.iter().any(|c| &c.key == k) {
            return Err(format!("未知的评分项：{k}"));
        }
    }
    let mut sum = 0u64;
    let mut weights = 0u64;
    for c in criteria {
        let p = *points
            .get(&c.key)
            .ok_or_else(|| format!("缺少评分项：{}", c.label))?;
        if p > 100 {
            return Err(format!("评分项“{}”的分数须在 0–100 之间", c.label));
        }
        sum += u64::from(p) * u64::from(c.weight) * 100;
        weights += u64::from(c.weight);
    }
    if weights == 0 {
        return Err("评分表权重无效".into());
    }
    // round half up
    Ok(((sum + weights / 2) / weights) as i64)
}

/// `mm:ss` (minutes may exceed 59, and `h:mm:ss` is accepted) → milliseconds.
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let nums: Option<Vec<u64>> = parts
        .iter()
        .map(|p| {
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect();
    let nums = nums?;
    let secs = match nums.as_slice() {
        [m, s] if *s < 60 => m * 60 + s,
        [h, m, s] if *m < 60 && *s < 60 => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(secs * 1000)
}

/// Milliseconds → `mm:ss`.
pub fn format_timestamp(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The ISO-8601 week of a timestamp, as `2026-W48` (weeks start on Monday, UTC).
pub fn iso_week(at: UnixMillis) -> String {
    let days = at.div_euclid(86_400_000);
    // 1970-01-01 was a Thursday; weekday 0 = Monday.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (year, _, _) = crate::archive::civil_date(thursday * 86_400_000);
    let jan1 = days_from_civil(year, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

/// The Monday 00:00 UTC that starts the week of `at`, in milliseconds.
pub fn week_start(at: UnixMillis) -> UnixMillis {
    let days = at.div_euclid(86_400_000);
    let weekday = (days + 3).rem_euclid(7);
    (days - weekday) * 86_400_000
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Picks `percent` % (rounded up, at least one when the agent had calls and percent > 0) of
/// each agent's recordings at random. `calls` are (agent, recording id); the result is sorted.
pub fn weekly_sample(calls: &[(String, String)], percent: u32, rng: &dyn Rng) -> Vec<String> {
    let mut by_agent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (agent, id) in calls {
        by_agent.entry(agent).or_default().push(id);
    }
    let mut out = Vec::new();
    for (_, mut ids) in by_agent {
        let n = ids.len();
        let want = (n * percent.min(100) as usize).div_ceil(100);
        // partial Fisher–Yates
        for i in 0..want {
            let mut b = [0u8; 8];
            rng.fill(&mut b);
            let j = i + (u64::from_le_bytes(b) % (n - i) as u64) as usize;
            ids.swap(i, j);
        }
        out.extend(ids[..want].iter().map(|s| s.to_string()));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::id::SeededRng;

    fn pts(v: &[(&str, u32)]) -> BTreeMap<String, u32> {
        v.iter().map(|(k, p)| (k.to_string(), *p)).collect()
    }

    #[test]
    fn weighted_score() {
        let c = default_criteria();
        let all = |p| {
            pts(&[
                ("greeting", p),
                ("accuracy", p),
                ("attitude", p),
                ("compliance", p),
                ("closing", p),
            ])
        };
        assert_eq!(score(&c, &all(100)), Ok(10_000));
        assert_eq!(score(&c, &all(0)), Ok(0));
        let mixed = pts(&[
            ("greeting", 100),
            ("accuracy", 50),
            ("attitude", 80),
            ("compliance", 100),
            ("closing", 0),
        ]);
        // (15*100 + 30*50 + 25*80 + 20*100 + 10*0) / 100 = 70.00
        assert_eq!(score(&c, &mixed), Ok(7_000));
        assert!(
            score(&c, &pts(&[("greeting", 100)]))
                .unwrap_err()
                .contains("缺少")
        );
        let mut bad = all(100);
        bad.insert("greeting".into(), 101);
        assert!(score(&c, &bad).is_err());
        bad.insert("greeting".into(), 1);
        bad.insert("bonus".into(), 1);
        assert!(score(&c, &bad).unwrap_err().contains("未知"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("01:05"), Some(65_000));
        assert_eq!(parse_timestamp("75:00"), Some(4_500_000));
        assert_eq!(parse_timestamp("1:02:03"), Some(3_723_000));
        for bad in ["", "1", "00:60", "a:b", "-1:00", "1::2"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        assert_eq!(format_timestamp(65_999), "01:05");
    }

    #[test]
    fn iso_weeks() {
        // 2025-11-24 is a Monday in week 48
        assert_eq!(iso_week(1_764_000_000_000), "2025-W48");
        // 2021-01-03 (Sunday) belongs to 2020-W53
        assert_eq!(iso_week(1_609_632_000_000), "2020-W53");
        // 2024-12-30 (Monday) belongs to 2025-W01
        assert_eq!(iso_week(1_735_516_800_000), "2025-W01");
        assert_eq!(week_start(1_764_000_000_000), 1_763_942_400_000);
    }

    #[test]
    fn samples_each_agent() {
        let mut calls = Vec::new();
        for i in 0..40 {
            calls.push(("a".to_string(), format!("a{i:02}")));
        }
        for i in 0..3 {
            calls.push(("b".to_string(), format!("b{i:02}")));
        }
        let s = weekly_sample(&calls, 10, &SeededRng::new(7));
        assert_eq!(s.iter().filter(|x| x.starts_with('a')).count(), 4);
        assert_eq!(s.iter().filter(|x| x.starts_with('b')).count(), 1);
        assert_eq!(s, weekly_sample(&calls, 10, &SeededRng::new(7)));
        assert!(weekly_sample(&calls, 0, &SeededRng::new(7)).is_empty());
        assert_eq!(weekly_sample(&calls, 100, &SeededRng::new(1)).len(), 43);
    }
}
