use serde_json::json;

use super::*;
use crate::outcome::CursorConfig;

const LIMITS: ExpansionLimits = ExpansionLimits {
    max_steps_per_decision: 50,
    max_decision_depth: 3,
    max_batches: 100,
};

fn example(file: &str) -> TaskTemplate {
    let path = format!("{}/../../config/tasks/{file}", env!("CARGO_MANIFEST_DIR"));
    TaskTemplate::from_yaml(&std::fs::read_to_string(&path).unwrap(), Some(file)).unwrap()
}

fn yaml(text: &str) -> TaskTemplate {
    TaskTemplate::from_yaml(text, None).unwrap()
}

/// The task's steps: `(name, template_step, state)`.
fn steps<'a>(list: &[(&'a str, &'a str, StepState)]) -> Vec<ExistingStep<'a>> {
    list.iter()
        .map(|&(name, template_step, state)| ExistingStep {
            name,
            template_step,
            state,
        })
        .collect()
}

fn initial(template: &TaskTemplate) -> Vec<(&str, &str, StepState)> {
    template
        .initial_steps()
        .unwrap()
        .into_iter()
        .map(|s| (s.name.as_str(), s.name.as_str(), StepState::Complete))
        .collect()
}

fn names(e: &Expansion) -> Vec<&str> {
    e.steps.iter().map(|s| s.name.as_str()).collect()
}

fn edges(e: &Expansion) -> Vec<(&str, &str)> {
    e.edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect()
}

fn choose(steps: &[&str]) -> FlowControl {
    FlowControl::Decision(DecisionOutcome::CreateSteps {
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
    })
}

fn batches(ids: &[&str]) -> FlowControl {
    FlowControl::Batches(BatchOutcome::CreateBatches {
        worker_count: u32::try_from(ids.len()).unwrap(),
        cursor_configs: ids
            .iter()
            .enumerate()
            .map(|(i, id)| CursorConfig {
                batch_id: (*id).to_owned(),
                start_cursor: json!(i * 10),
                end_cursor: json!((i + 1) * 10),
                batch_size: 10,
            })
            .collect(),
    })
}

#[test]
fn a_decision_creates_the_chosen_branch_and_the_convergence_below_it() {
    let t = example("conditional_approval.yaml");
    let existing = steps(&initial(&t));
    let e = expand(
        &t,
        &existing,
        "routing_decision",
        Some(&choose(&["auto_approve"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(names(&e), ["auto_approve", "finalize_approval"]);
    assert_eq!(
        edges(&e),
        [
            ("auto_approve", "finalize_approval"),
            ("routing_decision", "auto_approve")
        ]
    );

    let e = expand(
        &t,
        &existing,
        "routing_decision",
        Some(&choose(&["manager_approval", "finance_review"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(
        names(&e),
        ["manager_approval", "finance_review", "finalize_approval"]
    );
    assert!(edges(&e).contains(&("finance_review", "finalize_approval")));
    assert!(edges(&e).contains(&("manager_approval", "finalize_approval")));
    assert!(!edges(&e).iter().any(|(from, _)| *from == "auto_approve"));
}

#[test]
fn no_branches_still_creates_the_convergence_after_the_decision() {
    let t = example("conditional_approval.yaml");
    let existing = steps(&initial(&t));
    let none = FlowControl::Decision(DecisionOutcome::NoBranches);
    let e = expand(&t, &existing, "routing_decision", Some(&none), &LIMITS).unwrap();
    assert_eq!(names(&e), ["finalize_approval"]);
    assert_eq!(edges(&e), [("routing_decision", "finalize_approval")]);
}

#[test]
fn a_decision_may_only_name_steps_downstream_of_it() {
    let t = example("conditional_approval.yaml");
    let existing = steps(&initial(&t));
    let err = expand(
        &t,
        &existing,
        "routing_decision",
        Some(&choose(&["validate_request"])),
        &LIMITS,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "decision `routing_decision` chose `validate_request`, which is not reachable from it in the template"
    );
    let err = expand(
        &t,
        &existing,
        "routing_decision",
        Some(&choose(&["nope"])),
        &LIMITS,
    )
    .unwrap_err();
    assert!(matches!(err, ExpansionError::UnknownStep { .. }), "{err}");
    let err = expand(&t, &existing, "routing_decision", None, &LIMITS).unwrap_err();
    assert!(
        matches!(err, ExpansionError::MissingOutcome { .. }),
        "{err}"
    );
    let err = expand(
        &t,
        &existing,
        "validate_request",
        Some(&choose(&["auto_approve"])),
        &LIMITS,
    )
    .unwrap_err();
    assert!(matches!(err, ExpansionError::WrongOutcome { .. }), "{err}");
    assert_eq!(
        expand(&t, &existing, "validate_request", None, &LIMITS).unwrap(),
        Expansion::default()
    );
}

#[test]
fn a_standard_step_that_needs_an_unchosen_branch_is_an_error() {
    let t = yaml(
        "name: t\nnamespace_name: n\nversion: 1.0.0\nsteps:\n\
         - { name: start, handler: { callable: x } }\n\
         - { name: pick, type: decision, handler: { callable: x }, dependencies: [start] }\n\
         - { name: a, handler: { callable: x }, dependencies: [pick] }\n\
         - { name: b, handler: { callable: x }, dependencies: [pick] }\n\
         - { name: join, handler: { callable: x }, dependencies: [a, b] }\n",
    );
    let existing = steps(&[
        ("start", "start", StepState::Complete),
        ("pick", "pick", StepState::EnqueuedForOrchestration),
    ]);
    let err = expand(&t, &existing, "pick", Some(&choose(&["a"])), &LIMITS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`join` depends on `b`, which `pick` did not create and nothing else can; create `b` \
         too, or declare `join` as deferred_convergence"
    );
    let both = expand(
        &t,
        &existing,
        "pick",
        Some(&choose(&["b", "a", "a"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(names(&both), ["a", "b", "join"]);
}

#[test]
fn batches_clone_the_worker_per_cursor_and_wire_the_convergence() {
    let t = example("csv_batch_processing.yaml");
    let existing = steps(&initial(&t));
    let e = expand(
        &t,
        &existing,
        "analyze_csv",
        Some(&batches(&["001", "002"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(
        names(&e),
        [
            "process_csv_batch_001",
            "process_csv_batch_002",
            "aggregate_results"
        ]
    );
    assert_eq!(e.steps[1].template_step, "process_csv_batch");
    assert_eq!(
        batch_cursor(e.steps[1].inputs.as_ref())
            .unwrap()
            .start_cursor,
        json!(10)
    );
    assert_eq!(
        edges(&e),
        [
            ("analyze_csv", "process_csv_batch_001"),
            ("analyze_csv", "process_csv_batch_002"),
            ("process_csv_batch_001", "aggregate_results"),
            ("process_csv_batch_002", "aggregate_results"),
        ]
    );
}

#[test]
fn no_batches_still_reaches_convergence() {
    let t = example("csv_batch_processing.yaml");
    let existing = steps(&initial(&t));
    let none = FlowControl::Batches(BatchOutcome::NoBatches);
    let e = expand(&t, &existing, "analyze_csv", Some(&none), &LIMITS).unwrap();
    assert_eq!(names(&e), ["aggregate_results"]);
    assert_eq!(edges(&e), [("analyze_csv", "aggregate_results")]);
}

#[test]
fn batch_ids_are_checked() {
    let t = example("csv_batch_processing.yaml");
    let existing = steps(&initial(&t));
    for bad in [&["a b"][..], &["x", "x"], &[""]] {
        let err = expand(&t, &existing, "analyze_csv", Some(&batches(bad)), &LIMITS).unwrap_err();
        assert!(
            matches!(
                err,
                ExpansionError::InvalidBatchId { .. } | ExpansionError::DuplicateBatch { .. }
            ),
            "{bad:?}: {err}"
        );
    }
    let many: Vec<String> = (0..101).map(|i| format!("b{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = expand(&t, &existing, "analyze_csv", Some(&batches(&many)), &LIMITS).unwrap_err();
    assert!(
        matches!(err, ExpansionError::TooManyBatches { count: 101, .. }),
        "{err}"
    );
}

#[test]
fn decision_then_batches_defer_the_convergence_until_the_batches_exist() {
    let t = example("diamond_decision_batch.yaml");
    let mut task = initial(&t);
    let e = expand(
        &t,
        &steps(&task),
        "routing_decision",
        Some(&choose(&["even_batch_analyzer"])),
        &LIMITS,
    )
    .unwrap();
    // The convergence waits for the batches: it is not created yet.
    assert_eq!(names(&e), ["even_batch_analyzer"]);
    task.push((
        "even_batch_analyzer",
        "even_batch_analyzer",
        StepState::EnqueuedForOrchestration,
    ));

    let e = expand(
        &t,
        &steps(&task),
        "even_batch_analyzer",
        Some(&batches(&["0", "1"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(
        names(&e),
        [
            "even_batch_worker_0",
            "even_batch_worker_1",
            "final_convergence"
        ]
    );
    assert!(edges(&e).contains(&("even_batch_worker_1", "final_convergence")));
    assert!(!edges(&e).iter().any(|(from, _)| from.starts_with("odd")));
}

#[test]
fn a_convergence_created_early_waits_for_a_creator_that_has_not_decided() {
    let t = example("diamond_decision_batch.yaml");
    let mut task = initial(&t);
    // Both branches were chosen; evens expand first.
    task.push((
        "even_batch_analyzer",
        "even_batch_analyzer",
        StepState::EnqueuedForOrchestration,
    ));
    task.push((
        "odd_batch_analyzer",
        "odd_batch_analyzer",
        StepState::Enqueued,
    ));
    let e = expand(
        &t,
        &steps(&task),
        "even_batch_analyzer",
        Some(&batches(&["0"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(names(&e), ["even_batch_worker_0", "final_convergence"]);
    assert!(
        edges(&e).contains(&("odd_batch_analyzer", "final_convergence")),
        "the odd analyzer has not decided: {:?}",
        edges(&e)
    );

    // Odds expand later: their workers join the existing convergence.
    task.push((
        "even_batch_worker_0",
        "even_batch_worker",
        StepState::Complete,
    ));
    task.push(("final_convergence", "final_convergence", StepState::Pending));
    let e = expand(
        &t,
        &steps(&task),
        "odd_batch_analyzer",
        Some(&batches(&["7"])),
        &LIMITS,
    )
    .unwrap();
    assert_eq!(names(&e), ["odd_batch_worker_7"]);
    assert!(edges(&e).contains(&("odd_batch_worker_7", "final_convergence")));
}

#[test]
fn limits_on_decisions_are_enforced() {
    let t = example("conditional_approval.yaml");
    let existing = steps(&initial(&t));
    let tight = ExpansionLimits {
        max_steps_per_decision: 2,
        ..LIMITS
    };
    let err = expand(
        &t,
        &existing,
        "routing_decision",
        Some(&choose(&["manager_approval", "finance_review"])),
        &tight,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExpansionError::TooManySteps {
                count: 3,
                limit: 2,
                ..
            }
        ),
        "{err}"
    );

    let nested = yaml(
        "name: t\nnamespace_name: n\nversion: 1.0.0\nsteps:\n\
         - { name: s, handler: { callable: x } }\n\
         - { name: d1, type: decision, handler: { callable: x }, dependencies: [s] }\n\
         - { name: d2, type: decision, handler: { callable: x }, dependencies: [d1] }\n\
         - { name: leaf, handler: { callable: x }, dependencies: [d2] }\n",
    );
    let existing = steps(&[
        ("s", "s", StepState::Complete),
        ("d1", "d1", StepState::EnqueuedForOrchestration),
    ]);
    let shallow = ExpansionLimits {
        max_decision_depth: 1,
        ..LIMITS
    };
    let err = expand(&nested, &existing, "d1", Some(&choose(&["d2"])), &shallow).unwrap_err();
    assert!(
        matches!(err, ExpansionError::TooDeep { depth: 2, .. }),
        "{err}"
    );
    assert_eq!(
        names(&expand(&nested, &existing, "d1", Some(&choose(&["d2"])), &LIMITS).unwrap()),
        ["d2"]
    );
}
