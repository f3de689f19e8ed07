//! The scrape source as a model writes it: series selectors (`selector.rs`), target URL
//! templates (`target.rs`), and [`Spec`], a metric's `source: {scrape: ...}` read and
//! checked whole when the model loads. What the daemon does with it (scraping, deltas)
//! is in `ingest::scrape` and the daemon's sources.
//!
//! Invariant: pure; everything a scrape source says is parsed here, so a model that loads
//! has selectors and URL templates that cannot fail to parse later.

pub mod selector;
pub mod target;

use std::time::Duration;

use super::{MetricKind, ScrapeSource};
use target::UrlTemplate;

/// How long a scrape may take unless the model says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest timeout a model may give a scrape.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// How a label must compare to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// `=~`: the whole value matches a pattern of the [`pattern`] subset.
    Matches,
    /// `!~`: the whole value does not match the pattern.
    NotMatches,
}

/// One label matcher (`name="value"`, `name!="value"`, `name=~"5.."`, `name!~"2..|3.."`).
/// A missing label counts as the empty string, as in PromQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl Matcher {
    /// Whether a series whose labels `label` looks up passes this matcher.
    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        let v = label(&self.name).unwrap_or("");
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Matches => pattern::full_match(&self.value, v),
            MatchOp::NotMatches => !pattern::full_match(&self.value, v),
        }
    }
}

/// The regular expressions label matchers take here: a subset of RE2 with no engine
/// behind it. A pattern is alternatives separated by `|`; each is literal characters,
/// `.` (any one character) and `\x` (the character `x` itself). Anchored at both ends, as
/// PromQL anchors `=~`. That covers status-code classes (`5..`, `500|502|503`) and
/// literal alternatives; [`pattern::check`] refuses everything else by name, so nothing
/// is matched differently from PromQL.
pub mod pattern {
    /// Characters with a meaning in RE2 that this subset does not give them.
    const UNSUPPORTED: &str = "*+?()[]{}^$";

    /// Why `pattern` is outside the subset, if it is.
    pub fn check(pattern: &str) -> Result<(), String> {
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(e) if e.is_ascii_punctuation() => {}
                    Some(e) => {
                        return Err(format!(
                            "`\\{e}` is not supported (only `\\` before punctuation, as in `\\.`)"
                        ));
                    }
                    None => return Err("ends with a lone `\\`".into()),
                }
            } else if UNSUPPORTED.contains(c) {
                return Err(format!(
                    "`{c}` is not supported: patterns are literal text, `.` for any one \
                     character and `|` between alternatives (e.g. `5..` or `500|503`)"
                ));
            }
        }
        Ok(())
    }

    /// Whether the whole of `text` matches `pattern` (assumed to pass [`check`]).
    pub fn full_match(pattern: &str, text: &str) -> bool {
        alternatives(pattern).any(|alt| matches_one(alt, text))
    }

    /// Splits at every `|` not escaped by a backslash.
    fn alternatives(pattern: &str) -> impl Iterator<Item = &str> {
        let mut start = 0;
        let mut escaped = false;
        let mut cuts = Vec::new();
        for (i, c) in pattern.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '|') => {
                    cuts.push(&pattern[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        cuts.push(&pattern[start..]);
        cuts.into_iter()
    }

    fn matches_one(alternative: &str, text: &str) -> bool {
        let mut want = alternative.chars();
        let mut have = text.chars();
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some('\\'), Some(h)) => {
                    if want.next() != Some(h) {
                        return false;
                    }
                }
                (Some('.'), Some(_)) => {}
                (Some(w), Some(h)) if w == h => {}
                _ => return false,
            }
        }
    }
}

/// Whether a selector wants counters or histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorKind {
    Counter,
    Histogram,
}

/// Which series of a scrape to follow. `metric` is the name as PromQL sees it: the
/// counter's sample name (`istio_requests_total`) or the histogram's family name
/// (`istio_request_duration_milliseconds`; a trailing `_bucket` is accepted too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub kind: SelectorKind,
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    pub fn counter(metric: impl Into<String>) -> Self {
        Selector {
            kind: SelectorKind::Counter,
            metric: metric.into(),
            matchers: Vec::new(),
        }
    }

    pub fn histogram(metric: impl Into<String>) -> Self {
        let metric: String = metric.into();
        let metric = metric
            .strip_suffix("_bucket")
            .map(str::to_string)
            .unwrap_or(metric);
        Selector {
            kind: SelectorKind::Histogram,
            metric,
            matchers: Vec::new(),
        }
    }

    /// Adds a `name="value"` matcher.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.matchers.push(Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
        });
        self
    }

    /// Adds a `name!="value"` matcher.
    pub fn without(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.matchers.push(Matcher {
            name: name.into(),
            op: MatchOp::NotEqual,
            value: value.into(),
        });
        self
    }

    /// Whether a series whose labels `label` looks up is one this selector follows.
    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        self.matchers.iter().all(|m| m.matches(label))
    }
}

/// A series selector with the text the model wrote, for reasons.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub text: String,
    pub selector: Selector,
}

/// What a metric reads from its targets.
#[derive(Clone, Debug, PartialEq)]
pub enum Want {
    Counts { requests: Named, errors: Named },
    Histogram(Named),
}

impl Want {
    pub fn selectors(&self) -> Vec<&Named> {
        match self {
            Want::Counts { requests, errors } => vec![requests, errors],
            Want::Histogram(h) => vec![h],
        }
    }
}

/// A model's scrape source, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub url: UrlTemplate,
    pub want: Want,
    pub timeout: Duration,
}

impl Spec {
    /// Reads `source` for a metric of `kind`. Problems are (field under
    /// `source.scrape`, reason), every one of them.
    pub fn read(source: &ScrapeSource, kind: MetricKind) -> Result<Spec, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let url = UrlTemplate::parse(&source.url)
            .map_err(|why| problems.push(("url".to_string(), why)))
            .ok();
        let mut named = |field: &str, text: &Option<String>, kind: SelectorKind| {
            let text = text.as_ref()?;
            match selector::parse(text, kind) {
                Ok(selector) => Some(Named {
                    text: text.trim().to_string(),
                    selector,
                }),
                Err(why) => {
                    problems.push((field.to_string(), why));
                    None
                }
            }
        };
        let histogram = named("histogram", &source.histogram, SelectorKind::Histogram);
        let requests = named("requests", &source.requests, SelectorKind::Counter);
        let errors = named("errors", &source.errors, SelectorKind::Counter);
        // Which fields each kind reads, and what a missing one is for.
        let (wanted, other): (&[(&str, &str)], &str) = match kind {
            MetricKind::Distribution => (
                &[(
                    "histogram",
                    "the histogram to read (e.g. `http_request_duration_seconds`)",
                )],
                "error-ratio",
            ),
            MetricKind::ErrorRatio => (
                &[
                    (
                        "requests",
                        "the counter of all requests (e.g. `http_requests_total`)",
                    ),
                    (
                        "errors",
                        "the counter of failed requests (e.g. `http_requests_total{code=~\"5..\"}`)",
                    ),
                ],
                "distribution",
            ),
        };
        let kind_name = kind.name();
        for (field, given) in [
            ("histogram", source.histogram.is_some()),
            ("requests", source.requests.is_some()),
            ("errors", source.errors.is_some()),
        ] {
            match (given, wanted.iter().find(|(f, _)| *f == field)) {
                (true, None) => problems.push((
                    field.to_string(),
                    format!("feeds {other} metrics, not a {kind_name} one"),
                )),
                (false, Some((_, what))) => problems.push((
                    field.to_string(),
                    format!("a {kind_name} metric needs {what}"),
                )),
                _ => {}
            }
        }
        let want = match kind {
            MetricKind::Distribution => histogram.map(Want::Histogram),
            MetricKind::ErrorRatio => requests
                .zip(errors)
                .map(|(requests, errors)| Want::Counts { requests, errors }),
        };
        let timeout = match &source.timeout {
            None => Some(DEFAULT_TIMEOUT),
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => Some(d),
                Ok(d) if d > MAX_TIMEOUT => {
                    problems.push((
                        "timeout".into(),
                        format!(
                            "`{text}` is longer than {}: a scrape holds its analysis's turn at the runner while it waits",
                            humantime::format_duration(MAX_TIMEOUT)
                        ),
                    ));
                    None
                }
                Ok(_) => {
                    problems.push(("timeout".into(), format!("`{text}` must be longer than 0")));
                    None
                }
                Err(e) => {
                    problems.push(("timeout".into(), format!("`{text}` is not a duration: {e}")));
                    None
                }
            },
        };
        match (url, want, timeout) {
            (Some(url), Some(want), Some(timeout)) if problems.is_empty() => {
                Ok(Spec { url, want, timeout })
            }
            _ => Err(problems),
        }
    }
}

/// Every problem with a metric's scrape source, for model validation: (field under
/// `source.scrape`, reason). `scope` is the model's scope: the names a request must give,
/// so the only ones a URL may use.
pub fn check(source: &ScrapeSource, kind: MetricKind, scope: &[String]) -> Vec<(String, String)> {
    let mut problems = Spec::read(source, kind).err().unwrap_or_default();
    if let Ok(url) = UrlTemplate::parse(&source.url) {
        for v in url.variables().filter(|v| !scope.iter().any(|s| s == v)) {
            problems.push((
                "url".to_string(),
                format!(
                    "uses `{{{{ {v} }}}}`, which the model's scope ({}) does not list",
                    scope.join(", ")
                ),
            ));
        }
    }
    problems
}
