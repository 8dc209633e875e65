//! `--list` and `--describe` (offsets and lag, `--members`, `--state`), in the layouts of
//! Kafka's ConsumerGroupCommand: a blank line, a header, then one line per row, columns
//! left-aligned to the widest value (at least 15 wide for names, fixed widths for numbers).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::bail;
use rdkafka::Offset;

use super::{Output, Session, Tp, exception_text, is_consumer_protocol, row, width};
use crate::wire::{Conn, GroupDescription, GroupMember, ListedGroup};

/// Group states a consumer group can be in (Kafka's `GroupState` names).
const STATES: &[&str] = &[
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
];

/// Group types: (ListGroups name, Kafka's display name).
const TYPES: &[(&str, &str)] = &[("classic", "Classic"), ("consumer", "Consumer")];

/// GROUP_ID_NOT_FOUND.
const GROUP_ID_NOT_FOUND: i16 = 69;

/// Parses `--state stable,empty` (case-insensitive) into Kafka's state names; empty input
/// means no filter.
pub(super) fn parse_states(input: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for s in input.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match STATES.iter().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(k) => out.push((*k).to_string()),
            None => bail!(
                "Invalid state list '{input}'. Valid states are: {}",
                STATES.join(", ")
            ),
        }
    }
    Ok(out)
}

/// Parses `--type classic,consumer` (case-insensitive); empty input means no filter.
pub(super) fn parse_types(input: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for s in input.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match TYPES.iter().find(|(k, _)| k.eq_ignore_ascii_case(s)) {
            Some((k, _)) => out.push((*k).to_string()),
            None => bail!("Invalid types list '{input}'. Valid types are: Classic, Consumer"),
        }
    }
    Ok(out)
}

/// `--list`: group ids, one a line; with `--state` / `--type`, a table of them.
pub(super) fn list(s: &mut Session<'_>, out: &mut Output) -> anyhow::Result<()> {
    let (state, group_type) = (s.args.state.clone(), s.args.group_type.clone());
    if state.is_none() && group_type.is_none() {
        for g in s.consumer_groups()? {
            out.line(g);
        }
        return Ok(());
    }
    let states = parse_states(state.as_deref().unwrap_or(""))?;
    let types = parse_types(group_type.as_deref().unwrap_or(""))?;
    let groups = list_everywhere(s, &states, &types)?;
    let wg = width(15, groups.iter().map(|g| g.id.as_str())) + 10;
    let mut header = vec![("GROUP", wg)];
    if group_type.is_some() {
        header.push(("TYPE", 20));
    }
    if state.is_some() {
        header.push(("STATE", 20));
    }
    out.line(row(&header));
    for g in &groups {
        let shown_type = g
            .group_type
            .as_deref()
            .and_then(|t| TYPES.iter().find(|(k, _)| k.eq_ignore_ascii_case(t)))
            .map_or("Unknown", |(_, shown)| shown);
        let shown_state = g.state.as_deref().unwrap_or("Unknown");
        let mut cells = vec![(g.id.as_str(), wg)];
        if group_type.is_some() {
            cells.push((shown_type, 20));
        }
        if state.is_some() {
            cells.push((shown_state, 20));
        }
        out.line(row(&cells));
    }
    Ok(())
}

/// ListGroups on every broker (each lists the groups it coordinates), consumer groups only,
/// sorted by id.
fn list_everywhere(
    s: &mut Session<'_>,
    states: &[String],
    types: &[String],
) -> anyhow::Result<Vec<ListedGroup>> {
    let brokers: Vec<String> = s
        .metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    let mut by_id: BTreeMap<String, ListedGroup> = BTreeMap::new();
    let mut add = |groups: Vec<ListedGroup>| {
        for g in groups {
            if is_consumer_protocol(&g.protocol_type) {
                by_id.insert(g.id.clone(), g);
            }
        }
    };
    if brokers.is_empty() {
        add(s.bootstrap_conn()?.list_groups(states, types)?);
    }
    for addr in brokers {
        add(Conn::open(&addr, s.timeout())?.list_groups(states, types)?);
    }
    Ok(by_id.into_values().collect())
}

/// `--describe`: for each group, the offsets table (default), `--members` or `--state`.
pub(super) fn describe(s: &mut Session<'_>, out: &mut Output) -> anyhow::Result<()> {
    for group in s.target_groups()? {
        let d = s.describe_group(&group)?;
        if d.error_code == GROUP_ID_NOT_FOUND || d.state == "Dead" {
            out.error(format!("Consumer group '{group}' does not exist."));
            continue;
        }
        if d.error_code != 0 {
            out.error(exception_text(d.error_code));
            continue;
        }
        note_state(&d);
        if s.args.members {
            members(s.args.verbose, &d, out);
        } else if s.args.state.is_some() {
            state(s, &d, out)?;
        } else {
            offsets(s, &d, out)?;
        }
    }
    Ok(())
}

/// Kafka's notes on stderr for groups without members or in a rebalance.
fn note_state(d: &GroupDescription) {
    match d.state.as_str() {
        "Empty" => eprintln!("\nConsumer group '{}' has no active members.", d.id),
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            eprintln!("\nWarning: Consumer group '{}' is rebalancing.", d.id);
        }
        _ => {}
    }
}

/// One line of the offsets table.
struct OffsetRow<'a> {
    topic: String,
    partition: i32,
    /// (offset, leader epoch) committed, if any.
    committed: Option<(i64, i32)>,
    member: Option<&'a GroupMember>,
}

/// The offsets table: partitions assigned to members (members with the most partitions
/// first), then committed partitions nobody is assigned, with log end offsets and lag.
fn offsets(s: &mut Session<'_>, d: &GroupDescription, out: &mut Output) -> anyhow::Result<()> {
    let committed: HashMap<Tp, (i64, i32)> = s
        .committed(&d.id)?
        .into_iter()
        .map(|c| ((c.topic, c.partition), (c.offset, c.leader_epoch)))
        .collect();
    let mut members: Vec<&GroupMember> = d
        .members
        .iter()
        .filter(|m| m.assignment.iter().any(|(_, ps)| !ps.is_empty()))
        .collect();
    members.sort_by_key(|m| Reverse(assigned_count(m)));
    let mut rows: Vec<OffsetRow<'_>> = Vec::new();
    let mut assigned: BTreeSet<Tp> = BTreeSet::new();
    for m in members {
        let mut tps: Vec<Tp> = m
            .assignment
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect();
        tps.sort();
        tps.dedup();
        for tp in tps {
            assigned.insert(tp.clone());
            rows.push(OffsetRow {
                committed: committed.get(&tp).copied(),
                topic: tp.0,
                partition: tp.1,
                member: Some(m),
            });
        }
    }
    let mut unassigned: Vec<(&Tp, &(i64, i32))> = committed
        .iter()
        .filter(|(tp, _)| !assigned.contains(*tp))
        .collect();
    unassigned.sort();
    for ((t, p), c) in unassigned {
        rows.push(OffsetRow {
            topic: t.clone(),
            partition: *p,
            committed: Some(*c),
            member: None,
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    let tps: Vec<Tp> = rows
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    let ends = s.list_offsets(&tps, Offset::End)?;

    let verbose = s.args.verbose;
    let dash = || "-".to_string();
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let end = ends.get(&(r.topic.clone(), r.partition)).copied().flatten();
            let lag = match (r.committed, end) {
                (Some((o, _)), Some(e)) => (e - o).to_string(),
                _ => dash(),
            };
            [
                d.id.clone(),
                r.topic.clone(),
                r.partition.to_string(),
                r.committed
                    .filter(|(_, epoch)| *epoch >= 0)
                    .map_or_else(dash, |(_, epoch)| epoch.to_string()),
                r.committed.map_or_else(dash, |(o, _)| o.to_string()),
                end.map_or_else(dash, |e| e.to_string()),
                lag,
                r.member.map_or_else(dash, |m| m.member_id.clone()),
                r.member.map_or_else(dash, |m| m.client_host.clone()),
                r.member.map_or_else(dash, |m| m.client_id.clone()),
            ]
        })
        .collect();
    let col = |i: usize| cells.iter().map(move |c| c[i].as_str());
    let (wg, wt, wc, wh) = (
        width(15, col(0)),
        width(15, col(1)),
        width(15, col(7)),
        width(15, col(8)),
    );
    let header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "LEADER-EPOCH",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ];
    let widths = [wg, wt, 10, 15, 15, 15, 15, wc, wh, 0];
    let line = |values: [&str; 10]| {
        let mut picked: Vec<(&str, usize)> = Vec::with_capacity(10);
        for (i, v) in values.iter().enumerate() {
            // LEADER-EPOCH only with --verbose.
            if i == 3 && !verbose {
                continue;
            }
            picked.push((v, widths[i]));
        }
        row(&picked)
    };
    out.line("");
    out.line(line(header));
    for c in &cells {
        out.line(line([
            &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &c[9],
        ]));
    }
    Ok(())
}

fn assigned_count(m: &GroupMember) -> usize {
    m.assignment.iter().map(|(_, ps)| ps.len()).sum()
}

/// `topic(0,1), other(2)`: a member's assignment, topics sorted; `-` when empty.
fn assignment_text(m: &GroupMember) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, ps) in &m.assignment {
        by_topic.entry(t.as_str()).or_default().extend(ps);
    }
    let parts: Vec<String> = by_topic
        .into_iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            ps.dedup();
            let ids: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}({})", ids.join(","))
        })
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// `--members`: GROUP CONSUMER-ID [GROUP-INSTANCE-ID] HOST CLIENT-ID #PARTITIONS, and
/// ASSIGNMENT with `--verbose`.
fn members(verbose: bool, d: &GroupDescription, out: &mut Output) {
    let with_instance = d
        .members
        .iter()
        .any(|m| m.instance_id.as_deref().is_some_and(|i| !i.is_empty()));
    let wg = width(15, [d.id.as_str()]);
    let wc = width(15, d.members.iter().map(|m| m.member_id.as_str()));
    let wi = width(
        17,
        d.members
            .iter()
            .map(|m| m.instance_id.as_deref().unwrap_or("")),
    );
    let wh = width(15, d.members.iter().map(|m| m.client_host.as_str()));
    let wcl = width(15, d.members.iter().map(|m| m.client_id.as_str()));
    let line = |group: &str, id: &str, inst: &str, host: &str, client: &str, n: &str| {
        let mut cells = vec![(group, wg), (id, wc)];
        if with_instance {
            cells.push((inst, wi));
        }
        cells.extend([(host, wh), (client, wcl), (n, 15)]);
        // Kafka's format ends with "%-15s " (a trailing space before the optional column).
        format!("{} ", row(&cells))
    };
    out.line("");
    let mut header = line(
        "GROUP",
        "CONSUMER-ID",
        "GROUP-INSTANCE-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
    );
    if verbose {
        header.push_str("ASSIGNMENT");
    }
    out.line(header);
    for m in &d.members {
        let n = assigned_count(m).to_string();
        let mut l = line(
            &d.id,
            &m.member_id,
            m.instance_id.as_deref().unwrap_or(""),
            &m.client_host,
            &m.client_id,
            &n,
        );
        if verbose {
            l.push_str(&assignment_text(m));
        }
        out.line(l);
    }
}

/// `--state`: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS.
fn state(s: &mut Session<'_>, d: &GroupDescription, out: &mut Output) -> anyhow::Result<()> {
    let c = s.coordinator(&d.id)?;
    let coordinator = format!("{}:{}  ({})", c.host, c.port, c.id);
    let wg = width(15, [d.id.as_str()]);
    let wco = width(25, [coordinator.as_str()]);
    let strategy = if d.protocol.is_empty() {
        "-"
    } else {
        d.protocol.as_str()
    };
    let members = d.members.len().to_string();
    out.line("");
    out.line(row(&[
        ("GROUP", wg),
        ("COORDINATOR (ID)", wco),
        ("ASSIGNMENT-STRATEGY", 20),
        ("STATE", 20),
        ("#MEMBERS", 0),
    ]));
    out.line(row(&[
        (d.id.as_str(), wg),
        (coordinator.as_str(), wco),
        (strategy, 20),
        (d.state.as_str(), 20),
        (members.as_str(), 0),
    ]));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn states_and_types_parse_case_insensitively() {
        assert_eq!(parse_states("stable, EMPTY").unwrap(), ["Stable", "Empty"]);
        assert!(parse_states("").unwrap().is_empty());
        let e = parse_states("stable,nap").unwrap_err().to_string();
        assert!(
            e.starts_with("Invalid state list 'stable,nap'. Valid states are: "),
            "{e}"
        );
        assert_eq!(
            parse_types("Classic,consumer").unwrap(),
            ["classic", "consumer"]
        );
        assert!(parse_types("share").is_err());
    }

    #[test]
    fn assignments_print_grouped_by_topic() {
        let m = GroupMember {
            member_id: "m".into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            assignment: vec![("b".into(), vec![2, 0]), ("a".into(), vec![1])],
        };
        assert_eq!(assignment_text(&m), "a(1), b(0,2)");
        assert_eq!(assigned_count(&m), 3);
        let none = GroupMember {
            assignment: vec![],
            ..m
        };
        assert_eq!(assignment_text(&none), "-");
    }

    #[test]
    fn members_table_matches_kafkas_layout() {
        let d = GroupDescription {
            id: "g".into(),
            error_code: 0,
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![GroupMember {
                member_id: "rdkafka-1234".into(),
                instance_id: None,
                client_id: "rdkafka".into(),
                client_host: "/127.0.0.1".into(),
                assignment: vec![("t".into(), vec![0, 1])],
            }],
        };
        let mut out = Output::default();
        members(true, &d, &mut out);
        let lines: Vec<&str> = out.text.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            format!(
                "{:<15} {:<15} {:<15} {:<15} {:<15} ASSIGNMENT",
                "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"
            )
        );
        assert_eq!(
            lines[2],
            format!(
                "{:<15} {:<15} {:<15} {:<15} {:<15} t(0,1)",
                "g", "rdkafka-1234", "/127.0.0.1", "rdkafka", "2"
            )
        );
    }
}
