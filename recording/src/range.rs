//! HTTP Range for playback (RFC 9110 §14): a browser's `<audio>` seeks with single byte
//! ranges. Pure functions: the header and the length in, what to send out.

/// What to answer a request for a resource of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangePlan {
    /// 200 with the whole body (no Range, or one we may ignore: malformed, multi-range,
    /// another unit — RFC 9110 §14.2 lets a server ignore it).
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

impl RangePlan {
    pub fn status(self) -> u16 {
        match self {
            RangePlan::Full => 200,
            RangePlan::Partial { .. } => 206,
            RangePlan::Unsatisfiable => 416,
        }
    }

    /// The byte span to send, `start..end` (exclusive); `None` for 416.
    pub fn span(self, len: u64) -> Option<(u64, u64)> {
        match self {
            RangePlan::Full => Some((0, len)),
            RangePlan::Partial { start, end } => Some((start, end + 1)),
            RangePlan::Unsatisfiable => None,
        }
    }

    /// The `Content-Range` value, when one is sent.
    pub fn content_range(self, len: u64) -> Option<String> {
        match self {
            RangePlan::Full => None,
            RangePlan::Partial { start, end } => Some(format!("bytes {start}-{end}/{len}")),
            RangePlan::Unsatisfiable => Some(format!("bytes */{len}")),
        }
    }
}

/// Plans the answer to `Range: <header>` for a body of `len` bytes.
pub fn plan(header: Option<&str>, len: u64) -> RangePlan {
    let Some(h) = header else {
        return RangePlan::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangePlan::Full;
    };
    if spec.contains(',') {
        return RangePlan::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangePlan::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes
        (true, false) => match num(b) {
            Some(0) => RangePlan::Unsatisfiable,
            Some(n) if len > 0 => RangePlan::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            Some(_) => RangePlan::Unsatisfiable,
            None => RangePlan::Full,
        },
        // bytes=A-
        (false, true) => match num(a) {
            Some(s) if s < len => RangePlan::Partial {
                start: s,
                end: len - 1,
            },
            Some(_) => RangePlan::Unsatisfiable,
            None => RangePlan::Full,
        },
        // bytes=A-B
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= len {
                    RangePlan::Unsatisfiable
                } else {
                    RangePlan::Partial {
                        start: s,
                        end: e.min(len - 1),
                    }
                }
            }
            _ => RangePlan::Full,
        },
        (true, true) => RangePlan::Full,
    }
}

/// The bytes `start..end` of a file as a stream of chunks, for a streaming HTTP body (the
/// only I/O in this module).
pub async fn open_span(
    path: &std::path::Path,
    start: u64,
    end: u64,
) -> std::io::Result<tokio_util::io::ReaderStream<tokio::io::Take<tokio::fs::File>>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(start)).await?;
    Ok(tokio_util::io::ReaderStream::with_capacity(
        f.take(end.saturating_sub(start)),
        64 * 1024,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangePlan::*;

    #[test]
    fn plans_ranges() {
        let len = 1_000;
        assert_eq!(plan(None, len), Full);
        assert_eq!(plan(Some("bytes=0-99"), len), Partial { start: 0, end: 99 });
        assert_eq!(plan(Some("bytes=0-"), len), Partial { start: 0, end: 999 });
        assert_eq!(
            plan(Some("bytes=500-599"), len),
            Partial {
                start: 500,
                end: 599
            }
        );
        assert_eq!(
            plan(Some("bytes=-100"), len),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            plan(Some("bytes=-5000"), len),
            Partial { start: 0, end: 999 }
        );
        assert_eq!(
            plan(Some("bytes=900-5000"), len),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(plan(Some("bytes=1000-"), len), Unsatisfiable);
        assert_eq!(plan(Some("bytes=1000-1001"), len), Unsatisfiable);
        assert_eq!(plan(Some("bytes=-0"), len), Unsatisfiable);
        assert_eq!(plan(Some("bytes=0-0"), 0), Unsatisfiable);
        // ignorable headers
        for h in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=-",
            "bytes",
        ] {
            assert_eq!(plan(Some(h), len), Full, "{h}");
        }
    }

    #[test]
    fn headers_and_spans() {
        let p = plan(Some("bytes=10-19"), 100);
        assert_eq!(p.status(), 206);
        assert_eq!(p.span(100), Some((10, 20)));
        assert_eq!(p.content_range(100).as_deref(), Some("bytes 10-19/100"));
        assert_eq!(
            Unsatisfiable.content_range(100).as_deref(),
            Some("bytes */100")
        );
        assert_eq!(Unsatisfiable.status(), 416);
        assert_eq!(Full.span(100), Some((0, 100)));
        assert_eq!(Full.content_range(100), None);
    }
}
