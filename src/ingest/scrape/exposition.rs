//! The Prometheus exposition parser: text format 0.0.4 and OpenMetrics 1.0.
//!
//! This module owns turning one scraped body into metric families. It is pure (no I/O,
//! no clock) and never panics on input: every rejection is a [`ParseError`] naming the
//! line (and column where one character is to blame) and what was wrong.
//!
//! Why our own parser rather than the `prometheus-parse` crate: tried on real exposition,
//! that crate cuts `path="/a,b"` at the comma, drops a label whose value holds `=`,
//! silently skips colon-named series (`job:latency:rate5m`) and lines with escaped quotes,
//! and types a histogram's `_sum`/`_count` as untyped; it is also unmaintained. A scrape
//! source that loses series without an error would feed the judge wrong counts, so we
//! parse strictly and say where input is bad. The crate stays only as a benchmark peer
//! (`benches/exposition.rs`).
//!
//! Shape of the work:
//! - [`Events`] is the streaming layer: one syntactic event per line (HELP, TYPE, UNIT, a
//!   sample, `# EOF`), borrowing `&str` slices of the input; label values and help text
//!   are unescaped into a `Cow` only when they hold an escape.
//! - [`parse`] assembles events into [`Family`]s: samples attach to the family their
//!   name belongs to by the TYPE line (`_bucket`/`_sum`/`_count` of a histogram, `_total`
//!   and `_created` of an OpenMetrics counter, ...), and the rules the formats put on whole
//!   families are checked (metadata before samples, one group per family, histogram
//!   buckets, OpenMetrics value constraints).
//!
//! Strictness, on purpose: bad escapes, duplicate or reserved (`__`) label names, missing
//! values, text after the value or timestamp, invalid names and unknown TYPEs are errors,
//! and OpenMetrics input must end with `# EOF`. Quoted UTF-8 metric names (a later
//! extension of both formats) and native-histogram sample syntax are not accepted.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Which exposition format a body is in; decided from the scrape's Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The format a response body is in, from its Content-Type header. Anything that is
    /// not OpenMetrics is read as the text format, as Prometheus itself does.
    pub fn from_content_type(content_type: &str) -> Format {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text 0.0.4",
            Format::OpenMetrics => "OpenMetrics",
        }
    }
}

/// A metric family's type. The text format's `untyped` and OpenMetrics' `unknown` are
/// one thing and both map to [`MetricType::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Unknown,
    /// OpenMetrics only.
    GaugeHistogram,
    /// OpenMetrics only.
    StateSet,
    /// OpenMetrics only.
    Info,
}

impl MetricType {
    /// The OpenMetrics spelling (`unknown` for the text format's `untyped`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Unknown => "unknown",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::StateSet => "stateset",
            MetricType::Info => "info",
        }
    }

    fn from_token(token: &str, format: Format) -> Option<MetricType> {
        let t = match token {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" if format == Format::Text => MetricType::Unknown,
            "unknown" if format == Format::OpenMetrics => MetricType::Unknown,
            "gaugehistogram" if format == Format::OpenMetrics => MetricType::GaugeHistogram,
            "stateset" if format == Format::OpenMetrics => MetricType::StateSet,
            "info" if format == Format::OpenMetrics => MetricType::Info,
            _ => return None,
        };
        Some(t)
    }

    /// The sample-name suffixes a family of this type owns, in the given format.
    fn suffixes(self, format: Format) -> &'static [Suffix] {
        use Suffix::*;
        match (format, self) {
            (Format::Text, MetricType::Histogram) => &[Bucket, Sum, Count],
            (Format::Text, MetricType::Summary) => &[None, Sum, Count],
            (Format::Text, _) => &[None],
            (Format::OpenMetrics, MetricType::Counter) => &[Total, Created],
            (Format::OpenMetrics, MetricType::Histogram) => &[Bucket, Sum, Count, Created],
            (Format::OpenMetrics, MetricType::GaugeHistogram) => &[Bucket, GSum, GCount],
            (Format::OpenMetrics, MetricType::Summary) => &[None, Sum, Count, Created],
            (Format::OpenMetrics, MetricType::Info) => &[Info],
            (Format::OpenMetrics, _) => &[None],
        }
    }
}

/// What a sample's name adds to its family's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suffix {
    None,
    Total,
    Created,
    Bucket,
    Sum,
    Count,
    GSum,
    GCount,
    Info,
}

impl Suffix {
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Total => "_total",
            Suffix::Created => "_created",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
            Suffix::GSum => "_gsum",
            Suffix::GCount => "_gcount",
            Suffix::Info => "_info",
        }
    }
}

/// One label pair. The value is borrowed from the input unless it held an escape.
#[derive(Clone, Debug, PartialEq)]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// An OpenMetrics exemplar attached to a sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: Vec<Label<'a>>,
    pub value: f64,
    /// Milliseconds since the Unix epoch (OpenMetrics writes seconds; sub-millisecond
    /// digits are truncated).
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name, suffix included (`http_requests_total`, `latency_bucket`).
    pub name: &'a str,
    /// Labels in input order.
    pub labels: Vec<Label<'a>>,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
    /// 1-based line of the input.
    pub line: usize,
}

impl<'a> Sample<'a> {
    /// The value of the label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        find_label(&self.labels, name)
    }
}

fn find_label<'l>(labels: &'l [Label<'_>], name: &str) -> Option<&'l str> {
    labels
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.value.as_ref())
}

/// A metric family: its metadata and its samples in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Family<'a> {
    pub name: &'a str,
    pub metric_type: MetricType,
    pub help: Option<Cow<'a, str>>,
    /// OpenMetrics `# UNIT`; always `None` in the text format.
    pub unit: Option<&'a str>,
    pub samples: Vec<Sample<'a>>,
    /// 1-based line where the family starts.
    pub line: usize,
}

impl<'a> Family<'a> {
    /// What `sample`'s name adds to the family name. `sample` must belong to this family.
    pub fn suffix_of(&self, sample: &Sample<'_>) -> Suffix {
        let rest = sample.name.get(self.name.len()..).unwrap_or("");
        suffix_from_str(rest).unwrap_or(Suffix::None)
    }
}

fn suffix_from_str(s: &str) -> Option<Suffix> {
    Some(match s {
        "" => Suffix::None,
        "_total" => Suffix::Total,
        "_created" => Suffix::Created,
        "_bucket" => Suffix::Bucket,
        "_sum" => Suffix::Sum,
        "_count" => Suffix::Count,
        "_gsum" => Suffix::GSum,
        "_gcount" => Suffix::GCount,
        "_info" => Suffix::Info,
        _ => return None,
    })
}

/// A whole parsed body.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposition<'a> {
    pub format: Format,
    pub families: Vec<Family<'a>>,
}

impl<'a> Exposition<'a> {
    /// The family called `name` (a family name, without sample suffixes).
    pub fn family(&self, name: &str) -> Option<&Family<'a>> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Total number of samples over all families.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// Why a body was rejected. `line` is 1-based; `column` (1-based, in characters) is set
/// when one position in the line is to blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {}: {}", self.line, c, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

fn line_error(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column: None,
        reason: reason.into(),
    }
}

/// Parses a body held as bytes: rejects invalid UTF-8 with the line it is on, then
/// [`parse`]s.
pub fn parse_bytes(input: &[u8], format: Format) -> Result<Exposition<'_>, ParseError> {
    match std::str::from_utf8(input) {
        Ok(text) => parse(text, format),
        Err(e) => {
            let before = &input[..e.valid_up_to()];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            // The prefix is valid UTF-8 by construction, so counting its chars is safe.
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            Err(ParseError {
                line,
                column: Some(column),
                reason: "invalid UTF-8".into(),
            })
        }
    }
}

/// Parses a whole body into families (see the module docs for what is checked).
pub fn parse(input: &str, format: Format) -> Result<Exposition<'_>, ParseError> {
    let mut assembler = Assembler::new(format, input.len());
    for event in Events::new(input, format) {
        let (line, event) = event?;
        assembler.push(line, event)?;
    }
    assembler.finish()
}

// ---------------------------------------------------------------------------------------
// Line-level syntax: the streaming layer.

/// One syntactic event. Samples come out exactly as written; which family they belong to
/// is decided by [`parse`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event<'a> {
    Help {
        name: &'a str,
        help: Cow<'a, str>,
    },
    Type {
        name: &'a str,
        metric_type: MetricType,
    },
    Unit {
        name: &'a str,
        unit: &'a str,
    },
    Sample(Sample<'a>),
    /// OpenMetrics `# EOF`.
    Eof,
}

/// Streaming parser: yields `(line number, event)` per meaningful line, and stops at the
/// first error. Skips blank and comment lines in the text format; in OpenMetrics, blank
/// lines, comments and anything after `# EOF` are errors, and a missing `# EOF` is one.
pub struct Events<'a> {
    rest: &'a str,
    format: Format,
    line: usize,
    eof_seen: bool,
    finished: bool,
    /// Label count of the previous sample: the next one usually has as many, so its
    /// vector is allocated once at the right size.
    label_hint: usize,
}

impl<'a> Events<'a> {
    pub fn new(input: &'a str, format: Format) -> Self {
        Events {
            rest: input,
            format,
            line: 0,
            eof_seen: false,
            finished: false,
            label_hint: 0,
        }
    }

    fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        self.line += 1;
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line)
    }

    fn fail(&mut self, e: ParseError) -> Option<Result<(usize, Event<'a>), ParseError>> {
        self.finished = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<(usize, Event<'a>), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            let Some(text) = self.next_line() else {
                self.finished = true;
                if self.format == Format::OpenMetrics && !self.eof_seen {
                    return Some(Err(line_error(
                        self.line.max(1),
                        "OpenMetrics exposition does not end with `# EOF`",
                    )));
                }
                return None;
            };
            let number = self.line;
            if self.eof_seen {
                return self.fail(line_error(number, "content after `# EOF`"));
            }
            if text.ends_with('\r') {
                let mut cur = Cursor::new(text, number);
                cur.pos = text.len() - 1;
                return self.fail(cur.error_here(
                    "carriage return at end of line (lines must end with a bare line feed)",
                ));
            }
            let result = match self.format {
                Format::Text => text_line(text, number, &mut self.label_hint),
                Format::OpenMetrics => om_line(text, number, &mut self.label_hint),
            };
            match result {
                Ok(Some(event)) => {
                    if matches!(event, Event::Eof) {
                        self.eof_seen = true;
                    }
                    return Some(Ok((number, event)));
                }
                Ok(None) => continue,
                Err(e) => return self.fail(e),
            }
        }
    }
}

/// Characters that may start a metric name: `[a-zA-Z_:]`.
const METRIC_START: [bool; 256] =
    byte_class(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:");
/// Characters that may continue a metric name: `[a-zA-Z0-9_:]`.
const METRIC_CONT: [bool; 256] =
    byte_class(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789");
/// Characters that may start a label name: `[a-zA-Z_]`.
const LABEL_START: [bool; 256] =
    byte_class(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_");
/// Characters that may continue a label name: `[a-zA-Z0-9_]`.
const LABEL_CONT: [bool; 256] =
    byte_class(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");

const fn byte_class(members: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < members.len() {
        table[members[i] as usize] = true;
        i += 1;
    }
    table
}

/// A position inside one line. Positions only ever stop on ASCII bytes or the line end,
/// so every slice taken is on a character boundary.
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, line: usize) -> Self {
        Cursor {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn error_at(&self, at: usize, reason: impl Into<String>) -> ParseError {
        let at = at.min(self.text.len());
        // Error paths may land inside a multi-byte character; count from a boundary.
        let mut boundary = at;
        while !self.text.is_char_boundary(boundary) {
            boundary -= 1;
        }
        ParseError {
            line: self.line,
            column: Some(self.text[..boundary].chars().count() + 1),
            reason: reason.into(),
        }
    }

    fn error_here(&self, reason: impl Into<String>) -> ParseError {
        self.error_at(self.pos, reason)
    }

    fn skip_blanks(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes exactly one space (OpenMetrics separators are single spaces).
    fn expect_space(&mut self, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error_here(format!("expected a single space {what}")))
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error_here(format!("expected `{}` {what}", byte as char)))
        }
    }

    /// A token up to the next space, tab or the line end (possibly empty).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\t' {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// A token up to the next space or the line end (OpenMetrics; tabs are not separators
    /// there and end up inside the token, where they are rejected).
    fn om_token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn name(
        &mut self,
        start_class: &[bool; 256],
        cont_class: &[bool; 256],
        what: &str,
    ) -> Result<&'a str, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(b) if start_class[b as usize] => self.pos += 1,
            Some(b'"') => {
                return Err(self.error_here(format!(
                    "quoted {what}s are not supported (text 0.0.4 / OpenMetrics 1.0 names only)"
                )));
            }
            Some(_) => {
                let ch = self.text[start..].chars().next().unwrap_or('?');
                return Err(self.error_here(format!("invalid {what}: unexpected {ch:?}")));
            }
            None => return Err(self.error_here(format!("missing {what}"))),
        }
        while let Some(b) = self.peek() {
            if !cont_class[b as usize] {
                break;
            }
            self.pos += 1;
        }
        Ok(&self.text[start..self.pos])
    }

    fn metric_name(&mut self) -> Result<&'a str, ParseError> {
        if self.peek() == Some(b'{') {
            return Err(self.error_here(
                "sample has no metric name (quoted metric names inside the label set are not supported)",
            ));
        }
        self.name(&METRIC_START, &METRIC_CONT, "metric name")
    }

    fn label_name(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        let name = self.name(&LABEL_START, &LABEL_CONT, "label name")?;
        if name.starts_with("__") {
            return Err(self.error_at(
                start,
                format!("label name `{name}` is reserved (names starting with `__`)"),
            ));
        }
        Ok(name)
    }

    /// A double-quoted label value; the cursor is on the opening quote. Escapes: `\\`,
    /// `\"`, `\n`; any other is an error.
    fn quoted_value(&mut self) -> Result<Cow<'a, str>, ParseError> {
        self.expect(b'"', "to open a label value")?;
        let start = self.pos;
        // Fast path: no escapes, borrow the slice.
        loop {
            match self.peek() {
                None => return Err(self.error_at(start - 1, "unterminated label value")),
                Some(b'"') => {
                    let value = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(value));
                }
                Some(b'\\') => break,
                Some(_) => self.pos += 1,
            }
        }
        let mut owned = String::with_capacity(self.pos - start + 16);
        owned.push_str(&self.text[start..self.pos]);
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.pos += 1;
            }
            owned.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.error_at(start - 1, "unterminated label value")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                _ => {
                    let escape_at = self.pos;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'\\') => owned.push('\\'),
                        Some(b'"') => owned.push('"'),
                        Some(b'n') => owned.push('\n'),
                        None => {
                            return Err(self.error_at(start - 1, "unterminated label value"));
                        }
                        Some(_) => {
                            let ch = self.text[self.pos..].chars().next().unwrap_or('?');
                            return Err(self.error_at(
                                escape_at,
                                format!(
                                    "invalid escape `\\{ch}` in label value (only \\\\, \\\" and \\n)"
                                ),
                            ));
                        }
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// A label set; the cursor is on `{`. The text format allows blanks between tokens and
    /// a trailing comma; OpenMetrics allows neither.
    fn labels(&mut self, format: Format, hint: usize) -> Result<Vec<Label<'a>>, ParseError> {
        let text = format == Format::Text;
        self.expect(b'{', "to open the label set")?;
        let mut labels: Vec<Label<'a>> = Vec::with_capacity(hint);
        let mut names: Option<HashSet<&'a str>> = None;
        if text {
            self.skip_blanks();
        }
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(labels);
        }
        loop {
            if text {
                self.skip_blanks();
                // A trailing comma is allowed in the text format.
                if self.peek() == Some(b'}') && !labels.is_empty() {
                    self.pos += 1;
                    return Ok(labels);
                }
            }
            let name_at = self.pos;
            let name = self.label_name()?;
            // A linear scan is fastest for the usual handful of labels; a set keeps a
            // hostile line with thousands of labels from costing quadratic time.
            let duplicate = match names.as_mut() {
                Some(set) => !set.insert(name),
                None => {
                    let seen = labels.iter().any(|l| l.name == name);
                    if labels.len() >= 16 {
                        let mut set: HashSet<&'a str> = labels.iter().map(|l| l.name).collect();
                        set.insert(name);
                        names = Some(set);
                    }
                    seen
                }
            };
            if duplicate {
                return Err(self.error_at(name_at, format!("duplicate label name `{name}`")));
            }
            if text {
                self.skip_blanks();
            }
            self.expect(b'=', "after a label name")?;
            if text {
                self.skip_blanks();
            }
            if self.peek() != Some(b'"') {
                return Err(self.error_here(format!(
                    "label `{name}` has no value (expected a double-quoted string)"
                )));
            }
            let value = self.quoted_value()?;
            labels.push(Label { name, value });
            if text {
                self.skip_blanks();
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(labels);
                }
                None => return Err(self.error_here("unterminated label set (missing `}`)")),
                Some(_) => {
                    return Err(self.error_here("expected `,` or `}` after a label value"));
                }
            }
        }
    }
}

/// Parses a float sample value. Accepts what both formats allow: decimal numbers with
/// optional sign and exponent, and `NaN`, `+Inf`, `-Inf` (any case, as Go's and Python's
/// readers do).
fn parse_value(token: &str) -> Option<f64> {
    // Fast path for the common case of a short unsigned integer, which is exact in f64.
    let b = token.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let mut v: u64 = 0;
        for &d in b {
            v = v * 10 + u64::from(d - b'0');
        }
        return Some(v as f64);
    }
    // Rust's float grammar is the formats' grammar, except that it also takes a bare
    // `infinity`-style spelling, which Go and Python accept too.
    token.parse::<f64>().ok()
}

/// An OpenMetrics timestamp (seconds, possibly fractional) in milliseconds. Plain
/// decimals are converted exactly; exponent forms go through f64.
fn om_timestamp_ms(token: &str) -> Option<i64> {
    let (negative, digits) = match token.as_bytes().first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    let plain = !(int_part.is_empty() && frac_part.is_empty())
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit());
    if plain {
        let seconds: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut millis: i64 = 0;
        for (i, d) in frac_part.bytes().take(3).enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1][i];
        }
        let total = seconds.checked_mul(1000)?.checked_add(millis)?;
        return Some(if negative { -total } else { total });
    }
    let seconds: f64 = token.parse().ok()?;
    let ms = (seconds * 1000.0).trunc();
    if !ms.is_finite() || ms.abs() >= 9.2e18 {
        return None;
    }
    Some(ms as i64)
}

/// One line of the text format.
fn text_line<'a>(
    text: &'a str,
    number: usize,
    label_hint: &mut usize,
) -> Result<Option<Event<'a>>, ParseError> {
    let mut cur = Cursor::new(text, number);
    cur.skip_blanks();
    match cur.peek() {
        None => Ok(None),
        Some(b'#') => {
            cur.pos += 1;
            cur.skip_blanks();
            let keyword = cur.token();
            match keyword {
                "HELP" | "TYPE" => {}
                _ => return Ok(None),
            }
            cur.skip_blanks();
            let name = cur.metric_name()?;
            if keyword == "HELP" {
                if !cur.at_end() && !matches!(cur.peek(), Some(b' ' | b'\t')) {
                    return Err(cur.error_here("expected a blank after the metric name"));
                }
                cur.skip_blanks();
                let help = help_text(&mut cur, Format::Text)?;
                return Ok(Some(Event::Help { name, help }));
            }
            if !matches!(cur.peek(), Some(b' ' | b'\t')) {
                return Err(cur.error_here("TYPE line has no type"));
            }
            cur.skip_blanks();
            let type_at = cur.pos;
            let token = cur.token();
            if token.is_empty() {
                return Err(cur.error_here("TYPE line has no type"));
            }
            let Some(metric_type) = MetricType::from_token(token, Format::Text) else {
                return Err(cur.error_at(
                    type_at,
                    format!(
                        "unknown type `{token}` (text format types: counter, gauge, histogram, summary, untyped)"
                    ),
                ));
            };
            cur.skip_blanks();
            if !cur.at_end() {
                return Err(cur.error_here("unexpected text after the type"));
            }
            Ok(Some(Event::Type { name, metric_type }))
        }
        Some(_) => text_sample(&mut cur, label_hint).map(|s| Some(Event::Sample(s))),
    }
}

fn text_sample<'a>(cur: &mut Cursor<'a>, label_hint: &mut usize) -> Result<Sample<'a>, ParseError> {
    let name = cur.metric_name()?;
    cur.skip_blanks();
    let labels = if cur.peek() == Some(b'{') {
        let labels = cur.labels(Format::Text, *label_hint)?;
        *label_hint = labels.len();
        cur.skip_blanks();
        labels
    } else {
        Vec::new()
    };
    let value_at = cur.pos;
    let token = cur.token();
    if token.is_empty() {
        return Err(cur.error_here(format!("sample `{name}` has no value")));
    }
    let value = parse_value(token)
        .ok_or_else(|| cur.error_at(value_at, format!("invalid value `{token}`")))?;
    cur.skip_blanks();
    let mut timestamp_ms = None;
    if !cur.at_end() {
        let ts_at = cur.pos;
        if cur.peek() == Some(b'#') {
            return Err(cur.error_here(
                "exemplars (`# {...}`) are not part of the text format; serve OpenMetrics for them",
            ));
        }
        let token = cur.token();
        let ts: i64 = token.parse().map_err(|_| {
            cur.error_at(
                ts_at,
                format!("invalid timestamp `{token}` (integer milliseconds expected)"),
            )
        })?;
        timestamp_ms = Some(ts);
        cur.skip_blanks();
        if !cur.at_end() {
            return Err(cur.error_here("unexpected text after the timestamp"));
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
        exemplar: None,
        line: cur.line,
    })
}

/// Help text to the end of the line, unescaped. Text format: `\\` and `\n`; OpenMetrics
/// also `\"`.
fn help_text<'a>(cur: &mut Cursor<'a>, format: Format) -> Result<Cow<'a, str>, ParseError> {
    let rest = &cur.text[cur.pos..];
    let Some(first) = rest.find('\\') else {
        cur.pos = cur.text.len();
        return Ok(Cow::Borrowed(rest));
    };
    let mut owned = String::with_capacity(rest.len());
    owned.push_str(&rest[..first]);
    cur.pos += first;
    while let Some(b) = cur.peek() {
        if b != b'\\' {
            let run_start = cur.pos;
            while let Some(b) = cur.peek() {
                if b == b'\\' {
                    break;
                }
                cur.pos += 1;
            }
            owned.push_str(&cur.text[run_start..cur.pos]);
            continue;
        }
        let escape_at = cur.pos;
        cur.pos += 1;
        match cur.peek() {
            Some(b'\\') => owned.push('\\'),
            Some(b'n') => owned.push('\n'),
            Some(b'"') if format == Format::OpenMetrics => owned.push('"'),
            other => {
                let shown = match other {
                    None => "\\ at end of line".to_string(),
                    Some(_) => {
                        let ch = cur.text[cur.pos..].chars().next().unwrap_or('?');
                        format!("`\\{ch}`")
                    }
                };
                let allowed = match format {
                    Format::Text => "only \\\\ and \\n",
                    Format::OpenMetrics => "only \\\\, \\\" and \\n",
                };
                return Err(cur.error_at(
                    escape_at,
                    format!("invalid escape {shown} in HELP ({allowed})"),
                ));
            }
        }
        cur.pos += 1;
    }
    Ok(Cow::Owned(owned))
}

/// One line of OpenMetrics.
fn om_line<'a>(
    text: &'a str,
    number: usize,
    label_hint: &mut usize,
) -> Result<Option<Event<'a>>, ParseError> {
    let mut cur = Cursor::new(text, number);
    match cur.peek() {
        None => Err(line_error(
            number,
            "blank line (not allowed in OpenMetrics)",
        )),
        Some(b'#') => {
            if text == "# EOF" {
                return Ok(Some(Event::Eof));
            }
            cur.pos += 1;
            cur.expect_space("after `#`")?;
            let keyword_at = cur.pos;
            let keyword = cur.om_token();
            if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
                return Err(cur.error_at(
                    keyword_at,
                    "comment lines are not allowed in OpenMetrics (only `# HELP`, `# TYPE`, `# UNIT`, `# EOF`)",
                ));
            }
            cur.expect_space(&format!("after `{keyword}`"))?;
            let name = cur.metric_name()?;
            cur.expect_space(&format!("after the metric name in `# {keyword}`"))?;
            match keyword {
                "HELP" => {
                    let help = help_text(&mut cur, Format::OpenMetrics)?;
                    Ok(Some(Event::Help { name, help }))
                }
                "TYPE" => {
                    let type_at = cur.pos;
                    let token = &text[cur.pos..];
                    let metric_type = MetricType::from_token(token, Format::OpenMetrics)
                        .ok_or_else(|| {
                            cur.error_at(
                                type_at,
                                format!(
                                    "unknown type `{token}` (OpenMetrics types: counter, gauge, histogram, gaugehistogram, summary, stateset, info, unknown)"
                                ),
                            )
                        })?;
                    Ok(Some(Event::Type { name, metric_type }))
                }
                _ => {
                    let unit_at = cur.pos;
                    let unit = &text[cur.pos..];
                    if let Some(bad) = unit.bytes().position(|b| !METRIC_CONT[b as usize]) {
                        return Err(cur.error_at(unit_at + bad, "invalid character in unit"));
                    }
                    Ok(Some(Event::Unit { name, unit }))
                }
            }
        }
        Some(_) => om_sample(&mut cur, label_hint).map(|s| Some(Event::Sample(s))),
    }
}

fn om_sample<'a>(cur: &mut Cursor<'a>, label_hint: &mut usize) -> Result<Sample<'a>, ParseError> {
    let name = cur.metric_name()?;
    let labels = if cur.peek() == Some(b'{') {
        let labels = cur.labels(Format::OpenMetrics, *label_hint)?;
        *label_hint = labels.len();
        labels
    } else {
        Vec::new()
    };
    if cur.at_end() {
        return Err(cur.error_here(format!("sample `{name}` has no value")));
    }
    cur.expect_space("before the value")?;
    let (value, _) = om_number(cur, "value")?;
    let mut timestamp_ms = None;
    let mut exemplar = None;
    if !cur.at_end() {
        cur.expect_space("after the value")?;
        if cur.peek() != Some(b'#') {
            timestamp_ms = Some(om_timestamp(cur)?);
            if !cur.at_end() {
                cur.expect_space("after the timestamp")?;
            }
        }
        if !cur.at_end() {
            if cur.peek() != Some(b'#') {
                return Err(cur.error_here("unexpected text after the sample"));
            }
            cur.pos += 1;
            cur.expect_space("after the exemplar's `#`")?;
            if cur.peek() != Some(b'{') {
                return Err(cur.error_here("exemplar has no label set"));
            }
            let ex_labels = cur.labels(Format::OpenMetrics, 1)?;
            cur.expect_space("before the exemplar value")?;
            let (ex_value, _) = om_number(cur, "exemplar value")?;
            let mut ex_ts = None;
            if !cur.at_end() {
                cur.expect_space("after the exemplar value")?;
                ex_ts = Some(om_timestamp(cur)?);
                if !cur.at_end() {
                    return Err(cur.error_here("unexpected text after the exemplar"));
                }
            }
            exemplar = Some(Exemplar {
                labels: ex_labels,
                value: ex_value,
                timestamp_ms: ex_ts,
            });
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
        exemplar,
        line: cur.line,
    })
}

fn om_number<'a>(cur: &mut Cursor<'a>, what: &str) -> Result<(f64, &'a str), ParseError> {
    let at = cur.pos;
    let token = cur.om_token();
    if token.is_empty() {
        return Err(cur.error_at(at, format!("missing {what}")));
    }
    let v =
        parse_value(token).ok_or_else(|| cur.error_at(at, format!("invalid {what} `{token}`")))?;
    Ok((v, token))
}

fn om_timestamp(cur: &mut Cursor<'_>) -> Result<i64, ParseError> {
    let at = cur.pos;
    let token = cur.om_token();
    om_timestamp_ms(token).ok_or_else(|| {
        cur.error_at(
            at,
            format!("invalid timestamp `{token}` (seconds since the epoch expected)"),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Family assembly and the rules on whole families.

/// Where the current family stands.
struct Open {
    typed: bool,
    unit_line: usize,
    /// OpenMetrics grouping state. Groups (label sets minus `le`/`quantile`/...) and
    /// series are remembered by hash; a hash hit is confirmed against the samples
    /// themselves before anything is rejected, so a collision can never reject valid input.
    group_hash: Option<u64>,
    /// Index in the family's samples where the current group starts.
    group_start: usize,
    group_ts: Option<i64>,
    seen_groups: HashSet<u64>,
    group_series: HashSet<u64>,
}

impl Open {
    fn new() -> Self {
        Open {
            typed: false,
            unit_line: 0,
            group_hash: None,
            group_start: 0,
            group_ts: None,
            seen_groups: HashSet::new(),
            group_series: HashSet::new(),
        }
    }
}

struct Assembler<'a> {
    format: Format,
    families: Vec<Family<'a>>,
    open: Option<Open>,
    /// Names already owned by a family (OpenMetrics: with the type's suffixes), with the
    /// line where that family starts.
    taken: HashMap<Cow<'a, str>, (usize, &'a str)>,
}

impl<'a> Assembler<'a> {
    fn new(format: Format, input_len: usize) -> Self {
        Assembler {
            format,
            // Realistic bodies run ~2-4 KB per family; reserve to avoid regrowth.
            families: Vec::with_capacity(input_len / 2048 + 4),
            open: None,
            taken: HashMap::new(),
        }
    }

    fn current_name(&self) -> Option<&'a str> {
        self.open.as_ref().and(self.families.last()).map(|f| f.name)
    }

    fn start_family(&mut self, name: &'a str, line: usize) -> Result<(), ParseError> {
        self.close()?;
        if let Some(&(first, owner)) = self.taken.get(name) {
            return Err(line_error(line, name_taken(name, owner, first)));
        }
        self.families.push(Family {
            name,
            metric_type: MetricType::Unknown,
            help: None,
            unit: None,
            samples: Vec::new(),
            line,
        });
        self.open = Some(Open::new());
        Ok(())
    }

    /// Ensures the open family is `name` (opening it if needed) and returns it.
    fn metadata_target(&mut self, name: &'a str, line: usize) -> Result<(), ParseError> {
        if self.current_name() == Some(name) {
            let has_samples = self.families.last().is_some_and(|f| !f.samples.is_empty());
            if has_samples && self.format == Format::OpenMetrics {
                return Err(line_error(
                    line,
                    format!("metadata for `{name}` after its samples"),
                ));
            }
            Ok(())
        } else {
            self.start_family(name, line)
        }
    }

    fn push(&mut self, line: usize, event: Event<'a>) -> Result<(), ParseError> {
        match event {
            Event::Help { name, help } => {
                self.metadata_target(name, line)?;
                let family = self.families.last_mut().ok_or_else(|| internal(line))?;
                if family.help.is_some() {
                    return Err(line_error(line, format!("second HELP line for `{name}`")));
                }
                family.help = Some(help);
            }
            Event::Type { name, metric_type } => {
                self.metadata_target(name, line)?;
                let family = self.families.last_mut().ok_or_else(|| internal(line))?;
                let open = self.open.as_mut().ok_or_else(|| internal(line))?;
                if open.typed {
                    return Err(line_error(line, format!("second TYPE line for `{name}`")));
                }
                if !family.samples.is_empty() {
                    return Err(line_error(
                        line,
                        format!("TYPE line for `{name}` after its samples"),
                    ));
                }
                open.typed = true;
                family.metric_type = metric_type;
            }
            Event::Unit { name, unit } => {
                self.metadata_target(name, line)?;
                let family = self.families.last_mut().ok_or_else(|| internal(line))?;
                let open = self.open.as_mut().ok_or_else(|| internal(line))?;
                if family.unit.is_some() {
                    return Err(line_error(line, format!("second UNIT line for `{name}`")));
                }
                family.unit = Some(unit);
                open.unit_line = line;
            }
            Event::Sample(sample) => self.push_sample(line, sample)?,
            Event::Eof => {}
        }
        Ok(())
    }

    fn push_sample(&mut self, line: usize, sample: Sample<'a>) -> Result<(), ParseError> {
        let belongs = match self.families.last() {
            Some(f) if self.open.is_some() => sample
                .name
                .strip_prefix(f.name)
                .and_then(suffix_from_str)
                .is_some_and(|s| f.metric_type.suffixes(self.format).contains(&s)),
            _ => false,
        };
        if !belongs {
            self.start_family(sample.name, line)?;
        }
        let format = self.format;
        let family = self.families.last_mut().ok_or_else(|| internal(line))?;
        let suffix = family.suffix_of(&sample);
        check_sample_labels(family, suffix, &sample)?;
        if format == Format::OpenMetrics {
            let open = self.open.as_mut().ok_or_else(|| internal(line))?;
            check_om_sample(family, open, suffix, &sample)?;
        }
        family.samples.push(sample);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let Some(family) = self.families.last() else {
            return Ok(());
        };
        let mut names: Vec<Cow<'a, str>> = vec![Cow::Borrowed(family.name)];
        if self.format == Format::OpenMetrics {
            check_om_family(family, &open)?;
            for s in family.metric_type.suffixes(self.format) {
                if *s != Suffix::None {
                    names.push(Cow::Owned(format!("{}{}", family.name, s.as_str())));
                }
            }
        }
        for n in names {
            if let Some(&(first, owner)) = self.taken.get(&n) {
                return Err(line_error(family.line, name_taken(&n, owner, first)));
            }
            self.taken.insert(n, (family.line, family.name));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Exposition<'a>, ParseError> {
        self.close()?;
        Ok(Exposition {
            format: self.format,
            families: self.families,
        })
    }
}

fn name_taken(name: &str, owner: &str, owner_line: usize) -> String {
    if name == owner {
        format!(
            "metric family `{name}` was already exposed (family starting at line {owner_line}); all lines of a family must be one group"
        )
    } else {
        format!("name `{name}` clashes with family `{owner}` (line {owner_line}), which owns it")
    }
}

fn internal(line: usize) -> ParseError {
    line_error(line, "internal parser state error")
}

/// The label rules both formats share: a histogram bucket needs a numeric `le`, a
/// summary quantile a numeric `quantile` (consumers compute deltas from them).
fn check_sample_labels(
    family: &Family<'_>,
    suffix: Suffix,
    sample: &Sample<'_>,
) -> Result<(), ParseError> {
    let is_histogram = matches!(
        family.metric_type,
        MetricType::Histogram | MetricType::GaugeHistogram
    );
    if is_histogram && suffix == Suffix::Bucket {
        match sample.label("le") {
            None => {
                return Err(line_error(
                    sample.line,
                    format!("histogram bucket `{}` has no `le` label", sample.name),
                ));
            }
            Some(le) => {
                if !matches!(parse_value(le), Some(v) if !v.is_nan()) {
                    return Err(line_error(
                        sample.line,
                        format!("histogram bucket `{}` has invalid le=\"{le}\"", sample.name),
                    ));
                }
            }
        }
    }
    if family.metric_type == MetricType::Summary && suffix == Suffix::None {
        match sample.label("quantile") {
            None => {
                return Err(line_error(
                    sample.line,
                    format!("summary sample `{}` has no `quantile` label", sample.name),
                ));
            }
            Some(q) => {
                if !matches!(parse_value(q), Some(v) if (0.0..=1.0).contains(&v)) {
                    return Err(line_error(
                        sample.line,
                        format!(
                            "summary sample `{}` has invalid quantile=\"{q}\" (0 to 1 expected)",
                            sample.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Per-sample OpenMetrics rules (values by role, exemplars, contiguous groups).
fn check_om_sample(
    family: &Family<'_>,
    open: &mut Open,
    suffix: Suffix,
    sample: &Sample<'_>,
) -> Result<(), ParseError> {
    let line = sample.line;
    let fail = |reason: String| Err(line_error(line, reason));
    let t = family.metric_type;
    let v = sample.value;
    let name = sample.name;
    if t == MetricType::StateSet {
        if sample.label(family.name).is_none() {
            return fail(format!(
                "stateset sample `{name}` has no label `{}`",
                family.name
            ));
        }
        if v != 0.0 && v != 1.0 {
            return fail(format!("stateset sample `{name}` must be 0 or 1"));
        }
    }
    if t == MetricType::Info && v != 1.0 {
        return fail(format!("info sample `{name}` must have value 1"));
    }
    if suffix == Suffix::Bucket
        && sample
            .label("le")
            .is_some_and(|le| le != "+Inf" && parse_value(le) == Some(f64::INFINITY))
    {
        return fail(format!(
            "histogram bucket `{name}` must spell the infinite bound le=\"+Inf\""
        ));
    }
    let integral = v.is_finite() && v.fract() == 0.0;
    if matches!(suffix, Suffix::Bucket | Suffix::Count | Suffix::GCount) && !integral {
        return fail(format!(
            "`{name}` is a count and must be an integer, not {v}"
        ));
    }
    if t == MetricType::Summary && suffix == Suffix::None && v < 0.0 {
        return fail(format!("summary quantile `{name}` cannot be negative"));
    }
    let counter_like = matches!(
        suffix,
        Suffix::Total
            | Suffix::Sum
            | Suffix::Count
            | Suffix::Bucket
            | Suffix::GCount
            | Suffix::GSum
    );
    if counter_like && v.is_nan() {
        return fail(format!("`{name}` is counter-like and cannot be NaN"));
    }
    if counter_like && suffix != Suffix::GSum && v < 0.0 {
        return fail(format!("`{name}` is counter-like and cannot be negative"));
    }
    if let Some(ex) = &sample.exemplar {
        let allowed = (matches!(t, MetricType::Histogram | MetricType::GaugeHistogram)
            && suffix == Suffix::Bucket)
            || (t == MetricType::Counter && suffix == Suffix::Total);
        if !allowed {
            return fail(format!(
                "exemplar on `{name}`: only histogram buckets and counter totals carry exemplars"
            ));
        }
        let runes: usize = ex
            .labels
            .iter()
            .map(|l| l.name.chars().count() + l.value.chars().count())
            .sum();
        if runes > 128 {
            return fail(format!(
                "exemplar labels on `{name}` are {runes} characters long (128 at most)"
            ));
        }
    }

    // Grouping: all samples of one metric (label set without the per-sample dimension)
    // are contiguous, with timestamps present on all or none, never going backwards.
    let dimension = match (t, suffix) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => Some("le"),
        (MetricType::Summary, Suffix::None) => Some("quantile"),
        (MetricType::StateSet, _) => Some(family.name),
        _ => None,
    };
    let group = if t == MetricType::Info {
        0
    } else {
        group_hash(sample, dimension)
    };
    let continues_group = open.group_hash == Some(group)
        && (t == MetricType::Info
            || family.samples.last().is_some_and(|prev| {
                same_group(prev, group_dimension(family, prev), sample, dimension)
            }));
    if continues_group {
        if open.group_ts.is_some() != sample.timestamp_ms.is_some() {
            return fail(format!(
                "`{name}`: timestamps must be on all samples of a metric or on none"
            ));
        }
        if let (Some(prev), Some(ts)) = (open.group_ts, sample.timestamp_ms)
            && ts < prev
            && t != MetricType::Info
        {
            return fail(format!(
                "`{name}`: timestamps went backwards within a metric"
            ));
        }
    } else {
        if open.seen_groups.contains(&group)
            && family.samples[..open.group_start]
                .iter()
                .any(|s| same_group(s, group_dimension(family, s), sample, dimension))
        {
            return fail(format!(
                "`{name}`: samples of one metric must be contiguous (this label set appeared earlier in the family)"
            ));
        }
        open.seen_groups.insert(group);
        open.group_hash = Some(group);
        open.group_start = family.samples.len();
        open.group_series.clear();
    }
    if open.group_ts != sample.timestamp_ms {
        open.group_series.clear();
    }
    open.group_ts = sample.timestamp_ms;
    let series = series_hash(sample);
    if !open.group_series.insert(series)
        && family.samples[open.group_start..].iter().any(|s| {
            s.name == sample.name
                && s.timestamp_ms == sample.timestamp_ms
                && same_group(s, None, sample, None)
        })
    {
        return fail(format!(
            "duplicate sample for `{name}` with the same labels"
        ));
    }
    Ok(())
}

/// The label that varies within one metric of this family (`le` of a bucket, ...).
fn group_dimension<'f>(family: &'f Family<'_>, sample: &Sample<'_>) -> Option<&'f str> {
    match (family.metric_type, family.suffix_of(sample)) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => Some("le"),
        (MetricType::Summary, Suffix::None) => Some("quantile"),
        (MetricType::StateSet, _) => Some(family.name),
        _ => None,
    }
}

/// Whether two samples have the same labels once each drops its own `dimension` label.
fn same_group(a: &Sample<'_>, a_dim: Option<&str>, b: &Sample<'_>, b_dim: Option<&str>) -> bool {
    let mut a_labels = a.labels.iter().filter(|l| Some(l.name) != a_dim);
    let mut b_labels = b.labels.iter().filter(|l| Some(l.name) != b_dim);
    // Exposers write labels in a stable order: try the lockstep comparison first.
    loop {
        match (a_labels.next(), b_labels.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => continue,
            _ => break,
        }
    }
    sorted_group(a, a_dim) == sorted_group(b, b_dim)
}

fn sorted_group<'s>(sample: &'s Sample<'_>, dimension: Option<&str>) -> Vec<(&'s str, &'s str)> {
    let mut v: Vec<(&str, &str)> = sample
        .labels
        .iter()
        .filter(|l| Some(l.name) != dimension)
        .map(|l| (l.name, l.value.as_ref()))
        .collect();
    v.sort_unstable();
    v
}

/// A fast, order-independent hash of a label set without `dimension` (FxHash-style
/// mixing per label, summed so label order does not matter).
fn group_hash(sample: &Sample<'_>, dimension: Option<&str>) -> u64 {
    sample
        .labels
        .iter()
        .filter(|l| Some(l.name) != dimension)
        .fold(0u64, |acc, l| acc.wrapping_add(label_hash(l)))
}

fn series_hash(sample: &Sample<'_>) -> u64 {
    group_hash(sample, None) ^ bytes_hash(0x9e37_79b9, sample.name.as_bytes())
}

fn label_hash(label: &Label<'_>) -> u64 {
    let h = bytes_hash(0x51_7cc1, label.name.as_bytes());
    // The length keeps `a="bc"` apart from `ab="c"`.
    bytes_hash(h ^ label.name.len() as u64, label.value.as_bytes())
}

fn bytes_hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = seed;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    // Final avalanche so that sums of hashes do not cancel in low bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Whole-family OpenMetrics rules: units and histogram consistency.
fn check_om_family(family: &Family<'_>, open: &Open) -> Result<(), ParseError> {
    let t = family.metric_type;
    if let Some(unit) = family.unit.filter(|u| !u.is_empty()) {
        if matches!(t, MetricType::Info | MetricType::StateSet) {
            return Err(line_error(
                open.unit_line,
                format!(
                    "`{}`: {} metrics cannot have a unit",
                    family.name,
                    t.as_str()
                ),
            ));
        }
        let suffix_ok = family
            .name
            .strip_suffix(unit)
            .is_some_and(|rest| rest.ends_with('_'));
        if !suffix_ok {
            return Err(line_error(
                open.unit_line,
                format!(
                    "metric name `{}` must end with its unit `_{unit}`",
                    family.name
                ),
            ));
        }
    }
    if matches!(t, MetricType::Histogram | MetricType::GaugeHistogram) {
        check_histogram(family)?;
    }
    Ok(())
}

/// Running state of one histogram metric (a label set and timestamp) while checking it.
struct HistogramCheck<'s> {
    group: Vec<(&'s str, &'s str)>,
    timestamp_ms: Option<i64>,
    first_line: usize,
    last_le: Option<f64>,
    last_bucket_value: f64,
    count: Option<f64>,
    has_sum: bool,
    has_gsum: bool,
    negative_buckets: bool,
    negative_gsum: bool,
}

impl<'s> HistogramCheck<'s> {
    fn new(group: Vec<(&'s str, &'s str)>, timestamp_ms: Option<i64>, line: usize) -> Self {
        HistogramCheck {
            group,
            timestamp_ms,
            first_line: line,
            last_le: None,
            last_bucket_value: 0.0,
            count: None,
            has_sum: false,
            has_gsum: false,
            negative_buckets: false,
            negative_gsum: false,
        }
    }

    fn finish(&self, name: &str) -> Result<(), ParseError> {
        let fail = |reason: String| Err(line_error(self.first_line, reason));
        if self.last_le != Some(f64::INFINITY) {
            return fail(format!("histogram `{name}`: the +Inf bucket is missing"));
        }
        if let Some(c) = self.count
            && c != self.last_bucket_value
        {
            return fail(format!(
                "histogram `{name}`: count {c} differs from the +Inf bucket {}",
                self.last_bucket_value
            ));
        }
        if self.has_sum && self.count.is_none() {
            return fail(format!("histogram `{name}`: _sum without _count"));
        }
        if self.has_gsum && self.count.is_none() {
            return fail(format!("histogram `{name}`: _gsum without _gcount"));
        }
        if !(self.has_sum || self.has_gsum) && self.count.is_some() {
            return fail(format!("histogram `{name}`: _count without _sum"));
        }
        if self.negative_buckets && self.has_sum {
            return fail(format!(
                "histogram `{name}`: _sum is not allowed with negative buckets"
            ));
        }
        if !self.negative_buckets && self.negative_gsum {
            return fail(format!(
                "histogram `{name}`: negative _gsum with no negative buckets"
            ));
        }
        Ok(())
    }
}

fn check_histogram(family: &Family<'_>) -> Result<(), ParseError> {
    let mut current: Option<HistogramCheck<'_>> = None;
    for sample in &family.samples {
        let suffix = family.suffix_of(sample);
        if suffix == Suffix::None {
            continue;
        }
        let mut group: Vec<(&str, &str)> = sample
            .labels
            .iter()
            .filter(|l| !(suffix == Suffix::Bucket && l.name == "le"))
            .map(|l| (l.name, l.value.as_ref()))
            .collect();
        group.sort_unstable();
        let same = current
            .as_ref()
            .is_some_and(|c| c.group == group && c.timestamp_ms == sample.timestamp_ms);
        if !same {
            if let Some(check) = &current {
                check.finish(family.name)?;
            }
            current = Some(HistogramCheck::new(group, sample.timestamp_ms, sample.line));
        }
        let Some(check) = current.as_mut() else {
            continue;
        };
        match suffix {
            Suffix::Bucket => {
                let le = sample.label("le").and_then(parse_value).unwrap_or(f64::NAN);
                if le < 0.0 {
                    check.negative_buckets = true;
                }
                if check.last_le.is_some_and(|prev| le <= prev) {
                    return Err(line_error(
                        sample.line,
                        format!("histogram `{}`: buckets out of order", family.name),
                    ));
                }
                if sample.value < check.last_bucket_value {
                    return Err(line_error(
                        sample.line,
                        format!(
                            "histogram `{}`: bucket values must not decrease",
                            family.name
                        ),
                    ));
                }
                check.last_le = Some(le);
                check.last_bucket_value = sample.value;
            }
            Suffix::Count | Suffix::GCount => check.count = Some(sample.value),
            Suffix::Sum => check.has_sum = true,
            Suffix::GSum => {
                check.has_gsum = true;
                if sample.value < 0.0 {
                    check.negative_gsum = true;
                }
            }
            _ => {}
        }
    }
    if let Some(check) = &current {
        check.finish(family.name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &str) -> Exposition<'_> {
        parse(input, Format::Text).unwrap()
    }

    fn text_err(input: &str) -> ParseError {
        parse(input, Format::Text).unwrap_err()
    }

    fn om_err(input: &str) -> ParseError {
        parse(input, Format::OpenMetrics).unwrap_err()
    }

    #[test]
    fn content_type_picks_the_format() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"),
            Format::Text
        );
        assert_eq!(Format::from_content_type(""), Format::Text);
    }

    #[test]
    fn values_borrow_unless_escaped() {
        let e = text("a{x=\"plain\",y=\"q\\\"d\"} 1\n");
        let labels = &e.families[0].samples[0].labels;
        assert!(matches!(labels[0].value, Cow::Borrowed("plain")));
        assert!(matches!(&labels[1].value, Cow::Owned(s) if s == "q\"d"));
    }

    #[test]
    fn text_errors_name_line_and_column() {
        let e = text_err("ok 1\nbad{a=\"x\\q\"} 1\n");
        assert_eq!((e.line, e.column), (2, Some(9)));
        assert!(e.reason.contains("invalid escape `\\q`"), "{e}");

        let e = text_err("a{b=\"1\",b=\"2\"} 1\n");
        assert_eq!(e.column, Some(9));
        assert!(e.reason.contains("duplicate label name `b`"));

        let e = text_err("a 1 2 3\n");
        assert!(e.reason.contains("after the timestamp"), "{e}");
        let e = text_err("a{b=\"1\"}\n");
        assert!(e.reason.contains("has no value"), "{e}");
        let e = text_err("a 1 1.5\n");
        assert!(e.reason.contains("invalid timestamp"), "{e}");
        let e = text_err("1a 1\n");
        assert!(e.reason.contains("invalid metric name"), "{e}");
        let e = text_err("a 1\r\n");
        assert_eq!(e.column, Some(4));
    }

    #[test]
    fn many_labels_still_catch_duplicates() {
        let mut line = String::from("a{");
        for i in 0..40 {
            line.push_str(&format!("l{i}=\"v\","));
        }
        line.push_str("l7=\"again\"} 1\n");
        let e = text_err(&line);
        assert!(e.reason.contains("duplicate label name `l7`"), "{e}");
        line = line.replace("l7=\"again\"", "l40=\"new\"");
        assert_eq!(text(&line).families[0].samples[0].labels.len(), 41);
    }

    #[test]
    fn text_family_rules() {
        let e = text_err("# TYPE a counter\na 1\n# TYPE a counter\n");
        assert_eq!(e.line, 3);
        let e = text_err("a 1\nb 1\na 2\n");
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("already exposed"));
        let e = text_err("# TYPE h histogram\nh_bucket 1\n");
        assert!(e.reason.contains("no `le`"));
        let e = text_err("# TYPE a stateset\n");
        assert!(e.reason.contains("unknown type"));
    }

    #[test]
    fn om_requires_eof_and_rejects_blank_and_comments() {
        assert!(om_err("a 1\n").reason.contains("# EOF"));
        assert_eq!(om_err("a 1\n\n# EOF\n").line, 2);
        assert_eq!(om_err("# EOF\na 1\n").line, 2);
        assert!(om_err("# hello\n# EOF\n").reason.contains("comment"));
        let ok = parse("a 1\n# EOF", Format::OpenMetrics).unwrap();
        assert_eq!(ok.sample_count(), 1);
    }

    #[test]
    fn om_timestamps_are_exact_milliseconds() {
        assert_eq!(om_timestamp_ms("1520879607.789"), Some(1_520_879_607_789));
        assert_eq!(om_timestamp_ms("1.5"), Some(1500));
        assert_eq!(om_timestamp_ms("-1.5"), Some(-1500));
        assert_eq!(om_timestamp_ms("1.5e3"), Some(1_500_000));
        assert_eq!(om_timestamp_ms("NaN"), None);
        assert_eq!(om_timestamp_ms(""), None);
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = parse_bytes(b"a 1\nb{x=\"\xff\"} 1\n", Format::Text).unwrap_err();
        assert_eq!((e.line, e.column), (2, Some(6)));
    }
}
