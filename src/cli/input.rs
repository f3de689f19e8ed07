//! Reading samples from files: one number per line, a CSV column, or a JSON array.
//!
//! Every value keeps the line it came from, so an error later in the pipeline (a NaN the
//! model refuses) can still name `file:line`.

use std::path::Path;

/// Samples read from one file, with the line each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFile {
    pub path: String,
    pub values: Vec<f64>,
    /// 1-based line of each value.
    pub lines: Vec<usize>,
}

/// A file that could not be read as samples. Always names the file, and the line where
/// there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}{}: {reason}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct InputError {
    pub path: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl InputError {
    fn new(path: &str, line: Option<usize>, reason: impl Into<String>) -> Self {
        InputError {
            path: path.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

/// Which CSV column holds the samples: a header name or a 1-based position.
pub fn read_samples(path: &Path, column: Option<&str>) -> Result<SampleFile, InputError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(&name, None, format!("cannot read: {e}")))?;
    parse_samples(&text, &name, column)
}

/// Parses sample text; `name` is used in errors.
pub fn parse_samples(
    text: &str,
    name: &str,
    column: Option<&str>,
) -> Result<SampleFile, InputError> {
    let trimmed = text.trim_start();
    let file = if trimmed.starts_with('[') {
        parse_json(text, name)?
    } else if column.is_some() || first_data_line(text).is_some_and(|l| l.contains(',')) {
        parse_csv(text, name, column)?
    } else {
        parse_lines(text, name)?
    };
    if file.values.is_empty() {
        return Err(InputError::new(name, None, "holds no samples"));
    }
    Ok(file)
}

fn first_data_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A number, or NaN for the spellings of a missing value. Infinities are refused: no
/// latency or rate is infinite, and one would make every shift estimate infinite.
fn parse_value(field: &str) -> Result<f64, String> {
    let field = field.trim();
    match field {
        "NaN" | "nan" | "NAN" | "NA" | "" => return Ok(f64::NAN),
        _ => {}
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("`{field}` is not a finite number")),
        Err(_) => Err(format!("`{field}` is not a number")),
    }
}

fn parse_lines(text: &str, name: &str) -> Result<SampleFile, InputError> {
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v = parse_value(line).map_err(|r| InputError::new(name, Some(i + 1), r))?;
        values.push(v);
        lines.push(i + 1);
    }
    Ok(SampleFile {
        path: name.to_string(),
        values,
        lines,
    })
}

fn parse_csv(text: &str, name: &str, column: Option<&str>) -> Result<SampleFile, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records().peekable();
    // A first row that is not all numbers is a header.
    let header: Option<Vec<String>> = match records.peek() {
        Some(Ok(first)) if first.iter().any(|f| parse_value(f).is_err()) => records
            .next()
            .and_then(Result::ok)
            .map(|r| r.iter().map(str::to_string).collect()),
        _ => None,
    };
    let mut values = Vec::new();
    let mut lines = Vec::new();
    let mut index: Option<usize> = match column {
        Some(c) => Some(column_index(c, header.as_deref(), name)?),
        None => None,
    };
    for record in records {
        let record = record.map_err(|e| {
            InputError::new(name, e.position().map(|p| p.line() as usize), e.to_string())
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let idx = match index {
            Some(i) => i,
            None if record.len() == 1 => *index.insert(0),
            None => {
                let cols = match &header {
                    Some(h) => h
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => format!("1..{}", record.len()),
                };
                return Err(InputError::new(
                    name,
                    Some(line),
                    format!(
                        "has {} columns ({cols}); choose one with --column",
                        record.len()
                    ),
                ));
            }
        };
        let field = record.get(idx).ok_or_else(|| {
            InputError::new(name, Some(line), format!("has no column {}", idx + 1))
        })?;
        values.push(parse_value(field).map_err(|r| InputError::new(name, Some(line), r))?);
        lines.push(line);
    }
    Ok(SampleFile {
        path: name.to_string(),
        values,
        lines,
    })
}

fn column_index(column: &str, header: Option<&[String]>, name: &str) -> Result<usize, InputError> {
    if let Some(i) = header.and_then(|h| h.iter().position(|c| c == column)) {
        return Ok(i);
    }
    match column.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n - 1),
        _ => Err(InputError::new(
            name,
            Some(1),
            match header {
                Some(h) => format!(
                    "has no column `{column}` (columns: {})",
                    h.iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => {
                    format!("has no header row; give --column as a 1-based number, not `{column}`")
                }
            },
        )),
    }
}

fn parse_json(text: &str, name: &str) -> Result<SampleFile, InputError> {
    let raw: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| InputError::new(name, Some(e.line()), format!("invalid JSON array: {e}")))?;
    let mut values = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let value = match v {
            serde_json::Value::Null => f64::NAN,
            serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            serde_json::Value::String(s) => parse_value(s)
                .map_err(|r| InputError::new(name, None, format!("element {i}: {r}")))?,
            other => {
                return Err(InputError::new(
                    name,
                    None,
                    format!("element {i}: {other} is not a number"),
                ));
            }
        };
        values.push(value);
    }
    // A JSON array has no useful line per element: positions are reported instead.
    let lines = vec![0; values.len()];
    Ok(SampleFile {
        path: name.to_string(),
        values,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_per_line_with_comments_and_nan() {
        let f = parse_samples("# latency\n1.5\n\n2\nNaN\n", "f", None).unwrap();
        assert_eq!(f.values[..2], [1.5, 2.0]);
        assert!(f.values[2].is_nan());
        assert_eq!(f.lines, vec![2, 4, 5]);
    }

    #[test]
    fn bad_line_is_named() {
        let e = parse_samples("1\n2\nabc\n", "b.txt", None).unwrap_err();
        assert_eq!(e.to_string(), "b.txt:3: `abc` is not a number");
        let e = parse_samples("1\ninf\n", "b.txt", None).unwrap_err();
        assert_eq!(e.to_string(), "b.txt:2: `inf` is not a finite number");
    }

    #[test]
    fn csv_column_by_name_and_index() {
        let text = "ts,latency_ms\n1,10.5\n2,11\n";
        let f = parse_samples(text, "c.csv", Some("latency_ms")).unwrap();
        assert_eq!(f.values, vec![10.5, 11.0]);
        assert_eq!(f.lines, vec![2, 3]);
        let f = parse_samples(text, "c.csv", Some("1")).unwrap();
        assert_eq!(f.values, vec![1.0, 2.0]);
        let e = parse_samples(text, "c.csv", None).unwrap_err();
        assert!(e.reason.contains("choose one with --column"), "{e}");
        let e = parse_samples(text, "c.csv", Some("p99")).unwrap_err();
        assert!(e.reason.contains("no column `p99`"), "{e}");
    }

    #[test]
    fn json_array_with_null() {
        let f = parse_samples(" [1, 2.5, null]", "j", None).unwrap();
        assert_eq!(f.values[..2], [1.0, 2.5]);
        assert!(f.values[2].is_nan());
        let e = parse_samples("[1, true]", "j", None).unwrap_err();
        assert!(e.reason.contains("element 1"), "{e}");
    }

    #[test]
    fn empty_file_is_refused() {
        let e = parse_samples("# nothing\n\n", "e.txt", None).unwrap_err();
        assert_eq!(e.to_string(), "e.txt: holds no samples");
    }
}
