//! The `fjord` binary: the broker (`fjord start`) and Kafka's command-line tools.
//!
//! Layout: [`start`] runs the broker; [`topics`], [`producer`], [`consumer`], [`configs`] and
//! [`get_offsets`] are the Kafka tools (librdkafka clients, Kafka's option names and output),
//! sharing [`client`] (connection settings and the reachability deadline), [`props`]
//! (property parsing, "did you mean") and [`wire`] (the few raw requests `rdkafka` lacks).
//! Invoked through a link named like a Kafka tool (`kafka-topics`, `kafka-topics.sh`, ...)
//! the binary behaves as that tool ([`aliases`]).
//!
//! Exit status of the tools: 0 on success, 1 when the operation fails or the broker cannot be
//! reached, 2 on invalid usage.

/// `println!` that returns the write error instead of panicking, so a closed pipe
/// (`fjord topics --list | head -1`) ends the tool quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod aliases;
mod api_versions;
mod client;
mod configs;
mod consumer;
mod consumer_groups;
mod delete_records;
mod formatter;
mod get_offsets;
mod line_reader;
mod log_dirs;
mod malloc;
mod perf;
mod producer;
mod props;
mod signals;
mod start;
mod topics;
mod wire;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// An error whose text is printed as it is (Kafka's own wording), on stdout when Kafka's
/// tool prints it there.
#[derive(Debug)]
pub struct Verbatim(pub String);

impl std::fmt::Display for Verbatim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Verbatim {}

#[derive(Parser)]
#[command(
    name = "fjord",
    version,
    about = "Fjord: a Kafka-compatible event streaming platform in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker (zero configuration: 127.0.0.1:9092, data in ./fjord-data)
    #[command(after_help = start::EXAMPLES)]
    Start(start::StartArgs),
    /// Create, list, describe, alter and delete topics (kafka-topics)
    #[command(after_help = topics::EXAMPLES, infer_long_args = true)]
    Topics(topics::TopicsArgs),
    /// Write stdin lines to a topic, one record each (kafka-console-producer)
    #[command(after_help = producer::EXAMPLES, infer_long_args = true)]
    ConsoleProducer(producer::ProducerArgs),
    /// Print records of topics to stdout (kafka-console-consumer)
    #[command(after_help = consumer::EXAMPLES, infer_long_args = true)]
    ConsoleConsumer(consumer::ConsumerArgs),
    /// List, describe, reset the offsets of and delete consumer groups (kafka-consumer-groups)
    #[command(after_help = consumer_groups::EXAMPLES, infer_long_args = true)]
    ConsumerGroups(consumer_groups::ConsumerGroupsArgs),
    /// Describe and alter topic and broker configs and client quotas (kafka-configs)
    #[command(after_help = configs::EXAMPLES, infer_long_args = true)]
    Configs(configs::ConfigsArgs),
    /// Delete the records before given offsets (kafka-delete-records)
    #[command(after_help = delete_records::EXAMPLES, infer_long_args = true)]
    DeleteRecords(delete_records::DeleteRecordsArgs),
    /// The API versions each broker advertises (kafka-broker-api-versions)
    #[command(after_help = api_versions::EXAMPLES, infer_long_args = true)]
    BrokerApiVersions(api_versions::ApiVersionsArgs),
    /// Log directories and partition sizes of each broker (kafka-log-dirs)
    #[command(after_help = log_dirs::EXAMPLES, infer_long_args = true)]
    LogDirs(log_dirs::LogDirsArgs),
    /// Print partition offsets: latest, earliest or by timestamp (kafka-get-offsets)
    #[command(after_help = get_offsets::EXAMPLES, infer_long_args = true)]
    GetOffsets(get_offsets::GetOffsetsArgs),
    /// Producer, consumer and end-to-end load tests (kafka-producer-perf-test, kafka-consumer-perf-test)
    #[command(after_help = perf::EXAMPLES)]
    Perf(perf::PerfArgs),
    /// Write kafka-topics, kafka-console-producer, kafka-delete-records, kafka-producer-perf-test, ... links (with and without .sh) into DIR
    #[command(
        after_help = "Examples:\n  fjord aliases ~/bin\n  ~/bin/kafka-topics.sh --bootstrap-server localhost:9092 --list"
    )]
    Aliases {
        /// Directory for the links (created if missing)
        dir: PathBuf,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  fjord completions bash > /etc/bash_completion.d/fjord\n  fjord completions zsh > \"${fpath[1]}/_fjord\"\n  fjord completions fish > ~/.config/fish/completions/fjord.fish"
    )]
    Completions {
        /// bash, zsh or fish
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    malloc::linked();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let argv0 = argv
        .first()
        .and_then(|a| a.to_str())
        .unwrap_or("fjord")
        .to_string();
    let command = match aliases::tool_for(&argv0) {
        Some((sub, shown)) => parse_as_tool(sub, &shown, argv),
        None => Cli::parse_from(argv).command,
    };
    let is_start = matches!(command, Command::Start(_));
    match dispatch(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_start => {
            eprintln!("fjord: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<Verbatim>() {
                // Kafka's tools print their "Error while executing ..." line on stdout.
                Some(v) => println!("{v}"),
                None => eprintln!("Error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether an error is a write to a closed stdout pipe (the reader went away: not a failure).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Parses `argv` as the arguments of subcommand `sub`, showing `shown` as the program name.
fn parse_as_tool(sub: &str, shown: &str, argv: Vec<OsString>) -> Command {
    let mut root = Cli::command();
    // `perf produce`: a subcommand of a subcommand.
    let (outer, inner) = match sub.split_once(' ') {
        Some((outer, inner)) => (outer, Some(inner)),
        None => (sub, None),
    };
    let Some(cmd) = root.find_subcommand_mut(outer).and_then(|c| match inner {
        Some(inner) => c.find_subcommand_mut(inner),
        None => Some(c),
    }) else {
        // Every tool name maps to a subcommand; fall back to normal parsing otherwise.
        return Cli::parse_from(argv).command;
    };
    // The program name lives as long as the process; clap wants it `'static`.
    let shown: &'static str = Box::leak(shown.to_string().into_boxed_str());
    let mut cmd = cmd.clone().name(shown).bin_name(shown);
    let matches = cmd
        .try_get_matches_from_mut(argv)
        .unwrap_or_else(|e| e.exit());
    let parsed = match sub {
        "topics" => topics::TopicsArgs::from_arg_matches(&matches).map(Command::Topics),
        "console-producer" => {
            producer::ProducerArgs::from_arg_matches(&matches).map(Command::ConsoleProducer)
        }
        "console-consumer" => {
            consumer::ConsumerArgs::from_arg_matches(&matches).map(Command::ConsoleConsumer)
        }
        "consumer-groups" => consumer_groups::ConsumerGroupsArgs::from_arg_matches(&matches)
            .map(Command::ConsumerGroups),
        "configs" => configs::ConfigsArgs::from_arg_matches(&matches).map(Command::Configs),
        "delete-records" => delete_records::DeleteRecordsArgs::from_arg_matches(&matches)
            .map(Command::DeleteRecords),
        "log-dirs" => log_dirs::LogDirsArgs::from_arg_matches(&matches).map(Command::LogDirs),
        "broker-api-versions" => api_versions::ApiVersionsArgs::from_arg_matches(&matches)
            .map(Command::BrokerApiVersions),
        "perf produce" | "perf consume" => {
            perf::PerfArgs::from_tool_matches(inner.unwrap_or_default(), &matches)
                .map(Command::Perf)
        }
        _ => get_offsets::GetOffsetsArgs::from_arg_matches(&matches).map(Command::GetOffsets),
    };
    parsed.unwrap_or_else(|e| e.format(&mut cmd).exit())
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Start(args) => start::run(args),
        Command::Topics(args) => topics::run(args),
        Command::ConsoleProducer(args) => producer::run(args),
        Command::ConsoleConsumer(args) => consumer::run(args),
        Command::ConsumerGroups(args) => consumer_groups::run(args),
        Command::Configs(args) => configs::run(args),
        Command::DeleteRecords(args) => delete_records::run(args),
        Command::LogDirs(args) => log_dirs::run(args),
        Command::BrokerApiVersions(args) => api_versions::run(args),
        Command::GetOffsets(args) => get_offsets::run(args),
        Command::Perf(args) => perf::run(args),
        Command::Aliases { dir } => aliases::write(&dir),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "fjord", &mut script);
            use std::io::Write as _;
            std::io::stdout().lock().write_all(&script)?;
            Ok(())
        }
    }
}

/// Parses `args` as one tool's arguments (`A`, a `clap::Args` struct), for unit tests.
#[cfg(test)]
pub(crate) fn parse_tool_args<A: clap::Args + clap::FromArgMatches>(
    args: &[&str],
) -> Result<A, clap::Error> {
    let mut matches = A::augment_args(clap::Command::new("fjord"))
        .try_get_matches_from(std::iter::once("fjord").chain(args.iter().copied()))?;
    A::from_arg_matches_mut(&mut matches)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kafka_style_arguments_parse() {
        let cli = Cli::try_parse_from([
            "fjord",
            "topics",
            "--bootstrap-server",
            "localhost:9092",
            "--topic",
            "log_topic",
            "--create",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ]);
        assert!(cli.is_ok());
        // Exactly one action.
        assert!(Cli::try_parse_from(["fjord", "topics", "--list", "--describe"]).is_err());
        assert!(Cli::try_parse_from(["fjord", "topics"]).is_err());
        // Unambiguous prefixes work, as with Kafka's option parser.
        assert!(Cli::try_parse_from(["fjord", "topics", "--bootstrap", "h:1", "--list"]).is_ok());
        assert!(
            Cli::try_parse_from([
                "fjord",
                "console-consumer",
                "--topic",
                "t",
                "--from-beginning"
            ])
            .is_ok()
        );
        assert!(Cli::try_parse_from(["fjord", "console-consumer"]).is_err());
        assert!(
            Cli::try_parse_from(["fjord", "get-offsets", "--topic", "t", "--time", "-2"]).is_ok()
        );
        assert!(
            Cli::try_parse_from([
                "fjord",
                "consumer-groups",
                "--list",
                "--bootstrap-server",
                "x"
            ])
            .is_ok()
        );
    }
}
