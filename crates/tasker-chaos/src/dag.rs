//! Random workflows whose every result is known in advance: steps of
//! `tasker::math` `add` (a root adds its constant to the context's `value`,
//! any other step to the sum of its parents' values), with a few
//! `tasker::sleep` leaves hanging off them so that handlers are running
//! when processes die. Pure: the suite renders the YAML, and checks each
//! stored result against [`Shape::expected`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What one step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `tasker::math` `add` with this constant.
    Add(i64),
    /// `tasker::sleep` for this long (a leaf: its result has no `value`).
    Sleep(u64),
}

/// One step of a shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSpec {
    /// Step name (`s0`, `s1`, … and `z0`, … for sleeps).
    pub name: String,
    /// Indexes of its parents (earlier `Add` steps).
    pub parents: Vec<usize>,
    /// What it does.
    pub kind: Kind,
}

/// A random DAG template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Template name (namespace `chaos`).
    pub name: String,
    /// Steps in dependency order.
    pub steps: Vec<StepSpec>,
}

impl Shape {
    /// A random shape: 2–7 arithmetic steps, each after 1–3 earlier ones
    /// (or a root), and 1–2 sleeps of `sleep_ms` ±50 %.
    pub fn random(rng: &mut fastrand::Rng, index: usize, sleep_ms: u64) -> Self {
        let adds = rng.usize(2..=7);
        let mut steps = Vec::new();
        for i in 0..adds {
            let parents = if i == 0 || rng.u8(0..5) == 0 {
                Vec::new()
            } else {
                let mut chosen: Vec<usize> = (0..rng.usize(1..=i.min(3)))
                    .map(|_| rng.usize(0..i))
                    .collect();
                chosen.sort_unstable();
                chosen.dedup();
                chosen
            };
            steps.push(StepSpec {
                name: format!("s{i}"),
                parents,
                kind: Kind::Add(rng.i64(-50..=50)),
            });
        }
        for z in 0..rng.usize(1..=2) {
            let ms = sleep_ms / 2 + rng.u64(0..=sleep_ms.max(1));
            steps.push(StepSpec {
                name: format!("z{z}"),
                parents: vec![rng.usize(0..adds)],
                kind: Kind::Sleep(ms),
            });
        }
        Self {
            name: format!("shape_{index}"),
            steps,
        }
    }

    /// The template, as YAML.
    pub fn yaml(&self) -> String {
        let mut out = format!(
            "name: {}\nnamespace_name: chaos\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n",
            self.name
        );
        for step in &self.steps {
            let handler = match step.kind {
                Kind::Add(constant) => format!(
                    "{{ callable: \"tasker::math\", initialization: {{ operation: add, constant: {constant} }} }}"
                ),
                Kind::Sleep(ms) => {
                    format!("{{ callable: \"tasker::sleep\", initialization: {{ ms: {ms} }} }}")
                }
            };
            out.push_str(&format!(
                "  - name: {}\n    handler: {handler}\n",
                step.name
            ));
            // A lost lease comes back soon; retries stay for real failures.
            out.push_str(
                "    retry: { max_attempts: 10, backoff_base_ms: 50, max_backoff_ms: 500 }\n",
            );
            if !step.parents.is_empty() {
                let parents: Vec<&str> = step
                    .parents
                    .iter()
                    .map(|p| self.steps[*p].name.as_str())
                    .collect();
                out.push_str(&format!("    dependencies: [{}]\n", parents.join(", ")));
            }
        }
        out
    }

    /// Every step's result for a task whose context `value` is `input`.
    pub fn expected(&self, input: i64) -> BTreeMap<String, Value> {
        let mut values: Vec<i64> = Vec::with_capacity(self.steps.len());
        let mut results = BTreeMap::new();
        for step in &self.steps {
            match step.kind {
                Kind::Add(constant) => {
                    let inputs: i64 = if step.parents.is_empty() {
                        input
                    } else {
                        step.parents.iter().map(|p| values[*p]).sum()
                    };
                    let value = constant + inputs;
                    values.push(value);
                    results.insert(step.name.clone(), json!({ "value": value }));
                }
                Kind::Sleep(ms) => {
                    values.push(0);
                    results.insert(step.name.clone(), json!({ "slept_ms": ms }));
                }
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_results_follow_the_arithmetic_of_the_graph() {
        let shape = Shape {
            name: "t".into(),
            steps: vec![
                StepSpec {
                    name: "s0".into(),
                    parents: vec![],
                    kind: Kind::Add(1),
                },
                StepSpec {
                    name: "s1".into(),
                    parents: vec![0],
                    kind: Kind::Add(10),
                },
                StepSpec {
                    name: "s2".into(),
                    parents: vec![],
                    kind: Kind::Add(-3),
                },
                StepSpec {
                    name: "s3".into(),
                    parents: vec![1, 2],
                    kind: Kind::Add(0),
                },
                StepSpec {
                    name: "z0".into(),
                    parents: vec![3],
                    kind: Kind::Sleep(20),
                },
            ],
        };
        let expected = shape.expected(5);
        assert_eq!(expected["s0"], json!({"value": 6}));
        assert_eq!(expected["s1"], json!({"value": 16}));
        assert_eq!(expected["s2"], json!({"value": 2}));
        assert_eq!(expected["s3"], json!({"value": 18}));
        assert_eq!(expected["z0"], json!({"slept_ms": 20}));
    }

    #[test]
    fn random_shapes_are_acyclic_templates_with_a_sleep() {
        let mut rng = fastrand::Rng::with_seed(7);
        for i in 0..200 {
            let shape = Shape::random(&mut rng, i, 100);
            for (at, step) in shape.steps.iter().enumerate() {
                assert!(step.parents.iter().all(|p| *p < at), "{shape:?}");
                assert!(
                    step.parents
                        .iter()
                        .all(|p| matches!(shape.steps[*p].kind, Kind::Add(_))),
                    "only arithmetic steps have children: {shape:?}"
                );
            }
            assert!(shape.steps.iter().any(|s| matches!(s.kind, Kind::Sleep(_))));
            let template = tasker_types::template::TaskTemplate::from_yaml(&shape.yaml(), None)
                .unwrap_or_else(|e| panic!("{e}\n{}", shape.yaml()));
            assert_eq!(template.steps.len(), shape.steps.len());
        }
    }
}
