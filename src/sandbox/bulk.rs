//! `POST /Bulk` (RFC 7644 §3.7): many writes in one request, each carried out as the single
//! request it stands for would be (same checks, quirks, ETags and errors), in order, with
//! `bulkId` references resolved to the ids of resources created earlier in the same request.
//!
//! Where RFC 7644 leaves a choice, the sandbox takes the one a careless client trips on:
//! statuses are strings (`"201"`, as in the RFC's examples); `bulkId` is echoed only for
//! POST, the one method the RFC requires it of, so a client must also match results by
//! order; a reference to a `bulkId` not created earlier in the request fails that operation
//! with 409 rather than being resolved later. A request over `maxOperations` or
//! `maxPayloadSize` is refused whole with 413, and `failOnErrors` stops processing after that
//! many failed operations.

use std::collections::HashMap;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH, LOCATION};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::http::{App, Route, check_media, route, scim_json};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// What one Bulk request may carry (announced in `/ServiceProviderConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkLimits {
    /// Most operations.
    pub max_operations: usize,
    /// Largest body in bytes.
    pub max_payload: usize,
}

impl Default for BulkLimits {
    /// scim2-server's limits: 1,000 operations, 1 MiB.
    fn default() -> Self {
        BulkLimits {
            max_operations: 1_000,
            max_payload: 1_048_576,
        }
    }
}

impl App {
    /// Sets what `/ServiceProviderConfig` says of Bulk, and holds to it (`None`: 501).
    pub(crate) fn set_bulk(&mut self, limits: Option<BulkLimits>) {
        let spc = self.spc_mut();
        spc["bulk"] = match limits {
            Some(l) => json!({
                "supported": true,
                "maxOperations": l.max_operations,
                "maxPayloadSize": l.max_payload,
            }),
            None => json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0}),
        };
        self.bulk = limits;
    }

    /// `POST /Bulk`.
    pub(crate) async fn bulk(&self, request: Request) -> Result<Response, ScimError> {
        let Some(limits) = self.bulk else {
            return Err(ScimError::new(
                501,
                None,
                "Bulk is not supported by this sandbox (started with --no-bulk)",
            ));
        };
        if request.method() != Method::POST {
            return Err(ScimError::new(405, None, "method not allowed; use POST"));
        }
        let (parts, body) = request.into_parts();
        check_media(&parts.headers)?;
        let bytes = to_bytes(body, limits.max_payload).await.map_err(|_| {
            ScimError::new(
                413,
                None,
                format!(
                    "the Bulk request is larger than maxPayloadSize ({} bytes)",
                    limits.max_payload
                ),
            )
        })?;
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ScimError::invalid_syntax(format!("invalid JSON: {e}")))?;
        let says_bulk = doc
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(BULK_REQUEST)));
        if !says_bulk {
            return Err(ScimError::invalid_syntax(format!(
                "a Bulk request's schemas must list {BULK_REQUEST}"
            )));
        }
        let ops = doc
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ScimError::invalid_syntax("a Bulk request needs Operations"))?;
        if ops.len() > limits.max_operations {
            return Err(ScimError::new(
                413,
                None,
                format!(
                    "{} operations; maxOperations is {}",
                    ops.len(),
                    limits.max_operations
                ),
            ));
        }
        let fail_on_errors = match doc.get("failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|&n| n > 0).ok_or_else(|| {
                ScimError::invalid_syntax("failOnErrors must be a positive integer")
            })?),
        };
        let mut created: HashMap<String, String> = HashMap::new();
        let mut results = Vec::with_capacity(ops.len());
        let mut errors = 0;
        for op in ops {
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break;
            }
            let result = self.bulk_operation(op, &mut created).await;
            if result
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.starts_with('2'))
            {
                errors += 1;
            }
            results.push(result);
        }
        self.stats.bulk(results.len());
        Ok(scim_json(
            StatusCode::OK,
            &json!({"schemas": [BULK_RESPONSE], "Operations": results}),
        ))
    }

    /// One operation: its result, success or failure.
    async fn bulk_operation(&self, op: &Value, created: &mut HashMap<String, String>) -> Value {
        let method = op.get("method").and_then(Value::as_str).unwrap_or("");
        let bulk_id = op.get("bulkId").and_then(Value::as_str);
        let mut result = Map::new();
        result.insert("method".into(), Value::from(method));
        if let Some(id) = bulk_id {
            result.insert("bulkId".into(), Value::from(id));
        }
        match self.carry_out(op, method, bulk_id, created).await {
            Ok(r) => {
                if method.eq_ignore_ascii_case("POST")
                    && let (Some(bulk_id), Some(id)) = (
                        bulk_id,
                        r.response
                            .as_ref()
                            .and_then(|b| b.get("id"))
                            .and_then(Value::as_str),
                    )
                {
                    created.insert(bulk_id.to_owned(), id.to_owned());
                }
                if !method.eq_ignore_ascii_case("POST") {
                    // Only a POST's bulkId is echoed (the RFC requires no other).
                    result.remove("bulkId");
                }
                if let Some(l) = r.location {
                    result.insert("location".into(), Value::from(l));
                }
                if let Some(v) = r.version {
                    result.insert("version".into(), Value::from(v));
                }
                result.insert("status".into(), Value::from(r.status.as_u16().to_string()));
                if let Some(body) = r.response {
                    result.insert("response".into(), body);
                }
            }
            Err(e) => {
                if !method.eq_ignore_ascii_case("POST") {
                    result.remove("bulkId");
                }
                result.insert("status".into(), Value::from(e.status.to_string()));
                result.insert("response".into(), e.to_json());
            }
        }
        Value::Object(result)
    }

    async fn carry_out(
        &self,
        op: &Value,
        method: &str,
        bulk_id: Option<&str>,
        created: &HashMap<String, String>,
    ) -> Result<Done, ScimError> {
        let method = match method.to_ascii_uppercase().as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            other => {
                return Err(ScimError::invalid_syntax(format!(
                    "a Bulk operation's method must be POST, PUT, PATCH or DELETE, not {other:?}"
                )));
            }
        };
        if method == Method::POST && bulk_id.is_none_or(str::is_empty) {
            return Err(ScimError::invalid_syntax("a POST operation needs a bulkId"));
        }
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_syntax("a Bulk operation needs a path"))?;
        let path = resolve_text(path, created)?;
        let route = route(&path);
        let fits = match (&route, &method) {
            (Route::Collection(_), m) => *m == Method::POST,
            (Route::Resource(..), m) => *m != Method::POST,
            _ => false,
        };
        if !fits {
            return Err(ScimError::invalid_path(format!(
                "{method} {path} is not a write of a User or Group"
            )));
        }
        let data = match op.get("data") {
            Some(d) => Some(resolve(d.clone(), created)?),
            None if method == Method::DELETE => None,
            None => {
                return Err(ScimError::invalid_syntax(format!(
                    "a {method} operation needs data"
                )));
            }
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header(CONTENT_TYPE, "application/scim+json");
        if let Some(v) = op.get("version").and_then(Value::as_str) {
            builder = builder.header(IF_MATCH, v);
        }
        let body = data.map_or_else(Body::empty, |d| Body::from(d.to_string()));
        let request = builder
            .body(body)
            .map_err(|e| ScimError::invalid_syntax(format!("a Bulk operation: {e}")))?;
        let location = match &route {
            Route::Resource(kind, id) => Some(self.store.location(*kind, id)),
            _ => None,
        };
        let response = self.resource_request(route, request).await?;
        let status = response.status();
        let (version, location) = {
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            (header(ETAG), header(LOCATION).or(location))
        };
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let response = serde_json::from_slice::<Value>(&bytes).ok();
        Ok(Done {
            status,
            location,
            version,
            response,
        })
    }
}

/// A carried-out operation.
struct Done {
    status: StatusCode,
    location: Option<String>,
    version: Option<String>,
    response: Option<Value>,
}

/// `value` with every string `bulkId:X` replaced by the id created for `X`.
fn resolve(value: Value, created: &HashMap<String, String>) -> Result<Value, ScimError> {
    Ok(match value {
        Value::String(s) => Value::String(resolve_text(&s, created)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| resolve(v, created))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, resolve(v, created)?)))
                .collect::<Result<_, ScimError>>()?,
        ),
        other => other,
    })
}

/// A string that is `bulkId:X` (or a path ending in one) with `X` resolved.
fn resolve_text(text: &str, created: &HashMap<String, String>) -> Result<String, ScimError> {
    let Some(at) = text.find("bulkId:") else {
        return Ok(text.to_owned());
    };
    let reference = &text[at + "bulkId:".len()..];
    let id = created.get(reference).ok_or_else(|| {
        ScimError::new(
            409,
            Some("invalidValue"),
            format!("bulkId:{reference} names no resource created earlier in this request"),
        )
    })?;
    Ok(format!("{}{id}", &text[..at]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_to_earlier_creates_only() {
        let created: HashMap<String, String> = [("u1".to_owned(), "42".to_owned())].into();
        let v = resolve(
            json!({"members": [{"value": "bulkId:u1"}, {"value": "7"}], "n": 1}),
            &created,
        )
        .expect("resolved");
        assert_eq!(
            v,
            json!({"members": [{"value": "42"}, {"value": "7"}], "n": 1})
        );
        assert_eq!(
            resolve_text("/Users/bulkId:u1", &created).expect("path"),
            "/Users/42"
        );
        let e = resolve(json!({"value": "bulkId:u2"}), &created).expect_err("unknown");
        assert_eq!(e.status, 409);
    }
}
