//! `tasker-ctl template …`.

use std::path::Path;

use tasker_client::Client;
use tasker_types::template::TaskTemplate;

use crate::cli::{Output, TemplateCommand};
use crate::exit::{CtlResult, FAILED, Failure, USAGE};
use crate::output::{Table, json};
use crate::visualize::render;

fn read(file: &Path) -> CtlResult<String> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::new(USAGE, format!("cannot read {}: {e}", file.display())))
}

pub(crate) async fn run(client: &Client, output: Output, command: TemplateCommand) -> CtlResult {
    match command {
        TemplateCommand::List { namespace } => {
            let templates = client.list_templates(namespace.as_deref()).await?;
            match output {
                Output::Json => json(&templates),
                Output::Table => {
                    let mut table =
                        Table::new(&["NAMESPACE", "NAME", "VERSION", "STEPS", "DESCRIPTION"]);
                    for t in &templates {
                        table.row(vec![
                            t.namespace.clone(),
                            t.name.clone(),
                            t.version.clone(),
                            t.step_count.to_string(),
                            t.description.clone().unwrap_or_default(),
                        ]);
                    }
                    table.print();
                    Ok(())
                }
            }
        }
        TemplateCommand::Show {
            namespace,
            name,
            version,
        } => {
            let detail = client.get_template(&namespace, &name, &version).await?;
            match output {
                Output::Json => json(&detail),
                Output::Table => {
                    let template: TaskTemplate =
                        serde_json::from_value(detail.template).map_err(|e| {
                            Failure::new(
                                FAILED,
                                format!("unexpected template from the server: {e}"),
                            )
                        })?;
                    println!("{}", render(&template, crate::cli::GraphFormat::Ascii));
                    let mut table = Table::new(&["STEP", "TYPE", "HANDLER", "RETRY", "TIMEOUT"]);
                    for step in &template.steps {
                        table.row(vec![
                            step.name.clone(),
                            step.step_type.as_str().to_owned(),
                            step.handler.callable.clone(),
                            format!("{}x {:?}", step.retry.max_attempts, step.retry.backoff)
                                .to_lowercase(),
                            step.timeout_seconds
                                .map_or_else(|| "default".into(), |s| format!("{s}s")),
                        ]);
                    }
                    table.print();
                    Ok(())
                }
            }
        }
        TemplateCommand::Validate { file } => {
            let text = read(&file)?;
            match TaskTemplate::from_yaml(&text, Some(&file.display().to_string())) {
                Ok(template) => {
                    match output {
                        Output::Json => json(
                            &serde_json::json!({"valid": true, "namespace": template.namespace_name,
                            "name": template.name, "version": template.version, "steps": template.steps.len()}),
                        )?,
                        Output::Table => println!(
                            "{} is valid: {}/{}@{} with {} steps",
                            file.display(),
                            template.namespace_name,
                            template.name,
                            template.version,
                            template.steps.len()
                        ),
                    }
                    Ok(())
                }
                Err(errors) => {
                    if output == Output::Json {
                        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
                        json(&serde_json::json!({"valid": false, "errors": listed}))?;
                    }
                    Err(Failure::new(FAILED, errors.to_string()))
                }
            }
        }
        TemplateCommand::Register { file } => {
            let registration = client.register_template(&read(&file)?).await?;
            match output {
                Output::Json => json(&registration),
                Output::Table => {
                    let t = &registration.template;
                    println!(
                        "{}/{}@{}: {}",
                        t.namespace, t.name, t.version, registration.status
                    );
                    Ok(())
                }
            }
        }
        TemplateCommand::Visualize { template, format } => {
            let path = Path::new(&template);
            let parsed = if path.exists() {
                TaskTemplate::from_yaml(&read(path)?, Some(&template))
                    .map_err(|e| Failure::new(FAILED, e.to_string()))?
            } else {
                let parts: Vec<&str> = template.split('/').collect();
                let [namespace, name, version] = parts.as_slice() else {
                    return Err(Failure::new(
                        USAGE,
                        format!("`{template}` is neither a file nor namespace/name/version"),
                    ));
                };
                let detail = client.get_template(namespace, name, version).await?;
                serde_json::from_value(detail.template).map_err(|e| {
                    Failure::new(FAILED, format!("unexpected template from the server: {e}"))
                })?
            };
            print!("{}", render(&parsed, format));
            Ok(())
        }
    }
}
