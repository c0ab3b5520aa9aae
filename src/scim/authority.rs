//! `matchBy.externalIdAuthority` on Genesys Cloud: the layers above see a user's
//! `externalId` as the value of its `externalIds` entry (Genesys user extension) whose
//! `authority` is the configured name, and an `externalId` they write goes to that entry.
//! The SCIM `externalId`, which another provisioner may own, is never read into the plan nor
//! written. Facts: genesys-api.md §3 (`externalIds[] {authority, value}`, both required; an
//! immutable entry with an authority prefixed `x-pc:scimv2:v1` is always there).
//!
//! Genesys documents a filter on these entries, but the planner lists every user anyway and
//! matches locally, so no filter is sent.

use serde_json::{Map, Value, json};

use super::client::Resource;
use super::client::ScimClient;
use super::error::ScimError;
use super::wire::{self, GENESYS_SCHEMA, PatchOpKind, PatchOperation};

/// The path of the whole `externalIds` attribute.
fn external_ids_path() -> String {
    format!("{GENESYS_SCHEMA}:externalIds")
}

/// The value of the entry of `authority` in a user's JSON, compared exactly. Entries of
/// that authority that disagree (two values, or one without a value: a tenant scimctl did
/// not shape) give none: which is the user's cannot be told, so the user neither matches
/// nor is owned by either, instead of by whichever the server listed first. A plan that
/// writes the YAML value then leaves one entry.
fn entry_value<'v>(user: &'v Map<String, Value>, authority: &str) -> Option<&'v str> {
    let mut values = user
        .get(GENESYS_SCHEMA)?
        .get("externalIds")?
        .as_array()?
        .iter()
        .filter(|e| e.get("authority").and_then(Value::as_str) == Some(authority))
        .map(|e| e.get("value").and_then(Value::as_str));
    let first = values.next()??;
    values.all(|v| v == Some(first)).then_some(first)
}

/// A user's JSON as the planner sees it under `authority`: `externalId` is the entry's
/// value, or absent when the user has no such entry.
pub(crate) fn view(user: &mut Map<String, Value>, authority: &str) {
    match entry_value(user, authority).map(str::to_owned) {
        Some(value) => user.insert("externalId".to_owned(), Value::String(value)),
        None => user.remove("externalId"),
    };
}

/// `entries` (a user's `externalIds` as read) with the entry of `authority` set to `value`
/// (or taken out, for `None`). Genesys's own `x-pc:` entries are left out: they are
/// read-only and derived by the server. Whether a real server keeps them when a replace
/// leaves them out is UNCONFIRMED (the simulator derives them on every read).
fn with_entry(entries: &[Value], authority: &str, value: Option<&str>) -> Vec<Value> {
    let mut out: Vec<Value> = entries
        .iter()
        .filter(|e| {
            e.get("authority")
                .and_then(Value::as_str)
                .is_some_and(|a| a != authority && !a.starts_with("x-pc:"))
        })
        .cloned()
        .collect();
    if let Some(value) = value {
        out.push(json!({"authority": authority, "value": value}));
    }
    out
}

/// `resource` re-read through JSON after `change`, keeping its version.
fn remapped<R: Resource>(
    resource: &R,
    change: impl FnOnce(&mut Map<String, Value>),
) -> Result<R, ScimError> {
    let mut value = serde_json::to_value(resource).map_err(|e| encode_error(&e))?;
    if let Some(object) = value.as_object_mut() {
        if let Some(version) = resource.version() {
            object.insert("meta".into(), json!({ "version": version }));
        }
        change(object);
    }
    serde_json::from_value(value).map_err(|e| encode_error(&e))
}

fn encode_error(e: &serde_json::Error) -> ScimError {
    ScimError::Config(format!(
        "re-encoding a user for its externalIds authority: {e}"
    ))
}

impl ScimClient {
    /// A user as the planner sees it (see [`view`]); as read without an authority.
    pub(super) fn authority_view<R: Resource>(&self, user: R) -> Result<R, ScimError> {
        match self.external_id_authority() {
            None => Ok(user),
            Some(authority) => remapped(&user, |u| view(u, authority)),
        }
    }

    /// The body of a user create under an authority: its `externalId` as the authority's
    /// entry, and no SCIM `externalId`; `None` when there is no authority.
    pub(super) fn authority_body<R: Resource>(&self, user: &R) -> Result<Option<Value>, ScimError> {
        let Some(authority) = self.external_id_authority() else {
            return Ok(None);
        };
        let mut body = serde_json::to_value(user).map_err(|e| encode_error(&e))?;
        if let Some(u) = body.as_object_mut()
            && let Some(Value::String(value)) = u.remove("externalId")
        {
            let schemas = u.entry("schemas").or_insert_with(|| json!([]));
            if let Some(list) = schemas.as_array_mut()
                && !list.iter().any(|s| s == GENESYS_SCHEMA)
            {
                list.push(Value::from(GENESYS_SCHEMA));
            }
            let ext = u
                .entry(GENESYS_SCHEMA.to_owned())
                .or_insert_with(|| json!({}));
            if let Some(ext) = ext.as_object_mut() {
                let read: Vec<Value> = ext
                    .get("externalIds")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                ext.insert(
                    "externalIds".to_owned(),
                    Value::Array(with_entry(&read, authority, Some(&value))),
                );
            }
        }
        Ok(Some(body))
    }

    /// PATCH operations under an authority: one on `externalId` becomes a replace of the
    /// whole `externalIds` (the only path form Genesys documents for it: a filter on
    /// `authority` in a PATCH path is UNCONFIRMED), built from the user as read now so the
    /// other authorities' entries stay. `None` when nothing changes.
    pub(super) async fn authority_ops(
        &self,
        id: &str,
        ops: &[PatchOperation],
    ) -> Result<Option<Vec<PatchOperation>>, ScimError> {
        let Some(authority) = self.external_id_authority() else {
            return Ok(None);
        };
        let is_external = |op: &PatchOperation| {
            op.path
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case("externalId"))
        };
        let Some(last) = ops.iter().rfind(|op| is_external(op)) else {
            return Ok(None);
        };
        let value = match last.op {
            PatchOpKind::Remove => None,
            _ => last.value.as_ref().and_then(Value::as_str),
        };
        let user: wire::User = self.settle(id, || self.scim_get(id)).await?;
        let read: Vec<Value> = user
            .genesys
            .as_ref()
            .map(|g| {
                g.external_ids
                    .iter()
                    .map(|e| json!({"authority": e.authority, "value": e.value}))
                    .collect()
            })
            .unwrap_or_default();
        let mut out: Vec<PatchOperation> =
            ops.iter().filter(|op| !is_external(op)).cloned().collect();
        out.push(PatchOperation {
            op: PatchOpKind::Replace,
            path: Some(external_ids_path()),
            value: Some(Value::Array(with_entry(&read, authority, value))),
        });
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `matchBy.externalIdAuthority` needs a Genesys target, and a name of the user's own.
    #[test]
    fn authority_config_checks() {
        let problems = |config: &str| -> String {
            match crate::desired::load_texts(&[
                ("scimctl.yaml", config),
                ("org.yaml", "users: []\n"),
            ]) {
                Ok(_) => String::new(),
                Err(crate::desired::LoadError::Invalid(report)) => {
                    let mut text = Vec::new();
                    report.write_text(&mut text).expect("renders");
                    String::from_utf8_lossy(&text).into_owned()
                }
                Err(e) => e.to_string(),
            }
        };
        let genesys = "target: {kind: genesys, region: mypurecloud.com, clientId: {fromEnv: A}, clientSecret: {fromEnv: B}}\n";
        assert_eq!(
            problems(&format!(
                "{genesys}matchBy: {{externalIdAuthority: hris}}\n"
            )),
            ""
        );
        let plain = problems("matchBy: {externalIdAuthority: hris}\n");
        assert!(
            plain.contains(
                "scimctl.yaml:1:32: matchBy.externalIdAuthority needs a Genesys Cloud target"
            ),
            "{plain}"
        );
        let theirs = problems(&format!(
            "{genesys}matchBy: {{externalIdAuthority: 'x-pc:scimv2:v1'}}\n"
        ));
        assert!(theirs.contains("belong to Genesys Cloud"), "{theirs}");
    }

    /// The planner sees the authority's value as `externalId`, whatever the SCIM one is,
    /// and no `externalId` at all without an entry; a write keeps the other authorities and
    /// leaves out Genesys's read-only ones.
    #[test]
    fn view_and_entries() {
        let entries = json!([
            {"authority": "x-pc:scimv2:v1", "value": "okta-1"},
            {"authority": "hris", "value": "E-17"},
            {"authority": "badge", "value": "B-9"}
        ]);
        let mut user = json!({"userName": "a@x.example", "externalId": "okta-1",
            GENESYS_SCHEMA: {"externalIds": entries}});
        let object = user.as_object_mut().unwrap();
        view(object, "hris");
        assert_eq!(object["externalId"], "E-17");
        view(object, "HRIS");
        assert!(
            !object.contains_key("externalId"),
            "authorities compare exactly"
        );
        let list = entries.as_array().unwrap();
        assert_eq!(
            with_entry(list, "hris", Some("E-18")),
            [
                json!({"authority": "badge", "value": "B-9"}),
                json!({"authority": "hris", "value": "E-18"})
            ]
        );
        assert_eq!(
            with_entry(list, "hris", None),
            [json!({"authority": "badge", "value": "B-9"})]
        );

        // Two entries of the authority: one value twice is that value; two values (in
        // either order) or a value and none are no value, and a write leaves one entry.
        let twice = |a: Value, b: Value| {
            let mut user = json!({"userName": "a@x.example",
                GENESYS_SCHEMA: {"externalIds": [a, {"authority": "badge", "value": "B-9"}, b]}});
            view(user.as_object_mut().unwrap(), "hris");
            user.get("externalId").cloned()
        };
        let hris = |v: &str| json!({"authority": "hris", "value": v});
        assert_eq!(twice(hris("E-17"), hris("E-17")), Some(json!("E-17")));
        assert_eq!(twice(hris("E-17"), hris("E-99")), None);
        assert_eq!(twice(hris("E-99"), hris("E-17")), None);
        assert_eq!(twice(hris("E-17"), json!({"authority": "hris"})), None);
        let both = [hris("E-17"), hris("E-99")];
        assert_eq!(with_entry(&both, "hris", Some("E-17")), [hris("E-17")]);
    }
}
