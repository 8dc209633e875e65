//! `fjord consumer-groups` / `kafka-consumer-groups`: list, describe, reset the offsets of,
//! and delete consumer groups, with Kafka's options, output and messages.
//!
//! Flow: [`run`] checks the option combinations, then a [`Session`] ([`session`]) connects —
//! librdkafka first (reachability within `--timeout`, topic metadata, the group list,
//! ListOffsets), then raw requests ([`crate::wire`]) to each group's coordinator for what
//! librdkafka does not expose: DescribeGroups, OffsetFetch of every committed partition,
//! OffsetCommit outside a generation, DeleteGroups, OffsetDelete and ListGroups with filters.
//! The actions live in [`describe`] (`--list`, `--describe`), [`reset`] (`--reset-offsets`)
//! and [`delete`] (`--delete`, `--delete-offsets`); [`timespec`] parses `--to-datetime` /
//! `--by-duration`.
//!
//! Output is collected in an [`Output`] ([`output`]: Kafka's column layout and error texts)
//! and written at the end, so a failure for one group can be reported in place (on stdout,
//! as Kafka's `Error: ...` lines) and still make the exit status 1. Notes Kafka writes to
//! stderr ("has no active members", warnings) go there directly.

mod delete;
mod describe;
mod output;
mod reset;
mod session;
mod timespec;

use anyhow::{anyhow, bail};
use clap::ArgGroup;
use rdkafka::metadata::Metadata;

use self::output::{Output, exception_text, kafka_error, row, width};
use self::session::Session;
use crate::Verbatim;
use crate::client::ConnectionArgs;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-consumer-groups --bootstrap-server localhost:9092 --list
  kafka-consumer-groups --bootstrap-server localhost:9092 --list --state stable,empty
  kafka-consumer-groups --bootstrap-server localhost:9092 --describe --group my-group
  kafka-consumer-groups --bootstrap-server localhost:9092 --describe --group my-group --members --verbose
  kafka-consumer-groups --bootstrap-server localhost:9092 --describe --all-groups --state
  kafka-consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group my-group --topic log_topic --to-earliest --execute
  kafka-consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group my-group --topic log_topic:0,1 --shift-by -10 --dry-run
  kafka-consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group my-group --all-topics --to-datetime 2024-01-01T00:00:00.000
  kafka-consumer-groups --bootstrap-server localhost:9092 --delete --group my-group
  kafka-consumer-groups --bootstrap-server localhost:9092 --delete-offsets --group my-group --topic log_topic

--describe prints GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST
CLIENT-ID; LAG is the log end offset (high watermark) minus the committed offset, `-` where
nothing is committed. --reset-offsets only plans (--dry-run, the default) unless --execute
is given, and only for groups without active members. --to-datetime takes
YYYY-MM-DDTHH:mm:SS[.sss] with an optional zone (Z, +01:00; UTC when absent); --by-duration
takes an ISO-8601 duration (PnDTnHnMnS, e.g. PT1H30M).
Exit status: 0 on success, 1 when the operation fails (for any group) or the broker cannot
be reached, 2 on invalid usage.";

/// Arguments of `kafka-consumer-groups`, with Kafka's option names.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["list", "describe", "delete", "reset_offsets", "delete_offsets"])))]
#[command(group(ArgGroup::new("scenario").args(["to_offset", "to_earliest", "to_latest", "to_current", "shift_by", "to_datetime", "by_duration"])))]
pub struct ConsumerGroupsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// List all consumer groups
    #[arg(long)]
    list: bool,
    /// Describe groups: offsets and lag (default), --members or --state
    #[arg(long)]
    describe: bool,
    /// Delete groups (only groups without active members)
    #[arg(long)]
    delete: bool,
    /// Reset the committed offsets of inactive groups
    #[arg(long)]
    reset_offsets: bool,
    /// Delete the committed offsets of topics from a group
    #[arg(long)]
    delete_offsets: bool,
    /// The group to act on (repeatable)
    #[arg(long, value_name = "GROUP", conflicts_with = "all_groups")]
    group: Vec<String>,
    /// Act on every consumer group
    #[arg(long)]
    all_groups: bool,
    /// Topic for --reset-offsets / --delete-offsets, optionally with partitions: t:0,1,2 (repeatable)
    #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
    topic: Vec<String>,
    /// With --reset-offsets: every topic the group has committed offsets for
    #[arg(long, conflicts_with = "topic")]
    all_topics: bool,
    /// With --describe: the group's members
    #[arg(long)]
    members: bool,
    /// With --describe: partitions with their offsets and lag (the default)
    #[arg(long)]
    offsets: bool,
    /// With --describe: the group's state; with --list: show states, or only these (stable,empty,...)
    #[arg(long, value_name = "STATES", num_args = 0..=1, default_missing_value = "")]
    state: Option<String>,
    /// With --list: show group types, or only these (classic,consumer)
    #[arg(long = "type", value_name = "TYPES", num_args = 0..=1, default_missing_value = "")]
    group_type: Option<String>,
    /// With --describe: more columns (leader epochs, member assignments)
    #[arg(long)]
    verbose: bool,
    /// With --reset-offsets: only print the plan (the default)
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// With --reset-offsets: commit the new offsets
    #[arg(long)]
    execute: bool,
    /// With --reset-offsets: print the plan as CSV (topic,partition,offset)
    #[arg(long)]
    export: bool,
    /// Reset to this offset (clamped to the partition's earliest/latest)
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Reset to the earliest offset
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the latest offset (the log end)
    #[arg(long)]
    to_latest: bool,
    /// Reset to the committed offset (the latest where none is committed)
    #[arg(long)]
    to_current: bool,
    /// Move the committed offset by N (negative: back)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Reset to the first offset at or after a time: YYYY-MM-DDTHH:mm:SS.sss[zone]
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Reset to the first offset at or after now minus a duration: PnDTnHnMnS
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
}

/// The protocol types of consumer groups: `consumer`, and empty for a group that only has
/// committed offsets (Kafka's tool lists both, and no Connect groups).
fn is_consumer_protocol(protocol_type: &str) -> bool {
    protocol_type.is_empty() || protocol_type == "consumer"
}

/// Runs the command.
pub fn run(args: ConsumerGroupsArgs) -> anyhow::Result<()> {
    check_usage(&args)?;
    let settings = args.connection.settings()?;
    let raw_needed = !(args.list && args.state.is_none() && args.group_type.is_none());
    if raw_needed && !settings.plaintext() {
        bail!(
            "fjord consumer-groups needs a PLAINTEXT listener for this action (security.protocol is not PLAINTEXT)"
        );
    }
    let mut session = Session::connect(&args, settings)?;
    let mut out = Output::default();
    let result = if args.list {
        describe::list(&mut session, &mut out)
    } else if args.describe {
        describe::describe(&mut session, &mut out)
    } else if args.reset_offsets {
        reset::reset(&mut session, &mut out)
    } else if args.delete {
        delete::delete_groups(&mut session, &mut out)
    } else {
        delete::delete_offsets(&mut session, &mut out)
    };
    match result {
        Ok(()) => out.finish(),
        Err(e) => match e.downcast::<Verbatim>() {
            Ok(v) => Err(anyhow!(v)),
            Err(e) => {
                out.error(format!(
                    "Executing consumer group command failed due to {e:#}"
                ));
                out.finish()
            }
        },
    }
}

/// Kafka's option rules, checked before connecting.
fn check_usage(a: &ConsumerGroupsArgs) -> anyhow::Result<()> {
    let has_groups = !a.group.is_empty() || a.all_groups;
    let action = if a.list {
        "--list"
    } else if a.describe {
        "--describe"
    } else if a.delete {
        "--delete"
    } else if a.reset_offsets {
        "--reset-offsets"
    } else {
        "--delete-offsets"
    };
    if (a.describe || a.delete || a.reset_offsets) && !has_groups {
        bail!("Option {action} takes one of these options: --all-groups, --group");
    }
    if a.list && has_groups {
        bail!(
            "Option {} can't be used with option --list",
            if a.all_groups {
                "--all-groups"
            } else {
                "--group"
            }
        );
    }
    if a.delete_offsets && (a.group.len() != 1 || a.topic.is_empty()) {
        bail!("Option --delete-offsets takes the following options: one --group, --topic");
    }
    if a.delete && !a.topic.is_empty() {
        bail!(
            "The consumer does not support topic-specific offset deletion from a consumer group."
        );
    }
    if !(a.topic.is_empty() || a.reset_offsets || a.delete_offsets || a.delete) {
        bail!("Option --topic can't be used with option {action}");
    }
    let sub = [a.members, a.offsets, a.state.is_some()];
    if a.describe {
        if sub.iter().filter(|x| **x).count() > 1 {
            bail!(
                "Option --describe takes at most one of these options: --members, --offsets, --state"
            );
        }
        if a.state.as_deref().is_some_and(|s| !s.is_empty()) {
            bail!("Option --describe does not take a value for --state");
        }
    } else {
        for (set, name) in [
            (a.members, "--members"),
            (a.offsets, "--offsets"),
            (a.verbose, "--verbose"),
        ] {
            if set {
                bail!("Option {name} can only be used with --describe");
            }
        }
        if a.state.is_some() && !a.list {
            bail!("Option --state can only be used with --describe or --list");
        }
    }
    if a.group_type.is_some() && !a.list {
        bail!("Option --type can only be used with --list");
    }
    if a.list {
        describe::parse_states(a.state.as_deref().unwrap_or(""))?;
        describe::parse_types(a.group_type.as_deref().unwrap_or(""))?;
    }
    let scenario = scenario_name(a);
    if a.reset_offsets {
        if scenario.is_none() {
            bail!(
                "Option --reset-offsets requires one of the following scenarios: --to-datetime, --by-duration, --to-earliest, --to-latest, --shift-by, --to-current, --to-offset"
            );
        }
        if a.topic.is_empty() && !a.all_topics {
            bail!("One of the reset scopes should be defined: --all-topics, --topic.");
        }
    } else {
        let reset_only = [
            (a.dry_run, "--dry-run"),
            (a.execute, "--execute"),
            (a.export, "--export"),
            (a.all_topics, "--all-topics"),
        ];
        if let Some(name) =
            scenario.or_else(|| reset_only.iter().find(|(s, _)| *s).map(|(_, n)| *n))
        {
            bail!("Option {name} can only be used with --reset-offsets");
        }
    }
    Ok(())
}

/// The reset scenario option given, if any.
fn scenario_name(a: &ConsumerGroupsArgs) -> Option<&'static str> {
    [
        (a.to_offset.is_some(), "--to-offset"),
        (a.to_earliest, "--to-earliest"),
        (a.to_latest, "--to-latest"),
        (a.to_current, "--to-current"),
        (a.shift_by.is_some(), "--shift-by"),
        (a.to_datetime.is_some(), "--to-datetime"),
        (a.by_duration.is_some(), "--by-duration"),
    ]
    .into_iter()
    .find(|(set, _)| *set)
    .map(|(_, name)| name)
}

/// A topic partition.
type Tp = (String, i32);

/// The partitions `--topic` values name.
struct TopicSelection {
    /// Partitions, sorted; named ones (`t:0,1`) whether or not they exist.
    partitions: Vec<Tp>,
    /// Topics named without partitions that do not exist, in order.
    unknown: Vec<String>,
}

/// Parses `--topic` values: `t` (all its partitions, from metadata) or `t:0,1,2`.
fn topic_partitions(specs: &[String], metadata: &Metadata) -> anyhow::Result<TopicSelection> {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for spec in specs {
        match spec.split_once(':') {
            Some((topic, parts)) => {
                if topic.is_empty() || parts.contains(':') {
                    bail!("Invalid topic arg '{spec}', expected topic name and partitions");
                }
                for p in parts.split(',') {
                    let p: i32 = p.trim().parse().map_err(|_| {
                        anyhow!("Invalid partition '{p}' specified in topic arg '{spec}'")
                    })?;
                    out.push((topic.to_string(), p));
                }
            }
            None => match metadata.topics().iter().find(|t| t.name() == spec) {
                Some(t) if t.error().is_none() => {
                    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                    ids.sort_unstable();
                    out.extend(ids.into_iter().map(|p| (spec.clone(), p)));
                }
                _ => unknown.push(spec.clone()),
            },
        }
    }
    out.sort();
    out.dedup();
    Ok(TopicSelection {
        partitions: out,
        unknown,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConsumerGroupsArgs,
    }

    fn parse(args: &[&str]) -> Result<ConsumerGroupsArgs, clap::Error> {
        let mut all = vec!["kafka-consumer-groups"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.args)
    }

    fn usage(args: &[&str]) -> String {
        match check_usage(&parse(args).unwrap()) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn exactly_one_action_and_one_scenario() {
        assert!(parse(&["--list"]).is_ok());
        assert!(parse(&[]).is_err());
        assert!(parse(&["--list", "--describe"]).is_err());
        assert!(parse(&["--reset-offsets", "--to-earliest", "--to-latest"]).is_err());
        assert!(parse(&["--reset-offsets", "--dry-run", "--execute"]).is_err());
        assert!(parse(&["--describe", "--group", "g", "--all-groups"]).is_err());
        let a = parse(&[
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--shift-by",
            "-3",
        ])
        .unwrap();
        assert_eq!(a.shift_by, Some(-3));
        let a = parse(&["--list", "--state"]).unwrap();
        assert_eq!(a.state.as_deref(), Some(""));
        let a = parse(&["--list", "--state", "stable,empty"]).unwrap();
        assert_eq!(a.state.as_deref(), Some("stable,empty"));
    }

    #[test]
    fn kafka_usage_rules() {
        assert_eq!(
            usage(&["--describe"]),
            "Option --describe takes one of these options: --all-groups, --group"
        );
        assert_eq!(usage(&["--describe", "--group", "g", "--members"]), "");
        assert!(
            usage(&["--describe", "--group", "g", "--members", "--state"]).contains("at most one")
        );
        assert!(
            usage(&["--describe", "--group", "g", "--state", "stable"])
                .contains("does not take a value")
        );
        assert!(usage(&["--reset-offsets", "--group", "g", "--topic", "t"]).contains("scenarios"));
        assert_eq!(
            usage(&["--reset-offsets", "--group", "g", "--to-earliest"]),
            "One of the reset scopes should be defined: --all-topics, --topic."
        );
        assert!(usage(&["--delete", "--group", "g", "--topic", "t"]).contains("topic-specific"));
        assert!(usage(&["--delete-offsets", "--group", "g"]).contains("--delete-offsets"));
        assert!(usage(&["--list", "--to-earliest"]).contains("only be used with --reset-offsets"));
        assert!(usage(&["--list", "--group", "g"]).contains("can't be used with option --list"));
        assert!(usage(&["--describe", "--all-groups", "--type"]).contains("--type"));
    }
}
