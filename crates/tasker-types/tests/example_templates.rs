//! Every template shipped in `config/tasks/` parses and validates, and the
//! set covers the shapes SPEC §2 promises.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use tasker_types::template::{StepType, TaskTemplate};

fn example_templates() -> Vec<(String, TaskTemplate)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/tasks");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            match TaskTemplate::from_yaml(&text, Some(&name)) {
                Ok(template) => found.push((name, template)),
                Err(errors) => panic!("{errors}"),
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn every_example_template_validates() {
    let templates = example_templates();
    let names: Vec<&str> = templates.iter().map(|(file, _)| file.as_str()).collect();
    assert_eq!(
        names,
        [
            "conditional_approval.yaml",
            "csv_batch_processing.yaml",
            "diamond_decision_batch.yaml",
            "diamond_workflow.yaml",
            "linear_workflow.yaml",
            "mixed_dag_workflow.yaml",
            "order_fulfillment.yaml",
            "tree_workflow.yaml",
        ]
    );
}

#[test]
fn examples_cover_decisions_convergence_and_batches() {
    let templates = example_templates();
    let has = |file: &str, kind: StepType| {
        templates
            .iter()
            .find(|(f, _)| f == file)
            .is_some_and(|(_, t)| t.steps.iter().any(|s| s.step_type == kind))
    };
    assert!(has("conditional_approval.yaml", StepType::Decision));
    assert!(has(
        "conditional_approval.yaml",
        StepType::DeferredConvergence
    ));
    assert!(has("csv_batch_processing.yaml", StepType::Batchable));
    assert!(has("csv_batch_processing.yaml", StepType::BatchWorker));
    for kind in [
        StepType::Decision,
        StepType::Batchable,
        StepType::DeferredConvergence,
    ] {
        assert!(has("diamond_decision_batch.yaml", kind));
    }
    let (_, linear) = templates
        .iter()
        .find(|(f, _)| f == "linear_workflow.yaml")
        .unwrap();
    assert_eq!(linear.steps.len(), 4);
}
