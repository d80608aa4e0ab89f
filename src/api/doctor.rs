//! `GET /doctor`: the `zeroscale doctor` checklist as this server sees its environment.

use std::{sync::Arc, time::Duration};

use axum::{extract::State, Json};

use super::{auth::Reader, AppState};
use crate::{
    doctor::{self, Report},
    error::Problem,
};

/// How long one checklist answers every caller: it costs about a dozen AWS calls, and a
/// read-scope client polling it must not spend the account's API budget.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// The shared, briefly cached checklist (concurrent callers wait for one run).
pub type DoctorCache = moka::future::Cache<(), Arc<Report>>;

/// A cache holding one checklist for [`CACHE_FOR`].
pub fn cache() -> DoctorCache {
    moka::future::Cache::builder()
        .max_capacity(1)
        .time_to_live(CACHE_FOR)
        .build()
}

/// Check this server's environment.
///
/// The checklist of `zeroscale doctor`, run by this server: the database and its migrations,
/// the AWS Region, credentials and identity, where each AWS service's calls go, and whether
/// each read zeroscale needs is permitted (quotas warn instead of failing: enables proceed
/// without them). Each check is `pass`, `warn` or `fail` with a hint. It never writes to AWS.
/// The answer is 200 whatever it found (`ok` says whether anything failed) and is shared by
/// every caller for 30 seconds.
#[utoipa::path(get, path = "/doctor", tag = "health",
    responses(
        (status = 200, description = "The checklist", body = Report),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn doctor(State(state): State<AppState>, Reader(_caller): Reader) -> Json<Report> {
    let report = state
        .doctor
        .get_with((), async {
            Arc::new(doctor::run(doctor::Database::Pool(&state.pool), state.aws.as_ref()).await)
        })
        .await;
    Json((*report).clone())
}
