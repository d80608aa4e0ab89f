//! STS, for GetCallerIdentity: who the sandbox's one identity is (`doctor` and start-up ask).

use serde_json::{json, Value};

use super::{protocol::AwsError, world::World};

/// Handles one STS operation.
pub fn handle(w: &mut World, op: &str, _p: &Value) -> Result<Value, AwsError> {
    match op {
        "GetCallerIdentity" => {
            let arn = &w.iam.caller_arn;
            let account = arn.split(':').nth(4).unwrap_or_default();
            let session = arn.rsplit('/').next().unwrap_or("sandbox");
            Ok(json!({
                "UserId": format!("AROASANDBOXEXAMPLE:{session}"),
                "Account": account,
                "Arn": arn,
            }))
        }
        other => Err(AwsError::client(
            "InvalidAction",
            format!("the sandbox does not implement STS {other}"),
        )),
    }
}
