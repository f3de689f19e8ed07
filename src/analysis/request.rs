//! The analysis request (body of `POST /api/v1/analyses`, what `augury analyze` sends)
//! and its validation against the model it names.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Catalog, EarlyPass, Model, Source};

/// A scope: one version of one workload, as attribute (or template variable) name -> value.
pub type Scope = BTreeMap<String, String>;

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRequest {
    /// Idempotency key: the same key gives back the same analysis. 1 to 256 characters,
    /// not all whitespace.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub key: String,
    /// A model name (built-in or from `--models`) or an inline model object.
    pub model: ModelRef,
    /// The baseline's scope: every name the model's `scope` lists, with its value. It
    /// must differ from the canary's.
    #[serde(deserialize_with = "unique_keys")]
    #[schema(value_type = HashMap<String, String>)]
    pub baseline: Scope,
    /// The canary's scope: every name the model's `scope` lists, with its value.
    #[serde(deserialize_with = "unique_keys")]
    #[schema(value_type = HashMap<String, String>)]
    pub canary: Scope,
    /// How often the analysis judges: a duration like `30s`, `5m` or `1h30m`, from 1s to
    /// 1h (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        default = "30s",
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]"
    )]
    pub interval: Option<String>,
    /// How long it runs before the final verdict: a duration like `10m`, at least the
    /// interval, at most 7d, and at most 20,160 intervals (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        default = "10m",
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]"
    )]
    pub lifetime: Option<String>,
    /// Notifier names, each one configured in the daemon's config file; default: the
    /// config's `default_notify`.
    #[serde(default)]
    pub notify: Option<Vec<String>>,
    /// Replaces the model's `early_pass` (e.g. `{"min_duration": "5m"}`); every sequential
    /// metric of the model needs an `equivalence_margin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_pass: Option<EarlyPass>,
    /// Cancel the analysis once nobody has asked for it for this many intervals in a
    /// row (2 to 1000; absent: never). Asking is a create with its key, a read of its
    /// verdict or detail, or a gate call. For controllers that stop polling when they
    /// give a rollout up and have no call to cancel (Argo Rollouts' Web provider): the
    /// analysis of an aborted rollout is cancelled instead of running on and alerting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 2, maximum = 1000)]
    pub abandon_after: Option<u32>,
    /// Judge a window that began in the past: its start, an RFC 3339 time
    /// (`2026-12-07T10:00:00Z`). With `end`, instead of `lifetime`. Every metric must come
    /// from Prometheus, which keeps history: OTLP spans and scrapes cannot be had for a
    /// time already gone, and a model that has such metrics is refused naming them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub start: Option<String>,
    /// The window's end, an RFC 3339 time after `start`; when it has passed, the verdict
    /// comes as soon as the queries answer. Given with `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub end: Option<String>,
    /// The resolution of the range queries behind `series` and inline `promql` metrics
    /// (one sample per step), a duration like `1m`, at least 1s; default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]"
    )]
    pub step: Option<String>,
}

/// Fewest intervals `abandon_after` may name: a poll is recorded up to a second late,
/// so one interval would cancel an analysis polled exactly once an interval.
pub const MIN_ABANDON_AFTER: u32 = 2;
/// Most intervals `abandon_after` may name.
pub const MAX_ABANDON_AFTER: u32 = 1000;

/// A scope whose JSON object names each key once: a key given twice is refused (naming
/// it) rather than silently keeping the last value.
fn unique_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Scope;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of attribute names to string values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Scope, A::Error> {
            let mut scope = Scope::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if scope.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate key `{key}`: each scope name may be given once"
                    )));
                }
                scope.insert(key, value);
            }
            Ok(scope)
        }
    }
    d.deserialize_map(Visit)
}

/// The interval when a request gives none (and no window).
pub const DEFAULT_INTERVAL: &str = "30s";
/// The lifetime when a request gives none (and no window).
pub const DEFAULT_LIFETIME: &str = "10m";

/// A request's window in the past, from its `start` and `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PastWindow {
    start_ms: i64,
    end_ms: i64,
}

impl PastWindow {
    fn length(&self) -> Duration {
        Duration::from_millis((self.end_ms - self.start_ms) as u64)
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-12-07T10:00:00Z`, any
/// offset, fractions of a second).
pub fn parse_time(field: &str, text: &str) -> Result<i64, RequestError> {
    let t = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
        refuse(
            field,
            format!("`{text}` is not an RFC 3339 time like 2026-12-07T10:00:00Z ({e})"),
        )
    })?;
    let ms = t.timestamp_millis();
    if ms < 0 {
        return Err(refuse(field, format!("`{text}` is before 1970")));
    }
    Ok(ms)
}

/// A model: the name of one the daemon knows (built-in or from `--models`), or an
/// inline model object, validated as a model file is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ModelRef {
    Name(String),
    Inline(serde_json::Value),
}

/// A request that was refused: the field and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.into(),
        message: message.into(),
    }
}

/// A request that passed validation, with its model resolved and durations parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidRequest {
    pub request: AnalysisRequest,
    pub model: Model,
    pub interval: Duration,
    pub lifetime: Duration,
    /// When the first interval starts, for a window given by `start` and `end`
    /// (milliseconds since the epoch); otherwise it starts at the create.
    pub start_ms: Option<i64>,
    /// The range queries' step the request gives, if any.
    pub step: Option<Duration>,
}

/// Longest interval accepted. The daemon's OTLP windows expire after two idle hours,
/// so an interval may not come near that.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Longest lifetime accepted: a week. Longer would store more than anyone reads, and
/// an unbounded one overflowed the stored milliseconds.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most intervals one analysis may plan (lifetime / interval): each is a stored row. A
/// week of 30 s intervals.
pub const MAX_INTERVALS: u32 = 20_160;

/// Longest key accepted, in characters (as JSON Schema's `maxLength` counts), so keys
/// stay usable as URL parts and index entries.
const MAX_KEY_LEN: usize = 256;

impl AnalysisRequest {
    /// The window of `start` and `end`, when given: both or neither, the end after the
    /// start, and a model every metric of which Prometheus can answer for a time gone.
    fn window(&self, model: &Model) -> Result<Option<PastWindow>, RequestError> {
        let (start, end) = match (&self.start, &self.end) {
            (None, None) => {
                if self.step.is_some() {
                    return Err(refuse(
                        "step",
                        "only with `start` and `end`; an analysis that looks forward queries \
                         at the daemon's step (30s)",
                    ));
                }
                return Ok(None);
            }
            (Some(_), None) => return Err(refuse("end", "missing: `start` needs an `end`")),
            (None, Some(_)) => return Err(refuse("start", "missing: `end` needs a `start`")),
            (Some(s), Some(e)) => (parse_time("start", s)?, parse_time("end", e)?),
        };
        if end - start < 1000 {
            return Err(refuse(
                "end",
                format!(
                    "`{}` is not at least 1s after the start `{}`",
                    self.end.as_deref().unwrap_or_default(),
                    self.start.as_deref().unwrap_or_default()
                ),
            ));
        }
        let cannot_look_back: Vec<String> = model
            .metrics
            .iter()
            .filter(|m| !matches!(m.source, Some(Source::Prometheus(_))))
            .map(|m| {
                let what = match m.source {
                    Some(Source::Scrape(_)) => "scraped",
                    _ => "OTLP spans",
                };
                format!("`{}` ({what})", m.name)
            })
            .collect();
        if !cannot_look_back.is_empty() {
            return Err(refuse(
                "start",
                format!(
                    "a window with a start is judged from Prometheus, which keeps history, and \
                     model `{}` has metrics that only see what arrives from now on: {}; use a \
                     model whose metrics all have a `prometheus` source, or leave `start` and \
                     `end` out to judge from now",
                    model.name,
                    cannot_look_back.join(", ")
                ),
            ));
        }
        Ok(Some(PastWindow {
            start_ms: start,
            end_ms: end,
        }))
    }

    pub fn validate(self, catalog: &Catalog) -> Result<ValidRequest, RequestError> {
        if self.key.trim().is_empty() {
            return Err(refuse("key", "must not be empty"));
        }
        if self.key.chars().count() > MAX_KEY_LEN {
            return Err(refuse(
                "key",
                format!("longer than {MAX_KEY_LEN} characters"),
            ));
        }
        if let Some(n) = self.abandon_after
            && !(MIN_ABANDON_AFTER..=MAX_ABANDON_AFTER).contains(&n)
        {
            return Err(refuse(
                "abandon_after",
                format!(
                    "{n} is not a number of intervals from {MIN_ABANDON_AFTER} to {MAX_ABANDON_AFTER}"
                ),
            ));
        }
        let mut model = match &self.model {
            ModelRef::Name(name) => catalog.get(name).cloned().ok_or_else(|| {
                refuse(
                    "model",
                    format!(
                        "unknown model `{name}` (known: {})",
                        catalog.names().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?,
            ModelRef::Inline(value) => Model::from_json(value.clone(), "(inline model)")
                .map_err(|e| refuse("model", e.to_string()))?,
        };
        let window = self.window(&model)?;
        let interval_text = match (&self.interval, &window) {
            (Some(text), _) => text.clone(),
            // A window is judged in one look by default, as Kayenta judges it.
            (None, Some(w)) => humantime::format_duration(w.length()).to_string(),
            (None, None) => DEFAULT_INTERVAL.to_string(),
        };
        let lifetime_text = match (&self.lifetime, &window) {
            (Some(_), Some(_)) => {
                return Err(refuse(
                    "lifetime",
                    "not with `start` and `end`: the window's length is the lifetime",
                ));
            }
            (Some(text), None) => text.clone(),
            (None, Some(w)) => humantime::format_duration(w.length()).to_string(),
            (None, None) => DEFAULT_LIFETIME.to_string(),
        };
        let step = match &self.step {
            Some(text) => {
                let step = parse_duration("step", text)?;
                if step < Duration::from_secs(1) {
                    return Err(refuse("step", format!("`{text}` is shorter than 1s")));
                }
                Some(step)
            }
            None => None,
        };
        if let Some(early) = &self.early_pass {
            model.early_pass = Some(early.clone());
            if let Err(e) = model.validate("(request)") {
                let reasons: Vec<String> = e
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.reason))
                    .collect();
                return Err(refuse("early_pass", reasons.join("; ")));
            }
            let min = early.min_duration().map_err(|e| refuse("early_pass", e))?;
            let lifetime = parse_duration("lifetime", &lifetime_text)?;
            if min >= lifetime {
                return Err(refuse(
                    "early_pass",
                    format!(
                        "min_duration `{}` is not shorter than the lifetime `{lifetime_text}`",
                        early.min_duration
                    ),
                ));
            }
        }
        let interval = parse_duration("interval", &interval_text)?;
        let lifetime = parse_duration("lifetime", &lifetime_text)?;
        if interval < Duration::from_secs(1) {
            return Err(refuse(
                "interval",
                format!("`{interval_text}` is shorter than 1s"),
            ));
        }
        // OTLP windows are not held that long between looks; a window in the past has
        // only Prometheus metrics, which may look at any length.
        if interval > MAX_INTERVAL && window.is_none() {
            return Err(refuse(
                "interval",
                format!(
                    "`{interval_text}` is longer than 1h: telemetry windows are not held that long between looks"
                ),
            ));
        }
        if lifetime > MAX_LIFETIME {
            return Err(refuse(
                if window.is_some() { "end" } else { "lifetime" },
                format!(
                    "`{lifetime_text}` is longer than the maximum 7d (168h): a canary judged for longer is \
                     better split into several analyses"
                ),
            ));
        }
        let planned = lifetime.as_millis().div_ceil(interval.as_millis().max(1));
        if planned > u128::from(MAX_INTERVALS) {
            return Err(refuse(
                "lifetime",
                format!(
                    "`{lifetime_text}` at an interval of `{interval_text}` is {planned} intervals, more than the maximum \
                     {MAX_INTERVALS}: lengthen the interval or shorten the lifetime"
                ),
            ));
        }
        if lifetime < interval {
            return Err(refuse(
                if window.is_some() {
                    "interval"
                } else {
                    "lifetime"
                },
                format!("`{lifetime_text}` is shorter than the interval `{interval_text}`"),
            ));
        }
        if window.is_some() && lifetime.as_millis() % interval.as_millis() != 0 {
            return Err(refuse(
                "interval",
                format!(
                    "`{interval_text}` does not divide the window from `start` to `end` \
                     ({lifetime_text}) into whole intervals; leave it out to judge the window \
                     in one look"
                ),
            ));
        }
        for (field, scope) in [("baseline", &self.baseline), ("canary", &self.canary)] {
            if let Some(missing) = model.scope.iter().find(|name| !scope.contains_key(*name)) {
                return Err(refuse(
                    field,
                    format!("missing `{missing}`, which model `{}` needs", model.name),
                ));
            }
        }
        if self.baseline == self.canary {
            return Err(refuse("canary", "is the same scope as the baseline"));
        }
        Ok(ValidRequest {
            request: self,
            model,
            interval,
            lifetime,
            start_ms: window.map(|w| w.start_ms),
            step,
        })
    }
}

/// `30s`, `5m`, `1h`, `1h30m`.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration, RequestError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        refuse(
            field,
            format!("`{text}` is not a duration like 30s, 5m or 1h ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> Result<ValidRequest, RequestError> {
        let r: AnalysisRequest = serde_json::from_value(json).unwrap();
        r.validate(&Catalog::builtin())
    }

    fn base() -> serde_json::Value {
        serde_json::json!({"key": "checkout@1.4.2", "model": "http-red",
            "baseline": {"service.name": "checkout", "service.version": "1.4.1"},
            "canary": {"service.name": "checkout", "service.version": "1.4.2"},
            "interval": "30s", "lifetime": "10m"})
    }

    #[test]
    fn lifetime_is_bounded() {
        let mut r = base();
        r["lifetime"] = "584542046090y".into();
        let e = request(r).unwrap_err().to_string();
        assert!(e.contains("lifetime") && e.contains("maximum 7d"), "{e}");
        let mut r = base();
        r["lifetime"] = "169h".into();
        assert!(request(r).is_err());
        let mut r = base();
        r["lifetime"] = "168h".into();
        assert_eq!(request(r).unwrap().lifetime, MAX_LIFETIME);
        // 1 s intervals for 6 hours: 21,600 intervals.
        let mut r = base();
        r["interval"] = "1s".into();
        r["lifetime"] = "6h".into();
        let e = request(r).unwrap_err().to_string();
        assert!(e.contains("21600 intervals"), "{e}");
    }

    /// A model every metric of which Prometheus answers.
    fn promql_model() -> serde_json::Value {
        serde_json::json!({"name": "p", "scope": ["version"], "metrics": [
            {"name": "latency", "source": {"prometheus": {"promql": "avg(x{v=\"{{ version }}\"})"}}}]})
    }

    fn window(start: &str, end: &str) -> serde_json::Value {
        serde_json::json!({"key": "k", "model": promql_model(),
            "baseline": {"version": "1"}, "canary": {"version": "2"},
            "start": start, "end": end})
    }

    #[test]
    fn a_window_is_judged_in_one_look_unless_an_interval_divides_it() {
        let v = request(window("2026-12-07T10:00:00Z", "2026-12-07T11:30:00+01:00")).unwrap();
        // 11:30 at +01:00 is 10:30Z: half an hour, in one look.
        assert_eq!(v.start_ms, Some(1_796_637_600_000));
        assert_eq!(v.lifetime, Duration::from_secs(1800));
        assert_eq!(v.interval, Duration::from_secs(1800));
        let mut body = window("2026-12-07T10:00:00Z", "2026-12-07T12:00:00Z");
        body["interval"] = "15m".into();
        body["step"] = "30s".into();
        let v = request(body).unwrap();
        assert_eq!(
            (v.interval, v.lifetime, v.step),
            (
                Duration::from_secs(900),
                Duration::from_secs(7200),
                Some(Duration::from_secs(30))
            )
        );
        // Two hours in one look: longer than an OTLP interval may be, and fine here.
        let v = request(window("2026-12-07T10:00:00Z", "2026-12-07T12:00:00Z")).unwrap();
        assert_eq!(v.interval, Duration::from_secs(7200));
        // Without a window nothing changes: the defaults, and no start.
        let v = request(base()).unwrap();
        assert_eq!((v.start_ms, v.step), (None, None));
    }

    #[test]
    fn window_refusals_name_the_field() {
        let good = window("2026-12-07T10:00:00Z", "2026-12-07T10:30:00Z");
        let cases: [(&str, serde_json::Value, &str, &str); 9] = [
            (
                "end",
                serde_json::Value::Null,
                "end",
                "`start` needs an `end`",
            ),
            (
                "start",
                serde_json::Value::Null,
                "start",
                "`end` needs a `start`",
            ),
            ("start", "10:00".into(), "start", "not an RFC 3339 time"),
            (
                "end",
                "2026-12-07T10:00:00Z".into(),
                "end",
                "not at least 1s after",
            ),
            ("end", "2027-01-07T10:00:00Z".into(), "end", "maximum 7d"),
            (
                "lifetime",
                "30m".into(),
                "lifetime",
                "not with `start` and `end`",
            ),
            (
                "interval",
                "7m".into(),
                "interval",
                "does not divide the window",
            ),
            (
                "interval",
                "1h".into(),
                "interval",
                "shorter than the interval",
            ),
            ("step", "500ms".into(), "step", "shorter than 1s"),
        ];
        for (field, value, refused, says) in cases {
            let mut body = good.clone();
            if value.is_null() {
                body.as_object_mut().unwrap().remove(field);
            } else {
                body[field] = value;
            }
            let e = request(body).unwrap_err();
            assert_eq!(e.field, refused, "{field}: {e}");
            assert!(e.message.contains(says), "{field}: {e}");
        }
        // A step without a window: the daemon's step applies to looking forward.
        let mut body = base();
        body["step"] = "30s".into();
        let e = request(body).unwrap_err();
        assert_eq!(e.field, "step");
        // OTLP and scrape metrics cannot look back; each is named.
        let mut body = good.clone();
        body["model"] = serde_json::json!("http-red");
        body["baseline"] = serde_json::json!({"service.name": "a", "service.version": "1"});
        body["canary"] = serde_json::json!({"service.name": "a", "service.version": "2"});
        let e = request(body).unwrap_err();
        assert_eq!(e.field, "start");
        assert!(
            e.message
                .contains("`latency` (OTLP spans), `error-rate` (OTLP spans)"),
            "{e}"
        );
    }

    #[test]
    fn the_design_example_is_valid() {
        let v = request(base()).unwrap();
        assert_eq!(v.interval, Duration::from_secs(30));
        assert_eq!(v.lifetime, Duration::from_secs(600));
        assert_eq!(v.model.name, "http-red");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("model", serde_json::json!("nope"), "unknown model `nope`"),
            (
                "interval",
                serde_json::json!("soon"),
                "`soon` is not a duration",
            ),
            (
                "lifetime",
                serde_json::json!("10s"),
                "shorter than the interval",
            ),
            ("interval", serde_json::json!("2h"), "longer than 1h"),
            ("key", serde_json::json!(" "), "must not be empty"),
            (
                "canary",
                serde_json::json!({"service.name": "checkout"}),
                "missing `service.version`, which model `http-red` needs",
            ),
        ];
        for (field, value, message) in cases {
            let mut body = base();
            body[field] = value;
            let e = request(body).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.contains(message), "{e}");
        }
    }

    #[test]
    fn early_pass_needs_margins_and_a_duration_within_the_lifetime() {
        let mut body = base();
        body["early_pass"] = serde_json::json!({"min_duration": "5m"});
        let e = request(body.clone()).unwrap_err();
        assert_eq!(e.field, "early_pass");
        assert!(e.message.contains("equivalence_margin"), "{e}");
        body["model"] = serde_json::json!({"name": "inline", "metrics": [
            {"name": "latency", "test": "sequential", "equivalence_margin": 0.1}]});
        let v = request(body.clone()).unwrap();
        assert_eq!(
            v.model.early_pass.as_ref().unwrap().min_duration().unwrap(),
            Duration::from_secs(300)
        );
        body["early_pass"] = serde_json::json!({"min_duration": "20m"});
        let e = request(body).unwrap_err();
        assert!(e.message.contains("not shorter than the lifetime"), "{e}");
    }

    #[test]
    fn inline_models_are_validated() {
        let mut body = base();
        body["model"] = serde_json::json!({"name": "inline", "scope": ["app"], "metrics": [{"name": "x", "alpha": 3}]});
        let e = request(body).unwrap_err();
        assert_eq!(e.field, "model");
        assert!(e.message.contains("metrics[0].alpha"), "{e}");
    }
}
