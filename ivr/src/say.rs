//! Chinese `Say`: numbers, money, dates, times and digit strings spoken from prompt fragments.
//!
//! Each function returns an [`Utterance`]: the fragment names the gateway plays in order
//! (`num/2`, `unit/qian`, `word/yuan`, … — the names of the prompt set in
//! `prompts/zh-CN.tsv`) and the same words as text (for logs, tests and the agent desktop).
//!
//! Mandarin rules encoded here:
//! - a zero run inside a number is spoken once as 零 (12,005 → 一万二千零五), trailing zeros
//!   are silent (200 → 二百);
//! - a leading 一十 is spoken 十 (10 → 十, 15 → 十五) but 一十 stays inside (110 → 一百一十);
//! - 2 as the leading digit in front of 千/万/亿 is 两 (2,000 → 两千, 20,000 → 两万), elsewhere
//!   二 (12,000 → 一万二千, 200 → 二百, 22 → 二十二);
//! - a bare 2 counting something (元, 位, 分钟, o'clock) is 两 (两元, 两位, 两点);
//! - years are read digit by digit with 〇 (二〇二五年), phone numbers with 幺 for 1.

use crate::civil::{Date, TimeOfDay};

/// Fragments to play, and their text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Utterance {
    pub prompts: Vec<String>,
    pub text: String,
}

impl Utterance {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one fragment by name; its text comes from the fragment table (phrases not in
    /// the table contribute no text).
    pub fn push(&mut self, prompt: &str) {
        self.text.push_str(fragment_text(prompt).unwrap_or(""));
        self.prompts.push(prompt.to_string());
    }

    /// Appends a phrase whose text is known to the caller (flow prompts).
    pub fn push_phrase(&mut self, prompt: &str, text: &str) {
        self.text.push_str(text);
        self.prompts.push(prompt.to_string());
    }

    pub fn extend(&mut self, other: Utterance) {
        self.text.push_str(&other.text);
        self.prompts.extend(other.prompts);
    }
}

/// What `say_digits` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot say {input:?} as digits: only 0-9 are allowed")]
pub struct SayError {
    pub input: String,
}

const FRAGMENTS: &[(&str, &str)] = &[
    ("num/0", "零"),
    ("num/1", "一"),
    ("num/2", "二"),
    ("num/3", "三"),
    ("num/4", "四"),
    ("num/5", "五"),
    ("num/6", "六"),
    ("num/7", "七"),
    ("num/8", "八"),
    ("num/9", "九"),
    ("num/yao", "幺"),
    ("num/liang", "两"),
    ("unit/shi", "十"),
    ("unit/bai", "百"),
    ("unit/qian", "千"),
    ("unit/wan", "万"),
    ("unit/yi", "亿"),
    ("word/yuan", "元"),
    ("word/jiao", "角"),
    ("word/fen", "分"),
    ("word/zheng", "整"),
    ("word/nian", "年"),
    ("word/yue", "月"),
    ("word/ri", "日"),
    ("word/dian", "点"),
    ("word/zhi", "至"),
    ("word/wei", "位"),
    ("word/minutes", "分钟"),
];

/// The text of a Say fragment (`num/2` → 二), `None` for names that are not fragments.
pub fn fragment_text(name: &str) -> Option<&'static str> {
    FRAGMENTS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Every fragment name Say can produce; the prompt set must contain all of them.
pub fn fragment_names() -> impl Iterator<Item = &'static str> {
    FRAGMENTS.iter().map(|(n, _)| *n)
}

const DIGITS: [&str; 10] = [
    "num/0", "num/1", "num/2", "num/3", "num/4", "num/5", "num/6", "num/7", "num/8", "num/9",
];

/// Says an integer as a number (10 → 十, 12,005 → 一万二千零五, 2,000 → 两千).
pub fn say_integer(n: u64) -> Utterance {
    let mut u = Utterance::new();
    if n == 0 {
        u.push("num/0");
        return u;
    }
    integer_into(n, &mut u);
    u
}

/// Says a count before a measure word: like [`say_integer`], except that a bare 2 is 两
/// (两位, 两分钟, 两元).
pub fn say_count(n: u64) -> Utterance {
    if n == 2 {
        let mut u = Utterance::new();
        u.push("num/liang");
        return u;
    }
    say_integer(n)
}

fn integer_into(n: u64, u: &mut Utterance) {
    number_into(n, u, false);
}

/// `big_unit_follows`: the caller appends 万 or 亿 right after this number.
fn number_into(n: u64, u: &mut Utterance, big_unit_follows: bool) {
    // Split at 亿 (10^8) and 万 (10^4) recursively: the high part is itself a number
    // (so 10^12 reads 一万亿), the low part needs a 零 when it does not fill its group.
    for (base, unit) in [(100_000_000u64, "unit/yi"), (10_000, "unit/wan")] {
        if n >= base {
            let high = n / base;
            let low = n % base;
            number_into(high, u, true);
            u.push(unit);
            if low > 0 {
                if low < base / 10 {
                    u.push("num/0");
                }
                number_into(low, u, false);
            }
            return;
        }
    }
    group_into(n, u, big_unit_follows);
}

/// 1..=9999, the part of a number below 万.
fn group_into(n: u64, u: &mut Utterance, big_unit_follows: bool) {
    let leading = u.prompts.is_empty();
    let places = [
        (1000, Some("unit/qian")),
        (100, Some("unit/bai")),
        (10, Some("unit/shi")),
        (1, None),
    ];
    let mut started = false;
    let mut pending_zero = false;
    for (value, unit) in places {
        let d = (n / value % 10) as usize;
        if d == 0 {
            pending_zero |= started;
            continue;
        }
        if pending_zero {
            u.push("num/0");
            pending_zero = false;
        }
        let first = leading && !started;
        match (d, unit) {
            // 十五, not 一十五, but only at the very start of the number.
            (1, Some("unit/shi")) if first => {}
            // 两千 / 两万 / 两亿 when 2 leads the number.
            (2, Some("unit/qian")) if first => u.push("num/liang"),
            (2, None) if first && big_unit_follows => u.push("num/liang"),
            _ => u.push(DIGITS[d]),
        }
        if let Some(unit) = unit {
            u.push(unit);
        }
        started = true;
    }
}

/// Says money given in fen (hundredths of a yuan): 两千元整, 十二元五角, 十二元零五分, 五角.
pub fn say_money_fen(fen: u64) -> Utterance {
    let yuan = fen / 100;
    let jiao = fen / 10 % 10;
    let f = fen % 10;
    let mut u = Utterance::new();
    if yuan > 0 || (jiao == 0 && f == 0) {
        u.extend(say_count(yuan));
        u.push("word/yuan");
    }
    if jiao == 0 && f == 0 {
        u.push("word/zheng");
        return u;
    }
    if jiao > 0 {
        u.extend(say_count(jiao));
        u.push("word/jiao");
    } else if yuan > 0 {
        // 十二元零五分: the missing 角 is spoken as 零.
        u.push("num/0");
    }
    if f > 0 {
        u.extend(say_count(f));
        u.push("word/fen");
    }
    u
}

/// Says a date: 二〇二五年三月十二日.
pub fn say_date(d: Date) -> Utterance {
    let mut u = Utterance::new();
    for c in format!("{:04}", d.year).bytes() {
        u.push(DIGITS[usize::from(c - b'0')]);
    }
    // 〇 in a year is the same sound as 零; the text shows the conventional character.
    u.text = u.text.replace('零', "〇");
    u.push("word/nian");
    u.extend(say_integer(u64::from(d.month)));
    u.push("word/yue");
    u.extend(say_integer(u64::from(d.day)));
    u.push("word/ri");
    u
}

/// Says a month and day without the year (三月十二日), for this month's calendar.
pub fn say_month_day(d: Date) -> Utterance {
    let mut u = say_integer(u64::from(d.month));
    u.push("word/yue");
    u.extend(say_integer(u64::from(d.day)));
    u.push("word/ri");
    u
}

/// Says a time of day on the 24-hour clock: 十点整, 两点三十分, 十二点零五分.
pub fn say_time(t: TimeOfDay) -> Utterance {
    let mut u = say_count(u64::from(t.hour));
    u.push("word/dian");
    match t.minute {
        0 => u.push("word/zheng"),
        m => {
            if m < 10 {
                u.push("num/0");
            }
            u.extend(say_integer(u64::from(m)));
            u.push("word/fen");
        }
    }
    u
}

/// Says a digit string one digit at a time, 1 as 幺 (phone numbers, application codes).
pub fn say_digits(s: &str) -> Result<Utterance, SayError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SayError {
            input: s.to_string(),
        });
    }
    let mut u = Utterance::new();
    for b in s.bytes() {
        match b {
            b'1' => u.push("num/yao"),
            _ => u.push(DIGITS[usize::from(b - b'0')]),
        }
    }
    Ok(u)
}

/// Parses yuan with up to two decimals ("2000", "12.5", "12.05") into fen.
pub fn parse_yuan(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yuan: u64 = whole.parse().ok()?;
    let frac_fen: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    yuan.checked_mul(100)?.checked_add(frac_fen)
}

/// Says a value given as text, the way a flow's `say` node names it; `None` when the text
/// is not a valid value of that kind.
pub fn say_value(what: crate::flow::SayWhat, value: &str) -> Option<Utterance> {
    use crate::flow::SayWhat;
    match what {
        SayWhat::Number => value.parse().ok().map(say_integer),
        SayWhat::Count => value.parse().ok().map(say_count),
        SayWhat::Money => parse_yuan(value).map(say_money_fen),
        SayWhat::Date => value.parse().ok().map(say_date),
        SayWhat::Time => value.parse().ok().map(say_time),
        SayWhat::Digits => say_digits(value).ok(),
        SayWhat::Calendar | SayWhat::BidderStatus => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(u: &Utterance) -> &str {
        &u.text
    }

    #[test]
    fn integers() {
        let table: &[(u64, &str)] = &[
            (0, "零"),
            (1, "一"),
            (2, "二"),
            (7, "七"),
            (10, "十"),
            (11, "十一"),
            (12, "十二"),
            (20, "二十"),
            (22, "二十二"),
            (99, "九十九"),
            (100, "一百"),
            (101, "一百零一"),
            (110, "一百一十"),
            (111, "一百一十一"),
            (200, "二百"),
            (205, "二百零五"),
            (250, "二百五十"),
            (1000, "一千"),
            (1001, "一千零一"),
            (1010, "一千零一十"),
            (1100, "一千一百"),
            (2000, "两千"),
            (2002, "两千零二"),
            (2222, "两千二百二十二"),
            (10_000, "一万"),
            (10_001, "一万零一"),
            (10_010, "一万零一十"),
            (10_100, "一万零一百"),
            (11_000, "一万一千"),
            (12_000, "一万二千"),
            (12_005, "一万二千零五"),
            (20_000, "两万"),
            (22_000, "两万二千"),
            (100_000, "十万"),
            (100_010, "十万零一十"),
            (120_000, "十二万"),
            (220_000, "二十二万"),
            (1_000_000, "一百万"),
            (2_000_000, "二百万"),
            (10_000_000, "一千万"),
            (20_000_000, "两千万"),
            (100_000_000, "一亿"),
            (200_000_000, "两亿"),
            (100_000_001, "一亿零一"),
            (102_000_000, "一亿零二百万"),
            (120_000_000, "一亿二千万"),
            (1_000_000_000_000, "一万亿"),
            (2_000_000_000_000, "两万亿"),
            (1_234_567_890, "十二亿三千四百五十六万七千八百九十"),
            (30_405, "三万零四百零五"),
        ];
        for (n, want) in table {
            assert_eq!(text(&say_integer(*n)), *want, "{n}");
        }
    }

    #[test]
    fn integer_fragments() {
        assert_eq!(
            say_integer(12_005).prompts,
            ["num/1", "unit/wan", "num/2", "unit/qian", "num/0", "num/5"]
        );
        assert_eq!(say_integer(10).prompts, ["unit/shi"]);
        assert_eq!(say_integer(2000).prompts, ["num/liang", "unit/qian"]);
    }

    #[test]
    fn counts() {
        for (n, want) in [
            (1, "一"),
            (2, "两"),
            (3, "三"),
            (12, "十二"),
            (22, "二十二"),
        ] {
            assert_eq!(text(&say_count(n)), want, "{n}");
        }
    }

    #[test]
    fn money() {
        let table: &[(u64, &str)] = &[
            (0, "零元整"),
            (5, "五分"),
            (50, "五角"),
            (55, "五角五分"),
            (100, "一元整"),
            (200, "两元整"),
            (1_050, "十元五角"),
            (1_205, "十二元零五分"),
            (1_250, "十二元五角"),
            (1_255, "十二元五角五分"),
            (200_000, "两千元整"),
            (1_000_000, "一万元整"),
            (1_200_500, "一万二千零五元整"),
            (9_876_543, "九万八千七百六十五元四角三分"),
        ];
        for (fen, want) in table {
            assert_eq!(text(&say_money_fen(*fen)), *want, "{fen}");
        }
        assert_eq!(
            say_money_fen(200_000).prompts,
            ["num/liang", "unit/qian", "word/yuan", "word/zheng"]
        );
    }

    #[test]
    fn dates() {
        for (s, want) in [
            ("2025-03-12", "二〇二五年三月十二日"),
            ("2026-01-01", "二〇二六年一月一日"),
            ("2030-10-20", "二〇三〇年十月二十日"),
            ("2026-02-02", "二〇二六年二月二日"),
            ("2026-12-31", "二〇二六年十二月三十一日"),
        ] {
            assert_eq!(text(&say_date(s.parse().unwrap())), want, "{s}");
        }
        assert_eq!(
            say_date("2025-03-12".parse().unwrap()).prompts[..5],
            ["num/2", "num/0", "num/2", "num/5", "word/nian"]
        );
        assert_eq!(
            text(&say_month_day("2026-12-05".parse().unwrap())),
            "十二月五日"
        );
    }

    #[test]
    fn times() {
        for (h, m, want) in [
            (0, 0, "零点整"),
            (2, 0, "两点整"),
            (8, 0, "八点整"),
            (8, 30, "八点三十分"),
            (10, 5, "十点零五分"),
            (12, 2, "十二点零二分"),
            (17, 0, "十七点整"),
            (20, 45, "二十点四十五分"),
            (22, 22, "二十二点二十二分"),
        ] {
            assert_eq!(
                text(&say_time(TimeOfDay::new(h, m).unwrap())),
                want,
                "{h}:{m}"
            );
        }
    }

    #[test]
    fn digit_strings() {
        for (s, want) in [
            ("12345", "幺二三四五"),
            ("13800138000", "幺三八零零幺三八零零零"),
            ("0", "零"),
            ("2026", "二零二六"),
        ] {
            assert_eq!(text(&say_digits(s).unwrap()), want, "{s}");
        }
        assert_eq!(
            say_digits("110").unwrap().prompts,
            ["num/yao", "num/yao", "num/0"]
        );
        for bad in ["", "12a", "1#", "-1"] {
            assert!(say_digits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_from_text() {
        use crate::flow::SayWhat;
        for (what, v, want) in [
            (SayWhat::Number, "12005", Some("一万二千零五")),
            (SayWhat::Count, "2", Some("两")),
            (SayWhat::Money, "2000", Some("两千元整")),
            (SayWhat::Money, "12.5", Some("十二元五角")),
            (SayWhat::Money, "12.05", Some("十二元零五分")),
            (SayWhat::Money, "12.055", None),
            (SayWhat::Money, ".5", None),
            (SayWhat::Date, "2025-03-12", Some("二〇二五年三月十二日")),
            (SayWhat::Time, "08:30", Some("八点三十分")),
            (SayWhat::Digits, "10086", Some("幺零零八六")),
            (SayWhat::Number, "x", None),
            (SayWhat::Calendar, "1", None),
        ] {
            assert_eq!(
                say_value(what, v).map(|u| u.text).as_deref(),
                want,
                "{what:?} {v}"
            );
        }
    }

    #[test]
    fn every_fragment_has_text() {
        for n in fragment_names() {
            assert!(fragment_text(n).is_some());
        }
        assert_eq!(fragment_text("msg/welcome"), None);
    }
}
