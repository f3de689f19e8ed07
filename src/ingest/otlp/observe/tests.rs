use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Status, span::SpanKind as WireKind};
use prost::Message;

use super::*;
use crate::ingest::otlp::decode::tests::{kv, resource_spans, s, server_span, service};
use crate::stats::LogHistogram;
use crate::windows::{Scope, SpanFilter, SpanKind, WatchId, WindowData};

fn scope(name: &str, version: &str) -> Scope {
    [("service.name", name), ("service.version", version)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn histogram_of(values: &[f64]) -> LogHistogram {
    let mut h = LogHistogram::new();
    for &v in values {
        h.record(v);
    }
    h
}

const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000_000_000_000;

/// Runs a request through every decoder the receiver has, into fresh windows each time,
/// and checks they all record the same. Returns the windows of the lean run.
fn ingest_everywhere(
    request: &ExportTraceServiceRequest,
    watches: &[(Scope, SpanFilter)],
) -> (Windows, Vec<WatchId>, IngestOutcome) {
    let runs: Vec<(Windows, Vec<WatchId>, IngestOutcome)> = (0..3)
        .map(|decoder| {
            let windows = Windows::default();
            let ids = watches
                .iter()
                .map(|(s, f)| windows.watch(s.clone(), f.clone()).unwrap())
                .collect();
            let outcome = match decoder {
                0 => ingest_protobuf(&windows, &request.encode_to_vec()).unwrap(),
                1 => ingest_protobuf_full(&windows, &request.encode_to_vec()).unwrap(),
                _ => ingest_json(&windows, &serde_json::to_vec(request).unwrap()).unwrap(),
            };
            (windows, ids, outcome)
        })
        .collect();
    let snapshot = |(w, ids, o): &(Windows, Vec<WatchId>, IngestOutcome)| {
        let data: Vec<(u64, u64, LogHistogram)> = ids
            .iter()
            .map(|id| {
                let d = w.take(*id).unwrap();
                (d.requests, d.errors, d.histogram)
            })
            .collect();
        (data, o.clone(), w.stats())
    };
    let lean = snapshot(&runs[0]);
    assert_eq!(lean, snapshot(&runs[1]), "full prost decoder differs");
    assert_eq!(lean, snapshot(&runs[2]), "OTLP/JSON path differs");
    // The snapshots drained the windows; run the lean path again, afresh, for the caller.
    let windows = Windows::default();
    let ids = watches
        .iter()
        .map(|(s, f)| windows.watch(s.clone(), f.clone()).unwrap())
        .collect();
    let outcome = ingest_protobuf(&windows, &request.encode_to_vec()).unwrap();
    (windows, ids, outcome)
}

fn take(windows: &Windows, id: WatchId) -> WindowData {
    windows.take(id).unwrap()
}

#[test]
fn spans_go_to_the_window_of_their_version_with_latency_and_outcome() {
    let mut failed = server_span("GET /", T0, T0 + 40 * MS, vec![]);
    failed.status = Some(Status {
        code: 2,
        ..Default::default()
    });
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                service("checkout", "1"),
                vec![
                    server_span("GET /", T0, T0 + 10 * MS, vec![]),
                    server_span(
                        "GET /",
                        T0,
                        T0 + 12_500_000,
                        vec![kv("http.response.status_code", Value::IntValue(503))],
                    ),
                    server_span(
                        "GET /",
                        T0,
                        T0 + 7 * MS,
                        vec![kv("http.response.status_code", Value::IntValue(499))],
                    ),
                ],
            ),
            resource_spans(
                service("checkout", "2"),
                vec![
                    failed,
                    server_span(
                        "GET /",
                        T0,
                        T0 + 30 * MS,
                        vec![kv("http.status_code", s("500"))],
                    ),
                ],
            ),
            resource_spans(
                service("cart", "1"),
                vec![server_span("GET /", T0, T0 + MS, vec![])],
            ),
        ],
    };
    let (windows, ids, outcome) = ingest_everywhere(
        &request,
        &[
            (scope("checkout", "1"), SpanFilter::default()),
            (scope("checkout", "2"), SpanFilter::default()),
        ],
    );
    assert_eq!(
        outcome,
        IngestOutcome {
            spans: 6,
            accepted: 5,
            rejected: 0,
            rejection: None
        }
    );
    let v1 = take(&windows, ids[0]);
    assert_eq!((v1.requests, v1.errors), (3, 1));
    assert_eq!(v1.histogram, histogram_of(&[10.0, 12.5, 7.0]));
    assert!(v1.first_seen.is_some() && v1.last_seen.is_some());
    let v2 = take(&windows, ids[1]);
    assert_eq!((v2.requests, v2.errors), (2, 2));
    assert_eq!(v2.histogram, histogram_of(&[40.0, 30.0]));
    let stats = windows.stats();
    assert_eq!(stats.accepted_spans, 5);
    assert_eq!(stats.dropped_spans, 1);
}

#[test]
fn spans_with_bad_timestamps_are_rejected_and_named() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            service("checkout", "1"),
            vec![
                server_span("ok", T0, T0 + MS, vec![]),
                server_span("backwards", T0 + MS, T0, vec![]),
                server_span("unset", 0, T0, vec![]),
                server_span("open", T0, 0, vec![]),
                server_span("instant", T0, T0, vec![]),
            ],
        )],
    };
    let (windows, ids, outcome) =
        ingest_everywhere(&request, &[(scope("checkout", "1"), SpanFilter::default())]);
    assert_eq!(outcome.spans, 5);
    assert_eq!(outcome.accepted, 2);
    assert_eq!(outcome.rejected, 3);
    assert_eq!(
        outcome.rejection.as_deref(),
        Some(&*format!(
            "rejected 3 of 5 spans with invalid timestamps (both must be set and the end must \
             not precede the start); first: resource_spans[0].scope_spans[0].spans[1]: \
             start_time_unix_nano {} and end_time_unix_nano {T0}",
            T0 + MS
        ))
    );
    let data = take(&windows, ids[0]);
    assert_eq!(data.histogram, histogram_of(&[1.0, 0.0]));
    assert_eq!(windows.stats().rejected_spans, 3);
}

#[test]
fn span_attributes_override_the_resource_for_scope_names() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            service("checkout", "1"),
            vec![
                server_span("a", T0, T0 + MS, vec![kv("service.version", s("2"))]),
                server_span(
                    "b",
                    T0,
                    T0 + 2 * MS,
                    vec![kv("service.version", Value::IntValue(2))],
                ),
                server_span("c", T0, T0 + 3 * MS, vec![]),
                // A value of a type scopes never match does not override.
                server_span(
                    "d",
                    T0,
                    T0 + 4 * MS,
                    vec![kv("service.version", Value::DoubleValue(2.0))],
                ),
            ],
        )],
    };
    let (windows, ids, _) = ingest_everywhere(
        &request,
        &[
            (scope("checkout", "1"), SpanFilter::default()),
            (scope("checkout", "2"), SpanFilter::default()),
        ],
    );
    assert_eq!(take(&windows, ids[0]).histogram, histogram_of(&[3.0, 4.0]));
    assert_eq!(take(&windows, ids[1]).histogram, histogram_of(&[1.0, 2.0]));
}

#[test]
fn filters_pick_kind_name_and_route() {
    let mut client = server_span("GET /a", T0, T0 + 5 * MS, vec![kv("http.route", s("/a"))]);
    client.kind = WireKind::Client as i32;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            service("checkout", "1"),
            vec![
                server_span("GET /a", T0, T0 + MS, vec![kv("http.route", s("/a"))]),
                server_span("GET /b", T0, T0 + 2 * MS, vec![kv("http.route", s("/b"))]),
                client,
            ],
        )],
    };
    let (windows, ids, outcome) = ingest_everywhere(
        &request,
        &[
            (
                scope("checkout", "1"),
                SpanFilter {
                    route: Some("/a".into()),
                    ..SpanFilter::default()
                },
            ),
            (
                scope("checkout", "1"),
                SpanFilter {
                    kind: Some(SpanKind::Client),
                    name: Some("GET /a".into()),
                    route: None,
                },
            ),
            (
                scope("checkout", "1"),
                SpanFilter {
                    kind: None,
                    ..SpanFilter::default()
                },
            ),
        ],
    );
    assert_eq!(take(&windows, ids[0]).histogram, histogram_of(&[1.0]));
    assert_eq!(take(&windows, ids[1]).histogram, histogram_of(&[5.0]));
    assert_eq!(
        take(&windows, ids[2]).histogram,
        histogram_of(&[1.0, 2.0, 5.0])
    );
    assert_eq!(outcome.accepted, 3);
}

#[test]
fn spans_no_filter_keeps_are_counted_as_filtered() {
    let mut client = server_span("call", T0, T0 + MS, vec![]);
    client.kind = WireKind::Client as i32;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(service("checkout", "1"), vec![client])],
    };
    let (windows, ids, outcome) =
        ingest_everywhere(&request, &[(scope("checkout", "1"), SpanFilter::default())]);
    assert_eq!(outcome.accepted, 0);
    assert_eq!(windows.stats().filtered_spans, 1);
    assert_eq!(take(&windows, ids[0]).requests, 0);
}

#[test]
fn without_watches_every_span_is_dropped_and_counted() {
    let windows = Windows::default();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            service("checkout", "1"),
            vec![server_span("x", T0, T0 + MS, vec![]); 4],
        )],
    };
    let outcome = ingest_protobuf(&windows, &request.encode_to_vec()).unwrap();
    assert_eq!((outcome.spans, outcome.accepted), (4, 0));
    assert_eq!(windows.stats().dropped_spans, 4);
}

#[test]
fn a_request_that_fails_to_decode_records_nothing() {
    let windows = Windows::default();
    let id = windows
        .watch(scope("checkout", "1"), SpanFilter::default())
        .unwrap();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                service("checkout", "1"),
                vec![server_span("x", T0, T0 + MS, vec![])],
            ),
            resource_spans(
                service("checkout", "1"),
                vec![server_span("y", T0, T0 + MS, vec![])],
            ),
        ],
    };
    let mut buf = request.encode_to_vec();
    // A third resource_spans announces 5 bytes and has none: the first two decoded fine.
    buf.push(0x0a);
    buf.push(0x05);
    assert!(ingest_protobuf(&windows, &buf).is_err());
    assert_eq!(take(&windows, id).requests, 0);
    assert_eq!(
        windows.stats(),
        crate::windows::WindowStats {
            live_watches: 1,
            ..Default::default()
        }
    );
}
