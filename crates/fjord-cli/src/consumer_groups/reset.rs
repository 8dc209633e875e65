//! `--reset-offsets`: plans new committed offsets for inactive groups and, with
//! `--execute`, commits them outside any generation (OffsetCommit with generation -1 and an
//! empty member id, which a coordinator accepts only while the group has no members).
//!
//! Scenarios follow Kafka's GroupOffsetsResetter: `--to-offset` and `--shift-by` are clamped
//! to the partition's [earliest, latest] with a warning; `--to-datetime` / `--by-duration`
//! take the first offset at or after the time, falling back to the latest offset where no
//! record is that new; `--to-current` keeps committed offsets (latest where none).

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use rdkafka::Offset;

use super::timespec::{parse_datetime, parse_duration};
use super::{
    ConsumerGroupsArgs, Output, Session, Tp, exception_text, row, topic_partitions, width,
};

/// GROUP_ID_NOT_FOUND: a group that does not exist can have offsets set (it is created).
const GROUP_ID_NOT_FOUND: i16 = 69;

/// How the new offsets are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    ToOffset(i64),
    Earliest,
    Latest,
    Current,
    ShiftBy(i64),
    /// First offset at or after this time (epoch ms).
    AtTime(i64),
}

fn scenario(a: &ConsumerGroupsArgs) -> anyhow::Result<Scenario> {
    Ok(if let Some(n) = a.to_offset {
        Scenario::ToOffset(n)
    } else if a.to_earliest {
        Scenario::Earliest
    } else if a.to_latest {
        Scenario::Latest
    } else if a.to_current {
        Scenario::Current
    } else if let Some(n) = a.shift_by {
        Scenario::ShiftBy(n)
    } else if let Some(dt) = &a.to_datetime {
        Scenario::AtTime(parse_datetime(dt)?)
    } else if let Some(d) = &a.by_duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Scenario::AtTime(now.saturating_sub(parse_duration(d)?).max(0))
    } else {
        bail!("Option --reset-offsets requires one of the following scenarios");
    })
}

/// Runs `--reset-offsets`.
pub(super) fn reset(s: &mut Session<'_>, out: &mut Output) -> anyhow::Result<()> {
    let scenario = scenario(s.args)?;
    let execute = s.args.execute;
    if !execute && !s.args.dry_run {
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. Add --dry-run to keep planning only without this warning."
        );
    }
    // Partitions named by --topic are the same for every group: check them once.
    let named = if s.args.all_topics {
        None
    } else {
        let selection = topic_partitions(&s.args.topic, &s.metadata)?;
        let tps = selection.partitions;
        if let Some(t) = selection.unknown.first() {
            bail!("Topic '{t}' does not exist");
        }
        let missing: Vec<String> = tps
            .iter()
            .filter(|(t, p)| !s.partition_exists(t, *p))
            .map(|(t, p)| format!("{t}-{p}"))
            .collect();
        if !missing.is_empty() {
            bail!("The partitions \"{}\" do not exist", missing.join(","));
        }
        Some(tps)
    };
    let mut plans: Vec<(String, Vec<(Tp, i64)>)> = Vec::new();
    for group in s.target_groups()? {
        let d = s.describe_group(&group)?;
        if d.error_code != 0 && d.error_code != GROUP_ID_NOT_FOUND {
            out.error(exception_text(d.error_code));
            continue;
        }
        let inactive =
            d.error_code == GROUP_ID_NOT_FOUND || matches!(d.state.as_str(), "Empty" | "Dead");
        if !inactive {
            out.error(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                d.state
            ));
            continue;
        }
        let committed: BTreeMap<Tp, i64> = s
            .committed(&group)?
            .into_iter()
            .map(|c| ((c.topic, c.partition), c.offset))
            .collect();
        let partitions: Vec<Tp> = match &named {
            Some(tps) => tps.clone(),
            None => committed.keys().cloned().collect(),
        };
        let plan = plan(s, scenario, &partitions, &committed, out)?;
        if execute && !plan.is_empty() {
            let offsets: Vec<(String, i32, i64)> =
                plan.iter().map(|((t, p), o)| (t.clone(), *p, *o)).collect();
            let failed: Vec<String> = s
                .conn_for(&group)?
                .offset_commit(&group, &offsets)?
                .into_iter()
                .filter(|(_, _, code)| *code != 0)
                .map(|(t, p, code)| format!("{t}-{p}: {}", exception_text(code)))
                .collect();
            if !failed.is_empty() {
                out.error(format!(
                    "Committing offsets of group '{group}' failed: {}",
                    failed.join("; ")
                ));
                continue;
            }
        }
        plans.push((group, plan));
    }
    if s.args.export {
        export(s, &plans, out);
    } else if !plans.is_empty() {
        print_plan(&plans, out);
    }
    Ok(())
}

/// The new offset of each partition, sorted by partition.
fn plan(
    s: &Session<'_>,
    scenario: Scenario,
    partitions: &[Tp],
    committed: &BTreeMap<Tp, i64>,
    out: &mut Output,
) -> anyhow::Result<Vec<(Tp, i64)>> {
    let mut sorted = partitions.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Ok(Vec::new());
    }
    let known = |m: &HashMap<Tp, Option<i64>>, tp: &Tp, what: &str| {
        m.get(tp)
            .copied()
            .flatten()
            .ok_or_else(|| anyhow!("Error getting {what} of topic partition: {}-{}", tp.0, tp.1))
    };
    match scenario {
        Scenario::Earliest => {
            let starts = s.list_offsets(&sorted, Offset::Beginning)?;
            sorted
                .into_iter()
                .map(|tp| known(&starts, &tp, "starting offset").map(|o| (tp, o)))
                .collect()
        }
        Scenario::Latest => {
            let ends = s.list_offsets(&sorted, Offset::End)?;
            sorted
                .into_iter()
                .map(|tp| known(&ends, &tp, "ending offset").map(|o| (tp, o)))
                .collect()
        }
        Scenario::ToOffset(n) => {
            let wanted: Vec<(Tp, i64)> = sorted.into_iter().map(|tp| (tp, n)).collect();
            clamp(s, wanted)
        }
        Scenario::ShiftBy(n) => {
            let mut wanted = Vec::with_capacity(sorted.len());
            for tp in sorted {
                let Some(current) = committed.get(&tp) else {
                    bail!(
                        "Cannot shift offset for partition {}-{} since there is no current committed offset",
                        tp.0,
                        tp.1
                    );
                };
                wanted.push((tp, current.saturating_add(n)));
            }
            clamp(s, wanted)
        }
        Scenario::Current => {
            let ends = s.list_offsets(&sorted, Offset::End)?;
            sorted
                .into_iter()
                .map(|tp| match committed.get(&tp) {
                    Some(o) => Ok((tp, *o)),
                    None => known(&ends, &tp, "ending offset").map(|o| (tp, o)),
                })
                .collect()
        }
        Scenario::AtTime(ts) => {
            let found = s.list_offsets(&sorted, Offset::Offset(ts))?;
            let ends = s.list_offsets(&sorted, Offset::End)?;
            let mut plan = Vec::with_capacity(sorted.len());
            for tp in sorted {
                match found.get(&tp).copied().flatten() {
                    Some(o) => plan.push((tp, o)),
                    None => {
                        out.line("");
                        out.line(format!(
                            "Warn: Partition {} from topic {} is empty. Falling back to latest known offset.",
                            tp.1, tp.0
                        ));
                        let o = known(&ends, &tp, "offset by timestamp")?;
                        plan.push((tp, o));
                    }
                }
            }
            Ok(plan)
        }
    }
}

/// Moves requested offsets into [earliest, latest], warning on stderr as Kafka does.
fn clamp(s: &Session<'_>, wanted: Vec<(Tp, i64)>) -> anyhow::Result<Vec<(Tp, i64)>> {
    let tps: Vec<Tp> = wanted.iter().map(|(tp, _)| tp.clone()).collect();
    let starts = s.list_offsets(&tps, Offset::Beginning)?;
    let ends = s.list_offsets(&tps, Offset::End)?;
    wanted
        .into_iter()
        .map(|(tp, n)| {
            let name = format!("{}-{}", tp.0, tp.1);
            let end = ends.get(&tp).copied().flatten().ok_or_else(|| {
                anyhow!("Unexpected non-existing offset value for topic partition {name}")
            })?;
            let start = starts.get(&tp).copied().flatten().unwrap_or(0);
            let o = if n > end {
                eprintln!(
                    "WARN New offset ({n}) is higher than latest offset for topic partition {name}. Value will be set to {end}."
                );
                end
            } else if n < start {
                eprintln!(
                    "WARN New offset ({n}) is lower than earliest offset for topic partition {name}. Value will be set to {start}."
                );
                start
            } else {
                n
            };
            Ok((tp, o))
        })
        .collect()
}

/// GROUP TOPIC PARTITION NEW-OFFSET.
fn print_plan(plans: &[(String, Vec<(Tp, i64)>)], out: &mut Output) {
    let wg = width(15, plans.iter().map(|(g, _)| g.as_str()));
    let wt = width(
        15,
        plans
            .iter()
            .flat_map(|(_, p)| p.iter().map(|((t, _), _)| t.as_str())),
    );
    out.line("");
    out.line(row(&[
        ("GROUP", wg),
        ("TOPIC", wt),
        ("PARTITION", 10),
        ("NEW-OFFSET", 0),
    ]));
    for (group, plan) in plans {
        for ((t, p), o) in plan {
            out.line(row(&[
                (group.as_str(), wg),
                (t.as_str(), wt),
                (p.to_string().as_str(), 10),
                (o.to_string().as_str(), 0),
            ]));
        }
    }
}

/// `--export`: CSV, `topic,partition,offset` for one group, with the group first otherwise.
fn export(s: &Session<'_>, plans: &[(String, Vec<(Tp, i64)>)], out: &mut Output) {
    let single = !s.args.all_groups && s.args.group.len() == 1;
    for (group, plan) in plans {
        for ((t, p), o) in plan {
            if single {
                out.line(format!("{t},{p},{o}"));
            } else {
                out.line(format!("{group},{t},{p},{o}"));
            }
        }
    }
    out.line("");
}
