//! Differential test of the exposition parser against the Python Prometheus client.
//!
//! Every input in `tests/exposition_corpus/` has a `<input>.json` beside it, written by
//! `tests/reference/exposition_diff.py` from what `prometheus_client` made of it. Three
//! kinds of input, by file name:
//! - anything else: both parsers must accept, with the same families and samples;
//! - `err_*`: both must reject; ours must also point at the line given in `ERRORS`;
//! - `lax_*`: the client accepts input the format specification rejects (listed with the
//!   reason in `DIVERGENCES`); ours must reject it at the given line.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use augury::ingest::scrape::exposition::{
    Family, Format, MetricType, ParseError, Suffix, parse, parse_bytes,
};
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exposition_corpus")
}

fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("prom" | "om")))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "corpus went missing: {files:?}");
    files
}

fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("om") => Format::OpenMetrics,
        _ => Format::Text,
    }
}

fn expected(path: &Path) -> Value {
    let json = path.with_file_name(format!(
        "{}.json",
        path.file_name().unwrap().to_str().unwrap()
    ));
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run tests/reference/exposition_diff.py)",
            json.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// Where ours must reject input that both parsers reject: (file, line, words in the reason).
const ERRORS: &[(&str, usize, &str)] = &[
    ("err_bad_metric_name.prom", 2, "invalid metric name"),
    ("err_bad_value.prom", 1, "invalid value `1x`"),
    ("err_duplicate_label.prom", 1, "duplicate label name `b`"),
    ("err_label_unquoted.prom", 1, "label `b` has no value"),
    ("err_missing_value.prom", 1, "has no value"),
    ("err_reserved_label.prom", 1, "reserved"),
    ("err_unknown_type.prom", 1, "unknown type `gauge_ish`"),
    ("err_unterminated_label.prom", 1, "unterminated label value"),
    ("err_om_after_eof.om", 3, "after `# EOF`"),
    ("err_om_blank_line.om", 2, "blank line"),
    ("err_om_bucket_missing_inf.om", 2, "+Inf bucket is missing"),
    ("err_om_bucket_not_integer.om", 2, "must be an integer"),
    ("err_om_buckets_out_of_order.om", 3, "buckets out of order"),
    (
        "err_om_clashing_name.om",
        3,
        "`a_total` clashes with family `a`",
    ),
    ("err_om_comment.om", 1, "comment lines are not allowed"),
    (
        "err_om_count_mismatch.om",
        2,
        "count 3 differs from the +Inf bucket 2",
    ),
    ("err_om_double_space.om", 1, "missing value"),
    ("err_om_duplicate_help.om", 2, "second HELP"),
    (
        "err_om_exemplar_on_gauge.om",
        2,
        "only histogram buckets and counter totals",
    ),
    ("err_om_exemplar_too_long.om", 2, "138 characters long"),
    ("err_om_info_value.om", 2, "must have value 1"),
    ("err_om_interleaved.om", 4, "must be contiguous"),
    ("err_om_le_noncanonical.om", 2, "le=\"+Inf\""),
    (
        "err_om_metadata_after_samples.om",
        3,
        "metadata for `a` after its samples",
    ),
    ("err_om_missing_eof.om", 1, "does not end with `# EOF`"),
    ("err_om_nan_counter.om", 2, "cannot be NaN"),
    ("err_om_negative_counter.om", 2, "cannot be negative"),
    (
        "err_om_quoted_name.om",
        1,
        "quoted metric names inside the label set are not supported",
    ),
    ("err_om_stateset_value.om", 2, "must be 0 or 1"),
    ("err_om_timestamps_backwards.om", 3, "went backwards"),
    ("err_om_trailing_comma.om", 1, "invalid label name"),
    (
        "err_om_unit_mismatch.om",
        2,
        "must end with its unit `_seconds`",
    ),
    ("err_om_unknown_type.om", 1, "unknown type `gauge_ish`"),
    ("err_om_untyped.om", 1, "unknown type `untyped`"),
];

/// Input the client accepts but the specification (and the Go reference parser) rejects:
/// (file, why we reject, line, words in our reason).
const DIVERGENCES: &[(&str, &str, usize, &str)] = &[
    (
        "lax_bad_escape.prom",
        "only \\\\, \\\" and \\n are escapes in label values; the client keeps `\\q` as two characters",
        3,
        "invalid escape `\\q`",
    ),
    (
        "lax_bucket_without_le.prom",
        "a histogram bucket without `le` cannot be placed; the client keeps it",
        2,
        "no `le` label",
    ),
    (
        "lax_crlf.prom",
        "lines end with a bare line feed; the client strips the carriage return",
        1,
        "carriage return",
    ),
    (
        "lax_duplicate_type.prom",
        "one TYPE line per family; the client lets the second overwrite the first",
        2,
        "second TYPE line",
    ),
    (
        "lax_float_timestamp.prom",
        "text-format timestamps are integer milliseconds; the client takes any float",
        1,
        "invalid timestamp `1.5`",
    ),
    (
        "lax_help_bad_escape.prom",
        "text-format HELP knows only \\\\ and \\n; the client keeps `\\\"` verbatim",
        1,
        "invalid escape `\\\"` in HELP",
    ),
    (
        "lax_multiple_values.prom",
        "one value and an optional timestamp per line; the client takes the first and the last of `1 2 3`",
        1,
        "unexpected text after the timestamp",
    ),
    (
        "lax_om_bad_escape.om",
        "only \\\\, \\\" and \\n are escapes in label values; the client keeps `\\q`",
        1,
        "invalid escape `\\q`",
    ),
    (
        "lax_om_duplicate_series.om",
        "a series appears once per exposition; the client silently drops the repeat",
        3,
        "duplicate sample",
    ),
    (
        "lax_om_help_bad_escape.om",
        "OpenMetrics escapes are \\\\, \\\" and \\n; the client keeps `\\q`",
        1,
        "invalid escape `\\q` in HELP",
    ),
    (
        "lax_om_space_in_labels.om",
        "OpenMetrics has no blanks inside a label set; the client strips them",
        1,
        "invalid label name",
    ),
    (
        "lax_om_type_in_text.prom",
        "the text format has five types; the client takes OpenMetrics' `info` in text too",
        1,
        "unknown type `info`",
    ),
    (
        "lax_reappearing_family.prom",
        "all lines of a family form one group; the client starts a second family `a`",
        3,
        "already exposed",
    ),
    (
        "lax_text_exemplar.prom",
        "the text format has no exemplars; the client reads `# {...} 1` as more values",
        2,
        "exemplars (`# {...}`) are not part of the text format",
    ),
    (
        "lax_type_after_samples.prom",
        "TYPE comes before a family's samples; the client starts a new family instead",
        2,
        "TYPE line for `a` after its samples",
    ),
];

fn same_number(ours: f64, expected: &str) -> bool {
    let e: f64 = expected
        .parse()
        .unwrap_or_else(|_| panic!("reference value {expected:?} is not a number"));
    (ours.is_nan() && e.is_nan()) || ours.to_bits() == e.to_bits()
}

/// Our result in the client's data model, as JSON values, for comparison.
fn family_as_client(f: &Family<'_>, format: Format) -> Value {
    let mut name = f.name.to_string();
    let mut rename_samples = false;
    // The client stores text-format counters OpenMetrics-style: `x_total` becomes family
    // `x`; a counter `x` has its samples renamed `x_total`.
    if format == Format::Text && f.metric_type == MetricType::Counter {
        match f.name.strip_suffix("_total") {
            Some(stem) => name = stem.to_string(),
            None => rename_samples = true,
        }
    }
    let samples: Vec<Value> = f
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            labels.sort();
            let sample_name = if rename_samples {
                format!("{}_total", s.name)
            } else {
                s.name.to_string()
            };
            serde_json::json!({
                "name": sample_name,
                "labels": labels,
                // JSON has no NaN or infinities: carry the exact bits.
                "value_bits": s.value.to_bits(),
                "timestamp_ms": s.timestamp_ms,
                "exemplar": s.exemplar.as_ref().map(|ex| {
                    let mut labels: Vec<(String, String)> = ex
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect();
                    labels.sort();
                    serde_json::json!({"labels": labels, "value_bits": ex.value.to_bits(), "timestamp_ms": ex.timestamp_ms})
                }),
            })
        })
        .collect();
    serde_json::json!({
        "name": name,
        "type": f.metric_type.as_str(),
        "help": f.help.as_deref().unwrap_or(""),
        "unit": f.unit.unwrap_or(""),
        "samples": samples,
    })
}

/// Compares our family (in the client's model) with the reference, values numerically.
fn assert_family_matches(file: &str, ours: &Value, theirs: &Value) {
    for key in ["name", "type", "help", "unit"] {
        assert_eq!(
            ours[key], theirs[key],
            "{file}: family {} field {key}",
            theirs["name"]
        );
    }
    let (os, ts) = (
        ours["samples"].as_array().unwrap(),
        theirs["samples"].as_array().unwrap(),
    );
    assert_eq!(
        os.len(),
        ts.len(),
        "{file}: family {} sample count",
        theirs["name"]
    );
    for (i, (o, t)) in os.iter().zip(ts).enumerate() {
        let at = format!("{file}: family {} sample {i}", theirs["name"]);
        assert_eq!(o["name"], t["name"], "{at}: name");
        assert_eq!(o["labels"], t["labels"], "{at}: labels");
        assert_eq!(o["timestamp_ms"], t["timestamp_ms"], "{at}: timestamp");
        let value = f64::from_bits(o["value_bits"].as_u64().unwrap());
        assert!(
            same_number(value, t["value"].as_str().unwrap()),
            "{at}: value {value} vs {}",
            t["value"]
        );
        match (&o["exemplar"], &t["exemplar"]) {
            (Value::Null, Value::Null) => {}
            (oe, te) => {
                assert_eq!(oe["labels"], te["labels"], "{at}: exemplar labels");
                assert_eq!(oe["timestamp_ms"], te["timestamp_ms"], "{at}: exemplar ts");
                let v = f64::from_bits(oe["value_bits"].as_u64().unwrap());
                assert!(
                    same_number(v, te["value"].as_str().unwrap()),
                    "{at}: exemplar value"
                );
            }
        }
    }
}

fn check_error(file: &str, err: &ParseError, line: usize, words: &str) {
    assert_eq!(err.line, line, "{file}: error line ({err})");
    assert!(
        err.reason.contains(words),
        "{file}: `{err}` lacks `{words}`"
    );
}

#[test]
fn differential_against_prometheus_client() {
    let mut agreed_ok = 0;
    let mut agreed_err = 0;
    let mut diverged = 0;
    for path in inputs() {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let format = format_of(&path);
        let bytes = std::fs::read(&path).unwrap();
        let ours = parse_bytes(&bytes, format);
        let theirs = expected(&path);
        assert_eq!(
            theirs["format"].as_str().unwrap(),
            match format {
                Format::Text => "text",
                Format::OpenMetrics => "openmetrics",
            },
            "{file}"
        );
        let their_ok = theirs["ok"].as_bool().unwrap();
        if file.starts_with("lax_") {
            let (_, why, line, words) = DIVERGENCES
                .iter()
                .find(|d| d.0 == file)
                .unwrap_or_else(|| panic!("{file}: lax input without a DIVERGENCES entry"));
            assert!(
                their_ok,
                "{file}: the client no longer accepts this ({why})"
            );
            let err = ours.expect_err(&file);
            check_error(&file, &err, *line, words);
            diverged += 1;
        } else if file.starts_with("err_") {
            let (_, line, words) = ERRORS
                .iter()
                .find(|d| d.0 == file)
                .unwrap_or_else(|| panic!("{file}: error input without an ERRORS entry"));
            assert!(!their_ok, "{file}: the client accepts this");
            let err = ours.expect_err(&file);
            check_error(&file, &err, *line, words);
            agreed_err += 1;
        } else {
            assert!(
                their_ok,
                "{file}: the client rejects it: {}",
                theirs["error"]
            );
            let ours = ours.unwrap_or_else(|e| panic!("{file}: {e}"));
            let their_families = theirs["families"].as_array().unwrap();
            assert_eq!(
                ours.families.len(),
                their_families.len(),
                "{file}: family count; ours: {:?}",
                ours.families.iter().map(|f| f.name).collect::<Vec<_>>()
            );
            for (o, t) in ours.families.iter().zip(their_families) {
                assert_family_matches(&file, &family_as_client(o, format), t);
            }
            agreed_ok += 1;
        }
    }
    assert!(agreed_ok >= 8 && agreed_err >= 30 && diverged >= 15);
    println!(
        "agreed ok: {agreed_ok}, agreed rejected: {agreed_err}, documented divergences: {diverged}"
    );
}

#[test]
fn every_expected_error_and_divergence_has_an_input() {
    let names: Vec<String> = inputs()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    for (file, ..) in ERRORS {
        assert!(names.iter().any(|n| n == file), "{file} missing");
    }
    for (file, ..) in DIVERGENCES {
        assert!(names.iter().any(|n| n == file), "{file} missing");
    }
}

/// The lines the issue reported as mangled or dropped by the `prometheus-parse` crate.
#[test]
fn issue_cases_parse_exactly() {
    let text = std::fs::read_to_string(corpus().join("issue_cases.prom")).unwrap();
    let e = parse(&text, Format::Text).unwrap();
    let requests = e.family("http_requests_total").unwrap();
    let paths: Vec<&str> = requests
        .samples
        .iter()
        .map(|s| s.label("path").unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/a,b",
            "/search?q=a=b&x=y",
            "/say \"hi\"",
            "C:\\temp\\x",
            "multi\nline",
            "{braces},and}"
        ]
    );
    let colon = e.family("job:latency:rate5m").unwrap();
    assert_eq!(colon.metric_type, MetricType::Gauge);
    assert_eq!(colon.samples.len(), 2);
    let hist = e.family("rpc_duration_seconds").unwrap();
    assert_eq!(hist.metric_type, MetricType::Histogram);
    let suffixes: Vec<Suffix> = hist.samples.iter().map(|s| hist.suffix_of(s)).collect();
    assert_eq!(
        suffixes,
        [
            Suffix::Bucket,
            Suffix::Bucket,
            Suffix::Bucket,
            Suffix::Bucket,
            Suffix::Sum,
            Suffix::Count
        ]
    );
    let summary = e.family("rpc_size_bytes").unwrap();
    assert_eq!(summary.metric_type, MetricType::Summary);
    assert_eq!(summary.samples.len(), 4);
}

#[test]
fn om_counter_owns_total_and_created() {
    let text = std::fs::read_to_string(corpus().join("om_types.om")).unwrap();
    let e = parse(&text, Format::OpenMetrics).unwrap();
    let c = e.family("http_requests").unwrap();
    assert_eq!(c.metric_type, MetricType::Counter);
    let suffixes: Vec<Suffix> = c.samples.iter().map(|s| c.suffix_of(s)).collect();
    assert_eq!(
        suffixes,
        [
            Suffix::Total,
            Suffix::Created,
            Suffix::Total,
            Suffix::Created
        ]
    );
    let h = e.family("request_latency_seconds").unwrap();
    assert_eq!(h.unit, Some("seconds"));
    let ex = h.samples[0].exemplar.as_ref().unwrap();
    assert_eq!(ex.timestamp_ms, Some(1_715_341_074_001));
    assert_eq!(ex.labels[0].value, "4bf92f3577b34da6a3ce929d0e0e4736");
}
