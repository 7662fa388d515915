//! What commands print: JSON for scripts, or for people a table of a list and the fields
//! of one thing. Both read the same JSON, so the two never disagree.

use serde::Serialize;
use serde_json::Value;

/// A command's answer on standard output: JSON, or `human` text.
pub fn print(json: bool, value: &impl Serialize, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    let mut text = if json { serde_json::to_string_pretty(value)? } else { human() };
    text.push('\n');
    write_out(text.as_bytes())
}

/// Writes `bytes` to standard output. A reader that stops early (`| head`) ends the output,
/// not the command with a panic.
pub fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// A string field of a command's JSON answer ("" when absent).
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// A value as one table cell or one line: lists joined by spaces, absent as "-".
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) if text.is_empty() => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// `rows` (a JSON list) as a table of `columns` (heading, field), or `empty` for none.
pub fn table(rows: &Value, columns: &[(&str, &str)], empty: &str) -> String {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return empty.to_owned();
    }
    let cells: Vec<Vec<String>> =
        rows.iter().map(|row| columns.iter().map(|(_, field)| cell(&row[*field])).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (heading, _))| cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0).max(heading.len()))
        .collect();
    let line = |values: Vec<String>| {
        let padded: Vec<String> =
            values.iter().zip(&widths).map(|(value, width)| format!("{value:<width$}", width = *width)).collect();
        padded.join("  ").trim_end().to_owned()
    };
    std::iter::once(line(columns.iter().map(|(heading, _)| (*heading).to_owned()).collect()))
        .chain(cells.into_iter().map(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One thing's fields, one per line, by name.
pub fn details(value: &Value) -> String {
    let Some(fields) = value.as_object() else { return cell(value) };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    fields
        .iter()
        .map(|(name, value)| {
            let shown = match value {
                Value::Object(_) => value.to_string(),
                Value::Array(items) if items.iter().any(Value::is_object) => {
                    items.iter().map(Value::to_string).collect::<Vec<_>>().join(" ")
                }
                other => cell(other),
            };
            format!("{name:<width$}  {shown}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_table_lines_up_its_columns_under_their_headings() {
        let rows = json!([
            { "id": "a1", "name": "Reports", "grant_types": ["client_credentials"] },
            { "id": "b22", "name": "Web", "grant_types": ["authorization_code", "refresh_token"] },
            { "id": "c", "name": null, "grant_types": [] },
        ]);
        let shown = table(&rows, &[("ID", "id"), ("NAME", "name"), ("GRANTS", "grant_types")], "none");
        assert_eq!(
            shown,
            "ID   NAME     GRANTS\n\
             a1   Reports  client_credentials\n\
             b22  Web      authorization_code refresh_token\n\
             c    -        -"
        );
        assert_eq!(table(&json!([]), &[("ID", "id")], "No clients."), "No clients.");
    }

    #[test]
    fn details_show_every_field_in_order() {
        let shown =
            details(&json!({ "id": "k1", "permissions": ["*"], "teams": [{ "team_id": "t", "role": "admin" }] }));
        assert_eq!(shown, "id           k1\npermissions  *\nteams        {\"role\":\"admin\",\"team_id\":\"t\"}");
    }
}
