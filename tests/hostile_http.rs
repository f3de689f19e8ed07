//! Hostile and careless clients at the connection and HTTP level: request heads that
//! never finish, connections that never speak, floods past a listener's cap, senders that
//! trickle their bodies, bodies of the wrong type, lengths past the limit, and OTLP/JSON
//! whose root is not an object. The daemon runs in this process over real TCP on
//! 127.0.0.1, ports picked at run time, with small limits set through its settings; the
//! clients are raw sockets, so every byte on the wire is the test's choice.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use augury::daemon::{Daemon, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough for any server-side timeout these tests set (1 s) to have passed many
/// times over on a loaded machine; a read still blocked then means nobody closed.
const GENEROUS: Duration = Duration::from_secs(30);

struct Running {
    daemon: Option<Daemon>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn api(&self) -> SocketAddr {
        self.daemon.as_ref().unwrap().api_addr()
    }
    fn otlp_http(&self) -> SocketAddr {
        self.daemon.as_ref().unwrap().otlp_http_addr()
    }
    fn otlp_grpc(&self) -> SocketAddr {
        self.daemon.as_ref().unwrap().otlp_grpc_addr()
    }
    async fn stop(mut self) {
        self.daemon.take().unwrap().shutdown().await.unwrap();
    }
}

/// A daemon on free ports over a fresh database, its settings adjusted by `adjust`.
async fn daemon(adjust: impl FnOnce(&mut Settings)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.listen = any;
    settings.otlp.grpc_listen = any;
    settings.otlp.http_listen = any;
    settings.database = format!("sqlite://{}", dir.path().join("a.db").display());
    adjust(&mut settings);
    Running {
        daemon: Some(Daemon::start(settings).await.unwrap()),
        _dir: dir,
    }
}

/// One HTTP/1.1 response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response (head, then a `Content-Length` body) off `stream`. Fails the test
/// on a reset, an early end or a read blocked past [`GENEROUS`].
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(GENEROUS, stream.read(&mut chunk))
            .await
            .expect("no answer in time")
            .expect("the connection failed (reset?) before the answer");
        assert!(n > 0, "the connection closed before the answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = tokio::time::timeout(GENEROUS, stream.read(&mut chunk))
            .await
            .expect("no body in time")
            .expect("the connection failed (reset?) in the body");
        assert!(n > 0, "the connection closed in the body");
        body.extend_from_slice(&chunk[..n]);
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `head` (ending with the blank line) and `body` on a new connection and reads the
/// answer.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    read_answer(&mut stream).await
}

/// Whether the server closes `stream` (end of stream or reset) before [`GENEROUS`]
/// passes, reading and dropping whatever it sends first.
async fn closed_by_server(stream: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// The daemon's `/metrics` value of `series` (name with labels), or 0 when absent.
async fn metric(api: SocketAddr, series: &str) -> f64 {
    let answer = exchange(
        api,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    let text = String::from_utf8(answer.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Finding 4: request heads that never finish, and connections that never send a byte,
/// are closed by the server (header-read timeout, idle timeout) on the API and on both
/// OTLP listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_heads_and_silent_connections_are_closed() {
    // The idle timeout is far longer than the header-read one, so a head that keeps
    // trickling in is cut off by the header-read timeout alone.
    let d = daemon(|s| {
        s.limits.listener.header_read_timeout = Duration::from_secs(1);
        s.limits.listener.idle_timeout = Duration::from_secs(3);
        s.otlp.header_read_timeout_seconds = 1;
        s.otlp.idle_timeout_seconds = 3;
    })
    .await;
    let partial = b"POST /api/v1/analyses HTTP/1.1\r\nHost: t\r\nX-Trickle: ";
    for addr in [d.api(), d.otlp_http()] {
        // A head that trickles on, one byte every 200 ms, never idle.
        let (mut read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
        write.write_all(partial).await.unwrap();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if write.write_all(b"a").await.is_err() {
                    break;
                }
            }
        });
        assert!(
            closed_by_server(&mut read).await,
            "trickling head to {addr} still open after {GENEROUS:?}"
        );
    }
    let mut open = Vec::new();
    for addr in [d.api(), d.otlp_http(), d.otlp_grpc()] {
        open.push((addr, TcpStream::connect(addr).await.unwrap()));
    }
    for (addr, stream) in &mut open {
        assert!(
            closed_by_server(stream).await,
            "silent connection to {addr} still open after {GENEROUS:?}"
        );
    }
    // The daemon serves on.
    let health = exchange(d.api(), "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", b"").await;
    assert_eq!(health.status, 200);
    d.stop().await;
}

/// Finding 4: a flood of idle connections on an OTLP listener is held to that
/// listener's cap (the rest are closed at once and counted), and the API answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_an_otlp_listeners_cap_leaves_the_api_answering() {
    const CAP: usize = 4;
    let d = daemon(|s| s.otlp.max_connections = CAP).await;
    for (addr, label) in [(d.otlp_http(), "otlp_http"), (d.otlp_grpc(), "otlp_grpc")] {
        let mut held = Vec::new();
        for _ in 0..CAP {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // The cap is full (the listener counts a connection once it accepted it: wait
        // until it shows all of them).
        let gauge = format!("augury_connections{{listener=\"{label}\"}}");
        let deadline = tokio::time::Instant::now() + GENEROUS;
        while metric(d.api(), &gauge).await < CAP as f64 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{gauge} never reached {CAP}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..3 {
            let mut extra = TcpStream::connect(addr).await.unwrap();
            assert!(
                closed_by_server(&mut extra).await,
                "a connection past the cap of {label} was kept open"
            );
        }
        let refused = format!("augury_connections_refused_total{{listener=\"{label}\"}}");
        let deadline = tokio::time::Instant::now() + GENEROUS;
        while metric(d.api(), &refused).await < 3.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{refused} never reached 3"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let health = exchange(d.api(), "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", b"").await;
        assert_eq!(health.status, 200);
        drop(held);
    }
    d.stop().await;
}

/// An empty `ExportTraceServiceRequest` over OTLP/HTTP protobuf.
fn empty_export(connection: &str) -> String {
    format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: 0\r\nConnection: {connection}\r\n\r\n"
    )
}

/// Finding 5: senders that trickle their bodies do not hold the decode permits, so an
/// honest exporter's requests all succeed while they trickle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_senders_do_not_starve_an_honest_exporter() {
    let d = daemon(|s| s.otlp.max_concurrent_requests = 2).await;
    let mut trickling = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(d.otlp_http()).await.unwrap();
        s.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\n\
              Content-Length: 1000\r\n\r\n\x0a",
        )
        .await
        .unwrap();
        trickling.push(s);
    }
    // Once every trickler's connection is open (with the old admission, three times as
    // many as the permits, each holding one from its head on), the honest exporter
    // sends, over one keep-alive connection.
    let deadline = tokio::time::Instant::now() + GENEROUS;
    while metric(d.api(), "augury_connections{listener=\"otlp_http\"}").await < 6.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tricklers never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut honest = TcpStream::connect(d.otlp_http()).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        honest
            .write_all(empty_export("keep-alive").as_bytes())
            .await
            .unwrap();
        statuses.push(read_answer(&mut honest).await.status);
    }
    assert!(
        statuses.iter().all(|&s| s == 200),
        "the honest exporter was refused while others trickled: {statuses:?}"
    );
    // A trickler that does finish is served too.
    let t = &mut trickling[0];
    t.write_all(&[0u8; 999]).await.unwrap();
    let answer = read_answer(t).await;
    assert!(
        matches!(answer.status, 200 | 400),
        "{} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    drop(trickling);
    d.stop().await;
}

/// Finding 9: every OTLP/HTTP refusal under load is a complete 429 with `Retry-After`,
/// also when the refused body is larger than the socket buffers (the server reads it to
/// the end before answering, so the answer is not lost to a reset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_under_load_are_whole_answers_with_retry_after() {
    const LIMIT: usize = 1 << 20;
    let d = daemon(|s| {
        s.otlp.max_body_bytes = LIMIT;
        s.otlp.max_in_flight_bytes = LIMIT;
    })
    .await;
    // Other senders' bodies do not fit: each gets a 429, on a connection still in order
    // (several requests on one keep-alive connection, then new connections).
    let body = vec![0u8; 256 * 1024];
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    // One sender holds almost all of the in-flight budget with a body it has not
    // finished sending. Its bytes are taken as the server reads them, so a probe sent
    // meanwhile may take budget the holder's last bytes needed, and then the holder is
    // the one refused and holds nothing: a holder that has not filled the budget after
    // some probes is replaced by a new one. A probe is answered 400 (it fits) or 429.
    let deadline = tokio::time::Instant::now() + GENEROUS;
    let holder = 'hold: loop {
        let mut holder = TcpStream::connect(d.otlp_http()).await.unwrap();
        holder
            .write_all(
                format!(
                    "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\n\
                     Content-Length: {LIMIT}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        holder.write_all(&vec![0u8; LIMIT - 1024]).await.unwrap();
        for _ in 0..20 {
            let a = exchange(d.otlp_http(), &head, &body).await;
            if a.status == 429 {
                break 'hold holder;
            }
            assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the holder's bytes never counted"
        );
    };
    let mut kept = TcpStream::connect(d.otlp_http()).await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..5 {
        kept.write_all(head.as_bytes()).await.unwrap();
        kept.write_all(&body).await.unwrap();
        answers.push(read_answer(&mut kept).await);
    }
    for _ in 0..5 {
        answers.push(exchange(d.otlp_http(), &head, &body).await);
    }
    for a in &answers {
        assert_eq!(a.status, 429, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.header("retry-after"), Some("1"), "{a:?}");
        assert!(!a.body.is_empty(), "a 429 without its google.rpc.Status");
    }
    // Once the holder is done, the budget is back.
    drop(holder);
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        let a = exchange(d.otlp_http(), &empty_export("close"), b"").await;
        if a.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the budget never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.stop().await;
}

/// Finding 9: a JSON route refuses a body that is not declared JSON (415, as the API's
/// JSON error), takes `application/json` with parameters and `+json` types, and the
/// Flagger gate takes what Flagger sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_routes_refuse_other_content_types() {
    let d = daemon(|_| {}).await;
    let body = br#"{"key":"k1","model":"http-red","baseline":{"service.name":"a","service.version":"1"},"canary":{"service.name":"a","service.version":"2"},"interval":"30s","lifetime":"2m"}"#;
    let post = |path: &str, content_type: Option<&str>| {
        let ct = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\n{ct}Content-Length: {}\r\n\r\n",
            body.len()
        )
    };
    for refused in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        for path in ["/api/v1/analyses", "/api/v1/judge", "/api/v1/gates/flagger"] {
            let a = exchange(d.api(), &post(path, refused), body).await;
            assert_eq!(a.status, 415, "{path} with {refused:?}");
            let error = a.json();
            assert_eq!(error["error"]["code"], "unsupported_media_type", "{error}");
            assert!(
                error["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{error}"
            );
        }
    }
    for taken in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ] {
        let a = exchange(d.api(), &post("/api/v1/analyses", Some(taken)), body).await;
        assert!(
            a.status == 201 || a.status == 200,
            "{taken}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
    }
    // What Flagger's webhook client sends: POST with `Content-Type: application/json`.
    let flagger = br#"{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{}}"#;
    let a = exchange(
        d.api(),
        &format!(
            "POST /api/v1/gates/flagger HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            flagger.len()
        ),
        flagger,
    )
    .await;
    assert_ne!(a.status, 415, "{}", String::from_utf8_lossy(&a.body));
    d.stop().await;
}

/// Finding 9: a declared `Content-Length` past the limit is refused with 413 at once,
/// before any body is sent, on the API and on OTLP/HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_length_is_refused_before_the_body() {
    let d = daemon(|_| {}).await;
    let api = exchange(
        d.api(),
        "POST /api/v1/analyses HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000000\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(api.status, 413, "{}", String::from_utf8_lossy(&api.body));
    assert_eq!(api.json()["error"]["code"], "payload_too_large");
    let otlp = exchange(
        d.otlp_http(),
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000000\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(otlp.status, 413, "{}", String::from_utf8_lossy(&otlp.body));
    d.stop().await;
}

/// Finding 9: OTLP/JSON whose root is an array (or any non-object) is refused with 400
/// naming the problem, not read as an empty request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_with_a_root_array_is_refused() {
    let d = daemon(|_| {}).await;
    for body in ["[]", " [ ] ", "null", "\"x\"", "3"] {
        let a = exchange(
            d.otlp_http(),
            &format!(
                "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            ),
            body.as_bytes(),
        )
        .await;
        assert_eq!(a.status, 400, "{body}");
        let status = a.json();
        assert_eq!(status["code"], 3, "{status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .contains("must be an object"),
            "{status}"
        );
    }
    // An object is still taken.
    let a = exchange(
        d.otlp_http(),
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\n\r\n",
        b"{}",
    )
    .await;
    assert_eq!(a.status, 200);
    d.stop().await;
}
