//! OTLP trace decoding: from an `ExportTraceServiceRequest` to the few facts the judge
//! reads per span (kind, timestamps, status, name, `http.route`, the HTTP status code and
//! the values of the scope's attribute names).
//!
//! Two ways in, one way out. [`decode_request`] scans the protobuf wire format directly and
//! borrows every string from the request buffer: nothing is allocated per span, and
//! fields the judge never reads (ids, events, links, instrumentation scope, ...) are
//! skipped by their length without being decoded. [`visit_message`] walks a message that
//! prost or serde already decoded (the `Full` decoder, and OTLP/JSON). Both report
//! through the same [`Visitor`], and for any request prost accepts they report the same
//! facts (checked by a unit test and by the `otlp_decode` fuzz target).
//!
//! What the scanner validates: the wire structure of the whole request (every length,
//! varint and tag), the wire type of every field it reads, and UTF-8 in every attribute
//! key, every attribute string value (on resources and spans) and every span name. Fields
//! it skips are not validated beyond their framing, so it accepts a few requests a full
//! decoder refuses (say, invalid UTF-8 in an event name); it never refuses one a full
//! decoder accepts.

use std::fmt;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

/// Semantic-convention attribute holding the HTTP response status code.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// The attribute older instrumentations (semantic conventions before 1.20) use for it.
pub const HTTP_STATUS_CODE_OLD: &str = "http.status_code";
/// Semantic-convention attribute holding the matched route template.
pub const HTTP_ROUTE: &str = "http.route";

/// An attribute value, borrowed from the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// No value, or one the judge never compares (array, key-value list, bytes).
    Other,
}

/// Where a span sits in its request, for error messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanAt {
    pub resource_spans: u32,
    pub scope_spans: u32,
    pub span: u32,
}

impl fmt::Display for SpanAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "resource_spans[{}].scope_spans[{}].spans[{}]",
            self.resource_spans, self.scope_spans, self.span
        )
    }
}

/// What the judge reads from one span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanFacts<'a> {
    pub at: SpanAt,
    pub name: &'a str,
    /// `Span.SpanKind` as on the wire (2 = server).
    pub kind: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// `Status.StatusCode` as on the wire (2 = error).
    pub status_code: i32,
    /// `http.response.status_code`, else the older `http.status_code`.
    pub http_status: Option<AttrValue<'a>>,
    pub route: Option<&'a str>,
}

/// Receives what a decoder finds, in request order: each resource, then its spans.
pub trait Visitor<'a> {
    /// A resource begins. `scope_values[slot]` is its attribute value for the scope name
    /// in that slot (the `names` given to the decoder), `None` where it has none.
    fn resource(&mut self, scope_values: &[Option<AttrValue<'a>>]);
    /// A span of the current resource, with its own attribute values for the scope names.
    fn span(&mut self, span: &SpanFacts<'a>, scope_values: &[Option<AttrValue<'a>>]);
}

/// Why a request could not be decoded. The message names the field path and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    path: String,
    problem: String,
}

impl DecodeError {
    fn new(path: String, problem: impl Into<String>) -> Self {
        DecodeError {
            path,
            problem: problem.into(),
        }
    }

    /// An error from a whole-message decoder (prost or serde), which reports no path.
    pub fn whole(problem: impl Into<String>) -> Self {
        DecodeError::new(String::new(), problem)
    }

    /// Where in the request the problem is (empty when unknown).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------------------------------
// Wire scanner

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const SGROUP: u8 = 3;
const EGROUP: u8 = 4;
const I32: u8 = 5;

/// Nesting allowed inside skipped groups (a deprecated encoding nobody sends; bounded so a
/// hostile request cannot exhaust the stack).
const GROUP_DEPTH: u32 = 100;

#[derive(Debug)]
enum Problem {
    Truncated,
    VarintOverflow,
    BadKey(u64),
    BadWireType(u64),
    ZeroField,
    WrongWireType { field: u32, found: u8, expected: u8 },
    Utf8,
    EndGroup,
    TooDeep,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated => write!(f, "message truncated (a length runs past its end)"),
            Problem::VarintOverflow => write!(f, "varint longer than 10 bytes"),
            Problem::BadKey(k) => write!(f, "invalid field key {k}"),
            Problem::BadWireType(w) => write!(f, "invalid wire type {w}"),
            Problem::ZeroField => write!(f, "field number 0 is invalid"),
            Problem::WrongWireType {
                field,
                found,
                expected,
            } => write!(
                f,
                "field {field} has wire type {} where {} was expected",
                wire_name(*found),
                wire_name(*expected)
            ),
            Problem::Utf8 => write!(f, "string is not valid UTF-8"),
            Problem::EndGroup => write!(f, "unexpected end-group tag"),
            Problem::TooDeep => write!(f, "groups nested too deeply"),
        }
    }
}

fn wire_name(w: u8) -> &'static str {
    match w {
        VARINT => "varint",
        I64 => "64-bit",
        LEN => "length-delimited",
        SGROUP => "start-group",
        EGROUP => "end-group",
        _ => "32-bit",
    }
}

/// A decoding failure on its way up, gathering the path it came through.
#[derive(Debug)]
struct Fault {
    problem: Problem,
    path: Vec<(&'static str, Option<u32>)>,
}

/// Boxed so the hot path's `Result` stays one word wide.
type Scan<T> = Result<T, Box<Fault>>;

fn fault(problem: Problem) -> Box<Fault> {
    Box::new(Fault {
        problem,
        path: Vec::new(),
    })
}

trait Within<T> {
    fn within(self, field: &'static str, at: Option<u32>) -> Scan<T>;
}

impl<T> Within<T> for Scan<T> {
    #[inline]
    fn within(self, field: &'static str, at: Option<u32>) -> Scan<T> {
        self.map_err(|mut f| {
            f.path.push((field, at));
            f
        })
    }
}

impl From<Box<Fault>> for DecodeError {
    fn from(f: Box<Fault>) -> Self {
        let mut path = String::new();
        for (i, (field, at)) in f.path.iter().rev().enumerate() {
            if i > 0 {
                path.push('.');
            }
            path.push_str(field);
            if let Some(at) = at {
                path.push_str(&format!("[{at}]"));
            }
        }
        DecodeError::new(path, f.problem.to_string())
    }
}

struct Wire<'a> {
    buf: &'a [u8],
}

impl<'a> Wire<'a> {
    #[inline]
    fn new(buf: &'a [u8]) -> Self {
        Wire { buf }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    #[inline(always)]
    fn varint(&mut self) -> Scan<u64> {
        let buf = self.buf;
        match buf.first() {
            Some(&b) if b < 0x80 => {
                self.buf = &buf[1..];
                Ok(u64::from(b))
            }
            _ => self.varint_slow(),
        }
    }

    fn varint_slow(&mut self) -> Scan<u64> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            if i == 9 && b > 1 {
                // The tenth byte may carry only the 64th bit.
                return Err(fault(Problem::VarintOverflow));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 {
            Err(fault(Problem::VarintOverflow))
        } else {
            Err(fault(Problem::Truncated))
        }
    }

    /// Reads a field key: (field number, wire type).
    #[inline(always)]
    fn key(&mut self) -> Scan<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(fault(Problem::BadKey(key)));
        }
        let wire = (key & 7) as u8;
        if wire > I32 {
            return Err(fault(Problem::BadWireType(key & 7)));
        }
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(fault(Problem::ZeroField));
        }
        Ok((field, wire))
    }

    #[inline(always)]
    fn bytes(&mut self) -> Scan<&'a [u8]> {
        let len = self.varint()?;
        if len > self.buf.len() as u64 {
            return Err(fault(Problem::Truncated));
        }
        let (head, tail) = self.buf.split_at(len as usize);
        self.buf = tail;
        Ok(head)
    }

    #[inline]
    fn str(&mut self) -> Scan<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| fault(Problem::Utf8))
    }

    #[inline(always)]
    fn fixed64(&mut self) -> Scan<u64> {
        match self.buf.split_first_chunk::<8>() {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(u64::from_le_bytes(*head))
            }
            None => Err(fault(Problem::Truncated)),
        }
    }

    #[inline]
    fn skip(&mut self, field: u32, wire: u8) -> Scan<()> {
        self.skip_nested(field, wire, 0)
    }

    fn skip_nested(&mut self, field: u32, wire: u8, depth: u32) -> Scan<()> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.advance(8),
            LEN => self.bytes().map(drop),
            I32 => self.advance(4),
            SGROUP => {
                if depth >= GROUP_DEPTH {
                    return Err(fault(Problem::TooDeep));
                }
                loop {
                    let (inner, inner_wire) = self.key()?;
                    if inner_wire == EGROUP {
                        if inner == field {
                            return Ok(());
                        }
                        return Err(fault(Problem::EndGroup));
                    }
                    self.skip_nested(inner, inner_wire, depth + 1)?;
                }
            }
            _ => Err(fault(Problem::EndGroup)),
        }
    }

    #[inline]
    fn advance(&mut self, n: usize) -> Scan<()> {
        if self.buf.len() < n {
            return Err(fault(Problem::Truncated));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

#[inline]
fn expect(field: u32, found: u8, expected: u8) -> Scan<()> {
    if found == expected {
        Ok(())
    } else {
        Err(fault(Problem::WrongWireType {
            field,
            found,
            expected,
        }))
    }
}

/// What an attribute key means to the judge.
#[derive(Clone, Copy)]
struct KeyRole {
    slot: Option<usize>,
    fixed: Fixed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fixed {
    None,
    ResponseStatus,
    OldStatus,
    Route,
}

impl KeyRole {
    fn matters(self) -> bool {
        self.slot.is_some() || self.fixed != Fixed::None
    }
}

/// The role of a span attribute key.
#[inline]
fn role<S: AsRef<str>>(key: &[u8], names: &[S]) -> KeyRole {
    let slot = names.iter().position(|n| n.as_ref().as_bytes() == key);
    let fixed = if key == HTTP_RESPONSE_STATUS_CODE.as_bytes() {
        Fixed::ResponseStatus
    } else if key == HTTP_STATUS_CODE_OLD.as_bytes() {
        Fixed::OldStatus
    } else if key == HTTP_ROUTE.as_bytes() {
        Fixed::Route
    } else {
        Fixed::None
    };
    KeyRole { slot, fixed }
}

/// The role of a resource attribute key: only scope names matter there.
#[inline]
fn resource_role<S: AsRef<str>>(key: &[u8], names: &[S]) -> KeyRole {
    KeyRole {
        slot: names.iter().position(|n| n.as_ref().as_bytes() == key),
        fixed: Fixed::None,
    }
}

/// UTF-8 check for strings the judge skips: ASCII, the common case, costs a word-wise scan.
#[inline]
fn valid_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// The span attributes the judge reads, gathered as they stream by. A later duplicate of
/// a key replaces an earlier one, as a full decoder followed by a lookup would see it.
#[derive(Default)]
struct SpanAttrs<'a> {
    status: Option<AttrValue<'a>>,
    old_status: Option<AttrValue<'a>>,
    route: Option<&'a str>,
}

impl<'a> SpanAttrs<'a> {
    #[inline]
    fn take(
        &mut self,
        role: KeyRole,
        value: AttrValue<'a>,
        scope_values: &mut [Option<AttrValue<'a>>],
    ) {
        if let Some(slot) = role.slot {
            scope_values[slot] = Some(value);
        }
        match role.fixed {
            Fixed::None => {}
            Fixed::ResponseStatus => self.status = Some(value),
            Fixed::OldStatus => self.old_status = Some(value),
            Fixed::Route => {
                self.route = match value {
                    AttrValue::Str(s) => Some(s),
                    _ => None,
                }
            }
        }
    }

    fn http_status(&self) -> Option<AttrValue<'a>> {
        self.status.or(self.old_status)
    }
}

/// Scans an `ExportTraceServiceRequest` in protobuf wire format. `names` are the scope
/// attribute names whose values the visitor wants, slot by slot.
pub fn decode_request<'a, S, V>(
    buf: &'a [u8],
    names: &[S],
    visitor: &mut V,
) -> Result<(), DecodeError>
where
    S: AsRef<str>,
    V: Visitor<'a>,
{
    let mut scratch = Scratch {
        resource: vec![None; names.len()],
        span: vec![None; names.len()],
    };
    let mut wire = Wire::new(buf);
    let mut at = 0u32;
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        if field == 1 {
            expect(field, wt, LEN).within("resource_spans", Some(at))?;
            let body = wire.bytes().within("resource_spans", Some(at))?;
            resource_spans(body, at, names, &mut scratch, visitor)
                .within("resource_spans", Some(at))?;
            at += 1;
        } else {
            wire.skip(field, wt)?;
        }
    }
    Ok(())
}

struct Scratch<'a> {
    resource: Vec<Option<AttrValue<'a>>>,
    span: Vec<Option<AttrValue<'a>>>,
}

fn resource_spans<'a, S: AsRef<str>, V: Visitor<'a>>(
    buf: &'a [u8],
    at: u32,
    names: &[S],
    scratch: &mut Scratch<'a>,
    visitor: &mut V,
) -> Scan<()> {
    // The resource decides which watches its spans go to, and the wire does not promise
    // it comes before them: read it in a first pass, the spans in a second.
    scratch.resource.iter_mut().for_each(|v| *v = None);
    let mut wire = Wire::new(buf);
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        if field == 1 {
            expect(field, wt, LEN).within("resource", None)?;
            resource(wire.bytes()?, names, &mut scratch.resource).within("resource", None)?;
        } else {
            wire.skip(field, wt)?;
        }
    }
    visitor.resource(&scratch.resource);

    let mut wire = Wire::new(buf);
    let mut scope_at = 0u32;
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        if field == 2 {
            expect(field, wt, LEN).within("scope_spans", Some(scope_at))?;
            let body = wire.bytes()?;
            scope_spans(body, at, scope_at, names, &mut scratch.span, visitor)
                .within("scope_spans", Some(scope_at))?;
            scope_at += 1;
        } else {
            wire.skip(field, wt)?;
        }
    }
    Ok(())
}

fn resource<'a, S: AsRef<str>>(
    buf: &'a [u8],
    names: &[S],
    values: &mut [Option<AttrValue<'a>>],
) -> Scan<()> {
    let mut wire = Wire::new(buf);
    let mut attr = 0u32;
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        if field == 1 {
            expect(field, wt, LEN).within("attributes", Some(attr))?;
            let kv = key_value(wire.bytes()?, |key| resource_role(key, names))
                .within("attributes", Some(attr))?;
            if let Some((
                KeyRole {
                    slot: Some(slot), ..
                },
                value,
            )) = kv
            {
                values[slot] = Some(value);
            }
            attr += 1;
        } else {
            wire.skip(field, wt)?;
        }
    }
    Ok(())
}

fn scope_spans<'a, S: AsRef<str>, V: Visitor<'a>>(
    buf: &'a [u8],
    resource_at: u32,
    scope_at: u32,
    names: &[S],
    span_values: &mut [Option<AttrValue<'a>>],
    visitor: &mut V,
) -> Scan<()> {
    let mut wire = Wire::new(buf);
    let mut at = SpanAt {
        resource_spans: resource_at,
        scope_spans: scope_at,
        span: 0,
    };
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        if field == 2 {
            expect(field, wt, LEN).within("spans", Some(at.span))?;
            let body = wire.bytes()?;
            span_values.iter_mut().for_each(|v| *v = None);
            let facts = span(body, at, names, span_values).within("spans", Some(at.span))?;
            visitor.span(&facts, span_values);
            at.span += 1;
        } else {
            wire.skip(field, wt)?;
        }
    }
    Ok(())
}

#[inline]
fn span<'a, S: AsRef<str>>(
    buf: &'a [u8],
    at: SpanAt,
    names: &[S],
    span_values: &mut [Option<AttrValue<'a>>],
) -> Scan<SpanFacts<'a>> {
    let mut facts = SpanFacts {
        at,
        name: "",
        kind: 0,
        start_unix_nano: 0,
        end_unix_nano: 0,
        status_code: 0,
        http_status: None,
        route: None,
    };
    let mut attrs = SpanAttrs::default();
    let mut attr = 0u32;
    let mut wire = Wire::new(buf);
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        match field {
            5 => {
                expect(field, wt, LEN).within("name", None)?;
                facts.name = wire.str().within("name", None)?;
            }
            6 => {
                expect(field, wt, VARINT).within("kind", None)?;
                facts.kind = wire.varint()? as i32;
            }
            7 => {
                expect(field, wt, I64).within("start_time_unix_nano", None)?;
                facts.start_unix_nano = wire.fixed64()?;
            }
            8 => {
                expect(field, wt, I64).within("end_time_unix_nano", None)?;
                facts.end_unix_nano = wire.fixed64()?;
            }
            9 => {
                expect(field, wt, LEN).within("attributes", Some(attr))?;
                let kv = key_value(wire.bytes()?, |key| role(key, names))
                    .within("attributes", Some(attr))?;
                if let Some((role, value)) = kv {
                    attrs.take(role, value, span_values);
                }
                attr += 1;
            }
            15 => {
                expect(field, wt, LEN).within("status", None)?;
                if let Some(code) = status(wire.bytes()?).within("status", None)? {
                    facts.status_code = code;
                }
            }
            _ => wire.skip(field, wt)?,
        }
    }
    facts.http_status = attrs.http_status();
    facts.route = attrs.route;
    Ok(facts)
}

/// `Status.code`, if the message sets it.
fn status(buf: &[u8]) -> Scan<Option<i32>> {
    let mut code = None;
    let mut wire = Wire::new(buf);
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        if field == 3 {
            expect(field, wt, VARINT).within("code", None)?;
            code = Some(wire.varint()? as i32);
        } else {
            wire.skip(field, wt)?;
        }
    }
    Ok(code)
}

/// Reads a `KeyValue`. Its value is decoded only when `role_of` says the key matters;
/// otherwise its strings are only checked to be UTF-8. Returns the role and value of a key
/// that matters, `None` for any other.
#[inline]
fn key_value<'a>(
    buf: &'a [u8],
    role_of: impl Fn(&[u8]) -> KeyRole,
) -> Scan<Option<(KeyRole, AttrValue<'a>)>> {
    let mut key: &[u8] = b"";
    let mut role: Option<KeyRole> = None;
    let mut value = None;
    let mut wire = Wire::new(buf);
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        match field {
            1 => {
                expect(field, wt, LEN).within("key", None)?;
                key = wire.bytes()?;
                if !valid_utf8(key) {
                    return Err(fault(Problem::Utf8)).within("key", None);
                }
                role = Some(role_of(key));
            }
            2 => {
                expect(field, wt, LEN).within("value", None)?;
                // A value before its key (legal, never seen in practice) is read in full.
                let keep = role.is_none_or(KeyRole::matters);
                any_value(wire.bytes()?, &mut value, keep).within("value", None)?;
            }
            _ => wire.skip(field, wt)?,
        }
    }
    let role = role.unwrap_or_else(|| role_of(key));
    Ok(role
        .matters()
        .then(|| (role, value.unwrap_or(AttrValue::Other))))
}

/// Merges one occurrence of an `AnyValue` into `value`: the last variant on the wire wins,
/// and an occurrence that sets none leaves `value` as it was. With `keep` false, strings
/// are checked but not kept.
#[inline]
fn any_value<'a>(buf: &'a [u8], value: &mut Option<AttrValue<'a>>, keep: bool) -> Scan<()> {
    let mut wire = Wire::new(buf);
    while !wire.is_empty() {
        let (field, wt) = wire.key()?;
        match field {
            1 => {
                expect(field, wt, LEN).within("string_value", None)?;
                let bytes = wire.bytes()?;
                *value = Some(if keep {
                    AttrValue::Str(
                        std::str::from_utf8(bytes)
                            .map_err(|_| fault(Problem::Utf8))
                            .within("string_value", None)?,
                    )
                } else if valid_utf8(bytes) {
                    AttrValue::Other
                } else {
                    return Err(fault(Problem::Utf8)).within("string_value", None);
                });
            }
            2 => {
                expect(field, wt, VARINT).within("bool_value", None)?;
                *value = Some(AttrValue::Bool(wire.varint()? != 0));
            }
            3 => {
                expect(field, wt, VARINT).within("int_value", None)?;
                *value = Some(AttrValue::Int(wire.varint()? as i64));
            }
            4 => {
                expect(field, wt, I64).within("double_value", None)?;
                *value = Some(AttrValue::Double(f64::from_bits(wire.fixed64()?)));
            }
            5..=7 => {
                expect(field, wt, LEN)?;
                wire.bytes()?;
                *value = Some(AttrValue::Other);
            }
            8 => {
                expect(field, wt, VARINT)?;
                wire.varint()?;
                *value = Some(AttrValue::Other);
            }
            _ => wire.skip(field, wt)?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Decoded messages (prost's full decode, OTLP/JSON through serde)

/// Walks a decoded request and reports the same facts [`decode_request`] would.
pub fn visit_message<'a, S, V>(request: &'a ExportTraceServiceRequest, names: &[S], visitor: &mut V)
where
    S: AsRef<str>,
    V: Visitor<'a>,
{
    let mut resource_values = vec![None; names.len()];
    let mut span_values = vec![None; names.len()];
    for (r, rs) in request.resource_spans.iter().enumerate() {
        resource_values.iter_mut().for_each(|v| *v = None);
        if let Some(resource) = &rs.resource {
            for kv in &resource.attributes {
                if let Some(slot) = names.iter().position(|n| n.as_ref() == kv.key) {
                    resource_values[slot] = Some(value_of(kv));
                }
            }
        }
        visitor.resource(&resource_values);
        for (s, ss) in rs.scope_spans.iter().enumerate() {
            for (i, span) in ss.spans.iter().enumerate() {
                span_values.iter_mut().for_each(|v| *v = None);
                let mut attrs = SpanAttrs::default();
                for kv in &span.attributes {
                    attrs.take(
                        role(kv.key.as_bytes(), names),
                        value_of(kv),
                        &mut span_values,
                    );
                }
                let facts = SpanFacts {
                    at: SpanAt {
                        resource_spans: r as u32,
                        scope_spans: s as u32,
                        span: i as u32,
                    },
                    name: &span.name,
                    kind: span.kind,
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    status_code: span.status.as_ref().map_or(0, |st| st.code),
                    http_status: attrs.http_status(),
                    route: attrs.route,
                };
                visitor.span(&facts, &span_values);
            }
        }
    }
}

fn value_of(kv: &KeyValue) -> AttrValue<'_> {
    match kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(*d),
        _ => AttrValue::Other,
    }
}

/// Decodes protobuf with the generated prost types (the `Full` decoder).
pub fn decode_full(buf: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    prost::Message::decode(buf).map_err(|e| DecodeError::whole(format!("protobuf: {e}")))
}

/// Decodes OTLP/JSON (lowerCamelCase names, hex ids, enums as numbers, 64-bit integers as
/// strings or numbers; unknown fields ignored). The root must be an object, as OTLP/JSON
/// defines it: serde would also take an array as the message's fields in order (so `[]`
/// would read as an empty request).
pub fn decode_json(buf: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    let first = buf.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        let found = match first {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            _ => "not an object",
        };
        return Err(DecodeError::whole(format!(
            "JSON: the request must be an object (ExportTraceServiceRequest), found {found}"
        )));
    }
    serde_json::from_slice(buf).map_err(|e| DecodeError::whole(format!("JSON: {e}")))
}

// ---------------------------------------------------------------------------------------
// Owned summary, for tests and the fuzz target to compare decoders

/// An attribute value, owned. Doubles are kept as bits so NaN compares equal to itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedValue {
    Str(String),
    Bool(bool),
    Int(i64),
    DoubleBits(u64),
    Other,
}

impl From<AttrValue<'_>> for OwnedValue {
    fn from(v: AttrValue<'_>) -> Self {
        match v {
            AttrValue::Str(s) => OwnedValue::Str(s.to_owned()),
            AttrValue::Bool(b) => OwnedValue::Bool(b),
            AttrValue::Int(i) => OwnedValue::Int(i),
            AttrValue::Double(d) => OwnedValue::DoubleBits(d.to_bits()),
            AttrValue::Other => OwnedValue::Other,
        }
    }
}

/// Everything a decoder reported about one span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanSummary {
    pub at: SpanAt,
    pub name: String,
    pub kind: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub status_code: i32,
    pub http_status: Option<OwnedValue>,
    pub route: Option<String>,
    pub scope_values: Vec<Option<OwnedValue>>,
}

/// Everything a decoder reported about one resource and its spans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceSummary {
    pub scope_values: Vec<Option<OwnedValue>>,
    pub spans: Vec<SpanSummary>,
}

/// A visitor that writes down everything it is told.
#[derive(Default)]
pub struct Summarize(pub Vec<ResourceSummary>);

fn owned(values: &[Option<AttrValue<'_>>]) -> Vec<Option<OwnedValue>> {
    values.iter().map(|v| v.map(OwnedValue::from)).collect()
}

impl<'a> Visitor<'a> for Summarize {
    fn resource(&mut self, scope_values: &[Option<AttrValue<'a>>]) {
        self.0.push(ResourceSummary {
            scope_values: owned(scope_values),
            spans: Vec::new(),
        });
    }

    fn span(&mut self, span: &SpanFacts<'a>, scope_values: &[Option<AttrValue<'a>>]) {
        let summary = SpanSummary {
            at: span.at,
            name: span.name.to_owned(),
            kind: span.kind,
            start_unix_nano: span.start_unix_nano,
            end_unix_nano: span.end_unix_nano,
            status_code: span.status_code,
            http_status: span.http_status.map(OwnedValue::from),
            route: span.route.map(str::to_owned),
            scope_values: owned(scope_values),
        };
        if let Some(last) = self.0.last_mut() {
            last.spans.push(summary);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
