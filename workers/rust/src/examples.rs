//! The example templates of `config/tasks/`, compiled in so `tasker-ctl dev`
//! and `tasker-ctl demo` work from any directory.

macro_rules! templates {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../config/tasks/", $file)))),*]
    };
}

/// `(file name, YAML)` of every example template.
pub const TEMPLATES: &[(&str, &str)] = templates![
    "conditional_approval.yaml",
    "csv_batch_processing.yaml",
    "diamond_decision_batch.yaml",
    "diamond_workflow.yaml",
    "linear_workflow.yaml",
    "mixed_dag_workflow.yaml",
    "order_fulfillment.yaml",
    "tree_workflow.yaml",
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_in_config_tasks_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tasks");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = super::TEMPLATES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, embedded);
    }
}
