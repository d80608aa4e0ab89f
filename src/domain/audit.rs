//! What a check of the audit log's hash chain finds (`GET /audit/verify`).

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
