//! `tasker-ctl config validate|show`: local, no server needed.

use tasker_config::{ConfigLoader, redact_url_password};
use toml::Value;

use crate::cli::{ConfigArgs, ConfigCommand, Output};
use crate::exit::{CtlResult, FAILED, Failure};
use crate::output::json;

fn loader(args: &ConfigArgs) -> ConfigLoader {
    let mut loader = ConfigLoader::new();
    if let Some(env) = &args.environment {
        loader = loader.environment(env.clone());
    }
    if let Some(dir) = &args.config_dir {
        loader = loader.config_dir(dir.clone());
    }
    loader
}

pub(crate) fn run(output: Output, command: ConfigCommand) -> CtlResult {
    match command {
        ConfigCommand::Validate(args) => {
            let loader = loader(&args);
            let config = loader
                .load()
                .map_err(|e| Failure::new(FAILED, format!("invalid configuration: {e}")))?;
            match output {
                Output::Json => {
                    json(&serde_json::json!({"valid": true, "environment": config.environment}))
                }
                Output::Table => {
                    println!(
                        "configuration is valid for environment `{}`",
                        config.environment
                    );
                    Ok(())
                }
            }
        }
        ConfigCommand::Show(args) => {
            let loader = loader(&args);
            // Validate first, so what is shown is what a process would run with.
            loader
                .load()
                .map_err(|e| Failure::new(FAILED, format!("invalid configuration: {e}")))?;
            let mut merged = loader
                .merged()
                .map_err(|e| Failure::new(FAILED, e.to_string()))?;
            redact(&mut merged);
            match output {
                Output::Json => json(&merged),
                Output::Table => {
                    println!("# environment: {}", loader.resolved_environment());
                    print!(
                        "{}",
                        toml::to_string(&merged)
                            .map_err(|e| Failure::new(FAILED, e.to_string()))?
                    );
                    Ok(())
                }
            }
        }
    }
}

/// Hides secrets: URL passwords, and any key that names a secret.
fn redact(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        match value {
            Value::Table(inner) => redact(inner),
            Value::String(text) => {
                let lower = key.to_ascii_lowercase();
                if ["password", "secret", "token", "api_key"]
                    .iter()
                    .any(|s| lower.contains(s))
                {
                    *text = "***".to_owned();
                } else if lower.ends_with("url") {
                    *text = redact_url_password(text);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden() {
        let mut t: toml::Table =
            "[database]\nurl = 'postgresql://u:pw@h/db'\n[auth]\njwt_secret = 'x'\nname = 'ok'\n"
                .parse()
                .unwrap();
        redact(&mut t);
        assert_eq!(
            t["database"]["url"].as_str(),
            Some("postgresql://u:***@h/db")
        );
        assert_eq!(t["auth"]["jwt_secret"].as_str(), Some("***"));
        assert_eq!(t["auth"]["name"].as_str(), Some("ok"));
    }
}
