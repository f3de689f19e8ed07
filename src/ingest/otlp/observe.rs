//! Spans to observations: decides, for each span of a request, which watched windows it
//! belongs to, what its latency and outcome are, and records them.
//!
//! A span belongs to a watch's scope when, for every name the scope lists, the span's own
//! attribute value (if it sets a string, integer or boolean for that name) or else its
//! resource's equals the scope's value. Resources are matched once per request; only a span
//! that carries a scope name itself pays for a lookup of its own.
//!
//! Invariant: a request is all or nothing. Observations are buffered while the request is
//! decoded and reach the windows only once the whole request decoded, so a body that turns
//! out malformed halfway records nothing.

use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::decode::{self, AttrValue, DecodeError, SpanFacts, Visitor};
use crate::windows::{Index, ScopeValue, SpanCounts, Windows};

/// `Status.StatusCode.STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;

/// What happened to one request's spans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Spans in the request.
    pub spans: u64,
    /// Spans recorded into at least one window.
    pub accepted: u64,
    /// Spans refused as invalid; the sender is told in a partial-success response.
    pub rejected: u64,
    /// Why spans were rejected (set when `rejected > 0`).
    pub rejection: Option<String>,
}

/// Decodes a protobuf request with the lean wire scanner and records its spans.
pub fn ingest_protobuf(windows: &Windows, body: &[u8]) -> Result<IngestOutcome, DecodeError> {
    let index = windows.index();
    let mut observer = Observer::new(&index);
    decode::decode_request(body, index.names(), &mut observer)?;
    Ok(observer.finish(windows))
}

/// Records the spans of an already decoded request (full prost decode, or OTLP/JSON).
pub fn ingest_message(windows: &Windows, request: &ExportTraceServiceRequest) -> IngestOutcome {
    let index = windows.index();
    let mut observer = Observer::new(&index);
    decode::visit_message(request, index.names(), &mut observer);
    observer.finish(windows)
}

/// Decodes a protobuf request with the generated prost types and records its spans.
pub fn ingest_protobuf_full(windows: &Windows, body: &[u8]) -> Result<IngestOutcome, DecodeError> {
    let request = decode::decode_full(body)?;
    Ok(ingest_message(windows, &request))
}

/// Decodes an OTLP/JSON request and records its spans.
pub fn ingest_json(windows: &Windows, body: &[u8]) -> Result<IngestOutcome, DecodeError> {
    let request = decode::decode_json(body)?;
    Ok(ingest_message(windows, &request))
}

/// Observations for one watch, gathered over a request.
struct Pending {
    entry: u32,
    latencies_ms: Vec<f64>,
    errors: u64,
}

struct Observer<'a, 'i> {
    index: &'i Index,
    resource: Vec<Option<ScopeValue<'a>>>,
    resource_matches: Vec<u32>,
    merged: Vec<Option<ScopeValue<'a>>>,
    span_matches: Vec<u32>,
    key: Vec<u8>,
    pending: Vec<Pending>,
    counts: SpanCounts,
    spans: u64,
    first_rejection: Option<String>,
}

fn scope_value(v: Option<AttrValue<'_>>) -> Option<ScopeValue<'_>> {
    match v? {
        AttrValue::Str(s) => Some(ScopeValue::Str(s)),
        AttrValue::Int(i) => Some(ScopeValue::Int(i)),
        AttrValue::Bool(b) => Some(ScopeValue::Bool(b)),
        AttrValue::Double(_) | AttrValue::Other => None,
    }
}

fn is_server_error(v: Option<AttrValue<'_>>) -> bool {
    match v {
        Some(AttrValue::Int(code)) => code >= 500,
        Some(AttrValue::Str(s)) => s.trim().parse::<i64>().is_ok_and(|code| code >= 500),
        _ => false,
    }
}

impl<'a, 'i> Observer<'a, 'i> {
    fn new(index: &'i Index) -> Self {
        let slots = index.names().len();
        Observer {
            index,
            resource: vec![None; slots],
            resource_matches: Vec::new(),
            merged: vec![None; slots],
            span_matches: Vec::new(),
            key: Vec::new(),
            pending: Vec::new(),
            counts: SpanCounts::default(),
            spans: 0,
            first_rejection: None,
        }
    }

    fn reject(&mut self, span: &SpanFacts<'a>) {
        self.counts.rejected += 1;
        if self.first_rejection.is_none() {
            self.first_rejection = Some(format!(
                "{}: start_time_unix_nano {} and end_time_unix_nano {}",
                span.at, span.start_unix_nano, span.end_unix_nano
            ));
        }
    }

    fn push(&mut self, entry: u32, latency_ms: f64, error: bool) {
        let pending = match self.pending.iter().position(|p| p.entry == entry) {
            Some(i) => &mut self.pending[i],
            None => {
                self.pending.push(Pending {
                    entry,
                    latencies_ms: Vec::new(),
                    errors: 0,
                });
                let last = self.pending.len() - 1;
                &mut self.pending[last]
            }
        };
        pending.latencies_ms.push(latency_ms);
        pending.errors += u64::from(error);
    }

    fn finish(self, windows: &Windows) -> IngestOutcome {
        if !self.pending.is_empty() {
            let now = SystemTime::now();
            for pending in &self.pending {
                self.index.entry(pending.entry).window.record(
                    &pending.latencies_ms,
                    pending.errors,
                    now,
                );
            }
        }
        windows.add_counts(self.counts);
        let rejection = self.first_rejection.map(|first| {
            format!(
                "rejected {} of {} spans with invalid timestamps (both must be set and the \
                 end must not precede the start); first: {first}",
                self.counts.rejected, self.spans
            )
        });
        IngestOutcome {
            spans: self.spans,
            accepted: self.counts.accepted,
            rejected: self.counts.rejected,
            rejection,
        }
    }
}

impl<'a> Visitor<'a> for Observer<'a, '_> {
    fn resource(&mut self, scope_values: &[Option<AttrValue<'a>>]) {
        for (slot, v) in self.resource.iter_mut().zip(scope_values) {
            *slot = scope_value(*v);
        }
        self.resource_matches.clear();
        if !self.index.is_empty() {
            self.index
                .lookup(&self.resource, &mut self.key, &mut self.resource_matches);
        }
    }

    fn span(&mut self, span: &SpanFacts<'a>, scope_values: &[Option<AttrValue<'a>>]) {
        self.spans += 1;
        if span.start_unix_nano == 0
            || span.end_unix_nano == 0
            || span.end_unix_nano < span.start_unix_nano
        {
            self.reject(span);
            return;
        }
        let own_scope = scope_values.iter().any(|v| scope_value(*v).is_some());
        let matches = if own_scope {
            for ((merged, own), from_resource) in
                self.merged.iter_mut().zip(scope_values).zip(&self.resource)
            {
                *merged = scope_value(*own).or(*from_resource);
            }
            self.span_matches.clear();
            self.index
                .lookup(&self.merged, &mut self.key, &mut self.span_matches);
            std::mem::take(&mut self.span_matches)
        } else {
            std::mem::take(&mut self.resource_matches)
        };
        if matches.is_empty() {
            self.counts.dropped += 1;
        } else {
            let latency_ms = (span.end_unix_nano - span.start_unix_nano) as f64 / 1e6;
            let error = span.status_code == STATUS_ERROR || is_server_error(span.http_status);
            let mut kept = false;
            for &entry in &matches {
                if self
                    .index
                    .entry(entry)
                    .keeps(span.kind, span.name, span.route)
                {
                    self.push(entry, latency_ms, error);
                    kept = true;
                }
            }
            if kept {
                self.counts.accepted += 1;
            } else {
                self.counts.filtered += 1;
            }
        }
        // Hand the buffer back so its allocation is reused by the next span.
        if own_scope {
            self.span_matches = matches;
        } else {
            self.resource_matches = matches;
        }
    }
}

#[cfg(test)]
mod tests;
