//! Create-then-verify for groups. RFC 7643 gives `Group.displayName` no uniqueness, and
//! servers such as scim2-server accept a second group of the same name: two runs that each
//! planned "create Ops" (two CI jobs, two machines, where the local lock cannot reach) would
//! leave twins, members split between them, and every later plan ambiguous. After each group
//! create the applier asks for every group of that name; when there are several, all runs
//! that look choose the same survivor (lowest id, [`crate::plan::survivor_order`]), move the
//! members only the others have into it, and delete the others. The planner proposes the same
//! merge as explicit rows for twins that already exist (`plan::diff::twins`).

use serde_json::{Value, json};

use crate::model::Kind;
use crate::plan::survivor_order;
use crate::scim::wire::{Group, PatchOpKind, PatchOperation};
use crate::scim::{ScimError, ScimRead, ScimWrite};

/// How often a write to a twin or the survivor is retried after it moved (412).
const ATTEMPTS: usize = 3;

/// What the check after a create found and did when the group is not alone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The group the run goes on with: its own, or a twin with a lower id.
    pub(crate) id: String,
    /// Its version after the members were moved.
    pub(crate) version: Option<String>,
    /// Twins deleted (their members moved first).
    pub(crate) deleted: Vec<String>,
    /// Members moved into the survivor.
    pub(crate) moved: usize,
}

impl Settled {
    /// For the report and the audit record of the create.
    pub(crate) fn describe(&self, own: &str) -> String {
        let kept = if self.id == own {
            format!("kept this run's id {own} (the lowest)")
        } else {
            format!(
                "kept id {} (the lowest) instead of this run's {own}",
                self.id
            )
        };
        if self.deleted.is_empty() {
            format!("another run created the same group and already merged the twins: {kept}")
        } else {
            format!(
                "merged {} twin(s) made by a concurrent run: {kept}, moved {} member(s), deleted {}",
                self.deleted.len(),
                self.moved,
                self.deleted.join(", ")
            )
        }
    }
}

/// Checks that group `name`, just created as `own`, is the only one of its name, and merges
/// the twins when it is not. `None`: it is alone (or gone, which the next step reports).
pub(crate) async fn settle<C: ScimRead + ScimWrite>(
    client: &C,
    name: &str,
    own: &str,
    etag: bool,
) -> Result<Option<Settled>, ScimError> {
    let mut found: Vec<Group> = client.find_twins(name).await?;
    found.retain(|g| g.id.is_some());
    if found.len() > 1 {
        // Twins: their members are moved, so each is read whole.
        let mut whole = Vec::with_capacity(found.len());
        for g in &found {
            match client.get::<Group>(id(g)).await {
                Ok(g) => whole.push(g),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        found = whole;
    }
    found.sort_by(|a, b| survivor_order(id(a), id(b)));
    let Some((survivor, others)) = found.split_first() else {
        return Ok(None);
    };
    if others.is_empty() && id(survivor) == own {
        return Ok(None);
    }
    let mut have = survivor.clone();
    let (mut deleted, mut moved) = (Vec::new(), 0);
    for twin in others {
        let mut twin = twin.clone();
        for attempt in 1..=ATTEMPTS {
            moved += move_members(client, &mut have, &twin, etag).await?;
            let version = twin.meta.version.as_deref().filter(|_| etag);
            match client.delete(Kind::Group, id(&twin), version).await {
                Ok(()) => {
                    deleted.push(id(&twin).to_owned());
                    break;
                }
                // Another run that saw the same twins deleted it first.
                Err(e) if e.is_not_found() => break,
                Err(e) if e.is_precondition_failed() && attempt < ATTEMPTS => {
                    // Members were added to it since it was read: move those too.
                    match client.get::<Group>(id(&twin)).await {
                        Ok(fresh) => twin = fresh,
                        Err(e) if e.is_not_found() => break,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Some(Settled {
        id: id(&have).to_owned(),
        version: have.meta.version,
        deleted,
        moved,
    }))
}

fn id(g: &Group) -> &str {
    g.id.as_deref().unwrap_or_default()
}

/// Adds to `survivor` the members only `twin` has; returns how many. On 412 the survivor is
/// read again and the difference recomputed.
async fn move_members<C: ScimRead + ScimWrite>(
    client: &C,
    survivor: &mut Group,
    twin: &Group,
    etag: bool,
) -> Result<usize, ScimError> {
    for attempt in 1..=ATTEMPTS {
        let missing: Vec<Value> = twin
            .members
            .iter()
            .filter(|m| m.value != id(survivor) && m.value != id(twin))
            .filter(|m| !survivor.members.iter().any(|s| s.value == m.value))
            .map(|m| match &m.kind {
                Some(kind) => json!({"value": m.value, "type": kind}),
                None => json!({"value": m.value}),
            })
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let ops = [PatchOperation {
            op: PatchOpKind::Add,
            path: Some("members".into()),
            value: Some(Value::Array(missing.clone())),
        }];
        let version = survivor.meta.version.clone().filter(|_| etag);
        match client
            .patch::<Group>(id(survivor), version.as_deref(), &ops)
            .await
        {
            Ok(patched) => {
                let version = patched
                    .version
                    .or_else(|| patched.resource.and_then(|r| r.meta.version));
                if version.is_some() || !etag {
                    let moved = twin.members.iter().filter(|m| {
                        missing
                            .iter()
                            .any(|v| v.get("value").and_then(Value::as_str) == Some(&m.value))
                    });
                    survivor.members.extend(moved.cloned());
                    survivor.meta.version = version;
                } else {
                    // No new version in the answer: read it, so the next write keeps its
                    // precondition.
                    *survivor = client.get::<Group>(id(survivor)).await?;
                }
                return Ok(missing.len());
            }
            Err(e) if e.is_precondition_failed() && attempt < ATTEMPTS => {
                *survivor = client.get::<Group>(id(survivor)).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(0)
}
