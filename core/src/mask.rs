//! Masking of personal data for roles that do not need it (MISSION.md: "ID numbers and phone
//! numbers masked for roles that do not need them").

/// Masks a phone number, keeping the first 3 and last 4 digits of a mobile
/// (`13812345678` → `138****5678`). Short numbers keep only their last 2 characters.
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n >= 11 {
        let mut out: String = chars[..3].iter().collect();
        out.push_str(&"*".repeat(n - 7));
        out.extend(&chars[n - 4..]);
        out
    } else if n > 2 {
        let mut out = "*".repeat(n - 2);
        out.extend(&chars[n - 2..]);
        out
    } else {
        "*".repeat(n)
    }
}

/// Masks a Chinese resident ID number (18 characters), keeping the first 6 (region) and the
/// last 4: `120101199001011234` → `120101********1234`. Other lengths keep their first and
/// last character only.
pub fn mask_id_number(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n >= 15 {
        let mut out: String = chars[..6].iter().collect();
        out.push_str(&"*".repeat(n - 10));
        out.extend(&chars[n - 4..]);
        out
    } else if n > 2 {
        let mut out = String::new();
        out.push(chars[0]);
        out.push_str(&"*".repeat(n - 2));
        out.push(chars[n - 1]);
        out
    } else {
        "*".repeat(n)
    }
}

/// Masks a person's name for publication (failed-refund lists): `张三丰` → `张*丰`, `李四` → `李*`.
pub fn mask_name(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut out = String::new();
            out.push(chars[0]);
            out.push_str(&"*".repeat(n - 2));
            out.push(chars[n - 1]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (fn(&str) -> String, &'static str, &'static str);

    #[test]
    fn masks() {
        let cases: &[Case] = &[
            (mask_phone, "13812345678", "138****5678"),
            (mask_phone, "02223456789", "022****6789"),
            (mask_phone, "12345", "***45"),
            (mask_phone, "1", "*"),
            (mask_id_number, "120101199001011234", "120101********1234"),
            (mask_id_number, "12010119900101123X", "120101********123X"),
            (mask_id_number, "91120000", "9******0"),
            (mask_name, "张三丰", "张*丰"),
            (mask_name, "李四", "李*"),
            (mask_name, "王", "*"),
            (mask_name, "", ""),
        ];
        for (f, input, want) in cases {
            assert_eq!(f(input), *want, "input {input}");
        }
    }
}
