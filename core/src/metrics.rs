//! A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4).
//! Counters and gauges with labels; cheap enough for per-request counting. Crates register
//! their series on one shared [`Registry`] handed down by the binary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

type Labels = Vec<(String, String)>;

#[derive(Debug)]
struct Family {
    help: String,
    kind: Kind,
    series: Mutex<BTreeMap<Labels, Arc<AtomicI64>>>,
}

/// The registry of all metric families. Clone to share.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<BTreeMap<String, Arc<Family>>>>,
}

/// A handle to one labelled series. Counters only go up; gauges are set or moved.
#[derive(Debug, Clone)]
pub struct Series(Arc<AtomicI64>);

impl Series {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A family of series that share a name; `with` picks the series for a label set.
#[derive(Debug, Clone)]
pub struct Metric(Arc<Family>);

impl Metric {
    pub fn with(&self, labels: &[(&str, &str)]) -> Series {
        let key: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let mut series = self.0.series.lock().unwrap_or_else(|e| e.into_inner());
        Series(series.entry(key).or_default().clone())
    }

    /// The series without labels.
    pub fn plain(&self) -> Series {
        self.with(&[])
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn family(&self, name: &str, help: &str, kind: Kind) -> Metric {
        let mut fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let fam = fams
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Family {
                    help: help.to_string(),
                    kind,
                    series: Mutex::new(BTreeMap::new()),
                })
            })
            .clone();
        Metric(fam)
    }

    pub fn counter(&self, name: &str, help: &str) -> Metric {
        self.family(name, help, Kind::Counter)
    }

    pub fn gauge(&self, name: &str, help: &str) -> Metric {
        self.family(name, help, Kind::Gauge)
    }

    /// The sum of the series of family `name` whose labels include every pair of `labels`
    /// (0 when there is no such family): lets a watcher read counters others keep.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> i64 {
        let fam = {
            let fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
            match fams.get(name) {
                Some(f) => f.clone(),
                None => return 0,
            }
        };
        let series = fam.series.lock().unwrap_or_else(|e| e.into_inner());
        series
            .iter()
            .filter(|(have, _)| {
                labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, v)| v.load(Ordering::Relaxed))
            .sum()
    }

    /// The whole registry in Prometheus text format.
    pub fn render(&self) -> String {
        let fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, fam) in fams.iter() {
            let kind = match fam.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&fam.help));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let series = fam.series.lock().unwrap_or_else(|e| e.into_inner());
            for (labels, v) in series.iter() {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, val)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(val));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", v.load(Ordering::Relaxed));
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A monotonically increasing counter without labels, for hot paths that should not take the
/// family lock (look the series up once, keep the handle).
#[derive(Debug, Default)]
pub struct FastCounter(AtomicU64);

impl FastCounter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_by_labels() {
        let r = Registry::new();
        assert_eq!(r.sum("nothing", &[]), 0);
        let c = r.counter("disk_errors_total", "x");
        c.with(&[("kind", "full")]).add(2);
        c.with(&[("kind", "io")]).inc();
        assert_eq!(r.sum("disk_errors_total", &[]), 3);
        assert_eq!(r.sum("disk_errors_total", &[("kind", "io")]), 1);
        assert_eq!(r.sum("disk_errors_total", &[("kind", "other")]), 0);
    }

    #[test]
    fn renders_prometheus_text() {
        let r = Registry::new();
        let c = r.counter("hotline_http_requests_total", "HTTP requests");
        c.with(&[("route", "/healthz"), ("status", "200")]).inc();
        c.with(&[("route", "/healthz"), ("status", "200")]).inc();
        c.with(&[("route", "/x\"y"), ("status", "404")]).inc();
        let g = r.gauge("hotline_up", "1 when up");
        g.plain().set(1);
        let text = r.render();
        assert!(text.contains("# TYPE hotline_http_requests_total counter"));
        assert!(
            text.contains("hotline_http_requests_total{route=\"/healthz\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("route=\"/x\\\"y\""), "{text}");
        assert!(
            text.contains("# TYPE hotline_up gauge\nhotline_up 1\n"),
            "{text}"
        );
    }

    #[test]
    fn same_name_returns_same_family() {
        let r = Registry::new();
        r.counter("a_total", "a").plain().inc();
        r.counter("a_total", "a").plain().inc();
        assert!(r.render().contains("a_total 2"));
    }
}
