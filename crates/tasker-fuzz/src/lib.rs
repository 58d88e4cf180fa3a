//! Fuzz harnesses (SPEC §15): each takes arbitrary bytes, runs one of
//! Tasker's parsers or pure rules on them, and panics only when an
//! invariant breaks — so any panic, from the harness or from the code under
//! test, is a bug. The same functions run under libFuzzer
//! (`cargo +nightly fuzz run <target>` in `crates/tasker-fuzz`) and as
//! ordinary tests over the committed corpus plus seeded mutations of it
//! (`tests/smoke.rs`).
//!
//! - [`template_source`]: YAML and JSON template parsing and validation;
//! - [`task_request`]: the REST API's decoding of a task-create request,
//!   and the identity hash computed from it;
//! - [`outcome_expansion`]: the steps and edges a decision or batch
//!   outcome adds to a task.

// A harness reports a broken invariant by panicking: that is what a fuzzer
// (and the smoke test) sees. Nothing else links this crate.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod mutate;

use std::collections::HashSet;

use serde_json::{Value, json};
use tasker_types::api::TaskRequest;
use tasker_types::expansion::{ExistingStep, ExpansionLimits, expand};
use tasker_types::identity::{IdentityStrategy, TemplateKey, canonical_json, identity_hash};
use tasker_types::outcome::{BatchOutcome, CursorConfig, DecisionOutcome, FlowControl};
use tasker_types::state::StepState;
use tasker_types::template::TaskTemplate;

/// Parses `data` as a YAML template and, when it is text, as a JSON one. A
/// template that parses is valid, has an acyclic graph, and survives a
/// round trip through JSON unchanged.
pub fn template_source(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [
        TaskTemplate::from_yaml(text, Some("fuzz.yaml")),
        TaskTemplate::from_json(text, Some("fuzz.json")),
    ] {
        let Ok(template) = parsed else {
            continue;
        };
        assert!(template.dag().is_ok(), "a valid template has a DAG");
        let json = serde_json::to_string(&template).unwrap_or_default();
        match TaskTemplate::from_json(&json, None) {
            Ok(again) => assert_eq!(again, template, "round trip through JSON"),
            Err(err) => panic!("a valid template's JSON is invalid: {err}\n{json}"),
        }
    }
}

/// Decodes `data` as the REST API decodes `POST /v1/tasks`. A request that
/// decodes re-encodes to one that decodes equal, and its identity hash is
/// a pure function of its content.
pub fn task_request(data: &[u8]) {
    let Ok(request) = tasker_orchestration::web::parse_json::<TaskRequest>(data, 32) else {
        return;
    };
    let encoded = serde_json::to_vec(&request).unwrap_or_default();
    match tasker_orchestration::web::parse_json::<TaskRequest>(&encoded, 64) {
        Ok(again) => assert_eq!(again, request, "round trip"),
        Err(err) => panic!("a decoded request re-encodes undecodable: {err:?}"),
    }
    let key = TemplateKey {
        namespace: &request.namespace,
        name: &request.name,
        version: request.version.as_deref().unwrap_or("1.0.0"),
    };
    let key_given = request.idempotency_key.as_deref();
    let first = identity_hash(IdentityStrategy::Strict, key, &request.context, key_given);
    let second = identity_hash(IdentityStrategy::Strict, key, &request.context, key_given);
    assert_eq!(first, second, "identity is deterministic");
    let canonical = canonical_json(&request.context);
    let reparsed: Value = serde_json::from_str(&canonical).unwrap_or(Value::Null);
    assert_eq!(
        canonical_json(&reparsed),
        canonical,
        "canonical form is stable"
    );
}

/// The templates [`outcome_expansion`] draws from: the example workflows
/// with decisions, batches and convergence.
const TEMPLATES: [&str; 3] = [
    include_str!("../../../config/tasks/diamond_decision_batch.yaml"),
    include_str!("../../../config/tasks/conditional_approval.yaml"),
    include_str!("../../../config/tasks/csv_batch_processing.yaml"),
];

/// Reads choices from the fuzzer's bytes; zeros once they run out.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.byte()) % n
        }
    }

    fn text(&mut self) -> String {
        let len = self.below(12);
        (0..len)
            .map(|_| char::from(b'_' + self.byte() % 28))
            .collect()
    }
}

/// Builds a task (a template, its existing steps and their states), a
/// trigger and an outcome from `data`'s bytes, and expands it. An
/// expansion never panics; when it succeeds every new step has a fresh
/// name and every edge joins steps that exist afterwards.
pub fn outcome_expansion(data: &[u8]) {
    let mut c = Choices(data);
    let Ok(template) = TaskTemplate::from_yaml(TEMPLATES[c.below(TEMPLATES.len())], None) else {
        panic!("an example template does not parse");
    };
    let names: Vec<&str> = template.steps.iter().map(|s| s.name.as_str()).collect();
    let mut existing_names = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // Roots always exist; other steps exist by choice, some as clones.
        if i == 0 || c.byte() % 2 == 0 {
            existing_names.push(((*name).to_owned(), (*name).to_owned()));
        }
        if c.byte() % 7 == 0 {
            existing_names.push((format!("{name}_{}", c.text()), (*name).to_owned()));
        }
    }
    let states: Vec<StepState> = existing_names
        .iter()
        .map(|_| StepState::ALL[c.below(StepState::ALL.len())])
        .collect();
    let existing: Vec<ExistingStep<'_>> = existing_names
        .iter()
        .zip(&states)
        .map(|((name, template_step), state)| ExistingStep {
            name,
            template_step,
            state: *state,
        })
        .collect();
    let trigger = existing_names[c.below(existing_names.len())].0.clone();
    let control = match c.byte() % 5 {
        0 => None,
        1 => Some(FlowControl::Decision(DecisionOutcome::NoBranches)),
        2 => Some(FlowControl::Batches(BatchOutcome::NoBatches)),
        3 => {
            let steps = (0..c.below(5))
                .map(|_| match c.byte() % 4 {
                    0 => c.text(),
                    _ => names[c.below(names.len())].to_owned(),
                })
                .collect();
            Some(FlowControl::Decision(DecisionOutcome::CreateSteps {
                steps,
            }))
        }
        _ => {
            let cursor_configs = (0..c.below(8))
                .map(|i| CursorConfig {
                    batch_id: match c.byte() % 4 {
                        0 => c.text(),
                        _ => format!("{i:03}"),
                    },
                    start_cursor: json!(c.byte()),
                    end_cursor: json!(c.byte()),
                    batch_size: u64::from(c.byte()),
                })
                .collect();
            Some(FlowControl::Batches(BatchOutcome::CreateBatches {
                worker_count: u32::from(c.byte()),
                cursor_configs,
            }))
        }
    };
    let limits = ExpansionLimits {
        max_steps_per_decision: 1 + c.below(20),
        max_decision_depth: 1 + c.below(5),
        max_batches: 1 + c.below(10),
    };
    let Ok(expansion) = expand(&template, &existing, &trigger, control.as_ref(), &limits) else {
        return;
    };
    let mut all: HashSet<&str> = existing.iter().map(|s| s.name).collect();
    for step in &expansion.steps {
        assert!(
            all.insert(&step.name),
            "step {} created twice or already there",
            step.name
        );
        assert!(
            names.contains(&step.template_step.as_str()),
            "{} clones unknown {}",
            step.name,
            step.template_step
        );
    }
    for edge in &expansion.edges {
        assert!(
            all.contains(edge.from.as_str()) && all.contains(edge.to.as_str()),
            "edge {edge:?} joins a step that does not exist"
        );
        assert_ne!(edge.from, edge.to, "self edge");
    }
}
