//! How `console-consumer` prints a record: Kafka's default message formatter and its
//! `--property` options (`print.timestamp`, `print.partition`, `print.offset`,
//! `print.headers`, `print.key`, `print.value`, `key.separator`, `line.separator`,
//! `headers.separator`, `null.literal`, and the deserializers).
//!
//! Fields are printed in the order timestamp, partition, offset, headers, key, value; each
//! printed field is followed by `key.separator` if another field follows, else by
//! `line.separator`. Without deserializers, keys and values are written as raw bytes.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;

use crate::props;

/// Property names the formatter understands.
pub const KNOWN: &[&str] = &[
    "print.timestamp",
    "print.key",
    "print.offset",
    "print.partition",
    "print.headers",
    "print.value",
    "key.separator",
    "line.separator",
    "headers.separator",
    "null.literal",
    "key.deserializer",
    "value.deserializer",
    "headers.deserializer",
];

/// How to turn key, value or header bytes into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deserializer {
    /// The bytes as they are (String, ByteArray and Bytes deserializers).
    Raw,
    /// Big-endian signed integers of 8, 4 or 2 bytes.
    Long,
    /// 4-byte signed integer.
    Integer,
    /// 2-byte signed integer.
    Short,
    /// 8-byte IEEE double.
    Double,
    /// 4-byte IEEE float.
    Float,
}

impl Deserializer {
    /// Parses a Java deserializer class name (full or simple name).
    pub fn parse(name: &str) -> anyhow::Result<Deserializer> {
        let simple = name.rsplit('.').next().unwrap_or(name);
        Ok(match simple {
            "StringDeserializer"
            | "ByteArrayDeserializer"
            | "BytesDeserializer"
            | "ByteBufferDeserializer" => Deserializer::Raw,
            "LongDeserializer" => Deserializer::Long,
            "IntegerDeserializer" => Deserializer::Integer,
            "ShortDeserializer" => Deserializer::Short,
            "DoubleDeserializer" => Deserializer::Double,
            "FloatDeserializer" => Deserializer::Float,
            _ => bail!(
                "unsupported deserializer '{name}' (supported: String, ByteArray, Bytes, Long, Integer, Short, Double, Float)"
            ),
        })
    }

    fn render(self, b: &[u8]) -> anyhow::Result<Vec<u8>> {
        let fixed = |n: usize, what: &str| -> anyhow::Result<()> {
            if b.len() != n {
                bail!("size of data received by {what} is not {n}");
            }
            Ok(())
        };
        let text = match self {
            Deserializer::Raw => return Ok(b.to_vec()),
            Deserializer::Long => {
                fixed(8, "LongDeserializer")?;
                i64::from_be_bytes(to_array(b)).to_string()
            }
            Deserializer::Integer => {
                fixed(4, "IntegerDeserializer")?;
                i32::from_be_bytes(to_array(b)).to_string()
            }
            Deserializer::Short => {
                fixed(2, "ShortDeserializer")?;
                i16::from_be_bytes(to_array(b)).to_string()
            }
            Deserializer::Double => {
                fixed(8, "DoubleDeserializer")?;
                java_float(f64::from_be_bytes(to_array(b)))
            }
            Deserializer::Float => {
                fixed(4, "FloatDeserializer")?;
                java_float(f64::from(f32::from_be_bytes(to_array(b))))
            }
        };
        Ok(text.into_bytes())
    }
}

fn to_array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Java prints whole doubles with a trailing `.0`.
fn java_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// The timestamp of a record as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// No timestamp.
    None,
    /// Set by the producer.
    CreateTime(i64),
    /// Set by the broker.
    LogAppendTime(i64),
}

/// A record to print.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Timestamp and its type.
    pub timestamp: Timestamp,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Headers in order.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    /// Key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for null.
    pub value: Option<&'a [u8]>,
}

/// The configured output format.
#[derive(Debug, Clone)]
pub struct Formatter {
    print_timestamp: bool,
    print_key: bool,
    print_offset: bool,
    print_partition: bool,
    print_headers: bool,
    print_value: bool,
    key_separator: Vec<u8>,
    line_separator: Vec<u8>,
    headers_separator: Vec<u8>,
    null_literal: Vec<u8>,
    key_de: Deserializer,
    value_de: Deserializer,
    headers_de: Deserializer,
}

impl Default for Formatter {
    fn default() -> Self {
        Formatter {
            print_timestamp: false,
            print_key: false,
            print_offset: false,
            print_partition: false,
            print_headers: false,
            print_value: true,
            key_separator: b"\t".to_vec(),
            line_separator: b"\n".to_vec(),
            headers_separator: b",".to_vec(),
            null_literal: b"null".to_vec(),
            key_de: Deserializer::Raw,
            value_de: Deserializer::Raw,
            headers_de: Deserializer::Raw,
        }
    }
}

impl Formatter {
    /// Builds a formatter from `--property` values; unknown names are errors.
    pub fn from_properties(p: &BTreeMap<String, String>) -> anyhow::Result<Formatter> {
        props::check_known("console-consumer", p.keys(), KNOWN)?;
        let mut f = Formatter::default();
        for (k, v) in p {
            let flag = || props::parse_bool(k, v);
            let text = || props::unescape(v).into_bytes();
            match k.as_str() {
                "print.timestamp" => f.print_timestamp = flag()?,
                "print.key" => f.print_key = flag()?,
                "print.offset" => f.print_offset = flag()?,
                "print.partition" => f.print_partition = flag()?,
                "print.headers" => f.print_headers = flag()?,
                "print.value" => f.print_value = flag()?,
                "key.separator" => f.key_separator = text(),
                "line.separator" => f.line_separator = text(),
                "headers.separator" => f.headers_separator = text(),
                "null.literal" => f.null_literal = text(),
                "key.deserializer" => f.key_de = Deserializer::parse(v)?,
                "value.deserializer" => f.value_de = Deserializer::parse(v)?,
                "headers.deserializer" => f.headers_de = Deserializer::parse(v)?,
                _ => {}
            }
        }
        Ok(f)
    }

    /// Sets the key deserializer (`--key-deserializer`).
    pub fn set_key_deserializer(&mut self, d: Deserializer) {
        self.key_de = d;
    }

    /// Sets the value deserializer (`--value-deserializer`).
    pub fn set_value_deserializer(&mut self, d: Deserializer) {
        self.value_de = d;
    }

    /// Renders one record into `out`; a deserializer failure renders nothing and is
    /// returned as the error.
    pub fn format(&self, r: &Record<'_>, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        let fields = [
            self.print_timestamp,
            self.print_partition,
            self.print_offset,
            self.print_headers,
            self.print_key,
            self.print_value,
        ];
        // `more(i)`: whether a field after position i is printed.
        let more = |i: usize| fields[i + 1..].iter().any(|f| *f);
        let sep = |buf: &mut Vec<u8>, i: usize| {
            if more(i) {
                buf.extend_from_slice(&self.key_separator);
            } else {
                buf.extend_from_slice(&self.line_separator);
            }
        };
        if self.print_timestamp {
            match r.timestamp {
                Timestamp::None => buf.extend_from_slice(b"NO_TIMESTAMP"),
                Timestamp::CreateTime(t) => write!(buf, "CreateTime:{t}")?,
                Timestamp::LogAppendTime(t) => write!(buf, "LogAppendTime:{t}")?,
            }
            sep(&mut buf, 0);
        }
        if self.print_partition {
            write!(buf, "Partition:{}", r.partition)?;
            sep(&mut buf, 1);
        }
        if self.print_offset {
            write!(buf, "Offset:{}", r.offset)?;
            sep(&mut buf, 2);
        }
        if self.print_headers {
            if r.headers.is_empty() {
                buf.extend_from_slice(b"NO_HEADERS");
            }
            for (i, (k, v)) in r.headers.iter().enumerate() {
                if i > 0 {
                    buf.extend_from_slice(&self.headers_separator);
                }
                buf.extend_from_slice(k.as_bytes());
                buf.push(b':');
                self.write_nullable(&mut buf, *v, self.headers_de)?;
            }
            sep(&mut buf, 3);
        }
        if self.print_key {
            self.write_nullable(&mut buf, r.key, self.key_de)?;
            sep(&mut buf, 4);
        }
        if self.print_value {
            self.write_nullable(&mut buf, r.value, self.value_de)?;
            buf.extend_from_slice(&self.line_separator);
        }
        out.extend_from_slice(&buf);
        Ok(())
    }

    fn write_nullable(
        &self,
        buf: &mut Vec<u8>,
        v: Option<&[u8]>,
        de: Deserializer,
    ) -> anyhow::Result<()> {
        match v {
            None => buf.extend_from_slice(&self.null_literal),
            Some(b) => buf.extend_from_slice(&de.render(b)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fmt(pairs: &[(&str, &str)], r: &Record<'_>) -> String {
        let p = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = Formatter::from_properties(&p).unwrap();
        let mut out = Vec::new();
        f.format(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn record<'a>() -> Record<'a> {
        Record {
            timestamp: Timestamp::CreateTime(1700000000000),
            partition: 1,
            offset: 42,
            headers: vec![],
            key: Some(b"user1"),
            value: Some(b"login website"),
        }
    }

    #[test]
    fn default_prints_only_the_value() {
        assert_eq!(fmt(&[], &record()), "login website\n");
    }

    #[test]
    fn key_then_tab_then_value() {
        assert_eq!(
            fmt(&[("print.key", "true")], &record()),
            "user1\tlogin website\n"
        );
        let mut r = record();
        r.key = None;
        assert_eq!(fmt(&[("print.key", "true")], &r), "null\tlogin website\n");
        r.value = None;
        assert_eq!(fmt(&[("print.key", "true")], &r), "null\tnull\n");
        assert_eq!(
            fmt(&[("print.key", "true"), ("null.literal", "<nil>")], &r),
            "<nil>\t<nil>\n"
        );
    }

    #[test]
    fn all_fields_in_kafka_order() {
        let mut r = record();
        r.headers = vec![("h1", Some(b"v1")), ("h2", None)];
        let got = fmt(
            &[
                ("print.timestamp", "true"),
                ("print.partition", "true"),
                ("print.offset", "true"),
                ("print.headers", "true"),
                ("print.key", "true"),
                ("key.separator", " | "),
            ],
            &r,
        );
        assert_eq!(
            got,
            "CreateTime:1700000000000 | Partition:1 | Offset:42 | h1:v1,h2:null | user1 | login website\n"
        );
        r.headers.clear();
        r.timestamp = Timestamp::LogAppendTime(5);
        let got = fmt(
            &[("print.timestamp", "true"), ("print.headers", "true")],
            &r,
        );
        assert_eq!(got, "LogAppendTime:5\tNO_HEADERS\tlogin website\n");
    }

    #[test]
    fn last_printed_field_ends_the_line() {
        let got = fmt(
            &[
                ("print.key", "true"),
                ("print.value", "false"),
                ("line.separator", "\\n--\\n"),
            ],
            &record(),
        );
        assert_eq!(got, "user1\n--\n");
        let got = fmt(
            &[("print.offset", "true"), ("print.value", "false")],
            &record(),
        );
        assert_eq!(got, "Offset:42\n");
    }

    #[test]
    fn deserializers_decode_numbers() {
        let v = 7i64.to_be_bytes();
        let mut r = record();
        r.value = Some(&v);
        let got = fmt(
            &[(
                "value.deserializer",
                "org.apache.kafka.common.serialization.LongDeserializer",
            )],
            &r,
        );
        assert_eq!(got, "7\n");
        let p: BTreeMap<String, String> = [(
            "value.deserializer".to_string(),
            "IntegerDeserializer".to_string(),
        )]
        .into();
        let f = Formatter::from_properties(&p).unwrap();
        assert!(
            f.format(&r, &mut Vec::new()).is_err(),
            "8 bytes are not an int"
        );
        assert!(Deserializer::parse("com.example.AvroDeserializer").is_err());
        assert_eq!(java_float(1.0), "1.0");
    }

    #[test]
    fn unknown_property_suggests_a_known_one() {
        let p: BTreeMap<String, String> = [("print.kye".to_string(), "true".to_string())].into();
        let err = Formatter::from_properties(&p).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown console-consumer property 'print.kye': did you mean print.key?"
        );
    }
}
