//! Chinese text analysis: two tokenizers registered on the index and used again, unchanged,
//! to build queries (so query terms are exactly the indexed terms), and the synonym table.
//!
//! * [`WordTokenizer`] ("kb_words"): jieba (search mode) words, lowercased, full-width
//!   folded to half-width, punctuation and stop words dropped.
//! * [`BigramTokenizer`] ("kb_bigrams"): overlapping character bigrams inside runs of CJK
//!   characters (a lone CJK character is kept as a unigram), ASCII words and numbers whole.
//!   jieba alone misses 退 vs 退款 or 摇上 vs 摇号; bigrams give the recall.
//!
//! Offsets always point into the original text, so snippets highlight the right characters.

use std::collections::HashSet;
use std::sync::OnceLock;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

pub const WORD_TOKENIZER: &str = "kb_words";
pub const BIGRAM_TOKENIZER: &str = "kb_bigrams";

/// Function words and question words that carry no topic in a caller's question.
const STOP_WORDS: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "啊",
    "呀",
    "吧",
    "么",
    "嘛",
    "哦",
    "哈",
    "呗",
    "喂",
    "嗯",
    "是",
    "我",
    "你",
    "您",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "他们",
    "咱",
    "咱们",
    "我的",
    "请问",
    "请",
    "问",
    "问一下",
    "一下",
    "想问",
    "想",
    "怎么",
    "怎么办",
    "怎样",
    "怎么样",
    "如何",
    "什么",
    "啥",
    "咋",
    "咋办",
    "哪",
    "哪里",
    "哪儿",
    "哪个",
    "为什么",
    "为啥",
    "时候",
    "什么时候",
    "多久",
    "多长时间",
    "可以",
    "能",
    "能不能",
    "会",
    "要",
    "需要",
    "有",
    "和",
    "与",
    "及",
    "或",
    "在",
    "就",
    "都",
    "也",
    "还",
    "还是",
    "这",
    "那",
    "这个",
    "那个",
    "给",
    "对",
    "把",
    "被",
    "让",
    "从",
    "到",
    "为",
    "一个",
    "个",
    "该",
    "得",
    "地",
    "着",
    "过",
    "吗？",
    "你好",
    "您好",
    "谢谢",
    "麻烦",
    "一",
    "下",
    "又",
    "再",
    "才",
    "已经",
    "现在",
    "是不是",
    "不",
    "没",
    "了吗",
    "呢？",
    "啦",
    "嘞",
    "滴",
    "俺",
    "请教",
    "知道",
    "告诉",
];

fn stop_words() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
}

/// Whether a normalized token is a stop word.
pub fn is_stop_word(token: &str) -> bool {
    stop_words().contains(token)
}

/// Folds full-width ASCII (`１２３ＡＢＣ`) and the ideographic space to half-width, and
/// lowercases.
pub fn normalize_char(c: char) -> char {
    let c = match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    c.to_ascii_lowercase()
}

pub fn normalize(text: &str) -> String {
    text.chars().map(normalize_char).collect()
}

/// CJK unified ideographs (with extension A and compatibility ideographs).
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// A token stream over tokens computed up front.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    index: usize,
}

impl VecTokenStream {
    fn new(tokens: Vec<Token>) -> Self {
        Self { tokens, index: 0 }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.index += 1;
        self.index <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.index - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.index - 1]
    }
}

fn token(text: String, from: usize, to: usize, position: usize) -> Token {
    Token {
        offset_from: from,
        offset_to: to,
        position,
        text,
        position_length: 1,
    }
}

/// jieba words, normalized, without punctuation and stop words.
#[derive(Clone)]
pub struct WordTokenizer {
    jieba: tantivy_jieba::JiebaTokenizer,
}

impl Default for WordTokenizer {
    fn default() -> Self {
        Self {
            jieba: tantivy_jieba::JiebaTokenizer::new(),
        }
    }
}

impl WordTokenizer {
    /// Plain segmentation: non-overlapping words in text order. jieba's search mode (the
    /// default, used for indexing and queries) also emits the sub-words of long words, so
    /// its offsets are not monotonic, which tantivy's snippet generator cannot handle; the
    /// highlighter uses this mode.
    pub fn segmenting() -> Self {
        Self {
            jieba: tantivy_jieba::JiebaTokenizer::with_search_mode(false),
        }
    }

    pub fn tokens(&mut self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        let mut stream = self.jieba.token_stream(text);
        while stream.advance() {
            let t = stream.token();
            let norm = normalize(&t.text);
            let norm = norm.trim();
            if norm.is_empty()
                || !norm.chars().any(|c| c.is_alphanumeric())
                || is_stop_word(norm)
                || norm.len() > 60
            {
                continue;
            }
            let position = out.len();
            out.push(token(
                norm.to_string(),
                t.offset_from,
                t.offset_to,
                position,
            ));
        }
        out
    }
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = VecTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream::new(self.tokens(text))
    }
}

/// CJK bigrams and whole ASCII words.
#[derive(Clone, Default)]
pub struct BigramTokenizer;

impl BigramTokenizer {
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        let mut out: Vec<Token> = Vec::new();
        // (byte offset, normalized char) of the current CJK run / ASCII word.
        let mut run: Vec<(usize, char)> = Vec::new();
        let mut word: Vec<(usize, char)> = Vec::new();
        let flush_run = |run: &mut Vec<(usize, char)>, out: &mut Vec<Token>, end: usize| {
            if run.len() == 1 {
                let (from, c) = run[0];
                if !is_stop_word(&c.to_string()) {
                    let p = out.len();
                    out.push(token(c.to_string(), from, end, p));
                }
            }
            for i in 0..run.len().saturating_sub(1) {
                let (from, a) = run[i];
                let to = run.get(i + 2).map_or(end, |x| x.0);
                let text: String = [a, run[i + 1].1].iter().collect();
                if is_stop_word(&text) {
                    continue;
                }
                let p = out.len();
                out.push(token(text, from, to, p));
            }
            run.clear();
        };
        let flush_word = |word: &mut Vec<(usize, char)>, out: &mut Vec<Token>, end: usize| {
            if let Some(&(from, _)) = word.first() {
                let text: String = word.iter().map(|x| x.1).collect();
                if text.len() <= 60 {
                    let p = out.len();
                    out.push(token(text, from, end, p));
                }
            }
            word.clear();
        };
        for (i, raw) in text.char_indices() {
            let c = normalize_char(raw);
            if is_cjk(c) {
                flush_word(&mut word, &mut out, i);
                run.push((i, c));
            } else if c.is_ascii_alphanumeric() {
                flush_run(&mut run, &mut out, i);
                word.push((i, c));
            } else {
                flush_run(&mut run, &mut out, i);
                flush_word(&mut word, &mut out, i);
            }
        }
        flush_run(&mut run, &mut out, text.len());
        flush_word(&mut word, &mut out, text.len());
        out
    }
}

impl Tokenizer for BigramTokenizer {
    type TokenStream<'a> = VecTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream::new(self.tokens(text))
    }
}

/// A group of interchangeable words. When a question contains any of `terms` or
/// `triggers` (colloquial forms, common typos), the other `terms` are added to the query
/// with a lower weight. Triggers are never added themselves.
#[derive(Debug, Clone, Copy)]
pub struct SynonymGroup {
    pub terms: &'static [&'static str],
    pub triggers: &'static [&'static str],
}

const fn g(terms: &'static [&'static str], triggers: &'static [&'static str]) -> SynonymGroup {
    SynonymGroup { terms, triggers }
}

/// The domain's synonyms: how callers say it → how the articles say it.
pub const SYNONYMS: &[SynonymGroup] = &[
    g(
        &["保证金", "押金"],
        &["保正金", "保怔金", "保证今", "定金", "订金", "抵押金"],
    ),
    g(
        &["申请编码", "编码"],
        &["申请号", "编号", "申请码", "号码是啥"],
    ),
    g(
        &["退款", "退还", "退回", "退钱", "返还"],
        &["退", "返钱", "回来", "返回", "退给", "还给"],
    ),
    g(
        &["退款失败", "退回失败"],
        &[
            "没退回来",
            "没收到退款",
            "退不回",
            "没退到",
            "没到账",
            "没退",
        ],
    ),
    g(
        &["激活", "资格激活"],
        &["激话", "激火", "开通资格", "确认资格"],
    ),
    g(
        &["竞价", "出价", "报价"],
        &["竞拍", "拍牌", "拍卖", "竞标", "摇号", "摇"],
    ),
    g(
        &["买受人", "成交", "竞得"],
        &["中标", "拍中", "拍上", "摇上", "中签", "中了", "竞上"],
    ),
    g(
        &["未成交", "未竞得"],
        &[
            "没摇上",
            "没拍上",
            "没中",
            "没拍中",
            "落选",
            "没竞上",
            "未中",
        ],
    ),
    g(
        &["违约", "违约金", "不予退还"],
        &["扣押金", "扣钱", "罚", "没收", "不退了", "扣了"],
    ),
    g(
        &["价款", "成交价款"],
        &["车牌钱", "指标款", "尾款", "指标钱"],
    ),
    g(&["税务局", "税务机关"], &["税局", "税务", "地税", "国税"]),
    g(
        &["手机号码", "手机号"],
        &["电话号", "手机", "预留电话", "预留号码"],
    ),
    g(
        &["投诉", "举报"],
        &["态度差", "态度不好", "骂人", "不耐烦", "告你们", "服务差"],
    ),
    g(
        &["回访", "回电", "回拨"],
        &["打回来", "回个电话", "给我回", "回电话", "来电话"],
    ),
    g(
        &["服务时间", "工作时间"],
        &["上班", "下班", "几点", "24小时", "人工时间"],
    ),
    g(
        &["日程", "时间安排", "日程安排"],
        &["哪天", "几号", "日期", "时间表", "本月安排"],
    ),
    g(
        &["账户", "户名", "结算账户", "账号"],
        &["帐户", "帐号", "卡号", "哪个卡", "哪张卡"],
    ),
    g(&["授权书", "授权委托书"], &["委托书", "授权函", "介绍信"]),
    g(&["企业", "单位"], &["公司", "厂子"]),
    g(
        &["转账", "汇款", "缴纳"],
        &["打款", "交钱", "汇钱", "打钱", "转钱", "交"],
    ),
    g(&["金额", "数额"], &["多少钱", "交多少", "几千", "多少"]),
    g(&["人工", "坐席", "客服"], &["转人工", "真人", "接线员"]),
    g(&["微信", "公众号"], &["vx", "wx", "weixin"]),
    g(
        &["截止", "截止时间", "最后期限"],
        &["最晚", "过期", "过了时间", "晚了", "超时"],
    ),
    g(
        &["外文姓名", "外籍"],
        &["外国人", "外国名字", "英文名", "港澳台"],
    ),
    g(&["错误", "错"], &["弄错", "填错", "打错", "转错", "输错"]),
    g(&["名单", "公示"], &["公布", "名字", "挂出来"]),
    g(&["结果", "竞价结果"], &["出结果", "查结果", "结果查询"]),
    g(
        &["身份核实", "核实身份", "身份验证"],
        &["核对身份", "验证身份", "证件号"],
    ),
];

/// The question plus synonym expansions: `(text, weight)`; the original text has weight 1.
pub fn expand_synonyms(question: &str, expansion_weight: f32) -> Vec<(String, f32)> {
    let norm = normalize(question);
    let mut out = vec![(norm.clone(), 1.0)];
    let mut added: HashSet<&str> = HashSet::new();
    for group in SYNONYMS {
        let hit = group
            .terms
            .iter()
            .chain(group.triggers)
            .any(|t| norm.contains(t));
        if !hit {
            continue;
        }
        for t in group.terms {
            if !norm.contains(t) && added.insert(t) {
                out.push((t.to_string(), expansion_weight));
            }
        }
    }
    out
}

/// Words that stand for `word` (the other terms of every group it belongs to).
pub fn synonyms_of(word: &str) -> Vec<&'static str> {
    SYNONYMS
        .iter()
        .filter(|g| g.terms.contains(&word) || g.triggers.contains(&word))
        .flat_map(|g| g.terms.iter().copied())
        .filter(|t| *t != word)
        .collect()
}

/// Markdown to plain text for indexing and snippets: drops heading marks, emphasis, code
/// fences, link targets and list bullets, keeps the words.
pub fn markdown_to_text(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    for line in md.lines() {
        let mut l = line.trim_start();
        if l.starts_with("```") {
            continue;
        }
        l = l
            .trim_start_matches('#')
            .trim_start_matches('>')
            .trim_start();
        for bullet in ["- ", "* ", "+ "] {
            if let Some(rest) = l.strip_prefix(bullet) {
                l = rest;
            }
        }
        let mut s = String::with_capacity(l.len());
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' | '`' | '_' | '|' => {}
                // [text](url) → text
                ']' if chars.peek() == Some(&'(') => {
                    for c in chars.by_ref() {
                        if c == ')' {
                            break;
                        }
                    }
                }
                '[' => {}
                _ => s.push(c),
            }
        }
        let s = s.trim();
        if s.is_empty() || s.chars().all(|c| c == '-' || c == ':' || c == ' ') {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(tokens: &[Token]) -> Vec<&str> {
        tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn bigrams_inside_cjk_runs_and_ascii_words_whole() {
        let t = BigramTokenizer.tokens("退款，ＡＢ 2000元");
        assert_eq!(texts(&t), ["退款", "ab", "2000", "元"]);
        let s = "退款，ＡＢ 2000元";
        assert_eq!(&s[t[0].offset_from..t[0].offset_to], "退款");
        assert_eq!(&s[t[1].offset_from..t[1].offset_to], "ＡＢ");
        let t = BigramTokenizer.tokens("保证金怎么退");
        assert_eq!(texts(&t), ["保证", "证金", "金怎", "么退"]);
    }

    #[test]
    fn words_drop_punctuation_and_stop_words() {
        let t = WordTokenizer::default().tokens("押金啥时候退？");
        let words = texts(&t);
        assert!(words.contains(&"押金"), "{words:?}");
        assert!(!words.contains(&"啥"), "{words:?}");
        assert!(!words.contains(&"？"), "{words:?}");
    }

    #[test]
    fn synonyms_expand_colloquial_questions() {
        let e = expand_synonyms("押金啥时候退", 0.5);
        let words: Vec<&str> = e.iter().map(|(t, _)| t.as_str()).collect();
        assert!(words.contains(&"保证金"));
        assert!(words.contains(&"退款"));
        assert_eq!(e[0], ("押金啥时候退".to_string(), 1.0));
        let e = expand_synonyms("没摇上钱什么时候回来", 0.5);
        let words: Vec<&str> = e.iter().map(|(t, _)| t.as_str()).collect();
        assert!(words.contains(&"未成交"), "{words:?}");
        assert!(words.contains(&"退款"), "{words:?}");
        assert!(synonyms_of("押金").contains(&"保证金"));
    }

    #[test]
    fn full_width_is_folded() {
        assert_eq!(normalize("ＡＢＣ１２３　x"), "abc123 x");
    }

    #[test]
    fn markdown_becomes_plain_text() {
        let t = markdown_to_text(
            "## 标题\n\n- **加粗**项\n- [公告](https://example.invalid)\n\n|a|b|\n|---|---|",
        );
        assert_eq!(t, "标题\n加粗项\n公告\nab");
    }
}
