//! Kafka tool names: `kafka-topics`, `kafka-console-producer`, ... (with or without `.sh`)
//! are links to the `fjord` binary, which dispatches on the name it was invoked by.
//! `fjord aliases DIR` writes those links.

use std::path::Path;

use anyhow::{Context, bail};

/// Kafka tool name -> fjord subcommand (`perf produce`: a subcommand of `perf`).
pub const TOOLS: &[(&str, &str)] = &[
    ("kafka-topics", "topics"),
    ("kafka-console-producer", "console-producer"),
    ("kafka-console-consumer", "console-consumer"),
    ("kafka-consumer-groups", "consumer-groups"),
    ("kafka-configs", "configs"),
    ("kafka-get-offsets", "get-offsets"),
    ("kafka-delete-records", "delete-records"),
    ("kafka-log-dirs", "log-dirs"),
    ("kafka-broker-api-versions", "broker-api-versions"),
    ("kafka-producer-perf-test", "perf produce"),
    ("kafka-consumer-perf-test", "perf consume"),
];

/// The subcommand a program name stands for (`/usr/bin/kafka-topics.sh` -> `topics`), and
/// the tool name to show in help (`kafka-topics.sh`).
pub fn tool_for(argv0: &str) -> Option<(&'static str, String)> {
    let base = Path::new(argv0).file_name()?.to_str()?;
    let name = base.strip_suffix(".sh").unwrap_or(base);
    TOOLS
        .iter()
        .find(|(tool, _)| *tool == name)
        .map(|(_, sub)| (*sub, base.to_string()))
}

/// Writes a symlink for every tool name, with and without `.sh`, pointing at the running
/// executable. Existing symlinks of those names are replaced; other files are left alone
/// and reported as an error.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the fjord executable")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (tool, _) in TOOLS {
        for name in [tool.to_string(), format!("{tool}.sh")] {
            let link = dir.join(&name);
            match std::fs::symlink_metadata(&link) {
                Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(&link)
                    .with_context(|| format!("replacing {}", link.display()))?,
                Ok(_) => bail!(
                    "{} exists and is not a symlink; not replacing it",
                    link.display()
                ),
                Err(_) => {}
            }
            std::os::unix::fs::symlink(&exe, &link)
                .with_context(|| format!("creating {}", link.display()))?;
            written.push(link);
        }
    }
    // Reported after all links exist, so a closed stdout cannot leave the set incomplete.
    for link in written {
        outln!("{} -> {}", link.display(), exe.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tool_names_map_to_subcommands() {
        assert_eq!(tool_for("kafka-topics").unwrap().0, "topics");
        assert_eq!(
            tool_for("/opt/kafka/bin/kafka-topics.sh").unwrap(),
            ("topics", "kafka-topics.sh".to_string())
        );
        assert_eq!(
            tool_for("kafka-console-consumer.sh").unwrap().0,
            "console-consumer"
        );
        assert_eq!(tool_for("./kafka-get-offsets").unwrap().0, "get-offsets");
        assert_eq!(
            tool_for("kafka-consumer-groups").unwrap().0,
            "consumer-groups"
        );
        assert_eq!(tool_for("kafka-configs.sh").unwrap().0, "configs");
        assert_eq!(
            tool_for("kafka-console-producer").unwrap().0,
            "console-producer"
        );
        assert_eq!(
            tool_for("/opt/kafka/bin/kafka-producer-perf-test.sh").unwrap(),
            ("perf produce", "kafka-producer-perf-test.sh".to_string())
        );
        assert_eq!(
            tool_for("kafka-consumer-perf-test").unwrap().0,
            "perf consume"
        );
        assert!(tool_for("fjord").is_none());
        assert!(tool_for("kafka-topics.bat").is_none());
        assert!(tool_for("kafka-server-start.sh").is_none());
    }
}
