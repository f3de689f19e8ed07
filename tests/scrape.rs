//! The scrape source end to end: small HTTP targets on 127.0.0.1 (ports chosen at run
//! time) serve exposition that changes between scrapes; the scraper fetches, parses and
//! turns successive scrapes into deltas. Each target answers its requests from a script,
//! in order, so the test knows exactly what every scrape saw without sleeping.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augury::ingest::scrape::delta::{Change, Deltas, SelectError, Selector, Series, Snapshot};
use augury::ingest::scrape::exposition::Format;
use augury::ingest::scrape::scraper::{ACCEPT, ScrapeError, ScrapeLoop, Scraper};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a scripted target answers to one request.
#[derive(Clone)]
enum Reply {
    Body {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Accepts the connection and never answers.
    Hang,
}

fn ok(content_type: &'static str, body: &str) -> Reply {
    Reply::Body {
        status: 200,
        content_type,
        body: body.to_string(),
    }
}

/// A target that answers request `i` with `script[i]` (the last reply repeats) and keeps
/// every request head it received.
struct Target {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn target(script: Vec<Reply>) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        let mut i = 0;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let head = read_head(&mut stream).await;
            let gzip = head.to_ascii_lowercase().contains("accept-encoding: gzip");
            seen.lock().unwrap().push(head);
            let reply = script[i.min(script.len() - 1)].clone();
            i += 1;
            match reply {
                Reply::Hang => held.push(stream),
                Reply::Body {
                    status,
                    content_type,
                    body,
                } => {
                    let (body, encoding) = if gzip {
                        let mut enc = flate2::write::GzEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        enc.write_all(body.as_bytes()).unwrap();
                        (enc.finish().unwrap(), "Content-Encoding: gzip\r\n")
                    } else {
                        (body.into_bytes(), "")
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                    let _ = stream.shutdown().await;
                }
            }
        }
    });
    Target { url, requests }
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&byte[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn series(metric: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    Series {
        metric: metric.to_string(),
        labels,
    }
}

fn scraper(url: &str) -> Scraper {
    Scraper::new(url, Duration::from_secs(5)).unwrap()
}

fn selectors() -> Vec<Selector> {
    vec![
        Selector::counter("http_requests_total").with("version", "canary"),
        Selector::histogram("http_latency_seconds").with("version", "canary"),
    ]
}

fn text_scrape(c200: u64, c500: Option<u64>, buckets: [u64; 3], sum: f64) -> String {
    let mut out =
        String::from("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    out.push_str(&format!(
        "http_requests_total{{code=\"200\",version=\"canary\"}} {c200}\n"
    ));
    if let Some(c) = c500 {
        out.push_str(&format!(
            "http_requests_total{{code=\"500\",version=\"canary\"}} {c}\n"
        ));
    }
    out.push_str("http_requests_total{code=\"200\",version=\"baseline\"} 999\n");
    out.push_str("# TYPE http_latency_seconds histogram\n");
    for (le, v) in ["0.1", "0.5", "+Inf"].iter().zip(buckets) {
        out.push_str(&format!(
            "http_latency_seconds_bucket{{version=\"canary\",le=\"{le}\"}} {v}\n"
        ));
    }
    out.push_str(&format!(
        "http_latency_seconds_sum{{version=\"canary\"}} {sum}\nhttp_latency_seconds_count{{version=\"canary\"}} {}\n",
        buckets[2]
    ));
    out
}

fn counter(d: &Deltas, code: &str) -> (f64, Change) {
    let c = d
        .counter(&series(
            "http_requests_total",
            &[("code", code), ("version", "canary")],
        ))
        .unwrap_or_else(|| panic!("no delta for code {code}: {d:?}"));
    (c.increase, c.change)
}

#[tokio::test]
async fn counters_and_histograms_across_increments_resets_and_new_series() {
    let t = target(vec![
        ok(TEXT, &text_scrape(100, Some(4), [10, 30, 40], 9.5)),
        // +20 ok requests; the 500 series went 4 -> 1: a reset; histogram +5/+5/+2.
        ok(TEXT, &text_scrape(120, Some(1), [15, 40, 52], 12.0)),
        // The process restarted: everything went down; the 500 series is gone.
        ok(TEXT, &text_scrape(7, None, [1, 2, 3], 0.75)),
        // The 500 series comes back with 2: new, counted from zero.
        ok(TEXT, &text_scrape(9, Some(2), [1, 3, 5], 1.0)),
    ])
    .await;
    let mut scrapes = ScrapeLoop::new(scraper(&t.url), selectors());
    assert_eq!(
        scrapes.step().await.unwrap(),
        None,
        "first scrape has no delta"
    );

    let d = scrapes.step().await.unwrap().unwrap();
    assert_eq!(counter(&d, "200"), (20.0, Change::Continued));
    assert_eq!(counter(&d, "500"), (1.0, Change::Reset));
    assert_eq!(d.counters.len(), 2, "the baseline series is not selected");
    let h = d
        .histogram(&series("http_latency_seconds", &[("version", "canary")]))
        .unwrap();
    assert_eq!(h.upper_bounds, [0.1, 0.5, f64::INFINITY]);
    // Cumulative increases 5, 10, 12 -> per bucket 5, 5, 2.
    assert_eq!(h.counts, [5, 5, 2]);
    assert_eq!(h.total(), 12);
    assert_eq!(h.sum, Some(2.5));
    assert_eq!(h.change, Change::Continued);
    assert!(d.vanished.is_empty() && d.skipped.is_empty());

    let d = scrapes.step().await.unwrap().unwrap();
    assert_eq!(counter(&d, "200"), (7.0, Change::Reset));
    assert_eq!(
        d.vanished,
        [series(
            "http_requests_total",
            &[("code", "500"), ("version", "canary")]
        )]
    );
    let h = &d.histograms[0];
    assert_eq!(
        (h.counts.as_slice(), h.change),
        (&[1, 1, 1][..], Change::Reset)
    );
    assert_eq!(h.sum, Some(0.75));

    let d = scrapes.step().await.unwrap().unwrap();
    assert_eq!(counter(&d, "200"), (2.0, Change::Continued));
    assert_eq!(counter(&d, "500"), (2.0, Change::New));
    assert_eq!(d.histograms[0].counts, [0, 1, 1]);
    assert_eq!(t.requests.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn asks_for_openmetrics_first_with_gzip_and_reads_it() {
    let om = |total: u64, created: &str| {
        format!(
            "# TYPE http_requests counter\n\
             http_requests_total{{code=\"200\",version=\"canary\"}} {total}\n\
             http_requests_created{{code=\"200\",version=\"canary\"}} {created}\n# EOF\n"
        )
    };
    let t = target(vec![
        ok(OPENMETRICS, &om(50, "1715340000")),
        ok(OPENMETRICS, &om(80, "1715340000")),
        // Higher than before, but `_created` moved: the counter was recreated.
        ok(OPENMETRICS, &om(90, "1715349999.5")),
    ])
    .await;
    let s = scraper(&t.url);
    let body = s.fetch().await.unwrap();
    assert_eq!(body.format, Format::OpenMetrics);
    assert_eq!(body.content_type.as_deref(), Some(OPENMETRICS));
    let first = Snapshot::select(&body.parse().unwrap(), &selectors()).unwrap();

    let second = s.scrape(&selectors()).await.unwrap();
    let third = s.scrape(&selectors()).await.unwrap();
    let d = augury::ingest::scrape::delta::deltas(&first, &second);
    assert_eq!(counter(&d, "200"), (30.0, Change::Continued));
    let d = augury::ingest::scrape::delta::deltas(&second, &third);
    assert_eq!(counter(&d, "200"), (90.0, Change::Reset));

    let requests = t.requests.lock().unwrap();
    let head = requests[0].to_ascii_lowercase();
    assert!(head.starts_with("get /metrics http/1.1"), "{head}");
    assert!(
        head.contains(&format!("accept: {}", ACCEPT.to_ascii_lowercase())),
        "{head}"
    );
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    // OpenMetrics is preferred over the text format.
    let om_q = ACCEPT.find("openmetrics").unwrap();
    assert!(om_q < ACCEPT.find("text/plain").unwrap());
}

#[tokio::test]
async fn a_target_that_is_down_is_reported_as_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    drop(listener);
    let err = scraper(&url).fetch().await.unwrap_err();
    match &err {
        ScrapeError::Down { url: u, .. } => assert_eq!(u, &url),
        other => panic!("expected Down, got {other:?}"),
    }
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_target_that_never_answers_times_out() {
    let t = target(vec![Reply::Hang]).await;
    let timeout = Duration::from_millis(300);
    let err = Scraper::new(&t.url, timeout)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    match err {
        ScrapeError::Timeout { timeout: after, .. } => assert_eq!(after, timeout),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_is_a_parse_error_with_its_line() {
    let t = target(vec![ok(
        TEXT,
        "# TYPE up gauge\nup 1\n<html><body>Service Unavailable</body></html>\n",
    )])
    .await;
    let err = scraper(&t.url).scrape(&selectors()).await.unwrap_err();
    match &err {
        ScrapeError::Parse { format, error, .. } => {
            assert_eq!(*format, Format::Text);
            assert_eq!((error.line, error.column), (3, Some(1)));
            assert!(error.reason.contains("invalid metric name"), "{error}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
    assert!(err.to_string().contains("line 3, column 1"), "{err}");
}

#[tokio::test]
async fn openmetrics_without_eof_is_rejected() {
    let t = target(vec![ok(OPENMETRICS, "# TYPE up gauge\nup 1\n")]).await;
    let err = scraper(&t.url).scrape(&[]).await.unwrap_err();
    match err {
        ScrapeError::Parse { format, error, .. } => {
            assert_eq!(format, Format::OpenMetrics);
            assert_eq!(error.line, 2);
            assert!(error.reason.contains("# EOF"));
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[tokio::test]
async fn http_errors_carry_the_status() {
    let t = target(vec![Reply::Body {
        status: 503,
        content_type: TEXT,
        body: "overloaded".into(),
    }])
    .await;
    let err = scraper(&t.url).fetch().await.unwrap_err();
    assert!(
        matches!(err, ScrapeError::Status { status: 503, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let t = target(vec![ok(TEXT, &"x 1\n".repeat(1000))]).await;
    let err = scraper(&t.url)
        .with_max_body_bytes(1000)
        .fetch()
        .await
        .unwrap_err();
    match err {
        ScrapeError::Body { reason, .. } => assert!(reason.contains("1000 bytes"), "{reason}"),
        other => panic!("expected Body, got {other:?}"),
    }
}

#[tokio::test]
async fn selecting_a_gauge_as_a_counter_is_an_error() {
    let t = target(vec![ok(
        TEXT,
        "# TYPE http_requests_total gauge\nhttp_requests_total 3\n",
    )])
    .await;
    let err = scraper(&t.url)
        .scrape(&[Selector::counter("http_requests_total")])
        .await
        .unwrap_err();
    match err {
        ScrapeError::Select {
            error: SelectError::WrongType { actual, line, .. },
            ..
        } => assert_eq!((actual, line), ("gauge", 1)),
        other => panic!("expected Select, got {other:?}"),
    }
}

#[tokio::test]
async fn the_loop_reports_each_scrape_and_survives_a_failure() {
    let t = target(vec![
        ok(TEXT, &text_scrape(1, None, [0, 0, 0], 0.0)),
        ok(TEXT, &text_scrape(4, None, [1, 1, 1], 0.5)),
        Reply::Body {
            status: 500,
            content_type: TEXT,
            body: String::new(),
        },
        ok(TEXT, &text_scrape(10, None, [1, 2, 2], 0.75)),
    ])
    .await;
    let (tx, mut rx) = mpsc::channel(1);
    let task = tokio::spawn(
        ScrapeLoop::new(scraper(&t.url), selectors()).run(Duration::from_millis(5), tx),
    );
    let d = rx.recv().await.unwrap().unwrap();
    assert_eq!(counter(&d, "200"), (3.0, Change::Continued));
    let err = rx.recv().await.unwrap().unwrap_err();
    assert!(matches!(err, ScrapeError::Status { status: 500, .. }));
    // The failed scrape did not replace the last good one: 4 -> 10.
    let d = rx.recv().await.unwrap().unwrap();
    assert_eq!(counter(&d, "200"), (6.0, Change::Continued));
    assert_eq!(d.histograms[0].counts, [0, 1, 0]);
    drop(rx);
    task.await.unwrap();
}

#[test]
fn invalid_urls_are_refused() {
    assert!(matches!(
        Scraper::new("ftp://host/metrics", Duration::from_secs(1)),
        Err(ScrapeError::InvalidUrl { .. })
    ));
    assert!(matches!(
        Scraper::new("not a url", Duration::from_secs(1)),
        Err(ScrapeError::InvalidUrl { .. })
    ));
}
