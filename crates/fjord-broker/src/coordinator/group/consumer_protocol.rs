//! Reading the consumer protocol's subscription metadata (the bytes a classic consumer puts
//! in JoinGroup), which the coordinator needs only for the topic list.

/// Returns the topics of a `ConsumerProtocolSubscription` (versions 0-3, non-flexible:
/// version i16, then an array of i16-length strings). Malformed input yields what parsed.
pub fn subscription_topics(meta: &[u8]) -> Vec<String> {
    let mut topics = Vec::new();
    let mut pos = 2usize;
    let read_i32 = |pos: &mut usize| -> Option<i32> {
        let b = meta.get(*pos..*pos + 4)?;
        *pos += 4;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(count) = read_i32(&mut pos) else {
        return topics;
    };
    for _ in 0..count.max(0) {
        let Some(b) = meta.get(pos..pos + 2) else {
            break;
        };
        let len = i16::from_be_bytes([b[0], b[1]]);
        pos += 2;
        if len < 0 {
            break;
        }
        let Some(name) = meta.get(pos..pos + len as usize) else {
            break;
        };
        pos += len as usize;
        topics.push(String::from_utf8_lossy(name).into_owned());
    }
    topics
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_topics() {
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        m.extend([0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            super::subscription_topics(&m),
            vec!["a".to_string(), "bc".to_string()]
        );
        assert!(super::subscription_topics(&[0, 1, 0, 0, 0, 9, 0]).is_empty());
    }
}
