//! How `console-producer` turns one input line into a record: the `--property` options of
//! Kafka's line reader (`parse.key`, `key.separator`, `parse.headers`, `headers.delimiter`,
//! `headers.separator`, `headers.key.separator`, `null.marker`, `ignore.error`).
//!
//! A line is `[headers<headers.delimiter>][key<key.separator>]value`, where headers are
//! `k:v` pairs joined by `headers.separator`. Lines are bytes: separators are matched as byte
//! strings, so values need not be UTF-8.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::props;

/// Property names the line reader understands.
pub const KNOWN: &[&str] = &[
    "parse.key",
    "key.separator",
    "parse.headers",
    "headers.delimiter",
    "headers.separator",
    "headers.key.separator",
    "null.marker",
    "ignore.error",
];

/// One parsed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRecord {
    /// Record key; `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in input order; a `None` value is a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The configured line format.
#[derive(Debug, Clone)]
pub struct LineReader {
    parse_key: bool,
    key_separator: Vec<u8>,
    parse_headers: bool,
    headers_delimiter: Vec<u8>,
    headers_separator: Vec<u8>,
    headers_key_separator: Vec<u8>,
    null_marker: Option<Vec<u8>>,
    ignore_error: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader {
            parse_key: false,
            key_separator: b"\t".to_vec(),
            parse_headers: false,
            headers_delimiter: b"\t".to_vec(),
            headers_separator: b",".to_vec(),
            headers_key_separator: b":".to_vec(),
            null_marker: None,
            ignore_error: false,
        }
    }
}

impl LineReader {
    /// Builds a reader from `--property` values; unknown names and inconsistent separators
    /// are errors.
    pub fn from_properties(p: &BTreeMap<String, String>) -> anyhow::Result<LineReader> {
        props::check_known("console-producer", p.keys(), KNOWN)?;
        let mut r = LineReader::default();
        let sep = |name: &str| -> anyhow::Result<Option<Vec<u8>>> {
            match p.get(name) {
                None => Ok(None),
                Some(v) => {
                    let v = props::unescape(v);
                    if v.is_empty() {
                        bail!("{name} must not be empty");
                    }
                    Ok(Some(v.into_bytes()))
                }
            }
        };
        if let Some(v) = p.get("parse.key") {
            r.parse_key = props::parse_bool("parse.key", v)?;
        }
        if let Some(v) = p.get("parse.headers") {
            r.parse_headers = props::parse_bool("parse.headers", v)?;
        }
        if let Some(v) = p.get("ignore.error") {
            r.ignore_error = props::parse_bool("ignore.error", v)?;
        }
        if let Some(v) = sep("key.separator")? {
            r.key_separator = v;
        }
        if let Some(v) = sep("headers.delimiter")? {
            r.headers_delimiter = v;
        }
        if let Some(v) = sep("headers.separator")? {
            r.headers_separator = v;
        }
        if let Some(v) = sep("headers.key.separator")? {
            r.headers_key_separator = v;
        }
        r.null_marker = sep("null.marker")?;
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let pairs: [(&str, &[u8], &str, &[u8]); 3] = [
            (
                "headers.delimiter",
                &self.headers_delimiter,
                "headers.separator",
                &self.headers_separator,
            ),
            (
                "headers.delimiter",
                &self.headers_delimiter,
                "headers.key.separator",
                &self.headers_key_separator,
            ),
            (
                "headers.separator",
                &self.headers_separator,
                "headers.key.separator",
                &self.headers_key_separator,
            ),
        ];
        if self.parse_headers {
            for (a, av, b, bv) in pairs {
                if av == bv {
                    bail!("{a} and {b} must differ");
                }
            }
        }
        if let Some(m) = &self.null_marker {
            for (name, v) in [
                ("key.separator", &self.key_separator),
                ("headers.delimiter", &self.headers_delimiter),
                ("headers.separator", &self.headers_separator),
                ("headers.key.separator", &self.headers_key_separator),
            ] {
                if m == v {
                    bail!("null.marker and {name} must differ");
                }
            }
        }
        Ok(())
    }

    /// Parses line number `n` (1-based, for messages), without its line terminator.
    pub fn parse(&self, line: &[u8], n: u64) -> anyhow::Result<LineRecord> {
        let mut rest = line;
        let mut headers = Vec::new();
        if self.parse_headers {
            match find(rest, &self.headers_delimiter) {
                Some(i) => {
                    let h = &rest[..i];
                    rest = &rest[i + self.headers_delimiter.len()..];
                    if !self.is_null(h) {
                        headers = self.split_headers(h, n)?;
                    }
                }
                None if self.ignore_error => {}
                None => bail!(
                    "No headers delimiter found on line number {n}: '{}'",
                    String::from_utf8_lossy(line)
                ),
            }
        }
        let mut key = None;
        if self.parse_key {
            match find(rest, &self.key_separator) {
                Some(i) => {
                    key = self.nullable(&rest[..i]);
                    rest = &rest[i + self.key_separator.len()..];
                }
                None if self.ignore_error => {}
                None => bail!(
                    "No key separator found on line number {n}: '{}'",
                    String::from_utf8_lossy(line)
                ),
            }
        }
        Ok(LineRecord {
            key,
            value: self.nullable(rest),
            headers,
        })
    }

    fn is_null(&self, b: &[u8]) -> bool {
        self.null_marker.as_deref() == Some(b)
    }

    fn nullable(&self, b: &[u8]) -> Option<Vec<u8>> {
        (!self.is_null(b)).then(|| b.to_vec())
    }

    fn split_headers(&self, h: &[u8], n: u64) -> anyhow::Result<Vec<(String, Option<Vec<u8>>)>> {
        let mut out = Vec::new();
        for pair in split(h, &self.headers_separator) {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match find(pair, &self.headers_key_separator) {
                Some(i) => (
                    &pair[..i],
                    self.nullable(&pair[i + self.headers_key_separator.len()..]),
                ),
                None if self.ignore_error => (pair, None),
                None => bail!(
                    "No header key separator found in pair '{}' on line number {n}",
                    String::from_utf8_lossy(pair)
                ),
            };
            if self.is_null(k) {
                bail!(
                    "Header keys should not be equal to the null marker '{}' as they can't be null",
                    String::from_utf8_lossy(k)
                );
            }
            out.push((String::from_utf8_lossy(k).into_owned(), v));
        }
        Ok(out)
    }
}

/// Position of the first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits `hay` at every occurrence of `sep`.
fn split<'a>(mut hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, sep) {
        out.push(&hay[..i]);
        hay = &hay[i + sep.len()..];
    }
    out.push(hay);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> anyhow::Result<LineReader> {
        let p = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LineReader::from_properties(&p)
    }

    fn rec(key: Option<&str>, value: Option<&str>) -> LineRecord {
        LineRecord {
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: vec![],
        }
    }

    #[test]
    fn default_is_the_whole_line_as_value() {
        let r = reader(&[]).unwrap();
        assert_eq!(r.parse(b"log1", 1).unwrap(), rec(None, Some("log1")));
        assert_eq!(r.parse(b"a\tb", 1).unwrap(), rec(None, Some("a\tb")));
        assert_eq!(r.parse(b"", 1).unwrap(), rec(None, Some("")));
    }

    #[test]
    fn keys_split_at_the_first_separator() {
        let r = reader(&[("parse.key", "true"), ("key.separator", ",")]).unwrap();
        assert_eq!(
            r.parse(b"user1,login website", 1).unwrap(),
            rec(Some("user1"), Some("login website"))
        );
        assert_eq!(r.parse(b"k,a,b", 1).unwrap(), rec(Some("k"), Some("a,b")));
        assert_eq!(r.parse(b",v", 1).unwrap(), rec(Some(""), Some("v")));
        let err = r.parse(b"nosep", 7).unwrap_err().to_string();
        assert_eq!(err, "No key separator found on line number 7: 'nosep'");
        // Default separator is a tab; escapes typed on the command line are understood.
        let r = reader(&[("parse.key", "true")]).unwrap();
        assert_eq!(r.parse(b"k\tv", 1).unwrap(), rec(Some("k"), Some("v")));
        let r = reader(&[("parse.key", "true"), ("key.separator", "\\t")]).unwrap();
        assert_eq!(r.parse(b"k\tv", 1).unwrap(), rec(Some("k"), Some("v")));
        let r = reader(&[("parse.key", "true"), ("key.separator", "::")]).unwrap();
        assert_eq!(r.parse(b"k::v:w", 1).unwrap(), rec(Some("k"), Some("v:w")));
    }

    #[test]
    fn ignore_error_keeps_lines_without_separators() {
        let r = reader(&[("parse.key", "true"), ("ignore.error", "true")]).unwrap();
        assert_eq!(r.parse(b"plain", 1).unwrap(), rec(None, Some("plain")));
    }

    #[test]
    fn null_marker_makes_null_keys_values_and_header_values() {
        let r = reader(&[
            ("parse.key", "true"),
            ("key.separator", ","),
            ("null.marker", "<null>"),
            ("parse.headers", "true"),
        ])
        .unwrap();
        assert_eq!(
            r.parse(b"<null>\t<null>,v", 1).unwrap(),
            rec(None, Some("v"))
        );
        assert_eq!(r.parse(b"h:1\tk,<null>", 1).unwrap().value, None);
        let got = r.parse(b"h:<null>\t<null>,x", 1).unwrap();
        assert_eq!(got.headers, vec![("h".to_string(), None)]);
        assert_eq!(got.key, None);
        let err = r.parse(b"<null>:x\tk,v", 3).unwrap_err().to_string();
        assert!(
            err.contains("Header keys should not be equal to the null marker"),
            "{err}"
        );
    }

    #[test]
    fn headers_come_before_the_key() {
        let r = reader(&[
            ("parse.headers", "true"),
            ("parse.key", "true"),
            ("key.separator", ","),
        ])
        .unwrap();
        let got = r.parse(b"h1:v1,h2:v2\tuser1,hello", 1).unwrap();
        assert_eq!(
            got.headers,
            vec![
                ("h1".to_string(), Some(b"v1".to_vec())),
                ("h2".to_string(), Some(b"v2".to_vec()))
            ]
        );
        assert_eq!(got.key.as_deref(), Some(&b"user1"[..]));
        assert_eq!(got.value.as_deref(), Some(&b"hello"[..]));
        let err = r.parse(b"nodelim", 2).unwrap_err().to_string();
        assert_eq!(
            err,
            "No headers delimiter found on line number 2: 'nodelim'"
        );
        let err = r.parse(b"bad\tk,v", 4).unwrap_err().to_string();
        assert_eq!(
            err,
            "No header key separator found in pair 'bad' on line number 4"
        );
    }

    #[test]
    fn custom_header_separators() {
        let r = reader(&[
            ("parse.headers", "true"),
            ("headers.delimiter", "|"),
            ("headers.separator", ";"),
            ("headers.key.separator", "="),
        ])
        .unwrap();
        let got = r.parse(b"a=1;b=2|value", 1).unwrap();
        assert_eq!(got.headers.len(), 2);
        assert_eq!(got.headers[1], ("b".to_string(), Some(b"2".to_vec())));
        assert_eq!(got.value.as_deref(), Some(&b"value"[..]));
    }

    #[test]
    fn unknown_or_inconsistent_properties_are_errors() {
        let err = reader(&[("key.seperator", ",")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown console-producer property 'key.seperator': did you mean key.separator?"
        );
        assert!(reader(&[("parse.key", "yes")]).is_err());
        assert!(reader(&[("null.marker", "\\t")]).is_err());
        assert!(reader(&[("parse.headers", "true"), ("headers.separator", ":")]).is_err());
        assert!(reader(&[("key.separator", "")]).is_err());
    }
}
