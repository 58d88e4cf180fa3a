//! The semantic rules of SPEC §2: names, versions, ranges, schemas, the graph,
//! and the extra rules of decision and batch steps. Every problem is
//! collected, so one pass shows a person everything to fix.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::error::Collector;
use super::model::{StepDefinition, StepType, TaskTemplate};
use crate::backoff::RetryPolicy;
use crate::dag::Dag;
use crate::messages::QueueName;
use crate::names::{
    IDENTIFIER_RULE, NAMESPACE_RULE, POOL_RULE, is_valid_identifier, is_valid_namespace,
    is_valid_pool,
};

/// Most steps one template may declare.
pub const MAX_STEPS: usize = 1_000;
/// Range of `retry.max_attempts`.
pub const MAX_ATTEMPTS_RANGE: (u32, u32) = (1, 100);
/// Largest `retry.backoff_base_ms` (one hour).
pub const MAX_BACKOFF_BASE_MS: u64 = 3_600_000;
/// Largest `retry.max_backoff_ms` (one day).
pub const MAX_BACKOFF_CAP_MS: u64 = 86_400_000;
/// Range of `timeout_seconds` (one second to one day).
pub const TIMEOUT_RANGE: (u32, u32) = (1, 86_400);
/// Range of `batch_config.parallelism`.
pub const PARALLELISM_RANGE: (u32, u32) = (1, 1_000);
/// Range of `batch_config.batch_size`.
pub const BATCH_SIZE_RANGE: (u64, u64) = (1, 10_000_000);
/// Range of each `lifecycle` threshold, in minutes (one minute to a year).
pub const LIFECYCLE_RANGE: (u32, u32) = (1, 525_600);

pub(crate) fn validate_into(t: &TaskTemplate, errors: &mut Collector<'_>) {
    if !is_valid_identifier(&t.name) {
        errors.template(
            Some("name"),
            format!("'{}' is not a valid name: use {IDENTIFIER_RULE}", t.name),
        );
    }
    if !is_valid_namespace(&t.namespace_name) {
        errors.template(
            Some("namespace_name"),
            format!(
                "'{}' is not a valid namespace: use {NAMESPACE_RULE}",
                t.namespace_name
            ),
        );
    }
    if semver::Version::parse(&t.version).is_err() {
        errors.template(
            Some("version"),
            format!(
                "'{}' is not a semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.0.0)",
                t.version
            ),
        );
    }
    if let Some(schema) = &t.input_schema {
        check_schema(schema, |m| errors.template(Some("input_schema"), m));
    }
    check_lifecycle(t, errors);
    if t.steps.is_empty() {
        errors.template(Some("steps"), "a template needs at least one step");
        return;
    }
    if t.steps.len() > MAX_STEPS {
        errors.template(
            Some("steps"),
            format!("{} steps declared; the limit is {MAX_STEPS}", t.steps.len()),
        );
        return;
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for step in &t.steps {
        if seen.insert(step.name.as_str(), 0).is_some() {
            errors.step(
                &step.name,
                Some("name"),
                "duplicate step name: it is declared more than once",
            );
        }
        check_step_fields(&t.namespace_name, step, errors);
    }
    let known: BTreeSet<&str> = t.steps.iter().map(|s| s.name.as_str()).collect();
    let mut graph_ok = true;
    for step in &t.steps {
        let mut listed = BTreeSet::new();
        for dep in &step.dependencies {
            if !known.contains(dep.as_str()) {
                graph_ok = false;
                errors.step(
                    &step.name,
                    Some("dependencies"),
                    format!("unknown step '{dep}'"),
                );
            } else if !listed.insert(dep.as_str()) {
                errors.step(
                    &step.name,
                    Some("dependencies"),
                    format!("'{dep}' is listed twice"),
                );
            }
        }
    }
    check_environments(t, &known, errors);
    if !graph_ok || known.len() != t.steps.len() {
        return;
    }
    let Ok(dag) = t.dag() else { return };
    if let Some(cycle) = dag.find_cycle() {
        let first = cycle.0.first().cloned().unwrap_or_default();
        errors.step(
            &first,
            Some("dependencies"),
            format!("dependency cycle: {cycle}"),
        );
        return;
    }
    check_step_types(t, &dag, errors);
}

fn check_step_fields(namespace: &str, step: &StepDefinition, errors: &mut Collector<'_>) {
    let name = step.name.as_str();
    if !is_valid_identifier(name) {
        errors.step(
            name,
            Some("name"),
            format!("not a valid step name: use {IDENTIFIER_RULE}"),
        );
    }
    let callable = &step.handler.callable;
    if callable.is_empty()
        || callable.len() > 255
        || callable
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        errors.step(
            name,
            Some("handler.callable"),
            "must be 1 to 255 characters with no spaces, e.g. 'orders::ship'",
        );
    }
    check_retry(&step.retry, |field, m| errors.step(name, Some(field), m));
    if let Some(pool) = &step.pool {
        check_pool(namespace, pool, |m| errors.step(name, Some("pool"), m));
    }
    if let Some(m) = step
        .timeout_seconds
        .and_then(|t| out_of_range(t, TIMEOUT_RANGE))
    {
        errors.step(name, Some("timeout_seconds"), m);
    }
    if let Some(schema) = &step.result_schema {
        check_schema(schema, |m| errors.step(name, Some("result_schema"), m));
    }
    let mut event_names = BTreeSet::new();
    for (i, event) in step.publishes_events.iter().enumerate() {
        let field = format!("publishes_events[{i}]");
        let valid_name = !event.name.is_empty()
            && event.name.len() <= 128
            && event
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !valid_name {
            errors.step(name, Some(&format!("{field}.name")), format!(
                "'{}' is not a valid event name: use 1 to 128 characters from a-z, 0-9, _ and .",
                event.name
            ));
        } else if !event_names.insert(event.name.as_str()) {
            errors.step(
                name,
                Some(&format!("{field}.name")),
                format!("event '{}' is declared twice", event.name),
            );
        }
        if let Some(schema) = &event.schema {
            check_schema(schema, |m| {
                errors.step(name, Some(&format!("{field}.schema")), m)
            });
        }
    }
    match (&step.batch_config, step.step_type) {
        (None, StepType::Batchable) => {
            errors.step(
                name,
                Some("batch_config"),
                "a batchable step needs batch_config",
            );
        }
        (Some(_), t) if t != StepType::Batchable => {
            errors.step(
                name,
                Some("batch_config"),
                "only batchable steps take batch_config",
            );
        }
        (Some(config), _) => {
            if let Some(m) = out_of_range(config.parallelism, PARALLELISM_RANGE) {
                errors.step(name, Some("batch_config.parallelism"), m);
            }
            if let Some(m) = out_of_range(config.batch_size, BATCH_SIZE_RANGE) {
                errors.step(name, Some("batch_config.batch_size"), m);
            }
        }
        (None, _) => {}
    }
}

fn check_pool(namespace: &str, pool: &str, mut report: impl FnMut(String)) {
    if !is_valid_pool(pool) {
        report(format!("'{pool}' is not a valid pool: use {POOL_RULE}"));
    } else if is_valid_namespace(namespace)
        && QueueName::worker_pool(namespace, Some(pool)).is_err()
    {
        report(format!(
            "pool '{pool}' is too long for namespace '{namespace}': its queue \
             `worker_{namespace}__{pool}` must fit in {} characters",
            QueueName::MAX_LEN
        ));
    }
}

fn check_retry(retry: &RetryPolicy, mut report: impl FnMut(&str, String)) {
    if let Some(m) = out_of_range(retry.max_attempts, MAX_ATTEMPTS_RANGE) {
        report("retry.max_attempts", m);
    }
    if retry.backoff_base_ms > MAX_BACKOFF_BASE_MS {
        report(
            "retry.backoff_base_ms",
            format!(
                "must be at most {MAX_BACKOFF_BASE_MS} (got {})",
                retry.backoff_base_ms
            ),
        );
    }
    if retry.max_backoff_ms > MAX_BACKOFF_CAP_MS {
        report(
            "retry.max_backoff_ms",
            format!(
                "must be at most {MAX_BACKOFF_CAP_MS} (got {})",
                retry.max_backoff_ms
            ),
        );
    } else if retry.max_backoff_ms < retry.backoff_base_ms {
        report(
            "retry.max_backoff_ms",
            format!(
                "must be at least retry.backoff_base_ms ({}) (got {})",
                retry.backoff_base_ms, retry.max_backoff_ms
            ),
        );
    }
}

fn check_environments(t: &TaskTemplate, known: &BTreeSet<&str>, errors: &mut Collector<'_>) {
    for (env, overrides) in &t.environments {
        let env_ok = !env.is_empty()
            && env.len() <= 32
            && env
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !env_ok {
            errors.template(
                Some(&format!("environments.{env}")),
                "environment names are 1 to 32 characters from a-z, 0-9, _ and -",
            );
        }
        for (step_name, change) in &overrides.steps {
            let prefix = format!("environments.{env}.steps.{step_name}");
            let Some(step) = t
                .step(step_name)
                .filter(|_| known.contains(step_name.as_str()))
            else {
                errors.template(Some(&prefix), format!("unknown step '{step_name}'"));
                continue;
            };
            if let Some(retry) = &change.retry {
                check_retry(&retry.apply(step.retry), |field, m| {
                    errors.step(step_name, Some(&format!("environments.{env}.{field}")), m);
                });
            }
            if let Some(m) = change
                .timeout_seconds
                .and_then(|t| out_of_range(t, TIMEOUT_RANGE))
            {
                let field = format!("environments.{env}.timeout_seconds");
                errors.step(step_name, Some(&field), m);
            }
        }
    }
}

fn check_lifecycle(t: &TaskTemplate, errors: &mut Collector<'_>) {
    let l = &t.lifecycle;
    for (field, value) in [
        ("lifecycle.max_duration_minutes", l.max_duration_minutes),
        (
            "lifecycle.max_waiting_for_dependencies_minutes",
            l.max_waiting_for_dependencies_minutes,
        ),
        (
            "lifecycle.max_waiting_for_retry_minutes",
            l.max_waiting_for_retry_minutes,
        ),
        (
            "lifecycle.max_steps_in_process_minutes",
            l.max_steps_in_process_minutes,
        ),
    ] {
        if let Some(m) = value.and_then(|v| out_of_range(v, LIFECYCLE_RANGE)) {
            errors.template(Some(field), m);
        }
    }
}

/// The extra rules of decision, convergence and batch steps (SPEC §4.6–§4.7).
/// Runs only on an acyclic graph with known dependencies.
fn check_step_types(t: &TaskTemplate, dag: &Dag, errors: &mut Collector<'_>) {
    // Steps created at run time: downstream of a decision, or a batch worker
    // and what hangs below it.
    let mut dynamic = vec![false; t.steps.len()];
    for (i, step) in t.steps.iter().enumerate() {
        match step.step_type {
            StepType::Decision => dag
                .descendants(i)
                .into_iter()
                .for_each(|d| dynamic[d] = true),
            StepType::BatchWorker => {
                dynamic[i] = true;
                dag.descendants(i)
                    .into_iter()
                    .for_each(|d| dynamic[d] = true);
            }
            _ => {}
        }
    }
    let mut workers_named: HashMap<&str, Vec<&str>> = HashMap::new();
    for step in &t.steps {
        if let Some(config) = &step.batch_config {
            workers_named
                .entry(config.worker_template.as_str())
                .or_default()
                .push(&step.name);
            match t.step(&config.worker_template) {
                None => errors.step(
                    &step.name,
                    Some("batch_config.worker_template"),
                    format!("unknown step '{}'", config.worker_template),
                ),
                Some(worker) if worker.step_type != StepType::BatchWorker => errors.step(
                    &step.name,
                    Some("batch_config.worker_template"),
                    format!(
                        "'{}' must be a batch_worker step (it is {})",
                        worker.name,
                        worker.step_type.as_str()
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    for (i, step) in t.steps.iter().enumerate() {
        let name = step.name.as_str();
        match step.step_type {
            StepType::Decision => {
                if step.dependencies.is_empty() {
                    errors.step(
                        name,
                        Some("dependencies"),
                        "a decision step needs at least one dependency",
                    );
                }
                if dag.children(i).is_empty() {
                    errors.step(
                        name,
                        Some("type"),
                        "a decision step needs downstream steps to choose from",
                    );
                }
            }
            StepType::DeferredConvergence => {
                if step.dependencies.is_empty() {
                    errors.step(
                        name,
                        Some("dependencies"),
                        "a deferred_convergence step needs dependencies",
                    );
                } else if !dag.parents(i).iter().any(|&p| dynamic[p]) {
                    errors.step(
                        name,
                        Some("type"),
                        "a deferred_convergence step must depend on a step created at run time \
                         (downstream of a decision, or a batch worker); use type standard",
                    );
                }
            }
            StepType::BatchWorker => {
                let batchables = workers_named.get(name).cloned().unwrap_or_default();
                match batchables.as_slice() {
                    [] => errors.step(
                        name,
                        Some("type"),
                        "no batchable step names this batch_worker in batch_config.worker_template",
                    ),
                    [owner] => {
                        if step.dependencies != [owner.to_string()] {
                            errors.step(
                                name,
                                Some("dependencies"),
                                format!("a batch_worker depends on exactly its batchable step ['{owner}']"),
                            );
                        }
                    }
                    many => errors.step(
                        name,
                        Some("type"),
                        format!("named by more than one batchable step: {}", many.join(", ")),
                    ),
                }
                let children = dag.children(i);
                if children.is_empty() {
                    errors.step(
                        name,
                        Some("type"),
                        "a batch_worker needs a deferred_convergence step that depends on it",
                    );
                }
                for &child in children {
                    let child = &t.steps[child];
                    if child.step_type != StepType::DeferredConvergence {
                        errors.step(
                            &child.name,
                            Some("type"),
                            format!("steps that depend on batch_worker '{name}' must be deferred_convergence"),
                        );
                    }
                }
            }
            StepType::Standard | StepType::Batchable => {}
        }
    }
}

fn check_schema(schema: &Value, mut report: impl FnMut(String)) {
    if !(schema.is_object() || schema.is_boolean()) {
        report("must be a JSON Schema object".to_owned());
        return;
    }
    if let Err(err) = jsonschema::validator_for(schema) {
        report(format!("not a valid JSON Schema: {err}"));
    }
}

fn out_of_range<N: PartialOrd + std::fmt::Display + Copy>(
    value: N,
    (lo, hi): (N, N),
) -> Option<String> {
    (value < lo || value > hi).then(|| format!("must be between {lo} and {hi} (got {value})"))
}
