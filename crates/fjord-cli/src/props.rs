//! Parsing shared by the Kafka tools: `key=value` options, Java properties files, escaped
//! separators (`\t`, `\n`) and "did you mean" suggestions for misspelt property names.
//!
//! Everything here is pure so it can be unit tested without a broker.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};

/// Splits `key=value` at the first `=`; the value may be empty but the key may not.
pub fn parse_kv(arg: &str) -> anyhow::Result<(String, String)> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("invalid property '{arg}': expected key=value"),
    }
}

/// Parses repeated `key=value` options into an ordered map (later ones win).
pub fn parse_kvs<'a>(
    args: impl IntoIterator<Item = &'a String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        let (k, v) = parse_kv(a)?;
        out.insert(k, v);
    }
    Ok(out)
}

/// Parses the text of a Java properties file: `key=value` or `key: value` or `key value`
/// lines, `#` and `!` comments, backslash line continuations and the common escapes.
pub fn parse_properties(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let (k, v) = split_property_line(&entry)
            .with_context(|| format!("line {}: '{}'", n + 1, raw.trim_end()))?;
        out.insert(k, v);
    }
    if !logical.is_empty() {
        let (k, v) = split_property_line(&logical)?;
        out.insert(k, v);
    }
    Ok(out)
}

fn split_property_line(line: &str) -> anyhow::Result<(String, String)> {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(e) = chars.next() {
                    key.push(unescape_char(e));
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // `key value` form, or whitespace before the separator.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=') | Some(':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    if key.is_empty() {
        bail!("missing property name");
    }
    let rest: String = chars.collect();
    Ok((key, unescape(rest.trim_start())))
}

fn unescape_char(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\x0c',
        other => other,
    }
}

/// Replaces the escapes a shell user types for separators (`\t`, `\n`, `\r`, `\\`) with the
/// characters, as Kafka's tools do for `key.separator` and `line.separator`.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) => out.push(unescape_char(e)),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a Java properties file.
pub fn read_properties_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read properties file {}", path.display()))?;
    parse_properties(&text).with_context(|| format!("in properties file {}", path.display()))
}

/// Parses a boolean property the way Java's `Boolean.parseBoolean` does, but strictly: only
/// `true` and `false` (any case) are accepted.
pub fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => bail!("invalid value '{value}' for property {name}: expected true or false"),
    }
}

/// Levenshtein edit distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Returns the known name closest to `name`, if it is close enough to be a likely typo
/// (at most a third of the name's length, and at least one edit, away).
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Checks that every property is one of `known`; the error names the unknown one and the
/// closest known name.
pub fn check_known<'a>(
    kind: &str,
    props: impl IntoIterator<Item = &'a String>,
    known: &[&str],
) -> anyhow::Result<()> {
    for name in props {
        if known.contains(&name.as_str()) {
            continue;
        }
        match closest(name, known) {
            Some(k) => bail!("unknown {kind} property '{name}': did you mean {k}?"),
            None => bail!(
                "unknown {kind} property '{name}' (known: {})",
                known.join(", ")
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kv_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_kv("key.separator==").unwrap(),
            ("key.separator".into(), "=".into())
        );
        assert_eq!(
            parse_kv("parse.key=true").unwrap(),
            ("parse.key".into(), "true".into())
        );
        assert_eq!(parse_kv("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_kv("novalue").is_err());
        assert!(parse_kv("=x").is_err());
    }

    #[test]
    fn properties_files_follow_java_rules() {
        let text = "# comment\n! also\n\nbootstrap.servers=localhost:9092\n\
                    acks : all\nclient.id  fjord\nsep=\\t\nlong=a,\\\n   b\nempty=\n";
        let p = parse_properties(text).unwrap();
        assert_eq!(p["bootstrap.servers"], "localhost:9092");
        assert_eq!(p["acks"], "all");
        assert_eq!(p["client.id"], "fjord");
        assert_eq!(p["sep"], "\t");
        assert_eq!(p["long"], "a,b");
        assert_eq!(p["empty"], "");
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn escapes_become_characters() {
        assert_eq!(unescape("\\t"), "\t");
        assert_eq!(unescape("a\\nb"), "a\nb");
        assert_eq!(unescape("\\\\"), "\\");
        assert_eq!(unescape(","), ",");
        assert_eq!(unescape("end\\"), "end\\");
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("key.seperator", "key.separator"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn unknown_property_suggests_the_closest_known_one() {
        let known = ["parse.key", "key.separator", "parse.headers"];
        let err = check_known("reader", [&"key.seperator".to_string()], &known).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown reader property 'key.seperator': did you mean key.separator?"
        );
        let err = check_known("reader", [&"zzz".to_string()], &known).unwrap_err();
        assert!(err.to_string().contains("known: parse.key"), "{err}");
        check_known("reader", [&"parse.key".to_string()], &known).unwrap();
        assert_eq!(closest("parse.kye", &known), Some("parse.key"));
        assert_eq!(closest("completely.different", &known), None);
    }

    #[test]
    fn booleans_are_strict() {
        assert!(parse_bool("p", "TRUE").unwrap());
        assert!(!parse_bool("p", "false").unwrap());
        assert!(parse_bool("p", "yes").is_err());
    }
}
