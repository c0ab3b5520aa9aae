//! Watch's outbound webhook events: what each reconcile and quarantine change becomes on the
//! wire. Emitting never waits (the webhook queue drops and counts when full), so a slow
//! receiver never holds up a reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::webhook::{self, Event, Webhooks};

use super::{Events, Mode, ReconcileError, Reconciled, Transition, Trigger};

/// Sends `driftFound`, `applied`, `deletesBlocked`, `quarantineEntered` and
/// `quarantineLeft`.
#[derive(Debug)]
pub struct WebhookEvents {
    webhooks: Arc<Webhooks>,
    mode: Mode,
    /// The last target seen, for quarantine events (a failed reconcile may not know it).
    target: String,
}

impl WebhookEvents {
    /// Events for `mode` through `webhooks`; `target` names the target until a reconcile
    /// reports it.
    #[must_use]
    pub fn new(webhooks: Arc<Webhooks>, mode: Mode, target: String) -> WebhookEvents {
        WebhookEvents {
            webhooks,
            mode,
            target,
        }
    }

    /// The events one successful reconcile produces, in order.
    #[must_use]
    pub fn for_reconcile(&self, done: &Reconciled) -> Vec<Event> {
        let mut events = Vec::new();
        if done.drift > 0 {
            let changes: BTreeMap<String, BTreeMap<String, u64>> = done
                .changes
                .iter()
                .filter(|(action, _)| action.as_str() != "blocked")
                .map(|(a, k)| (a.clone(), k.clone()))
                .collect();
            if !changes.is_empty() {
                events.push(Event::DriftFound {
                    target: done.target.clone(),
                    mode: match self.mode {
                        Mode::Heal => webhook::Mode::Heal,
                        Mode::Report => webhook::Mode::Report,
                    },
                    changes,
                });
            }
        }
        if done.blocked > 0 {
            events.push(Event::DeletesBlocked {
                target: done.target.clone(),
                count: u64::try_from(done.blocked).unwrap_or(u64::MAX),
                reason: done
                    .blocked_reason
                    .clone()
                    .unwrap_or_else(|| "held back by a safety rule".into()),
            });
        }
        if let Some((checksum, outcomes)) = &done.outcomes {
            events.push(Event::Applied {
                target: done.target.clone(),
                plan_checksum: checksum.clone(),
                outcomes: *outcomes,
            });
        }
        events
    }
}

impl Events for WebhookEvents {
    fn reconciled(&mut self, _trigger: Trigger, result: &Result<Reconciled, ReconcileError>) {
        if let Ok(done) = result {
            self.target.clone_from(&done.target);
            for event in self.for_reconcile(done) {
                self.webhooks.emit(&event);
            }
        }
    }

    fn quarantine(&mut self, transition: Transition, failures: u32, last_error: Option<&str>) {
        let event = match transition {
            Transition::Entered => Event::QuarantineEntered {
                target: self.target.clone(),
                consecutive_failures: failures,
                last_error: last_error.unwrap_or_default().to_owned(),
            },
            Transition::Left => Event::QuarantineLeft {
                target: self.target.clone(),
                consecutive_failures: failures,
            },
            Transition::None => return,
        };
        self.webhooks.emit(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{Outcomes, WebhookConfig};

    /// Drift, blocked deletes and the applied outcomes each become their event.
    #[tokio::test]
    async fn a_reconcile_becomes_its_events() {
        let webhooks = Arc::new(crate::webhook::start(
            WebhookConfig::default(),
            &reqwest::Client::new(),
        ));
        let events = WebhookEvents::new(webhooks, Mode::Heal, "sandbox".into());
        let mut changes = BTreeMap::new();
        changes.insert("patch".to_owned(), BTreeMap::from([("user".to_owned(), 2)]));
        changes.insert(
            "blocked".to_owned(),
            BTreeMap::from([("user".to_owned(), 3)]),
        );
        let done = Reconciled {
            drift: 5,
            blocked: 3,
            applied: 2,
            target: "https://scim.example/v2".into(),
            changes,
            blocked_reason: Some("3 deactivations exceed maxDeleteCount 2".into()),
            outcomes: Some((
                "sha256:abc".into(),
                Outcomes {
                    done: 2,
                    ..Outcomes::default()
                },
            )),
            desired_invalid: false,
        };
        let got = events.for_reconcile(&done);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            matches!(&got[0], Event::DriftFound { changes, .. } if changes.len() == 1 && changes["patch"]["user"] == 2)
        );
        assert!(
            matches!(&got[1], Event::DeletesBlocked { count: 3, reason, .. } if reason.contains("maxDeleteCount"))
        );
        assert!(matches!(&got[2], Event::Applied { outcomes, .. } if outcomes.done == 2));
        assert!(
            events.for_reconcile(&Reconciled::default()).is_empty(),
            "no drift, no event"
        );
    }
}
