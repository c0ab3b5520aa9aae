//! License steps (Genesys Cloud, issue 18, item 1): every license change of a run goes out in
//! batches of `POST /api/v2/license/organization`, entries grouped by license definition, no
//! request naming more than `scim::licenses::MOST_USER_IDS` users.
//!
//! License steps have a phase of their own, after every create and patch: the first to start
//! sends the batch for all of them (each operation announced before anything is sent), and
//! every license step then reads its own result. The answer is 200 even when entries fail, so
//! each (user, license) is checked in it: an entry that failed, or that the answer does not
//! mention, fails that user's operation; never "done".

use std::collections::{BTreeMap, HashMap};

use super::{
    Announced, Herald, Outcome, Schedule, Shared, Stage, StepName, StepResult, initial_report,
};
use crate::apply::graph::{Graph, Step, StepKind};
use crate::plan::Edit;
use crate::scim::licenses::batches;
use crate::scim::{LicenseAssignment, ScimRead, ScimWrite};

/// What the batch did for one operation.
#[derive(Clone, Debug)]
struct Sent {
    /// Whether the operation was announced (and so a write may have reached the server).
    announced: bool,
    outcome: Outcome,
    detail: Option<String>,
}

/// The license batch of one run.
pub(super) struct Batch {
    /// The change of every license step of the run.
    changes: Vec<usize>,
    sent: tokio::sync::OnceCell<HashMap<usize, Sent>>,
}

impl Batch {
    /// The batch of `graph`'s license steps (none sent yet).
    pub(super) fn new(graph: &Graph<'_>) -> Batch {
        Batch {
            changes: graph
                .steps
                .iter()
                .filter(|s| s.kind == StepKind::Licenses)
                .map(|s| s.change)
                .collect(),
            sent: tokio::sync::OnceCell::new(),
        }
    }
}

/// (user id, license id, whether it is given) → the change it belongs to.
type Wanted = BTreeMap<(String, String, bool), usize>;

impl<'a, 's, C: ScimRead + ScimWrite> Shared<'a, 's, C>
where
    'a: 's,
{
    /// One license step: the run's batch (sent now if no license step sent it yet), read for
    /// this step's operation.
    pub(super) async fn licenses(&self, step: &Step<'_>, herald: &Herald) -> StepResult {
        let sent = self
            .licenses
            .sent
            .get_or_init(|| self.send_licenses())
            .await;
        let Some(mine) = sent.get(&step.change) else {
            return StepResult::failed("internal: a license step outside the run's batch");
        };
        if mine.announced {
            *herald.announced.borrow_mut() = Announced::Sent;
        }
        let mut r = StepResult::new(mine.outcome, mine.detail.clone());
        r.id = self.user_id(step.change);
        r
    }

    /// After the run stopped: settles with its batch result every license step that had not
    /// read it yet. The batch carried their writes, so "not started" would be untrue; those
    /// the batch did not carry are left to be skipped with the rest.
    pub(super) fn settle_unread_licenses(&self, schedule: &mut Schedule<'_>) {
        let Some(sent) = self.licenses.sent.get() else {
            return;
        };
        for (s, step) in schedule.graph.steps.iter().enumerate() {
            if step.kind != StepKind::Licenses
                || schedule.settled[s]
                || schedule.waiting[s] == usize::MAX
            {
                continue;
            }
            let Some(mine) = sent.get(&step.change).filter(|m| m.announced) else {
                continue;
            };
            let mut r = StepResult::new(mine.outcome, mine.detail.clone());
            r.id = self.user_id(step.change);
            schedule.settle(s, r, true, &self.observer);
        }
    }

    /// The live id of the user of change `i`: its own, or the one its create made.
    fn user_id(&self, i: usize) -> Option<String> {
        self.input.plan.changes[i]
            .id
            .clone()
            .or_else(|| self.created.of(i).map(|(id, _)| id))
    }

    /// Announces every operation with a license change whose user exists, then sends their
    /// changes in batches and reads each entry's result.
    async fn send_licenses(&self) -> HashMap<usize, Sent> {
        let mut out = HashMap::new();
        let mut wanted = Wanted::new();
        let mut ready = Vec::new();
        for &i in &self.licenses.changes {
            let Some(user) = self.user_id(i) else {
                out.insert(
                    i,
                    Sent {
                        announced: false,
                        outcome: Outcome::Skipped,
                        detail: Some("the user does not exist".into()),
                    },
                );
                continue;
            };
            ready.push((i, user));
        }
        for (i, user) in &ready {
            let refused = self.refused.borrow().clone();
            let heard = if let Some(why) = refused {
                Err(why)
            } else {
                let mut op = initial_report(&self.input.plan.changes[*i]);
                op.id = Some(user.clone());
                self.observer
                    .borrow_mut()
                    .step(Stage::Sending, StepName::Licenses, &op)
            };
            if let Err(why) = heard {
                self.refused.borrow_mut().get_or_insert(why);
                break;
            }
            for edit in &self.input.plan.changes[*i].edits {
                let Edit::Licenses { add, remove } = edit else {
                    continue;
                };
                for (adding, list) in [(true, add), (false, remove)] {
                    for l in list {
                        wanted.insert((user.clone(), l.id.clone(), adding), *i);
                    }
                }
            }
            out.insert(
                *i,
                Sent {
                    announced: true,
                    outcome: Outcome::Done,
                    detail: None,
                },
            );
        }
        if self.refused.borrow().is_some() {
            // Nothing is sent once an announcement could not be recorded.
            for (i, _) in ready {
                out.insert(
                    i,
                    Sent {
                        announced: false,
                        outcome: Outcome::Skipped,
                        detail: Some("not started: its announcement could not be recorded".into()),
                    },
                );
            }
            return out;
        }
        let failures = self.send_batches(&wanted).await;
        for (i, why) in failures {
            if let Some(s) = out.get_mut(&i) {
                s.outcome = Outcome::Failed;
                let detail = s.detail.get_or_insert_with(String::new);
                if !detail.is_empty() {
                    detail.push_str("; ");
                }
                detail.push_str(&why);
            }
        }
        out
    }

    /// Sends `wanted` in batches; per change, why each of its entries failed.
    async fn send_batches(&self, wanted: &Wanted) -> Vec<(usize, String)> {
        let mut entries: BTreeMap<&str, LicenseAssignment> = BTreeMap::new();
        for (user, license, adding) in wanted.keys() {
            let e = entries
                .entry(license.as_str())
                .or_insert_with(|| LicenseAssignment {
                    license_id: license.clone(),
                    ..LicenseAssignment::default()
                });
            if *adding {
                e.user_ids_add.push(user.clone());
            } else {
                e.user_ids_remove.push(user.clone());
            }
        }
        let entries: Vec<LicenseAssignment> = entries.into_values().collect();
        let mut failures = Vec::new();
        for batch in batches(&entries) {
            let asked = batch.iter().flat_map(|e| {
                e.user_ids_add
                    .iter()
                    .map(|u| (u.clone(), e.license_id.clone(), true))
                    .chain(
                        e.user_ids_remove
                            .iter()
                            .map(|u| (u.clone(), e.license_id.clone(), false)),
                    )
            });
            let what = |adding: bool, license: &str| {
                if adding {
                    format!("giving license {license}")
                } else {
                    format!("taking license {license}")
                }
            };
            match self.client.assign_licenses(&batch).await {
                Err(e) => {
                    for (user, license, adding) in asked {
                        if let Some(&i) = wanted.get(&(user, license.clone(), adding)) {
                            failures.push((i, format!("{}: {e}", what(adding, &license))));
                        }
                    }
                }
                Ok(statuses) => {
                    for (user, license, adding) in asked {
                        let status = statuses
                            .iter()
                            .find(|s| s.user_id == user && s.license_id == license);
                        let why = match status {
                            Some(s) if s.succeeded() => continue,
                            Some(s) => format!(
                                "{}: the server answered {:?}",
                                what(adding, &license),
                                s.result
                            ),
                            None => format!(
                                "{}: the server's answer has no result for it",
                                what(adding, &license)
                            ),
                        };
                        if let Some(&i) = wanted.get(&(user, license, adding)) {
                            failures.push((i, why));
                        }
                    }
                }
            }
        }
        failures
    }
}
