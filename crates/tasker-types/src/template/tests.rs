use serde_json::json;

use super::*;
use crate::backoff::BackoffKind;

const HEAD: &str = "name: t\nnamespace_name: ns\nversion: 1.0.0\n";

fn parse(yaml: &str) -> Result<TaskTemplate, TemplateErrors> {
    TaskTemplate::from_yaml(yaml, Some("t.yaml"))
}

/// `HEAD` plus `steps:` followed by `steps` (YAML list items, 2-space indented).
fn with_steps(steps: &str) -> String {
    format!("{HEAD}steps:\n{steps}")
}

/// One invalid template and the exact error (all errors, joined) it must produce.
struct Case {
    what: &'static str,
    yaml: String,
    error: &'static str,
}

fn invalid_cases() -> Vec<Case> {
    let step_a = "  - name: a\n    handler: { callable: x }\n";
    vec![
        Case {
            what: "malformed YAML",
            yaml: format!("{HEAD}steps: [\n"),
            error: "t.yaml: invalid YAML: unclosed bracket '[' at line 4, column 8",
        },
        Case {
            what: "unknown top-level key",
            yaml: format!("{HEAD}colour: red\nsteps:\n{step_a}"),
            error: "t.yaml, field 'colour': unknown field `colour`, expected one of `name`, \
                    `namespace_name`, `version`, `description`, `metadata`, `identity_strategy`, \
                    `input_schema`, `steps`, `environments`, `lifecycle`",
        },
        Case {
            what: "unknown step key",
            yaml: with_steps("  - name: a\n    handler: { callable: x }\n    retires: 3\n"),
            error: "t.yaml, step 'a', field 'retires': unknown field `retires`, expected one of \
                    `name`, `description`, `handler`, `pool`, `type`, `dependencies`, `retry`, \
                    `timeout_seconds`, `publishes_events`, `batch_config`, `result_schema`",
        },
        Case {
            what: "missing required field",
            yaml: "name: t\nnamespace_name: ns\nsteps: []\n".into(),
            error: "t.yaml: missing field `version`",
        },
        Case {
            what: "no steps",
            yaml: format!("{HEAD}steps: []\n"),
            error: "t.yaml, field 'steps': a template needs at least one step",
        },
        Case {
            what: "duplicate step names",
            yaml: with_steps(&format!("{step_a}{step_a}")),
            error: "t.yaml, step 'a', field 'name': duplicate step name: it is declared more than once",
        },
        Case {
            what: "unknown dependency",
            yaml: with_steps(
                "  - name: a\n    handler: { callable: x }\n    dependencies: [ghost]\n",
            ),
            error: "t.yaml, step 'a', field 'dependencies': unknown step 'ghost'",
        },
        Case {
            what: "cycle names its path",
            yaml: with_steps(
                "  - { name: start, handler: { callable: x } }\n\
                 \x20 - { name: a, handler: { callable: x }, dependencies: [start, c] }\n\
                 \x20 - { name: b, handler: { callable: x }, dependencies: [a] }\n\
                 \x20 - { name: c, handler: { callable: x }, dependencies: [b] }\n",
            ),
            error: "t.yaml, step 'a', field 'dependencies': dependency cycle: a -> b -> c -> a",
        },
        Case {
            what: "bad namespace",
            yaml: format!("name: t\nnamespace_name: Pay-Ments\nversion: 1.0.0\nsteps:\n{step_a}"),
            error: "t.yaml, field 'namespace_name': 'Pay-Ments' is not a valid namespace: use 1 \
                    to 29 characters from a-z, 0-9 and _",
        },
        Case {
            what: "version is not semver",
            yaml: format!("name: t\nnamespace_name: ns\nversion: '1.0'\nsteps:\n{step_a}"),
            error: "t.yaml, field 'version': '1.0' is not a semantic version (expected \
                    MAJOR.MINOR.PATCH, e.g. 1.0.0)",
        },
        Case {
            what: "max_attempts out of range",
            yaml: with_steps(
                "  - name: a\n    handler: { callable: x }\n    retry: { max_attempts: 0 }\n",
            ),
            error: "t.yaml, step 'a', field 'retry.max_attempts': must be between 1 and 100 (got 0)",
        },
        Case {
            what: "backoff cap below base",
            yaml: with_steps(
                "  - name: a\n    handler: { callable: x }\n    retry: { backoff_base_ms: 5000, max_backoff_ms: 100 }\n",
            ),
            error: "t.yaml, step 'a', field 'retry.max_backoff_ms': must be at least \
                    retry.backoff_base_ms (5000) (got 100)",
        },
        Case {
            what: "wrong type in a nested field",
            yaml: with_steps(
                "  - name: a\n    handler: { callable: x }\n    retry: { max_attempts: lots }\n",
            ),
            error: "t.yaml, step 'a', field 'retry.max_attempts': invalid type: string \"lots\", expected u32",
        },
        Case {
            what: "timeout out of range",
            yaml: with_steps("  - name: a\n    handler: { callable: x }\n    timeout_seconds: 0\n"),
            error: "t.yaml, step 'a', field 'timeout_seconds': must be between 1 and 86400 (got 0)",
        },
        Case {
            what: "invalid input_schema",
            yaml: format!("{HEAD}input_schema: {{ type: nonsense }}\nsteps:\n{step_a}"),
            error: "t.yaml, field 'input_schema': not a valid JSON Schema: \"nonsense\" is not \
                    valid under any of the schemas listed in the 'anyOf' keyword",
        },
        Case {
            what: "unknown step type",
            yaml: with_steps("  - name: a\n    handler: { callable: x }\n    type: fancy\n"),
            error: "t.yaml, step 'a', field 'type': unknown variant `fancy`, expected one of \
                    `standard`, `decision`, `deferred_convergence`, `batchable`, `batch_worker`",
        },
        Case {
            what: "decision without dependencies",
            yaml: with_steps(
                "  - { name: d, type: decision, handler: { callable: x } }\n\
                 \x20 - { name: b, handler: { callable: x }, dependencies: [d] }\n",
            ),
            error: "t.yaml, step 'd', field 'dependencies': a decision step needs at least one dependency",
        },
        Case {
            what: "batchable without batch_config",
            yaml: with_steps("  - { name: a, type: batchable, handler: { callable: x } }\n"),
            error: "t.yaml, step 'a', field 'batch_config': a batchable step needs batch_config",
        },
        Case {
            what: "batch_worker no batchable names",
            yaml: with_steps(
                "  - { name: a, handler: { callable: x } }\n\
                 \x20 - { name: w, type: batch_worker, handler: { callable: x }, dependencies: [a] }\n\
                 \x20 - { name: c, type: deferred_convergence, handler: { callable: x }, dependencies: [w] }\n",
            ),
            error: "t.yaml, step 'w', field 'type': no batchable step names this batch_worker in \
                    batch_config.worker_template",
        },
        Case {
            what: "convergence below a batch worker must be deferred",
            yaml: with_steps(
                "  - { name: b, type: batchable, handler: { callable: x }, batch_config: { worker_template: w } }\n\
                 \x20 - { name: w, type: batch_worker, handler: { callable: x }, dependencies: [b] }\n\
                 \x20 - { name: c, handler: { callable: x }, dependencies: [w] }\n",
            ),
            error: "t.yaml, step 'c', field 'type': steps that depend on batch_worker 'w' must be \
                    deferred_convergence",
        },
        Case {
            what: "environment override of an unknown step",
            yaml: format!(
                "{HEAD}steps:\n{step_a}environments:\n  production:\n    steps:\n      ghost: {{ timeout_seconds: 5 }}\n"
            ),
            error: "t.yaml, field 'environments.production.steps.ghost': unknown step 'ghost'",
        },
        Case {
            what: "environment override out of range",
            yaml: format!(
                "{HEAD}steps:\n{step_a}environments:\n  production:\n    steps:\n      a: {{ retry: {{ max_attempts: 500 }} }}\n"
            ),
            error: "t.yaml, step 'a', field 'environments.production.retry.max_attempts': must be \
                    between 1 and 100 (got 500)",
        },
        Case {
            what: "several problems are all reported",
            yaml: with_steps(
                "  - { name: Bad, handler: { callable: 'has space' } }\n\
                 \x20 - { name: b, handler: { callable: x }, dependencies: [b2] }\n",
            ),
            error: "3 problems in template:\n  \
                    - t.yaml, step 'Bad', field 'name': not a valid step name: use a lowercase \
                    letter followed by up to 63 characters from a-z, 0-9 and _\n  \
                    - t.yaml, step 'Bad', field 'handler.callable': must be 1 to 255 characters \
                    with no spaces, e.g. 'orders::ship'\n  \
                    - t.yaml, step 'b', field 'dependencies': unknown step 'b2'",
        },
        Case {
            what: "pool that could be mistaken for another queue",
            yaml: with_steps("  - { name: a, handler: { callable: x }, pool: py__thon }\n"),
            error: "t.yaml, step 'a', field 'pool': 'py__thon' is not a valid pool: use a-z, \
                    0-9 and single _ between them, not `queue` or ending in `_queue`",
        },
        Case {
            what: "pool too long for its namespace",
            yaml: with_steps(&format!(
                "  - {{ name: a, handler: {{ callable: x }}, pool: {} }}\n",
                "p".repeat(40)
            )),
            error: "t.yaml, step 'a', field 'pool': pool 'pppppppppppppppppppppppppppppppppppppppp' \
                    is too long for namespace 'ns': its queue \
                    `worker_ns__pppppppppppppppppppppppppppppppppppppppp` must fit in 47 characters",
        },
    ]
}

#[test]
fn steps_are_routed_to_their_pools_queue() {
    let t = parse(&with_steps(
        "  - { name: a, handler: { callable: x } }\n\
         \x20 - { name: b, handler: { callable: y }, pool: python, dependencies: [a] }\n\
         \x20 - { name: c, handler: { callable: z }, pool: python, dependencies: [b] }\n",
    ))
    .unwrap();
    assert_eq!(t.step_queue("a").unwrap().as_str(), "worker_ns_queue");
    assert_eq!(t.step_queue("b").unwrap().as_str(), "worker_ns__python");
    assert!(t.step_queue("nope").is_err());
    let queues: Vec<String> = t.queues().unwrap().iter().map(|q| q.to_string()).collect();
    assert_eq!(queues, ["worker_ns__python", "worker_ns_queue"]);
}

#[test]
fn invalid_templates_produce_exact_errors() {
    let cases = invalid_cases();
    assert!(cases.len() >= 15);
    for case in cases {
        match parse(&case.yaml) {
            Ok(_) => panic!("{}: accepted an invalid template", case.what),
            Err(errors) => assert_eq!(errors.to_string(), case.error, "{}", case.what),
        }
    }
}

#[test]
fn defaults_are_filled_in() {
    let t = parse(&with_steps("  - name: a\n    handler: { callable: x }\n")).unwrap();
    let step = &t.steps[0];
    assert_eq!(step.step_type, StepType::Standard);
    assert!(step.retry.retryable);
    assert_eq!(step.retry.max_attempts, 3);
    assert_eq!(step.retry.backoff, BackoffKind::Exponential);
    assert_eq!(step.retry.backoff_base_ms, 1000);
    assert_eq!(step.retry.max_backoff_ms, 60000);
    assert_eq!(step.timeout_seconds, None);
    assert!(step.handler.initialization.is_empty());
    assert_eq!(
        t.identity_strategy,
        crate::identity::IdentityStrategy::Strict
    );
}

#[test]
fn json_and_yaml_give_the_same_template_and_hash() {
    let yaml = parse(&with_steps(
        "  - name: a\n    handler: { callable: x, initialization: { b: 1, a: 2 } }\n",
    ))
    .unwrap();
    let json = TaskTemplate::from_json_value(
        json!({
            "version": "1.0.0", "namespace_name": "ns", "name": "t",
            "steps": [{"handler": {"initialization": {"a": 2, "b": 1}, "callable": "x"}, "name": "a"}]
        }),
        None,
    )
    .unwrap();
    assert_eq!(yaml, json);
    assert_eq!(yaml.content_hash(), json.content_hash());
    let mut changed = json.clone();
    changed.steps[0].retry.max_attempts = 4;
    assert_ne!(changed.content_hash(), json.content_hash());
}

#[test]
fn stored_form_round_trips() {
    let t = parse(&with_steps(
        "  - { name: a, handler: { callable: x }, retry: { backoff: linear } }\n\
         \x20 - { name: b, handler: { callable: x }, dependencies: [a], timeout_seconds: 9 }\n",
    ))
    .unwrap();
    let stored = serde_json::to_value(&t).unwrap();
    let back = TaskTemplate::from_json_value(stored, None).unwrap();
    assert_eq!(back, t);
}

#[test]
fn environment_overrides_merge_over_the_step() {
    let t = parse(&format!(
        "{HEAD}steps:\n  - name: a\n    handler: {{ callable: x, initialization: {{ url: dev, keep: 1 }} }}\n    \
         retry: {{ max_attempts: 2 }}\n\
         environments:\n  production:\n    steps:\n      a:\n        handler: {{ initialization: {{ url: prod }} }}\n        \
         retry: {{ max_attempts: 7 }}\n        timeout_seconds: 90\n"
    ))
    .unwrap();
    let prod = t.for_environment("production");
    let step = &prod.steps[0];
    assert_eq!(step.handler.initialization["url"], "prod");
    assert_eq!(step.handler.initialization["keep"], 1);
    assert_eq!(step.retry.max_attempts, 7);
    assert_eq!(step.retry.backoff_base_ms, 1000);
    assert_eq!(step.timeout_seconds, Some(90));
    assert_eq!(t.for_environment("test"), t);
}

#[test]
fn initial_steps_leave_out_decision_branches_and_batch_workers() {
    let t = parse(&with_steps(
        "  - { name: start, handler: { callable: x } }\n\
         \x20 - { name: route, type: decision, handler: { callable: x }, dependencies: [start] }\n\
         \x20 - { name: left, handler: { callable: x }, dependencies: [route] }\n\
         \x20 - { name: right, handler: { callable: x }, dependencies: [route] }\n\
         \x20 - { name: join, type: deferred_convergence, handler: { callable: x }, dependencies: [left, right] }\n\
         \x20 - { name: split, type: batchable, handler: { callable: x }, dependencies: [start], batch_config: { worker_template: work } }\n\
         \x20 - { name: work, type: batch_worker, handler: { callable: x }, dependencies: [split] }\n\
         \x20 - { name: gather, type: deferred_convergence, handler: { callable: x }, dependencies: [work] }\n",
    ))
    .unwrap();
    let names: Vec<&str> = t
        .initial_steps()
        .unwrap()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["start", "route", "split"]);
}

#[test]
fn yaml_anchor_bombs_are_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let err = parse(&yaml).unwrap_err().to_string();
    assert!(err.starts_with("t.yaml: invalid YAML"), "{err}");
}

#[test]
fn oversized_sources_are_refused_before_parsing() {
    let huge = format!("{HEAD}description: '{}'\n", "x".repeat(MAX_TEMPLATE_BYTES));
    let err = parse(&huge).unwrap_err().to_string();
    assert!(err.contains("the limit is 1048576"), "{err}");
}

#[test]
fn yaml_1_1_boolean_words_stay_strings() {
    let t = parse("name: t\nnamespace_name: no\nversion: 1.0.0\nsteps:\n  - { name: on, handler: { callable: y } }\n")
        .unwrap();
    assert_eq!(t.namespace_name, "no");
    assert_eq!(t.steps[0].name, "on");
    assert_eq!(t.steps[0].handler.callable, "y");
    let retry = parse(&with_steps(
        "  - { name: a, handler: { callable: x }, retry: { retryable: false } }\n",
    ))
    .unwrap();
    assert!(!retry.steps[0].retry.retryable, "true and false still work");
}
