//! JSON Schemas generated from the Rust types (schemars): of the desired-state files, so that
//! editors can complete and check YAML (`# yaml-language-server: $schema=...`), and of the JSON
//! documents scimctl prints (plan and saved plan, validate, explain, doctor), so that CI jobs
//! reading them can rely on their shape.
//! Writes files only when asked; `check` compares without writing.

use std::fs;
use std::path::Path;

use schemars::JsonSchema;
use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;

use crate::desired::ValidateDocument;
use crate::doctor::Document as DoctorDocument;
use crate::error::Error;
use crate::explain::Document as ExplainDocument;
use crate::model::{Config, ResourceFile};
use crate::plan::saved::PlanDocument;

/// One generated schema file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaFile {
    /// File name inside the schema directory.
    pub name: &'static str,
    /// Pretty-printed JSON with a trailing newline.
    pub content: String,
}

/// Whether a schema describes a file people write or a document scimctl prints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// YAML read by scimctl: a present key must hold a value (see `desired::yaml`), so
    /// optional fields are not nullable.
    Input,
    /// JSON scimctl prints: fields it prints as `null` (`validate`'s `counts` of an invalid
    /// directory) are nullable, as printed.
    Output,
}

fn render<T: JsonSchema>(title: &str, description: &str, side: Side) -> String {
    let mut settings = SchemaSettings::draft2020_12();
    match side {
        Side::Input => settings
            .transforms
            .push(Box::new(RecursiveTransform(strip_null))),
        // As serde writes it: a field it leaves out when empty is not required.
        Side::Output => settings = settings.for_serialize(),
    }
    let mut schema = settings.into_generator().into_root_schema_for::<T>();
    schema.insert("title".into(), title.into());
    schema.insert("description".into(), description.into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Removes the `null` alternative schemars adds for `Option` fields.
fn strip_null(schema: &mut Schema) {
    if let Some(serde_json::Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            schema.insert("type".into(), only);
        }
    }
    if let Some(serde_json::Value::Array(any_of)) = schema.get_mut("anyOf") {
        any_of.retain(|s| s.get("type").and_then(serde_json::Value::as_str) != Some("null"));
        if any_of.len() == 1 {
            let only = any_of.remove(0);
            schema.remove("anyOf");
            if let serde_json::Value::Object(fields) = only {
                for (k, v) in fields {
                    schema.insert(k, v);
                }
            }
        }
    }
}

/// The schemas, in a fixed order.
#[must_use]
pub fn generate() -> Vec<SchemaFile> {
    vec![
        SchemaFile {
            name: "desired-state.schema.json",
            content: render::<ResourceFile>(
                "scimctl desired state",
                "A desired-state YAML file: any of the lists users, groups, roles and licenses.",
                Side::Input,
            ),
        },
        SchemaFile {
            name: "scimctl.schema.json",
            content: render::<Config>(
                "scimctl configuration",
                "scimctl.yaml: target, ownership, collections, prune policy, safety, protected principals and policy.",
                Side::Input,
            ),
        },
        SchemaFile {
            name: "plan.schema.json",
            content: render::<PlanDocument>(
                "scimctl plan",
                "The JSON plan: `scimctl plan --format json`, and the saved plan of `plan --out` that `apply --plan` reads (version 1).",
                Side::Output,
            ),
        },
        SchemaFile {
            name: "validate.schema.json",
            content: render::<ValidateDocument>(
                "scimctl validate report",
                "`scimctl validate --format json`: whether the directory is valid, its counts and every diagnostic (version 1).",
                Side::Output,
            ),
        },
        SchemaFile {
            name: "explain.schema.json",
            content: render::<ExplainDocument<'static>>(
                "scimctl explain report",
                "`scimctl explain --format json`: why a user, group or role is as it is, tagged by `kind` (version 1).",
                Side::Output,
            ),
        },
        SchemaFile {
            name: "doctor.schema.json",
            content: render::<DoctorDocument<'static>>(
                "scimctl doctor report",
                "`scimctl doctor --format json`: the checks and probes of a target and whether any failed (version 1).",
                Side::Output,
            ),
        },
    ]
}

/// Writes every schema into `dir`, creating it if needed. Returns the names written.
pub fn write(dir: &Path) -> Result<Vec<&'static str>, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::File {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut written = Vec::new();
    for file in generate() {
        let path = dir.join(file.name);
        if fs::read_to_string(&path).ok().as_deref() != Some(file.content.as_str()) {
            fs::write(&path, &file.content).map_err(|e| Error::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        written.push(file.name);
    }
    Ok(written)
}

/// The schema files of a directory that are not the generated ones, by path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outdated {
    /// Files that do not exist (or cannot be read).
    pub missing: Vec<String>,
    /// Files that exist and differ from the generated ones.
    pub stale: Vec<String>,
}

impl Outdated {
    /// Whether every schema file is current.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty()
    }
}

impl std::fmt::Display for Outdated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing schema files: {}", self.missing.join(", ")));
        }
        if !self.stale.is_empty() {
            parts.push(format!("stale schema files: {}", self.stale.join(", ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// The schemas in `dir` that are missing or differ from the generated ones.
#[must_use]
pub fn stale(dir: &Path) -> Outdated {
    let mut outdated = Outdated::default();
    for file in generate() {
        let path = dir.join(file.name);
        let shown = path.display().to_string();
        match fs::read_to_string(&path) {
            Ok(text) if text == file.content => {}
            Ok(_) => outdated.stale.push(shown),
            Err(_) => outdated.missing.push(shown),
        }
    }
    outdated
}

#[cfg(test)]
mod tests {
    use super::*;

    // The committed schemas/ match the types; regenerate with `cargo run -- schema` if not.
    #[test]
    fn committed_schemas_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let stale = stale(&dir);
        assert!(
            stale.is_empty(),
            "stale schema files {stale:?}: run `cargo run -- schema` and commit the result"
        );
    }

    // The schemas describe the camelCase keys and refuse unknown ones.
    #[test]
    fn schema_shape() {
        let files = generate();
        let desired: serde_json::Value = serde_json::from_str(&files[0].content).unwrap();
        let user = &desired["$defs"]["User"];
        assert_eq!(user["additionalProperties"], false);
        assert!(user["properties"]["userName"].is_object());
        assert_eq!(user["required"], serde_json::json!(["userName"]));
        let config: serde_json::Value = serde_json::from_str(&files[1].content).unwrap();
        assert!(config["properties"]["policy"].is_object());
    }
}
