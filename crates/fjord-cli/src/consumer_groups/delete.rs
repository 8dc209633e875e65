//! `--delete` (DeleteGroups: only groups without members) and `--delete-offsets`
//! (OffsetDelete: refused for topics the group still subscribes to), with Kafka's messages.

use std::collections::BTreeMap;

use super::{Output, Session, Tp, exception_text, kafka_error, row, topic_partitions, width};

/// Runs `--delete`.
pub(super) fn delete_groups(s: &mut Session<'_>, out: &mut Output) -> anyhow::Result<()> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for group in s.target_groups()? {
        let results = s
            .conn_for(&group)?
            .delete_groups(std::slice::from_ref(&group))?;
        match results.iter().find(|(g, _)| *g == group).map(|(_, c)| *c) {
            Some(0) => deleted.push(group),
            Some(code) => failed.push((group, exception_text(code))),
            None => failed.push((group, "no answer from the coordinator".to_string())),
        }
    }
    let quoted = |groups: &[String]| {
        groups
            .iter()
            .map(|g| format!("'{g}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if failed.is_empty() {
        out.line(format!(
            "Deletion of requested consumer groups ({}) was successful.",
            quoted(&deleted)
        ));
        return Ok(());
    }
    out.error("Deletion of some consumer groups failed:");
    for (group, why) in &failed {
        out.line(format!(
            "* Group '{group}' could not be deleted due to: {why}"
        ));
    }
    if !deleted.is_empty() {
        out.line("");
        out.line(format!(
            "These consumer groups were deleted successfully: {}",
            quoted(&deleted)
        ));
    }
    Ok(())
}

/// Runs `--delete-offsets`: a summary line, then TOPIC PARTITION STATUS per partition.
pub(super) fn delete_offsets(s: &mut Session<'_>, out: &mut Output) -> anyhow::Result<()> {
    let Some(group) = s.args.group.first().cloned() else {
        anyhow::bail!("Option --delete-offsets takes the following options: one --group, --topic");
    };
    let selection = topic_partitions(&s.args.topic, &s.metadata)?;
    let tps = selection.partitions;
    // Per partition: the error code (0: deleted). Unknown topics get partition -1.
    let mut results: BTreeMap<Tp, i16> = selection
        .unknown
        .into_iter()
        .map(|t| ((t, -1), 3))
        .collect();
    let mut top = 0;
    if !tps.is_empty() {
        let (code, parts) = s.conn_for(&group)?.offset_delete(&group, &tps)?;
        top = code;
        for tp in tps {
            let partition_code = parts
                .iter()
                .find(|(t, p, _)| *t == tp.0 && *p == tp.1)
                .map_or(0, |(_, _, c)| *c);
            results.insert(tp, if code != 0 { code } else { partition_code });
        }
    }
    // Kafka's summary comes from the request: its own error, else the first partition's.
    let summary = if top != 0 {
        top
    } else {
        results
            .iter()
            .filter(|((_, p), _)| *p >= 0)
            .map(|(_, c)| *c)
            .find(|c| *c != 0)
            .unwrap_or(0)
    };
    match summary {
        0 => out.line(format!(
            "Request succeeded for deleting offsets from group {group}."
        )),
        24 | 30 | 68 | 69 => out.error(kafka_error(summary).1),
        3 | 29 | 86 => {
            out.error("Encountered some partition-level error, see the follow-up details.")
        }
        other => out.error(format!(
            "Encountered some unknown error: {}",
            kafka_error(other).1
        )),
    }
    if results.values().any(|c| *c != 0) {
        out.failed = true;
    }
    let wt = width(15, results.keys().map(|(t, _)| t.as_str()));
    out.line("");
    out.line(row(&[("TOPIC", wt), ("PARTITION", 10), ("STATUS", 15)]));
    for ((t, p), code) in &results {
        let partition = if *p >= 0 {
            p.to_string()
        } else {
            "-".to_string()
        };
        let status = if *code == 0 {
            "Successful".to_string()
        } else {
            format!("Error: {}", kafka_error(*code).1)
        };
        out.line(row(&[
            (t.as_str(), wt),
            (partition.as_str(), 10),
            (status.as_str(), 15),
        ]));
    }
    Ok(())
}
