//! Wire protocols: AWS JSON 1.1 (SageMaker, Application Auto Scaling, Service Quotas), AWS JSON
//! 1.0 (CloudWatch from botocore / the aws CLI), Smithy RPC v2 CBOR (CloudWatch from the Rust
//! SDK) and AWS Query (STS: a form-encoded request, an XML answer). Requests decode to one JSON model; responses encode back in the caller's protocol
//! (shared/docs/wire-protocols.md). Timestamps travel as `{"$ts": <epoch seconds>}` inside the
//! model and become numbers (JSON) or CBOR tag 1 (CBOR) on the way out.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

mod encoding;

use encoding::{cbor_bytes, cbor_to_json, json_bytes, query_xml, xml_escape, STS_XMLNS};

/// The AWS service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Service {
    SageMaker,
    AutoScaling,
    CloudWatch,
    ServiceQuotas,
    Sts,
}

impl Service {
    /// Short name used in the call log and fault injection.
    pub fn name(self) -> &'static str {
        match self {
            Service::SageMaker => "sagemaker",
            Service::AutoScaling => "application-autoscaling",
            Service::CloudWatch => "monitoring",
            Service::ServiceQuotas => "servicequotas",
            Service::Sts => "sts",
        }
    }
}

/// The encoding a request arrived in (and its response leaves in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Protocol {
    Json11,
    Json10,
    RpcV2Cbor,
    /// AWS Query: `Action=...&Version=...` form bodies, XML answers (STS).
    Query,
}

/// A decoded AWS request.
#[derive(Debug, Clone)]
pub struct AwsRequest {
    pub service: Service,
    pub operation: String,
    pub protocol: Protocol,
    pub params: Value,
}

/// An AWS error: code as the API reference names it, HTTP status, message.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl AwsError {
    /// 400 with `code`.
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// `ValidationException` (400).
    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }
}

/// Routes by `x-amz-target` (JSON protocols) or the Smithy RPC v2 path (CBOR).
pub fn decode(path: &str, headers: &HeaderMap, body: &Bytes) -> Result<AwsRequest, String> {
    if let Some(rest) = path.strip_prefix("/service/GraniteServiceVersion20100801/operation/") {
        let params = if body.is_empty() {
            Value::Object(Map::new())
        } else {
            cbor_to_json(body)?
        };
        return Ok(AwsRequest {
            service: Service::CloudWatch,
            operation: rest.to_string(),
            protocol: Protocol::RpcV2Cbor,
            params,
        });
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form && !headers.contains_key("x-amz-target") {
        return decode_query(body);
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or("no x-amz-target header and not a Smithy RPC v2 path")?;
    let (prefix, op) = target.split_once('.').ok_or("malformed x-amz-target")?;
    let (service, protocol) = match prefix {
        "SageMaker" => (Service::SageMaker, Protocol::Json11),
        "AnyScaleFrontendService" => (Service::AutoScaling, Protocol::Json11),
        "ServiceQuotasV20190624" => (Service::ServiceQuotas, Protocol::Json11),
        "GraniteServiceVersion20100801" => (Service::CloudWatch, Protocol::Json10),
        other => return Err(format!("unknown service target prefix {other:?}")),
    };
    let params = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?
    };
    Ok(AwsRequest {
        service,
        operation: op.to_string(),
        protocol,
        params,
    })
}

/// An AWS Query request (STS is the only service the sandbox answers over it): every form
/// field but `Action` and `Version` becomes a parameter.
fn decode_query(body: &Bytes) -> Result<AwsRequest, String> {
    let mut operation = None;
    let mut params = Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "Action" => operation = Some(v.into_owned()),
            "Version" if v != "2011-06-15" => {
                return Err(format!(
                    "unknown AWS Query API version {v:?} (STS is 2011-06-15)"
                ))
            }
            "Version" => {}
            _ => {
                params.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    Ok(AwsRequest {
        service: Service::Sts,
        operation: operation.ok_or("an AWS Query request without Action")?,
        protocol: Protocol::Query,
        params: Value::Object(params),
    })
}

fn request_id_header(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("0"))
}

/// Encodes a successful output of `operation`.
pub fn success(protocol: Protocol, operation: &str, request_id: &str, output: Value) -> Response {
    let (content_type, body) = match protocol {
        Protocol::Query => ("text/xml", query_xml(operation, request_id, &output)),
        Protocol::Json11 => ("application/x-amz-json-1.1", json_bytes(output)),
        Protocol::Json10 => ("application/x-amz-json-1.0", json_bytes(output)),
        Protocol::RpcV2Cbor => ("application/cbor", cbor_bytes(output)),
    };
    finish(
        StatusCode::OK,
        protocol,
        content_type,
        request_id,
        body,
        None,
    )
}

/// Encodes an error in the protocol's own shape.
pub fn error(protocol: Protocol, service: Service, request_id: &str, err: &AwsError) -> Response {
    let fault = if err.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let query_error = format!("{};{fault}", err.code);
    let (content_type, body) = match protocol {
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"{STS_XMLNS}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                xml_escape(err.code),
                xml_escape(&err.message),
                xml_escape(request_id)
            )
            .into_bytes(),
        ),
        Protocol::Json11 => (
            "application/x-amz-json-1.1",
            json_bytes(serde_json::json!({"__type": err.code, "message": err.message})),
        ),
        Protocol::Json10 => (
            "application/x-amz-json-1.0",
            json_bytes(
                serde_json::json!({"__type": qualified(service, err.code), "message": err.message}),
            ),
        ),
        Protocol::RpcV2Cbor => (
            "application/cbor",
            cbor_bytes(
                serde_json::json!({"__type": qualified(service, err.code), "message": err.message}),
            ),
        ),
    };
    let mut response = finish(
        err.status,
        protocol,
        content_type,
        request_id,
        body,
        Some(err.code),
    );
    if service == Service::CloudWatch {
        // CloudWatch is query-compatible: SDKs read the code from this header when present.
        if let Ok(v) = HeaderValue::from_str(&query_error) {
            response.headers_mut().insert("x-amzn-query-error", v);
        }
    }
    response
}

fn qualified(service: Service, code: &str) -> String {
    match service {
        Service::CloudWatch => format!("com.amazonaws.cloudwatch#{code}"),
        _ => code.to_string(),
    }
}

fn finish(
    status: StatusCode,
    protocol: Protocol,
    content_type: &'static str,
    request_id: &str,
    body: Vec<u8>,
    error_type: Option<&str>,
) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert("x-amzn-requestid", request_id_header(request_id));
    if protocol == Protocol::RpcV2Cbor {
        h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Some(code) = error_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("x-amzn-errortype", code);
    }
    response
}

/// A timestamp for the model.
pub fn ts(epoch_seconds: f64) -> Value {
    serde_json::json!({"$ts": epoch_seconds})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_round_trip_keeps_ints_floats_and_timestamps() {
        let model =
            serde_json::json!({"Period": 60, "Threshold": 1.0, "At": ts(1.5), "Names": ["a"]});
        let bytes = cbor_bytes(model);
        let back: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        let map = back.as_map().unwrap();
        let get = |k: &str| {
            map.iter()
                .find(|(key, _)| key.as_text() == Some(k))
                .unwrap()
                .1
                .clone()
        };
        assert!(get("Period").is_integer());
        assert!(get("Threshold").is_float());
        assert!(matches!(get("At"), ciborium::Value::Tag(1, _)));
    }

    #[test]
    fn json_strips_timestamp_markers() {
        let out = json_bytes(serde_json::json!({"T": ts(10.0), "L": [{"X": ts(2.0)}]}));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"L":[{"X":2.0}],"T":10.0}"#
        );
    }
}
