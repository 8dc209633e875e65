//! `DescribeClientQuotas` (48) and `AlterClientQuotas` (49). Enforcement is in
//! [`crate::quota`] and the connection.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, alter_client_quotas_response, describe_client_quotas_response,
};

use super::{RequestContext, sb};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

pub(crate) async fn alter(
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let mut entries = Vec::with_capacity(req.entries.len());
    for e in req.entries {
        let entity: crate::quota::Entity = e
            .entity
            .iter()
            .map(|x| {
                (
                    x.entity_type.to_string(),
                    x.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let ops = e
            .ops
            .iter()
            .map(|o| (o.key.to_string(), (!o.remove).then_some(o.value)))
            .collect();
        let result = ctx
            .broker
            .alter_quota(crate::quota::normalize(entity), ops, req.validate_only)
            .await;
        let wire_entity = e
            .entity
            .into_iter()
            .map(|x| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(x.entity_type)
                    .with_entity_name(x.entity_name)
            })
            .collect();
        let base = alter_client_quotas_response::EntryData::default().with_entity(wire_entity);
        entries.push(match result {
            Ok(()) => base,
            Err(err) => base
                .with_error_code(err.error.code())
                .with_error_message(Some(sb(err.message))),
        });
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

pub(crate) fn describe(
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    for c in &req.components {
        if c.match_type > MATCH_ANY || c.match_type < MATCH_EXACT {
            return DescribeClientQuotasResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(sb(format!("unknown match type {}", c.match_type))));
        }
    }
    let image = ctx.broker.image();
    let entries = image
        .quotas()
        .iter()
        .filter(|(entity, _)| {
            let all_match = req.components.iter().all(|c| {
                let found = entity.iter().find(|(t, _)| *t == c.entity_type.as_str());
                match (c.match_type, found) {
                    (MATCH_EXACT, Some((_, Some(n)))) => c._match.as_deref() == Some(n.as_str()),
                    (MATCH_DEFAULT, Some((_, None))) => true,
                    (MATCH_ANY, Some(_)) => true,
                    _ => false,
                }
            });
            // Strict: the entity has no component types beyond those asked for.
            all_match
                && (!req.strict
                    || entity
                        .iter()
                        .all(|(t, _)| req.components.iter().any(|c| c.entity_type.as_str() == t)))
        })
        .map(|(entity, values)| {
            let entity = entity
                .iter()
                .map(|(t, n)| {
                    describe_client_quotas_response::EntityData::default()
                        .with_entity_type(sb(t.clone()))
                        .with_entity_name(n.clone().map(sb))
                })
                .collect();
            let values = values
                .iter()
                .map(|(k, v)| {
                    describe_client_quotas_response::ValueData::default()
                        .with_key(sb(k.clone()))
                        .with_value(*v)
                })
                .collect();
            describe_client_quotas_response::EntryData::default()
                .with_entity(entity)
                .with_values(values)
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}
