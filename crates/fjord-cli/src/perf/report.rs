//! Formatting shared by the perf tools: a tiny JSON value for `--json`, latency summaries,
//! rates, and Kafka's `yyyy-MM-dd HH:mm:ss:SSS` timestamps.
//!
//! MB means 2^20 bytes here, as in Kafka's perf tools, so figures compare directly.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::histogram::Histogram;

/// Bytes in a "MB" as Kafka's perf tools count them.
pub const MB: f64 = 1024.0 * 1024.0;

/// A JSON value; objects keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// A number (non-finite numbers print as `null`).
    Num(f64),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An object.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An empty object.
    pub fn obj() -> Json {
        Json::Obj(Vec::new())
    }

    /// Adds a field to an object (no-op on other values) and returns it, for chaining.
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Json {
        if let Json::Obj(fields) = &mut self {
            fields.push((key.to_string(), value.into()));
        }
        self
    }
}

impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Num(v)
    }
}

impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}

impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}

impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}

impl From<&BTreeMap<String, String>> for Json {
    fn from(m: &BTreeMap<String, String>) -> Json {
        Json::Obj(
            m.iter()
                .map(|(k, v)| (k.clone(), Json::Str(v.clone())))
                .collect(),
        )
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Num(v) if v.is_finite() => {
                // Round to what a person reads; keeps documents small and stable.
                let r = (v * 1000.0).round() / 1000.0;
                write!(f, "{r}")
            }
            Json::Num(_) => f.write_str("null"),
            Json::Int(v) => write!(f, "{v}"),
            Json::Str(s) => write_str(f, s),
            Json::Obj(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Latency percentiles in milliseconds, from a histogram of nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// Nanoseconds to milliseconds.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Latency {
    /// Summarises a histogram of nanoseconds.
    pub fn of(h: &Histogram) -> Latency {
        Latency {
            avg: h.mean() / 1e6,
            p50: ms(h.quantile(0.50)),
            p95: ms(h.quantile(0.95)),
            p99: ms(h.quantile(0.99)),
            p999: ms(h.quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// The JSON form: `{"avg":..,"p50":..,...}` in ms.
    pub fn json(&self) -> Json {
        Json::obj()
            .with("avg", self.avg)
            .with("p50", self.p50)
            .with("p95", self.p95)
            .with("p99", self.p99)
            .with("p99_9", self.p999)
            .with("max", self.max)
    }
}

/// Events per second over `elapsed` (0 for an empty interval).
pub fn per_sec(n: f64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { n / s } else { 0.0 }
}

/// Kafka's timestamp format, `yyyy-MM-dd HH:mm:ss:SSS`, in UTC.
pub fn kafka_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}:{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's published algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_prints_valid_compact_documents() {
        let doc = Json::obj()
            .with("tool", "produce")
            .with("records", 5u64)
            .with("rate", 1.23456)
            .with("bad", f64::NAN)
            .with("text", "a\"b\\c\n")
            .with("nested", Json::obj().with("x", -1i64));
        assert_eq!(
            doc.to_string(),
            r#"{"tool":"produce","records":5,"rate":1.235,"bad":null,"text":"a\"b\\c\n","nested":{"x":-1}}"#
        );
    }

    #[test]
    fn kafka_time_formats_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(kafka_time(t), "2023-11-14 22:13:20:123");
        assert_eq!(kafka_time(UNIX_EPOCH), "1970-01-01 00:00:00:000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(kafka_time(leap), "2000-02-29 00:00:00:000");
    }

    #[test]
    fn latency_summary_is_in_milliseconds() {
        let mut h = Histogram::new();
        for v in [1_000_000u64, 2_000_000, 3_000_000] {
            h.record(v);
        }
        let l = Latency::of(&h);
        assert!((l.avg - 2.0).abs() < 1e-9);
        assert!((l.p50 - 2.0).abs() < 0.02);
        assert!((l.max - 3.0).abs() < 1e-9);
        assert_eq!(per_sec(10.0, Duration::from_secs(2)), 5.0);
        assert_eq!(per_sec(10.0, Duration::ZERO), 0.0);
    }
}
