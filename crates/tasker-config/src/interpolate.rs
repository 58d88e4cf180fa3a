//! `${VAR}` and `${VAR:-default}` in string values. Interpolation runs on
//! parsed values, never on raw text, so a variable cannot inject TOML.

use toml::{Table, Value};

use crate::error::ConfigError;

/// Replaces placeholders in every string of `table`, using `lookup` for
/// variables. A string that is exactly one placeholder becomes an integer,
/// float or boolean when its expansion reads as one, so
/// `max_connections = "${POOL:-20}"` is a number.
pub(crate) fn interpolate(
    table: &mut Table,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    walk_table(table, "", lookup)
}

fn walk_table(
    table: &mut Table,
    prefix: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        walk_value(value, &path, lookup)?;
    }
    Ok(())
}

fn walk_value(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(text) if text.contains('$') => {
            let whole = is_single_placeholder(text);
            let expanded = expand(text, path, lookup)?;
            *value = if whole {
                typed(expanded)
            } else {
                Value::String(expanded)
            };
        }
        Value::Table(table) => walk_table(table, path, lookup)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk_value(item, &format!("{path}[{i}]"), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_single_placeholder(text: &str) -> bool {
    text.starts_with("${") && text.ends_with('}') && text[2..].find('}') == Some(text.len() - 3)
}

fn typed(text: String) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        Value::Integer(i)
    } else if let Ok(b) = text.parse::<bool>() {
        Value::Boolean(b)
    } else if let Ok(f) = text.parse::<f64>()
        && text.contains('.')
    {
        Value::Float(f)
    } else {
        Value::String(text)
    }
}

/// Expands `text`; `$$` is a literal `$`.
fn expand(
    text: &str,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let bad = || ConfigError::BadPlaceholder {
        key: key.to_owned(),
        value: text.to_owned(),
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let end = body_and_tail.find('}').ok_or_else(bad)?;
            let body = &body_and_tail[..end];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            let valid_name =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(bad());
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(ConfigError::MissingVariable {
                        key: key.to_owned(),
                        variable: name.to_owned(),
                    });
                }
            }
            rest = &body_and_tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(toml_text: &str, vars: &[(&str, &str)]) -> Result<Table, ConfigError> {
        let mut table: Table = toml_text.parse().unwrap();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        interpolate(&mut table, &lookup)?;
        Ok(table)
    }

    #[test]
    fn variables_defaults_and_literal_dollars() {
        let t = run(
            "a = '${HOST}:${PORT:-5432}'\nb = 'cost: $$5'\nc = 'plain $ sign'\n[n]\nd = ['${HOST}']\n",
            &[("HOST", "db")],
        )
        .unwrap();
        assert_eq!(t["a"].as_str(), Some("db:5432"));
        assert_eq!(t["b"].as_str(), Some("cost: $5"));
        assert_eq!(t["c"].as_str(), Some("plain $ sign"));
        assert_eq!(t["n"]["d"][0].as_str(), Some("db"));
    }

    #[test]
    fn a_lone_placeholder_takes_the_type_of_its_value() {
        let t = run(
            "n = '${POOL:-20}'\nb = '${FLAG:-true}'\nf = '${RATIO:-0.5}'\ns = '${NAME:-x}'\nm = 'pool-${POOL:-20}'\n",
            &[],
        )
        .unwrap();
        assert_eq!(t["n"].as_integer(), Some(20));
        assert_eq!(t["b"].as_bool(), Some(true));
        assert_eq!(t["f"].as_float(), Some(0.5));
        assert_eq!(t["s"].as_str(), Some("x"));
        assert_eq!(t["m"].as_str(), Some("pool-20"));
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let t = run("a = '${EMPTY:-fallback}'\n", &[("EMPTY", "")]).unwrap();
        assert_eq!(t["a"].as_str(), Some("fallback"));
    }

    #[test]
    fn missing_variables_and_malformed_placeholders_name_the_key() {
        let err = run("[database]\nurl = '${DATABASE_URL}'\n", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "database.url: environment variable DATABASE_URL is not set (use ${DATABASE_URL:-default} for a default)"
        );
        let err = run("[x]\ny = '${OPEN'\n", &[]).unwrap_err();
        assert_eq!(err.to_string(), "x.y: malformed placeholder in `${OPEN`");
        let err = run("[x]\ny = '${bad name}'\n", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.y: malformed placeholder in `${bad name}`"
        );
    }
}
