//! Tables for people, JSON for scripts.

use std::io::IsTerminal;

use serde::Serialize;

use crate::exit::{CtlResult, Failure, USAGE};

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json<T: Serialize>(value: &T) -> CtlResult {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Failure::new(USAGE, e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// An aligned text table.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self) {
        print!("{}", self.render(std::io::stdout().is_terminal()));
    }

    pub(crate) fn render(&self, bold_header: bool) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain([self.headers[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
                .collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let header = line(self.headers.clone());
        let mut out = if bold_header {
            format!("\u{1b}[1m{}\u{1b}[0m\n", header.trim_end())
        } else {
            header
        };
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// `value` as compact JSON, cut to `max` characters for a table cell.
pub(crate) fn cell(value: &serde_json::Value, max: usize) -> String {
    let text = if value.is_null() {
        "-".to_owned()
    } else {
        value.to_string()
    };
    if text.chars().count() > max {
        format!(
            "{}…",
            text.chars().take(max.saturating_sub(1)).collect::<String>()
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_their_widest_cell() {
        let mut t = Table::new(&["NAME", "STATE"]);
        t.row(vec!["a".into(), "complete".into()]);
        t.row(vec!["longer_name".into(), "error".into()]);
        assert_eq!(
            t.render(false),
            "NAME         STATE\na            complete\nlonger_name  error\n"
        );
    }

    #[test]
    fn cells_are_cut_with_an_ellipsis() {
        assert_eq!(
            cell(&serde_json::json!({"value": 123456}), 10),
            "{\"value\":…"
        );
        assert_eq!(cell(&serde_json::Value::Null, 10), "-");
    }
}
