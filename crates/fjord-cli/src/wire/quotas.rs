//! Client-quota requests for `fjord configs --entity-type clients|users`: DescribeClientQuotas
//! and AlterClientQuotas (KIP-546). librdkafka has neither, so without these a quota could
//! only be set with Kafka's own Java tool.

use anyhow::bail;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Conn, error_text};

/// One quota entity: (entity type, name), where no name is the type's default
/// (`client-id` / `user` on the wire).
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// An entity's quota values: (key, value).
pub type QuotaValues = Vec<(String, f64)>;

/// Which entities of one type a describe asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// The entity with this name.
    Name(String),
    /// The type's default entity.
    Default,
    /// Every entity with a name (not the default).
    Any,
}

/// A quota change: set a key to a value, or remove it.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaOp {
    Set(String, f64),
    Remove(String),
}

impl Conn {
    /// The quotas of the entities that match every one of `components` (an entity type and
    /// which of its entities) and have no other part (strict): one component selects
    /// entities of that type alone, a user and a client-id component their combinations.
    pub fn describe_client_quotas(
        &mut self,
        components: &[(String, QuotaMatch)],
    ) -> anyhow::Result<Vec<(QuotaEntity, QuotaValues)>> {
        let components = components
            .iter()
            .map(|(entity_type, which)| {
                let component = ComponentData::default()
                    .with_entity_type(StrBytes::from_string(entity_type.clone()));
                match which {
                    QuotaMatch::Name(n) => component
                        .with_match_type(0)
                        .with_match(Some(StrBytes::from_string(n.clone()))),
                    QuotaMatch::Default => component.with_match_type(1),
                    QuotaMatch::Any => component.with_match_type(2),
                }
            })
            .collect();
        let req = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(true);
        let resp: DescribeClientQuotasResponse = self.call(ApiKey::DescribeClientQuotas, &req)?;
        if resp.error_code != 0 {
            bail!(error_text(resp.error_code, resp.error_message));
        }
        Ok(resp
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let entity = e
                    .entity
                    .into_iter()
                    .map(|x| {
                        (
                            x.entity_type.to_string(),
                            x.entity_name.map(|n| n.to_string()),
                        )
                    })
                    .collect();
                let values = e
                    .values
                    .into_iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect();
                (entity, values)
            })
            .collect())
    }

    /// Applies `ops` to one entity's quotas.
    pub fn alter_client_quotas(
        &mut self,
        entity: &QuotaEntity,
        ops: &[QuotaOp],
    ) -> anyhow::Result<()> {
        let entity = entity
            .iter()
            .map(|(t, n)| {
                EntityData::default()
                    .with_entity_type(StrBytes::from_string(t.clone()))
                    .with_entity_name(n.clone().map(StrBytes::from_string))
            })
            .collect();
        let ops = ops
            .iter()
            .map(|op| match op {
                QuotaOp::Set(k, v) => OpData::default()
                    .with_key(StrBytes::from_string(k.clone()))
                    .with_value(*v),
                QuotaOp::Remove(k) => OpData::default()
                    .with_key(StrBytes::from_string(k.clone()))
                    .with_remove(true),
            })
            .collect();
        let req = AlterClientQuotasRequest::default()
            .with_entries(vec![EntryData::default().with_entity(entity).with_ops(ops)]);
        let resp: AlterClientQuotasResponse = self.call(ApiKey::AlterClientQuotas, &req)?;
        for e in resp.entries {
            if e.error_code != 0 {
                bail!(error_text(e.error_code, e.error_message));
            }
        }
        Ok(())
    }
}
