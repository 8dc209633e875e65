//! Kafka's output conventions: `printf`-style padded columns, `Error: ...` lines on stdout,
//! and the Java exception names and messages of the error codes group operations return.

use std::io::Write;

use anyhow::bail;

use crate::Verbatim;

/// What the tool prints on stdout, written at the end; `failed` makes the exit status 1.
#[derive(Default)]
pub(crate) struct Output {
    pub(super) text: String,
    pub(super) failed: bool,
}

impl Output {
    /// Appends one line.
    pub(super) fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Appends Kafka's error line (a blank line, then `Error: ...`) and marks the run failed.
    pub(super) fn error(&mut self, message: impl AsRef<str>) {
        self.line("");
        self.line(format!("Error: {}", message.as_ref()));
        self.failed = true;
    }

    /// Writes everything; a failed run becomes an error whose text is the output (printed
    /// on stdout by `main`, exit status 1).
    pub(super) fn finish(self) -> anyhow::Result<()> {
        if self.failed {
            bail!(Verbatim(self.text.trim_end_matches('\n').to_string()));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(self.text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}

/// Pads `cells` to their widths (`%-Ns`; 0 = no padding) and joins them with one space, as
/// Kafka's `printf` formats do. Cells longer than their width are not cut.
pub(super) fn row(cells: &[(&str, usize)]) -> String {
    cells
        .iter()
        .map(|(c, w)| format!("{c:<w$}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The width Kafka gives a column: the longest value, at least `min`.
pub(super) fn width<'a>(min: usize, values: impl IntoIterator<Item = &'a str>) -> usize {
    values
        .into_iter()
        .map(|v| v.chars().count())
        .fold(min, usize::max)
}

/// Kafka's exception class and message for the error codes of group operations (printed as
/// `org.apache.kafka.common.errors.<Class>: <message>`).
pub(super) fn kafka_error(code: i16) -> (&'static str, String) {
    let (class, message) = match code {
        3 => (
            "UnknownTopicOrPartitionException",
            "This server does not host this topic-partition.",
        ),
        14 => (
            "CoordinatorLoadInProgressException",
            "The coordinator is loading and hence can't process requests.",
        ),
        15 => (
            "CoordinatorNotAvailableException",
            "The coordinator is not available.",
        ),
        16 => (
            "NotCoordinatorException",
            "This is not the correct coordinator.",
        ),
        22 => (
            "IllegalGenerationException",
            "Specified group generation id is not valid.",
        ),
        24 => (
            "InvalidGroupIdException",
            "The configured groupId is invalid.",
        ),
        25 => (
            "UnknownMemberIdException",
            "The coordinator is not aware of this member.",
        ),
        27 => (
            "RebalanceInProgressException",
            "The group is rebalancing, so a rejoin is needed.",
        ),
        30 => ("GroupAuthorizationException", "Group authorization failed."),
        68 => ("GroupNotEmptyException", "The group is not empty."),
        69 => ("GroupIdNotFoundException", "The group id does not exist."),
        86 => (
            "GroupSubscribedToTopicException",
            "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.",
        ),
        other => {
            let name = kafka_protocol::error::ResponseError::try_from_code(other)
                .map_or_else(|| "NONE".to_string(), |e| e.to_string());
            return ("KafkaException", format!("error code {other} ({name})"));
        }
    };
    (class, message.to_string())
}

/// `org.apache.kafka.common.errors.<Class>: <message>`, as Java prints an exception.
pub(super) fn exception_text(code: i16) -> String {
    let (class, message) = kafka_error(code);
    format!("org.apache.kafka.common.errors.{class}: {message}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_pad_like_printf() {
        assert_eq!(row(&[("ab", 4), ("c", 0), ("d", 2)]), "ab   c d ");
        assert_eq!(row(&[("abcdef", 4), ("x", 0)]), "abcdef x");
        assert_eq!(width(15, ["a", "bb"]), 15);
        assert_eq!(width(1, ["a", "bbb"]), 3);
    }

    #[test]
    fn kafka_errors_name_the_exception() {
        assert_eq!(
            exception_text(68),
            "org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty."
        );
        assert!(kafka_error(9999).1.contains("9999"));
    }
}
