//! The audit log's events as stored and shown (`GET /audit`), and what a check of its hash
//! chain finds (`GET /audit/verify`).

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// True when every sealed event still hashes to its link, the links follow each other, and
    /// no event older than a minute is left unsealed.
    pub ok: bool,
    /// Events in the log.
    pub events: i64,
    /// Events sealed in the chain.
    pub sealed: i64,
    /// Events older than a minute that are not sealed (deleted links, or a stopped sealer).
    pub unsealed_old: i64,
    /// The chain's head (compare it with the head logged when it was sealed).
    pub head_position: i64,
    /// Hex SHA-256 of the head link.
    pub head_hash: Option<String>,
    /// The first link that does not hold, if any.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<Broken>,
}

/// A link that does not hold.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Broken {
    pub position: i64,
    pub event_id: i64,
    /// `event_changed`, `link_rewritten` or `position_missing`.
    pub reason: String,
}

/// One audit event.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The token name that acted (or `zeroscale` for the service's own jobs).
    pub actor: String,
    /// The portal user the actor acted for.
    pub on_behalf_of: Option<String>,
    /// The client's address. Shown only to tokens with the `audit` scope (it is personal data
    /// of the people behind the calls); null for others.
    pub source_ip: Option<String>,
    /// The client's User-Agent; like `source_ip`, only for tokens with the `audit` scope.
    pub user_agent: Option<String>,
    /// enable, update, disable, apply, drift-repair, ...
    pub action: String,
    /// component or endpoint_variant.
    pub target_kind: String,
    pub target_name: String,
    /// The desired version concerned.
    pub version: Option<i32>,
    pub request_id: Option<String>,
    /// The operation (job) id.
    pub job_id: Option<i64>,
    /// State before the change.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// State after the change.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// accepted, applied, failed, ...
    pub outcome: String,
    pub error: Option<String>,
    /// AWS request ids of the calls made.
    #[schema(value_type = Vec<String>)]
    pub aws_request_ids: serde_json::Value,
}
