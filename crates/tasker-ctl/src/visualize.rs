//! Draws a template's graph as ASCII levels, a Mermaid flowchart, or DOT.

use tasker_types::template::{StepType, TaskTemplate};

use crate::cli::GraphFormat;

/// `template` drawn in `format`.
pub(crate) fn render(template: &TaskTemplate, format: GraphFormat) -> String {
    match format {
        GraphFormat::Ascii => ascii(template),
        GraphFormat::Mermaid => mermaid(template),
        GraphFormat::Dot => dot(template),
    }
}

fn kind(step: StepType) -> &'static str {
    match step {
        StepType::Standard => "",
        StepType::Decision => " [decision]",
        StepType::DeferredConvergence => " [deferred convergence]",
        StepType::Batchable => " [batchable]",
        StepType::BatchWorker => " [batch worker]",
    }
}

/// Each step's level: the length of the longest path from a root to it.
fn levels(template: &TaskTemplate) -> Vec<usize> {
    let mut level = vec![0usize; template.steps.len()];
    // Validated templates are acyclic, so this settles within `len` passes.
    for _ in 0..template.steps.len() {
        for (i, step) in template.steps.iter().enumerate() {
            for dep in &step.dependencies {
                if let Some(p) = template.steps.iter().position(|s| &s.name == dep) {
                    level[i] = level[i].max(level[p] + 1);
                }
            }
        }
    }
    level
}

fn ascii(template: &TaskTemplate) -> String {
    let level = levels(template);
    let deepest = level.iter().copied().max().unwrap_or(0);
    let width = template
        .steps
        .iter()
        .map(|s| s.name.len() + kind(s.step_type).len())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{}/{}@{}\n",
        template.namespace_name, template.name, template.version
    );
    for depth in 0..=deepest {
        out.push_str(&format!("\nlevel {depth}\n"));
        for (i, step) in template
            .steps
            .iter()
            .enumerate()
            .filter(|(i, _)| level[*i] == depth)
        {
            let _ = i;
            let label = format!("{}{}", step.name, kind(step.step_type));
            if step.dependencies.is_empty() {
                out.push_str(&format!("  {label}\n"));
            } else {
                let pad = " ".repeat(width.saturating_sub(label.len()));
                out.push_str(&format!(
                    "  {label}{pad}  <- {}\n",
                    step.dependencies.join(", ")
                ));
            }
        }
    }
    out
}

fn mermaid(template: &TaskTemplate) -> String {
    let mut out = String::from("flowchart TD\n");
    for step in &template.steps {
        let shape = match step.step_type {
            StepType::Decision => format!("{0}{{{0}}}", step.name),
            StepType::BatchWorker => format!("{0}[[{0}]]", step.name),
            StepType::DeferredConvergence => format!("{0}([{0}])", step.name),
            _ => format!("{0}[{0}]", step.name),
        };
        out.push_str(&format!("    {shape}\n"));
    }
    for step in &template.steps {
        for dep in &step.dependencies {
            out.push_str(&format!("    {dep} --> {}\n", step.name));
        }
    }
    out
}

fn dot(template: &TaskTemplate) -> String {
    let mut out = format!("digraph \"{}\" {{\n    rankdir=TB;\n", template.name);
    for step in &template.steps {
        let shape = match step.step_type {
            StepType::Decision => "diamond",
            StepType::BatchWorker => "box3d",
            StepType::DeferredConvergence => "ellipse",
            _ => "box",
        };
        out.push_str(&format!("    \"{}\" [shape={shape}];\n", step.name));
    }
    for step in &template.steps {
        for dep in &step.dependencies {
            out.push_str(&format!("    \"{dep}\" -> \"{}\";\n", step.name));
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond() -> TaskTemplate {
        TaskTemplate::from_yaml(
            "name: d\nnamespace_name: n\nversion: 1.0.0\nsteps:\n\
             \x20 - { name: start, handler: { callable: x } }\n\
             \x20 - { name: left, handler: { callable: x }, dependencies: [start] }\n\
             \x20 - { name: right, handler: { callable: x }, dependencies: [start] }\n\
             \x20 - { name: end, handler: { callable: x }, dependencies: [left, right] }\n",
            None,
        )
        .unwrap()
    }

    #[test]
    fn ascii_lists_levels_with_parents() {
        assert_eq!(
            render(&diamond(), GraphFormat::Ascii),
            "n/d@1.0.0\n\nlevel 0\n  start\n\nlevel 1\n  left   <- start\n  right  <- start\n\nlevel 2\n  end    <- left, right\n"
        );
    }

    #[test]
    fn mermaid_and_dot_draw_every_edge() {
        let mermaid = render(&diamond(), GraphFormat::Mermaid);
        assert!(mermaid.starts_with("flowchart TD\n"));
        for edge in [
            "start --> left",
            "start --> right",
            "left --> end",
            "right --> end",
        ] {
            assert!(mermaid.contains(edge), "{mermaid}");
        }
        let dot = render(&diamond(), GraphFormat::Dot);
        assert!(dot.contains("\"left\" -> \"end\";"), "{dot}");
        assert!(dot.ends_with("}\n"));
    }
}
