//! Index generated Chinese articles and measure search latency.
//!
//! `KB_BENCH_ARTICLES=100000 cargo bench -p hotline-knowledge --bench search` (default
//! 10,000). Prints indexing time, index size on disk, and p50/p99 over 1,000 queries
//! (each query is a different generated question), then lets criterion time one query.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_knowledge::{Article, ArticleInput, ArticleStatus, SearchIndex, SearchQuery};

const WORDS: &[&str] = &[
    "保证金",
    "押金",
    "申请编码",
    "激活",
    "资格",
    "竞价",
    "出价",
    "买受人",
    "成交",
    "价款",
    "税务",
    "缴纳",
    "退还",
    "退款",
    "失败",
    "名单",
    "公告",
    "日程",
    "截止",
    "到账",
    "账户",
    "户名",
    "授权书",
    "单位",
    "个人",
    "手机号码",
    "验证码",
    "系统",
    "登录",
    "网络",
    "热线",
    "服务",
    "投诉",
    "回访",
    "回电",
    "坐席",
    "核实",
    "身份",
    "微信",
    "短信",
    "通知",
    "提醒",
    "银行",
    "转账",
    "金额",
    "时间",
    "工作日",
    "违约",
    "指标",
    "小客车",
    "增量",
    "配置",
    "申请人",
    "办理",
    "材料",
    "提交",
    "查询",
    "结果",
    "公布",
    "审核",
    "规定",
    "按照",
    "及时",
    "注意",
    "问题",
    "咨询",
    "处理",
    "流程",
    "要求",
    "情况",
    "说明",
    "需要",
    "可以",
    "已经",
    "没有",
    "每月",
    "当天",
    "之前",
    "之后",
    "以上",
    "以下",
    "不能",
    "必须",
    "应当",
    "相关",
    "部门",
    "机构",
    "交易所",
    "主管",
    "批准",
    "发布",
    "网站",
    "栏目",
    "方式",
    "渠道",
    "电话",
    "自助",
    "语音",
    "按键",
    "人工",
    "排队",
    "满意",
    "评价",
    "标准",
    "规范",
    "用语",
    "记录",
    "工单",
    "录音",
    "质检",
    "统计",
    "报表",
    "归档",
    "备份",
    "安全",
    "保密",
    "信息",
    "变更",
    "有效",
    "无效",
    "原路",
    "重新",
    "再次",
    "延迟",
    "跨行",
    "柜台",
    "手机银行",
    "网上银行",
];

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick(&mut self) -> &'static str {
        WORDS[(self.next() % WORDS.len() as u64) as usize]
    }
    fn sentence(&mut self, words: usize) -> String {
        let mut s: String = (0..words).map(|_| self.pick()).collect();
        s.push('。');
        s
    }
}

fn articles(n: usize) -> Vec<Article> {
    let mut r = Xorshift(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let body: String = (0..8 + r.next() % 8)
                .map(|_| {
                    let words = 6 + (r.next() % 6) as usize;
                    r.sentence(words)
                })
                .collect();
            Article {
                id: format!("{i:08}"),
                content: ArticleInput {
                    slug: format!("a-{i}"),
                    title: r.sentence(3).trim_end_matches('。').to_string(),
                    body,
                    category: ["保证金", "资格激活", "网上竞价", "保证金退还", "热线服务"][i % 5]
                        .into(),
                    tags: vec![],
                    keywords: vec![r.pick().to_string(), r.pick().to_string()],
                    status: ArticleStatus::Published,
                    valid_from: None,
                    valid_to: None,
                },
                author: "bench".into(),
                version: 1,
                created_at: 0,
                updated_at: 0,
            }
        })
        .collect()
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("KB_BENCH_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let docs = articles(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open_or_create(dir.path()).expect("index");
    let t = Instant::now();
    index.rebuild(&docs, 1).expect("rebuild");
    let index_secs = t.elapsed().as_secs_f64();
    println!(
        "indexed {n} articles in {index_secs:.1} s ({:.0} articles/s), index size {:.1} MiB",
        n as f64 / index_secs,
        dir_size(dir.path()) as f64 / 1_048_576.0
    );

    let mut r = Xorshift(42);
    let questions: Vec<String> = (0..1_000)
        .map(|_| format!("{}{}怎么{}", r.pick(), r.pick(), r.pick()))
        .collect();
    let mut lat: Vec<f64> = Vec::with_capacity(questions.len());
    for q in &questions {
        let t = Instant::now();
        let res = index
            .search(&SearchQuery::published(q.as_str()))
            .expect("search");
        black_box(res);
        lat.push(t.elapsed().as_secs_f64() * 1_000.0);
    }
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "search over {n} articles, 1000 queries (top 10 + snippets): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p(0.50),
        p(0.99),
        lat[lat.len() - 1]
    );

    let mut i = 0;
    c.bench_function(&format!("search_{n}"), |b| {
        b.iter(|| {
            i = (i + 1) % questions.len();
            black_box(
                index
                    .search(&SearchQuery::published(questions[i].as_str()))
                    .expect("search"),
            )
        })
    });
    c.bench_function(&format!("best_answer_{n}"), |b| {
        b.iter(|| {
            i = (i + 1) % questions.len();
            black_box(
                index
                    .best_answer(&questions[i], 0, &Default::default())
                    .expect("answer"),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
