//! Line diff between two versions of an article: changed metadata fields, and the body as
//! a line diff (longest common subsequence after trimming the common head and tail).

use serde::{Deserialize, Serialize};

use crate::model::ArticleVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineChange {
    Equal,
    Delete,
    Insert,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    pub change: LineChange,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// What changed from version `from` to version `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub article_id: String,
    pub from: i64,
    pub to: i64,
    pub fields: Vec<FieldChange>,
    pub body: Vec<DiffLine>,
}

impl VersionDiff {
    /// Unified-style text (`-`/`+`/space prefixes), metadata first.
    pub fn to_text(&self) -> String {
        let mut out = format!("--- v{}\n+++ v{}\n", self.from, self.to);
        for f in &self.fields {
            out.push_str(&format!(
                "-{}: {}\n+{}: {}\n",
                f.field, f.old, f.field, f.new
            ));
        }
        for l in &self.body {
            let p = match l.change {
                LineChange::Equal => ' ',
                LineChange::Delete => '-',
                LineChange::Insert => '+',
            };
            out.push(p);
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.body.iter().all(|l| l.change == LineChange::Equal)
    }
}

fn opt_ms(v: Option<i64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Diff two versions of one article.
pub fn diff_versions(a: &ArticleVersion, b: &ArticleVersion) -> VersionDiff {
    let (ca, cb) = (&a.content, &b.content);
    let pairs = [
        ("title", ca.title.clone(), cb.title.clone()),
        ("category", ca.category.clone(), cb.category.clone()),
        ("tags", ca.tags.join(", "), cb.tags.join(", ")),
        ("keywords", ca.keywords.join(", "), cb.keywords.join(", ")),
        (
            "status",
            ca.status.as_str().to_string(),
            cb.status.as_str().to_string(),
        ),
        ("valid_from", opt_ms(ca.valid_from), opt_ms(cb.valid_from)),
        ("valid_to", opt_ms(ca.valid_to), opt_ms(cb.valid_to)),
    ];
    let fields = pairs
        .into_iter()
        .filter(|(_, o, n)| o != n)
        .map(|(f, old, new)| FieldChange {
            field: f.to_string(),
            old,
            new,
        })
        .collect();
    VersionDiff {
        article_id: a.article_id.clone(),
        from: a.version,
        to: b.version,
        fields,
        body: diff_lines(&ca.body, &cb.body),
    }
}

/// Above this many cells the LCS table is not built and the middle is shown as replaced.
const MAX_TABLE_CELLS: usize = 4_000_000;

/// Line diff of two texts.
pub fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let line = |change, text: &str| DiffLine {
        change,
        text: text.to_string(),
    };
    let mut out: Vec<DiffLine> = a[..head]
        .iter()
        .map(|t| line(LineChange::Equal, t))
        .collect();
    if am.len() * bm.len() > MAX_TABLE_CELLS {
        out.extend(am.iter().map(|t| line(LineChange::Delete, t)));
        out.extend(bm.iter().map(|t| line(LineChange::Insert, t)));
    } else {
        // lcs[i][j] = LCS length of am[i..] and bm[j..].
        let (n, m) = (am.len(), bm.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        let at = |i: usize, j: usize| i * (m + 1) + j;
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[at(i, j)] = if am[i] == bm[j] {
                    lcs[at(i + 1, j + 1)] + 1
                } else {
                    lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                out.push(line(LineChange::Equal, am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
                // Deletions before insertions, as in unified diffs.
                out.push(line(LineChange::Delete, am[i]));
                i += 1;
            } else {
                out.push(line(LineChange::Insert, bm[j]));
                j += 1;
            }
        }
    }
    out.extend(
        a[a.len() - tail..]
            .iter()
            .map(|t| line(LineChange::Equal, t)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(d: &[DiffLine]) -> String {
        d.iter()
            .map(|l| {
                let p = match l.change {
                    LineChange::Equal => ' ',
                    LineChange::Delete => '-',
                    LineChange::Insert => '+',
                };
                format!("{p}{}", l.text)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn replaced_line_in_the_middle() {
        let d = diff_lines("a\nb\nc\nd", "a\nB\nc\nd\ne");
        assert_eq!(render(&d), " a\n-b\n+B\n c\n d\n+e");
    }

    #[test]
    fn identical_and_empty() {
        assert!(
            diff_lines("x\ny", "x\ny")
                .iter()
                .all(|l| l.change == LineChange::Equal)
        );
        assert_eq!(render(&diff_lines("", "a")), "+a");
        assert_eq!(render(&diff_lines("a", "")), "-a");
    }

    #[test]
    fn chinese_lines() {
        let d = diff_lines("保证金 2000 元\n截止 17:00", "保证金 2000 元\n截止 16:00");
        assert_eq!(render(&d), " 保证金 2000 元\n-截止 17:00\n+截止 16:00");
    }
}
