use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use proptest::prelude::*;
use prost::Message;

use super::*;

pub(crate) const NAMES: [&str; 2] = ["service.name", "service.version"];

pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

pub(crate) fn server_span(name: &str, start: u64, end: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![7; 16],
        span_id: vec![9; 8],
        name: name.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

pub(crate) fn resource_spans(resource: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "test".into(),
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(crate) fn service(name: &str, version: &str) -> Vec<KeyValue> {
    vec![
        kv("service.name", s(name)),
        kv("service.version", s(version)),
        kv("host.name", s("node-1")),
    ]
}

/// A request touching every field the decoders read, and some they skip.
fn rich_request() -> ExportTraceServiceRequest {
    let mut errored = server_span(
        "GET /orders/{id}",
        1_000,
        5_001_000,
        vec![
            kv("http.route", s("/orders/{id}")),
            kv("http.response.status_code", Value::IntValue(503)),
            kv("http.request.method", s("GET")),
            kv(
                "tags",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(s("a")),
                    }],
                }),
            ),
        ],
    );
    errored.status = Some(Status {
        message: "boom".into(),
        code: 2,
    });
    errored.events.push(span::Event {
        name: "exception".into(),
        time_unix_nano: 3,
        ..Default::default()
    });
    let overriding = server_span(
        "POST /pay",
        10,
        20,
        vec![
            kv("service.version", s("9.9.9")),
            kv("http.status_code", s("500")),
            kv("ratio", Value::DoubleValue(0.25)),
            kv("ok", Value::BoolValue(true)),
        ],
    );
    let mut client = server_span("call", 5, 6, vec![]);
    client.kind = span::SpanKind::Client as i32;
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(service("checkout", "1.0.0"), vec![errored, overriding]),
            resource_spans(
                vec![
                    kv("service.name", s("checkout")),
                    kv("service.version", Value::IntValue(2)),
                ],
                vec![client],
            ),
            ResourceSpans::default(),
        ],
    }
}

fn lean(buf: &[u8]) -> Result<Vec<ResourceSummary>, DecodeError> {
    let mut out = Summarize::default();
    decode_request(buf, &NAMES, &mut out)?;
    Ok(out.0)
}

fn full(buf: &[u8]) -> Result<Vec<ResourceSummary>, DecodeError> {
    let request = decode_full(buf)?;
    let mut out = Summarize::default();
    visit_message(&request, &NAMES, &mut out);
    Ok(out.0)
}

fn str_value(v: &str) -> Option<OwnedValue> {
    Some(OwnedValue::Str(v.into()))
}

#[test]
fn lean_scanner_reports_what_was_encoded() {
    let got = lean(&rich_request().encode_to_vec()).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].scope_values,
        vec![str_value("checkout"), str_value("1.0.0")]
    );
    assert_eq!(
        got[1].scope_values,
        vec![str_value("checkout"), Some(OwnedValue::Int(2))]
    );
    assert_eq!(
        got[2],
        ResourceSummary {
            scope_values: vec![None, None],
            spans: vec![]
        }
    );

    let first = &got[0].spans[0];
    assert_eq!(first.name, "GET /orders/{id}");
    assert_eq!(first.kind, 2);
    assert_eq!(
        (first.start_unix_nano, first.end_unix_nano),
        (1_000, 5_001_000)
    );
    assert_eq!(first.status_code, 2);
    assert_eq!(first.http_status, Some(OwnedValue::Int(503)));
    assert_eq!(first.route.as_deref(), Some("/orders/{id}"));
    assert_eq!(first.scope_values, vec![None, None]);

    let second = &got[0].spans[1];
    assert_eq!(
        second.at,
        SpanAt {
            resource_spans: 0,
            scope_spans: 0,
            span: 1
        }
    );
    assert_eq!(second.http_status, str_value("500"));
    assert_eq!(second.scope_values, vec![None, str_value("9.9.9")]);
    assert_eq!(second.status_code, 0);

    assert_eq!(got[1].spans[0].kind, 3);
}

#[test]
fn lean_and_full_decoders_agree() {
    let buf = rich_request().encode_to_vec();
    assert_eq!(lean(&buf).unwrap(), full(&buf).unwrap());
}

#[test]
fn newer_status_attribute_wins_over_the_older_one() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            service("a", "1"),
            vec![server_span(
                "x",
                1,
                2,
                vec![
                    kv("http.response.status_code", Value::IntValue(200)),
                    kv("http.status_code", Value::IntValue(502)),
                ],
            )],
        )],
    };
    let got = lean(&request.encode_to_vec()).unwrap();
    assert_eq!(got[0].spans[0].http_status, Some(OwnedValue::Int(200)));
}

/// Appends one field (key + payload) to `out`.
fn field(out: &mut Vec<u8>, number: u32, wire: u8, payload: &[u8]) {
    prost::encoding::encode_varint(u64::from(number << 3 | u32::from(wire)), out);
    if wire == LEN {
        prost::encoding::encode_varint(payload.len() as u64, out);
    }
    out.extend_from_slice(payload);
}

fn wrap_request(resource_spans: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    field(&mut out, 1, LEN, resource_spans);
    out
}

#[test]
fn resource_after_its_spans_on_the_wire_still_applies_to_them() {
    let rs = resource_spans(service("late", "2"), vec![server_span("x", 1, 2, vec![])]);
    let mut reordered = Vec::new();
    for scope in &rs.scope_spans {
        field(&mut reordered, 2, LEN, &scope.encode_to_vec());
    }
    field(
        &mut reordered,
        1,
        LEN,
        &rs.resource.as_ref().unwrap().encode_to_vec(),
    );
    let buf = wrap_request(&reordered);
    let got = lean(&buf).unwrap();
    assert_eq!(got[0].scope_values, vec![str_value("late"), str_value("2")]);
    assert_eq!(got[0].spans.len(), 1);
    assert_eq!(got, full(&buf).unwrap());
}

#[test]
fn unknown_fields_are_skipped_at_every_level() {
    let rs = resource_spans(service("svc", "1"), vec![server_span("x", 1, 2, vec![])]);
    let mut span = rs.scope_spans[0].spans[0].encode_to_vec();
    // An unknown varint, fixed32, length-delimited and group field inside the span.
    field(&mut span, 100, VARINT, &[0x96, 0x01]);
    field(&mut span, 101, I32, &[1, 2, 3, 4]);
    field(&mut span, 102, LEN, b"future");
    let mut group = Vec::new();
    field(&mut group, 1, VARINT, &[5]);
    field(&mut span, 103, SGROUP, &group);
    prost::encoding::encode_varint(u64::from(103 << 3 | u32::from(EGROUP)), &mut span);
    let mut scope = Vec::new();
    field(&mut scope, 2, LEN, &span);
    field(&mut scope, 99, I64, &[0; 8]);
    let mut resource_spans_buf = Vec::new();
    field(
        &mut resource_spans_buf,
        1,
        LEN,
        &rs.resource.as_ref().unwrap().encode_to_vec(),
    );
    field(&mut resource_spans_buf, 2, LEN, &scope);
    let mut buf = wrap_request(&resource_spans_buf);
    field(&mut buf, 77, LEN, b"top-level extension");

    let got = lean(&buf).unwrap();
    assert_eq!(got[0].spans.len(), 1);
    assert_eq!(got[0].spans[0].name, "x");
    assert_eq!(got, full(&buf).unwrap());
}

#[test]
fn later_duplicate_attribute_wins_in_both_decoders() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            vec![
                kv("service.name", s("first")),
                kv("service.name", s("second")),
            ],
            vec![server_span("x", 1, 2, vec![])],
        )],
    };
    let buf = request.encode_to_vec();
    let got = lean(&buf).unwrap();
    assert_eq!(got[0].scope_values[0], str_value("second"));
    assert_eq!(got, full(&buf).unwrap());
}

/// The encoded request with `needle` (which must occur once) replaced by `with`.
fn patched(request: &ExportTraceServiceRequest, needle: &[u8], with: &[u8]) -> Vec<u8> {
    assert_eq!(needle.len(), with.len());
    let mut buf = request.encode_to_vec();
    let at = buf
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in request");
    buf[at..at + needle.len()].copy_from_slice(with);
    buf
}

#[test]
fn invalid_utf8_in_an_attribute_value_is_refused_with_its_path() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            service("svc", "1"),
            vec![
                server_span("ok", 1, 2, vec![]),
                server_span("x", 1, 2, vec![kv("user", s("caf\u{e9}!"))]),
            ],
        )],
    };
    let buf = patched(&request, "caf\u{e9}".as_bytes(), b"caf\xff\xfe");
    let err = lean(&buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0].scope_spans[0].spans[1].attributes[0].value.string_value: \
         string is not valid UTF-8"
    );
    assert!(full(&buf).is_err());
}

#[test]
fn invalid_utf8_in_a_resource_key_is_refused_with_its_path() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            vec![kv("zone\u{e9}", s("a"))],
            vec![server_span("x", 1, 2, vec![])],
        )],
    };
    let buf = patched(&request, "zone\u{e9}".as_bytes(), b"zone\xc3\x28");
    let err = lean(&buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0].resource.attributes[0].key: string is not valid UTF-8"
    );
}

#[test]
fn a_read_field_with_the_wrong_wire_type_is_refused() {
    let mut span = Vec::new();
    field(&mut span, 7, VARINT, &[1]);
    let mut scope = Vec::new();
    field(&mut scope, 2, LEN, &span);
    let mut rs = Vec::new();
    field(&mut rs, 2, LEN, &scope);
    let buf = wrap_request(&rs);
    let err = lean(&buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano: field 7 has wire \
         type varint where 64-bit was expected"
    );
    assert!(full(&buf).is_err());
}

#[test]
fn structural_faults_are_refused() {
    let good = rich_request().encode_to_vec();
    // Cut inside the first resource_spans: its length runs past the end.
    let err = lean(&good[..good.len() / 2]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // A varint of eleven bytes.
    let err = lean(&[
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ])
    .unwrap_err();
    assert!(err.to_string().contains("varint"), "{err}");
    // Field number zero.
    let err = lean(&[0x02, 0x00]).unwrap_err();
    assert!(err.to_string().contains("field number 0"), "{err}");
    // Wire type 7 does not exist.
    let err = lean(&[0x0f]).unwrap_err();
    assert!(err.to_string().contains("wire type"), "{err}");
    // An end-group with no group open.
    let err = lean(&[0x0c]).unwrap_err();
    assert!(err.to_string().contains("end-group"), "{err}");
    for bad in [
        &good[..good.len() / 2],
        &[0x02, 0x00][..],
        &[0x0f][..],
        &[0x0c][..],
    ] {
        assert!(full(bad).is_err());
    }
}

#[test]
fn groups_nested_past_the_limit_are_refused_not_recursed_into() {
    let mut buf = Vec::new();
    for _ in 0..10_000 {
        buf.push((5 << 3) | SGROUP);
    }
    let err = lean(&buf).unwrap_err();
    assert!(err.to_string().contains("nested too deeply"), "{err}");
}

#[test]
fn an_empty_body_is_an_empty_request() {
    assert_eq!(lean(&[]).unwrap(), vec![]);
}

#[test]
fn otlp_json_mapping_is_read_as_the_specification_writes_it() {
    // lowerCamelCase names, hex ids, enums as numbers, int64 as strings (and as numbers),
    // and fields this receiver has never heard of.
    let json = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [
          {"key": "service.name", "value": {"stringValue": "checkout"}},
          {"key": "service.version", "value": {"stringValue": "1.4.2"}}
        ], "somethingNew": 1},
        "scopeSpans": [{
          "scope": {"name": "lib"},
          "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "GET /cart",
            "kind": 2,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": 1544712660250000000,
            "attributes": [
              {"key": "http.response.status_code", "value": {"intValue": "503"}},
              {"key": "http.route", "value": {"stringValue": "/cart"}}
            ],
            "status": {"code": 2, "message": "bad"},
            "futureField": {"nested": [1, 2]}
          }]
        }]
      }]
    }"#;
    let request = decode_json(json.as_bytes()).unwrap();
    let mut out = Summarize::default();
    visit_message(&request, &NAMES, &mut out);
    let got = out.0;
    assert_eq!(
        got[0].scope_values,
        vec![str_value("checkout"), str_value("1.4.2")]
    );
    let span = &got[0].spans[0];
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_unix_nano, 1_544_712_660_250_000_000);
    assert_eq!(span.http_status, Some(OwnedValue::Int(503)));
    assert_eq!(span.route.as_deref(), Some("/cart"));
    assert_eq!(span.status_code, 2);
    assert_eq!(
        request.resource_spans[0].scope_spans[0].spans[0].trace_id,
        vec![
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
}

#[test]
fn otlp_json_with_snake_case_names_carries_no_spans() {
    // The specification allows only lowerCamelCase keys; others are unknown and ignored.
    let json = r#"{"resource_spans": [{"scope_spans": [{"spans": [{"name": "x"}]}]}]}"#;
    let request = decode_json(json.as_bytes()).unwrap();
    assert!(request.resource_spans.is_empty());
}

#[test]
fn otlp_json_errors_say_where() {
    let err = decode_json(br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "x"}]}]}]}"#)
        .unwrap_err();
    assert!(err.to_string().starts_with("JSON: "), "{err}");
    assert!(err.to_string().contains("column"), "{err}");
    let err = decode_json(
        b"{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"a\xff\"}]}}]}",
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid unicode"), "{err}");
}

/// Edits to a valid request: flip, drop, insert or truncate bytes.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Remove(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the full decoder accepts, the lean one accepts and reads the same.
    #[test]
    fn lean_never_disagrees_with_full_on_what_full_accepts(edits in prop::collection::vec(edit(), 1..4)) {
        let mut buf = rich_request().encode_to_vec();
        for e in edits {
            let n = buf.len().max(1);
            match e {
                Edit::Set(i, b) => { if !buf.is_empty() { buf[i % n] = b } }
                Edit::Remove(i) => { if !buf.is_empty() { buf.remove(i % n); } }
                Edit::Insert(i, b) => buf.insert(i % (buf.len() + 1), b),
                Edit::Truncate(i) => buf.truncate(i % n),
            }
        }
        let lean_result = lean(&buf);
        if let Ok(expected) = full(&buf) {
            prop_assert_eq!(lean_result, Ok(expected));
        }
    }
}
