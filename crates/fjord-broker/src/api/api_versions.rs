//! `ApiVersions` (key 18): what this broker serves.
//!
//! The response header is always v0, even for the flexible v3+ body (the connection layer
//! takes the header version from the protocol crate, which encodes this rule), and the
//! tagged fields are left at their defaults so none are sent: old librdkafka (2.0.x, as in
//! Debian's kcat) fails on tagged fields it does not expect.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;

use super::SUPPORTED;

/// Builds the response listing [`SUPPORTED`].
pub(crate) fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_api_keys(api_keys())
        .with_finalized_features_epoch(-1)
}

/// The KIP-511 answer to an ApiVersions version we do not know.
pub(crate) fn unsupported_version_response() -> ApiVersionsResponse {
    handle().with_error_code(ResponseError::UnsupportedVersion.code())
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}
