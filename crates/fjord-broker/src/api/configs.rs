//! `DescribeConfigs` (32), `AlterConfigs` (33), `IncrementalAlterConfigs` (44).
//!
//! DescribeConfigs returns every config of the resource with its value, source and (when
//! asked) synonyms and documentation — not only the overrides (trap 7). Topic configs are
//! dynamic; broker configs are static (set at start), so altering them is refused.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};

use super::{RequestContext, sb};
use crate::broker::{ApiError, validate_topic_name};
use crate::config::{BROKER_PROPERTIES, Source};
use crate::topic_config::{TOPIC_PROPERTIES, TopicSource, resolve, topic_property};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(crate) fn describe(
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let keys: Option<Vec<String>> = r
            .configuration_keys
            .as_ref()
            .map(|k| k.iter().map(|s| s.to_string()).collect());
        let wanted = |name: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == name));
        let base = DescribeConfigsResult::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let outcome = match r.resource_type {
            TOPIC => describe_topic(
                ctx,
                &r.resource_name,
                &wanted,
                req.include_synonyms,
                req.include_documentation,
            ),
            BROKER => describe_broker(
                ctx,
                &r.resource_name,
                &wanted,
                req.include_synonyms,
                req.include_documentation,
            ),
            BROKER_LOGGER => Ok(Vec::new()),
            other => Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("unsupported resource type {other}"),
            )),
        };
        results.push(match outcome {
            Ok(configs) => base.with_configs(configs),
            Err(e) => base
                .with_error_code(e.error.code())
                .with_error_message(Some(sb(e.message))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

fn describe_topic(
    ctx: &RequestContext,
    name: &str,
    wanted: &dyn Fn(&str) -> bool,
    synonyms: bool,
    docs: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    validate_topic_name(name)?;
    let image = ctx.broker.image();
    let Some(topic) = image.topic(name) else {
        return Err(ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name} does not exist"),
        ));
    };
    Ok(TOPIC_PROPERTIES
        .iter()
        .filter(|p| wanted(p.name))
        .map(|p| {
            let r = resolve(p, &topic.configs, &ctx.broker.config);
            let syn = if synonyms {
                r.synonyms
                    .into_iter()
                    .map(|(n, v, s)| {
                        DescribeConfigsSynonym::default()
                            .with_name(sb(n))
                            .with_value(Some(sb(v)))
                            .with_source(s.code())
                    })
                    .collect()
            } else {
                Vec::new()
            };
            DescribeConfigsResourceResult::default()
                .with_name(sb(p.name))
                .with_value(Some(sb(r.value)))
                .with_config_source(r.source.code())
                .with_synonyms(syn)
                .with_config_type(p.kind.code())
                .with_documentation(docs.then(|| sb(p.doc)))
        })
        .collect())
}

fn describe_broker(
    ctx: &RequestContext,
    name: &str,
    wanted: &dyn Fn(&str) -> bool,
    synonyms: bool,
    docs: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    let node = ctx.broker.config.node_id.to_string();
    if !name.is_empty() && name != node {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("broker {name} is not this broker ({node})"),
        ));
    }
    Ok(BROKER_PROPERTIES
        .iter()
        .filter(|p| wanted(p.name))
        .map(|p| {
            let (value, source) = ctx
                .broker
                .config
                .get(p.name)
                .unwrap_or((p.default, Source::Default));
            let source = match source {
                Source::Static => TopicSource::StaticBroker,
                Source::Default => TopicSource::Default,
            };
            let mut syn = Vec::new();
            if synonyms {
                syn.push(
                    DescribeConfigsSynonym::default()
                        .with_name(sb(p.name))
                        .with_value(Some(sb(value)))
                        .with_source(source.code()),
                );
                if source != TopicSource::Default {
                    syn.push(
                        DescribeConfigsSynonym::default()
                            .with_name(sb(p.name))
                            .with_value(Some(sb(p.default)))
                            .with_source(TopicSource::Default.code()),
                    );
                }
            }
            DescribeConfigsResourceResult::default()
                .with_name(sb(p.name))
                .with_value(Some(sb(value)))
                .with_read_only(true)
                .with_config_source(source.code())
                .with_synonyms(syn)
                .with_config_type(p.kind.code())
                .with_documentation(docs.then(|| sb(p.doc)))
        })
        .collect())
}

/// Legacy AlterConfigs: the given set replaces all of the topic's overrides.
pub(crate) async fn alter(ctx: &RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let mut new = BTreeMap::new();
        for c in &r.configs {
            if let Some(v) = &c.value {
                new.insert(c.name.to_string(), v.to_string());
            }
        }
        let result = alter_resource(
            ctx,
            r.resource_type,
            &r.resource_name,
            req.validate_only,
            move |_| Ok(new),
        )
        .await;
        let base = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        responses.push(match result {
            Ok(()) => base,
            Err(e) => base
                .with_error_code(e.error.code())
                .with_error_message(Some(sb(e.message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on the current overrides.
pub(crate) async fn incremental_alter(
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let ops: Vec<(String, i8, Option<String>)> = r
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let broker_config = ctx.broker.config.clone();
        let change =
            move |current: &BTreeMap<String, String>| apply_ops(current, &ops, &broker_config);
        let result = alter_resource(
            ctx,
            r.resource_type,
            &r.resource_name,
            req.validate_only,
            change,
        )
        .await;
        let base = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        responses.push(match result {
            Ok(()) => base,
            Err(e) => base
                .with_error_code(e.error.code())
                .with_error_message(Some(sb(e.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, i8, Option<String>)],
    broker: &crate::config::BrokerConfig,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut next = current.clone();
    for (name, op, value) in ops {
        let Some(p) = topic_property(name) else {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("unknown topic config `{name}`"),
            ));
        };
        let is_list = p.kind == crate::config::ConfigType::List;
        match (*op, value) {
            (OP_SET, Some(v)) => {
                next.insert(name.clone(), v.clone());
            }
            (OP_DELETE, _) => {
                next.remove(name);
            }
            (OP_APPEND | OP_SUBTRACT, Some(v)) if is_list => {
                let effective = resolve(p, &next, broker).value;
                let base = next.get(name).cloned().unwrap_or(effective);
                let mut items: Vec<String> = base
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if *op == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(name.clone(), items.join(","));
            }
            (OP_APPEND | OP_SUBTRACT, _) => {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("`{name}` is not a list; APPEND/SUBTRACT do not apply"),
                ));
            }
            (OP_SET, None) => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("SET of `{name}` needs a value"),
                ));
            }
            (other, _) => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(next)
}

async fn alter_resource(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
) -> Result<(), ApiError> {
    match resource_type {
        TOPIC => {
            validate_topic_name(name)?;
            ctx.broker
                .alter_topic_configs(name, validate_only, change)
                .await
        }
        BROKER | BROKER_LOGGER => Err(ApiError::new(
            ResponseError::InvalidRequest,
            "broker configs are static: set them in the config file, FJORD_* variables or --override and restart",
        )),
        other => Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("unsupported resource type {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_ops() {
        let cur = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let ops = vec![
            ("retention.ms".to_string(), OP_DELETE, None),
            (
                "segment.bytes".to_string(),
                OP_SET,
                Some("2048".to_string()),
            ),
            (
                "cleanup.policy".to_string(),
                OP_APPEND,
                Some("compact".to_string()),
            ),
        ];
        let b = crate::config::BrokerConfig::default();
        let next = apply_ops(&cur, &ops, &b).unwrap();
        assert_eq!(next.get("retention.ms"), None);
        assert_eq!(next.get("segment.bytes").map(String::as_str), Some("2048"));
        assert_eq!(
            next.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        let sub = apply_ops(
            &next,
            &[(
                "cleanup.policy".to_string(),
                OP_SUBTRACT,
                Some("delete".to_string()),
            )],
            &b,
        )
        .unwrap();
        assert_eq!(
            sub.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert!(
            apply_ops(
                &cur,
                &[(
                    "segment.bytes".to_string(),
                    OP_APPEND,
                    Some("1".to_string())
                )],
                &b
            )
            .is_err()
        );
    }
}
