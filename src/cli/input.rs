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

/// One number a line. A line that is just a number, as a file written by a program
/// is, takes the fast path: one call of a fast float parser on the bytes, no line
/// splitting, no trimming, no UTF-8 slicing. Any other line (spaces around the number,
/// a comment, a blank line, a spelling of NaN, something that is not a number) takes
/// the general path, which decides it exactly as before the fast path existed; the fast
/// path only keeps a line whose whole text it read as a finite number, which the
/// general path would read as the same number (both parsers round correctly).
fn parse_lines(text: &str, name: &str) -> Result<SampleFile, InputError> {
    let bytes = text.as_bytes();
    // Room for every line if they are all as long as the first: one allocation for a
    // file of uniform lines, instead of a dozen regrowths of a million-value vector.
    let first_len = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let guess = bytes.len() / (first_len + 1) + 1;
    let mut values = Vec::with_capacity(guess);
    let mut lines = Vec::with_capacity(guess);
    let mut pos = 0;
    let mut line = 0;
    while pos < bytes.len() {
        line += 1;
        if let Some((v, next)) = whole_line_number(bytes, pos) {
            values.push(v);
            lines.push(line);
            pos = next;
            continue;
        }
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |at| pos + at);
        // `pos` and `end` sit next to a newline or at an end: character boundaries.
        let field = text[pos..end].trim();
        pos = end + 1;
        if field.is_empty() || field.starts_with('#') {
            continue;
        }
        let v = parse_value(field).map_err(|r| InputError::new(name, Some(line), r))?;
        values.push(v);
        lines.push(line);
    }
    Ok(SampleFile {
        path: name.to_string(),
        values,
        lines,
    })
}

/// The line at `pos` when it is exactly a finite number (ended by `\n`, `\r\n` or the
/// end of the text): the number and where the next line starts.
fn whole_line_number(bytes: &[u8], pos: usize) -> Option<(f64, usize)> {
    if !matches!(bytes[pos], b'0'..=b'9' | b'-' | b'+' | b'.') {
        return None;
    }
    let (v, used) = fast_float2::parse_partial::<f64, _>(&bytes[pos..]).ok()?;
    let after = pos + used;
    let next = match &bytes[after..] {
        [] => after,
        [b'\n', ..] => after + 1,
        [b'\r'] => after + 1,
        [b'\r', b'\n', ..] => after + 2,
        _ => return None,
    };
    (used > 0 && v.is_finite()).then_some((v, next))
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
    fn fast_and_general_paths_agree() {
        // Lines the fast path takes, and lines it leaves to the general path, must read
        // as `str::parse` reads them; a final line may lack its newline.
        let lines = [
            "1.5",
            "-2",
            "+3.25",
            ".5",
            "5.",
            "1e3",
            "1E-3",
            "-0",
            "0.1",
            "123456789012345678901234567890",
            "2.2250738585072014e-308",
            "4.9e-324",
            "1.7976931348623157e308",
            "  7 ",
            "8\r",
            "\t9",
            "0.30000000000000004",
            "00012",
            "1_0",
            "1e",
            ".",
            "-",
            "+.e1",
            "0x10",
            "1.5.5",
            "inf",
            "-inf",
            "+nan",
            "NaN",
            "NA",
            "1e400",
            "-1e400",
            "1 2",
            "# c",
            "",
        ];
        for l in lines {
            for text in [format!("{l}\n"), l.to_string(), format!("{l}\r\n")] {
                let fast = parse_lines(&text, "f").map(|f| f.values);
                let general = match l.trim() {
                    "" => Ok(vec![]),
                    t if t.starts_with('#') => Ok(vec![]),
                    t => parse_value(t).map(|v| vec![v]),
                };
                match (&fast, &general) {
                    (Ok(a), Ok(b)) => {
                        assert!(
                            a.len() == b.len()
                                && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()
                                    || (x.is_nan() && y.is_nan())),
                            "{text:?}: {a:?} vs {b:?}"
                        )
                    }
                    (Err(e), Err(r)) => assert_eq!(&e.reason, r, "{text:?}"),
                    _ => panic!("{text:?}: {fast:?} vs {general:?}"),
                }
            }
        }
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
