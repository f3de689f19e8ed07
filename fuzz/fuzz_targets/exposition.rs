//! Fuzz target for the exposition parser.
//!
//! The first byte picks the format (even: text 0.0.4, odd: OpenMetrics); the rest is the
//! body. Beyond "never panics", every run checks:
//! - an error points inside the input (line within the line count, column within the line);
//! - a success is consistent: each sample's name starts with its family's name, label
//!   names are unique, and the streaming layer saw exactly as many samples;
//! - text format round trip: rendering what was parsed and parsing that again gives the
//!   same families (this is what catches escape and grouping mistakes).
#![no_main]
// A fuzz target panics on purpose: a panic is the finding it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use augury::ingest::scrape::exposition::{
    Event, Events, Exposition, Family, Format, MetricType, parse, parse_bytes,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector % 2 == 0 {
        Format::Text
    } else {
        Format::OpenMetrics
    };
    match parse_bytes(body, format) {
        Err(e) => {
            let lines = body.split(|&b| b == b'\n').count();
            assert!(
                e.line >= 1 && e.line <= lines.max(1),
                "line {} of {lines}: {e}",
                e.line
            );
            if let (Some(col), Ok(text)) = (e.column, std::str::from_utf8(body)) {
                let line = text.split('\n').nth(e.line - 1).unwrap_or("");
                assert!(col >= 1 && col <= line.chars().count() + 1, "{e}");
            }
        }
        Ok(exposition) => {
            check_consistent(&exposition);
            let text = std::str::from_utf8(body).expect("parsed input is UTF-8");
            let streamed = Events::new(text, format)
                .filter(|e| matches!(e, Ok((_, Event::Sample(_)))))
                .count();
            assert_eq!(streamed, exposition.sample_count());
            if format == Format::Text {
                let rendered = render_text(&exposition);
                let again = parse(&rendered, Format::Text)
                    .unwrap_or_else(|e| panic!("re-parse failed: {e}\n{rendered}"));
                assert_same(&exposition, &again, &rendered);
            }
        }
    }
});

fn check_consistent(e: &Exposition<'_>) {
    for f in &e.families {
        for s in &f.samples {
            assert!(s.name.starts_with(f.name), "{} in {}", s.name, f.name);
            for (i, l) in s.labels.iter().enumerate() {
                assert!(
                    s.labels[..i].iter().all(|m| m.name != l.name),
                    "duplicate label"
                );
            }
        }
    }
}

fn escape(value: &str, quote: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn render_text(e: &Exposition<'_>) -> String {
    let mut out = String::new();
    for f in &e.families {
        if let Some(help) = &f.help {
            out.push_str(&format!("# HELP {} {}\n", f.name, escape(help, false)));
        }
        let t = match f.metric_type {
            MetricType::Unknown => "untyped",
            other => other.as_str(),
        };
        out.push_str(&format!("# TYPE {} {t}\n", f.name));
        for s in &f.samples {
            out.push_str(s.name);
            if !s.labels.is_empty() {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|l| format!("{}=\"{}\"", l.name, escape(&l.value, true)))
                    .collect();
                out.push_str(&format!("{{{}}}", labels.join(",")));
            }
            out.push(' ');
            out.push_str(&number(s.value));
            if let Some(ts) = s.timestamp_ms {
                out.push_str(&format!(" {ts}"));
            }
            out.push('\n');
        }
    }
    out
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn same_family(a: &Family<'_>, b: &Family<'_>) -> bool {
    a.name == b.name
        && a.metric_type == b.metric_type
        && a.help == b.help
        && a.unit == b.unit
        && a.samples.len() == b.samples.len()
        && a.samples.iter().zip(&b.samples).all(|(x, y)| {
            x.name == y.name
                && x.labels == y.labels
                && same_value(x.value, y.value)
                && x.timestamp_ms == y.timestamp_ms
                && x.exemplar.is_none()
                && y.exemplar.is_none()
        })
}

fn assert_same(a: &Exposition<'_>, b: &Exposition<'_>, rendered: &str) {
    assert_eq!(
        a.families.len(),
        b.families.len(),
        "family count\n{rendered}"
    );
    for (x, y) in a.families.iter().zip(&b.families) {
        assert!(
            same_family(x, y),
            "round trip changed {x:?}\ninto {y:?}\n{rendered}"
        );
    }
}
