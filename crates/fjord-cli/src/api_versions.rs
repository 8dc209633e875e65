//! `fjord broker-api-versions` / `kafka-broker-api-versions`: the API versions each broker
//! advertises, in the layout of Kafka's tool, with the version this tool's protocol library
//! would use (`usable`). What a client negotiates is what a broker lists here, so this is the
//! first thing to look at when a client and a broker disagree.

use kafka_protocol::messages::ApiKey;

use crate::client::{self, ConnectionArgs};
use crate::wire::Conn;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-broker-api-versions --bootstrap-server localhost:9092

Output, per broker:
  localhost:9092 (id: 1 rack: null) -> (
  	Produce(0): 3 to 12 [usable: 12],
  	...
  )
\"usable\" is the highest version both the broker and this tool's protocol library speak;
APIs the broker does not offer read UNSUPPORTED.";

/// Arguments of `kafka-broker-api-versions`, with Kafka's option names.
#[derive(clap::Args, Debug)]
pub struct ApiVersionsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `3 to 12` or `4` for one version.
fn range(min: i16, max: i16) -> String {
    if min == max {
        min.to_string()
    } else {
        format!("{min} to {max}")
    }
}

/// The lines between `(` and `)` for one broker: every API this tool knows, in key order,
/// then any the broker advertises that it does not know.
fn api_lines(advertised: &[(i16, i16, i16)]) -> Vec<String> {
    let mut lines = Vec::new();
    for key in ApiKey::iter() {
        let code = key as i16;
        let ours = key.valid_versions();
        let line = match advertised.iter().find(|(k, _, _)| *k == code) {
            None => format!("{key:?}({code}): UNSUPPORTED"),
            Some(&(_, min, max)) => {
                let usable = if max < ours.min {
                    "unusable: node too old".to_string()
                } else if min > ours.max {
                    "unusable: node too new".to_string()
                } else {
                    format!("usable: {}", max.min(ours.max))
                };
                format!("{key:?}({code}): {} [{usable}]", range(min, max))
            }
        };
        lines.push(line);
    }
    for &(code, min, max) in advertised {
        if ApiKey::try_from(code).is_err() {
            lines.push(format!("UNKNOWN({code}): {}", range(min, max)));
        }
    }
    lines
}

/// Runs the command.
pub fn run(args: ApiVersionsArgs) -> anyhow::Result<()> {
    let settings = args.connection.wire_settings("broker-api-versions")?;
    let (_, brokers) = client::cluster(&settings, "broker-api-versions")?;
    for (id, addr) in brokers {
        let conn = Conn::open(&addr, settings.timeout)?;
        let lines = api_lines(conn.advertised());
        outln!("{addr} (id: {id} rack: null) -> (")?;
        for (i, line) in lines.iter().enumerate() {
            let comma = if i + 1 < lines.len() { "," } else { "" };
            outln!("\t{line}{comma}")?;
        }
        outln!(")")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_show_ranges_usable_versions_and_gaps() {
        let produce = ApiKey::Produce.valid_versions();
        let lines = api_lines(&[
            (0, 3, produce.max + 5),
            (1, 4, 4),
            (3, 0, 0),
            (18, 99, 100),
            (9999, 0, 1),
        ]);
        assert_eq!(
            lines[0],
            format!(
                "Produce(0): 3 to {} [usable: {}]",
                produce.max + 5,
                produce.max
            )
        );
        assert_eq!(lines[1], "Fetch(1): 4 [usable: 4]");
        assert_eq!(lines[2], "ListOffsets(2): UNSUPPORTED");
        assert!(
            lines[3].starts_with("Metadata(3): 0 [usable: 0]"),
            "{}",
            lines[3]
        );
        let api_versions = lines
            .iter()
            .find(|l| l.starts_with("ApiVersions(18)"))
            .unwrap();
        assert_eq!(
            api_versions,
            "ApiVersions(18): 99 to 100 [unusable: node too new]"
        );
        assert_eq!(lines.last().unwrap(), "UNKNOWN(9999): 0 to 1");
        assert_eq!(lines.len(), ApiKey::iter().count() + 1);
    }
}
