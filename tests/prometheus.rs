//! The Prometheus query source against a real Prometheus.
//!
//! One Prometheus (started here on a free 127.0.0.1 port, temp data dir, 1s scrapes)
//! scrapes two in-test exporters, `baseline` and `canary`. Each serves the series that
//! Istio, Linkerd, Consul's Envoy sidecars and OpenTelemetry SDKs would, with their real
//! metric and label names and bucket layouts, for its version's known traffic: request
//! counts per status code and latencies. Distractor series sit beside them (Istio's
//! source-side reporter, Linkerd's outbound direction, other workloads, services and
//! subsets) so a query that matched too much would be caught.
//!
//! Every series grows by a fixed amount per scrape, so whatever window Prometheus
//! extrapolates over, each series' increase is its per-scrape amount times one factor per
//! exporter, read from the exporter's scrape counter. The tests check that the query
//! source returns, per scope, the counts, buckets and rates the exporters produced.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use augury::ingest::prometheus::{
    Buckets, Client, FetchError, Observation, Pack, PackCatalog, PrometheusConfig, QueryError,
    QuerySource, Scope, TemplateError, Window, buckets,
};
use augury::judge::{Classification, JudgeOptions, MetricData, Verdict, judge};
use augury::model::{Catalog, PrometheusSource};
use augury::stats::{Alternative, Method};
use support::prometheus::{
    Exporter, Exposition, Prometheus, Proxy, ProxyRules, at, bucketize, labels,
};

const ISTIO_MS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
const LINKERD_MS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];
const ENVOY_MS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
const OTEL_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// One status code's share of a scrape's traffic: code, requests, latencies (ms, count).
type Code = (u16, u64, &'static [(f64, u64)]);

/// Baseline: 100 requests per scrape, 2 of them 5xx; most answers within 50 ms.
const BASELINE: &[Code] = &[
    (
        200,
        95,
        &[(3.0, 20), (12.0, 40), (40.0, 25), (120.0, 8), (600.0, 2)],
    ),
    (404, 3, &[(2.0, 3)]),
    (503, 2, &[(0.7, 2)]),
];
/// Canary: 100 requests per scrape, 7 of them 5xx (three slow timeouts); slower overall.
const CANARY: &[Code] = &[
    (
        200,
        90,
        &[
            (3.0, 8),
            (12.0, 22),
            (40.0, 30),
            (120.0, 20),
            (600.0, 8),
            (2000.0, 2),
        ],
    ),
    (404, 3, &[(2.0, 3)]),
    (500, 4, &[(0.7, 4)]),
    (503, 3, &[(45000.0, 3)]),
];
/// Distractor workloads: only successes, all fast.
const OTHER: &[Code] = &[(200, 50, &[(5.0, 50)])];

fn requests(traffic: &[Code]) -> u64 {
    traffic.iter().map(|c| c.1).sum()
}
fn errors(traffic: &[Code]) -> u64 {
    traffic.iter().filter(|c| c.0 >= 500).map(|c| c.1).sum()
}
fn latencies(traffic: &[Code], scale: f64) -> Vec<(f64, u64)> {
    traffic
        .iter()
        .flat_map(|c| c.2.iter().map(move |(v, n)| (v * scale, *n)))
        .collect()
}
fn scaled(values: &[(f64, u64)], scale: f64) -> Vec<(f64, u64)> {
    values.iter().map(|(v, n)| (v * scale, *n)).collect()
}

fn istio(e: &mut Exposition, traffic: &[Code], workload: &str, version: &str, reporter: &str) {
    for &(code, n, lat) in traffic {
        let code = code.to_string();
        let l = labels(&[
            ("reporter", reporter),
            ("source_workload", "frontend"),
            ("source_workload_namespace", "shop"),
            ("destination_workload", workload),
            ("destination_workload_namespace", "shop"),
            ("destination_version", version),
            ("destination_service", "cart.shop.svc.cluster.local"),
            ("request_protocol", "http"),
            ("response_code", &code),
            ("response_flags", "-"),
            ("grpc_response_status", ""),
        ]);
        e.counter("istio_requests_total", l.clone(), n as f64);
        e.histogram("istio_request_duration_milliseconds", l, ISTIO_MS, lat);
    }
}

fn linkerd(e: &mut Exposition, traffic: &[Code], deployment: &str, direction: &str) {
    let pod = format!("{deployment}-7d9f8b6c5-x2x9q");
    let base = [
        ("direction", direction),
        ("authority", "cart.shop.svc.cluster.local:8080"),
        ("tls", "true"),
        ("namespace", "shop"),
        ("deployment", deployment),
        ("pod", pod.as_str()),
        ("pod_template_hash", "7d9f8b6c5"),
    ];
    e.counter("request_total", labels(&base), requests(traffic) as f64);
    for &(code, n, lat) in traffic {
        let code = code.to_string();
        let class = if code.starts_with('5') {
            "failure"
        } else {
            "success"
        };
        let mut l = labels(&base);
        l.push(("status_code".into(), code.clone()));
        e.histogram("response_latency_ms", l.clone(), LINKERD_MS, lat);
        l.push(("classification".into(), class.into()));
        e.counter("response_total", l, n as f64);
    }
}

fn consul(e: &mut Exposition, traffic: &[Code], service: &str, subset: &str) {
    let target = format!("{subset}.{service}.default.dc1");
    let base = [
        ("local_cluster", "web"),
        ("consul_source_service", "web"),
        ("consul_source_namespace", "default"),
        ("consul_source_datacenter", "dc1"),
        ("consul_destination_service", service),
        ("consul_destination_service_subset", subset),
        ("consul_destination_namespace", "default"),
        ("consul_destination_datacenter", "dc1"),
        ("consul_destination_routing_type", "internal"),
        ("consul_destination_target", target.as_str()),
    ];
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    for &(code, n, _) in traffic {
        *by_class
            .entry(code.to_string()[..1].to_string())
            .or_default() += n;
    }
    for (class, n) in by_class {
        let mut l = labels(&base);
        l.push(("envoy_response_code_class".into(), class));
        e.counter("envoy_cluster_upstream_rq_xx", l, n as f64);
    }
    for &(code, n, _) in traffic {
        let code = code.to_string();
        let mut l = labels(&base);
        l.push(("envoy_response_code".into(), code));
        e.counter("envoy_cluster_upstream_rq", l, n as f64);
    }
    // Envoy's request-time histogram has no status code: one series for all requests.
    e.histogram(
        "envoy_cluster_upstream_rq_time",
        labels(&base),
        ENVOY_MS,
        &latencies(traffic, 1.0),
    );
}

fn otel(e: &mut Exposition, traffic: &[Code], service: &str, version: &str) {
    for &(code, _, lat) in traffic {
        let code = code.to_string();
        let l = labels(&[
            ("service_name", service),
            ("service_version", version),
            ("http_request_method", "GET"),
            ("http_route", "/cart"),
            ("http_response_status_code", &code),
            ("url_scheme", "http"),
        ]);
        e.histogram(
            "http_server_request_duration_seconds",
            l,
            OTEL_S,
            &scaled(lat, 1e-3),
        );
    }
}

/// What the `baseline` (or `canary`) exporter serves.
fn exposition(canary: bool) -> Exposition {
    let (traffic, version, otel_version, istio_workload, deployment, subset) = if canary {
        (CANARY, "v2", "1.4.2", "cart-v2", "cart", "v2")
    } else {
        (BASELINE, "v1", "1.4.1", "cart-v1", "cart-primary", "v1")
    };
    let mut e = Exposition::default();
    istio(&mut e, traffic, istio_workload, version, "destination");
    istio(&mut e, OTHER, istio_workload, version, "source");
    istio(
        &mut e,
        OTHER,
        &format!("checkout-{version}"),
        version,
        "destination",
    );
    linkerd(&mut e, traffic, deployment, "inbound");
    linkerd(&mut e, OTHER, deployment, "outbound");
    linkerd(&mut e, OTHER, &format!("checkout-{version}"), "inbound");
    consul(&mut e, traffic, "cart", subset);
    consul(&mut e, OTHER, "checkout", subset);
    otel(&mut e, traffic, "cart", otel_version);
    otel(&mut e, OTHER, "checkout", otel_version);
    e
}

fn scope(pairs: &[(&str, &str)]) -> Scope {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One mesh: its pack, the scopes of baseline and canary, its bucket layout and unit.
struct Mesh {
    baseline: Scope,
    canary: Scope,
    bounds: &'static [f64],
    /// Exporter latencies are in ms; this turns them into the pack's unit.
    scale: f64,
}

fn mesh(pack: &str) -> Mesh {
    match pack {
        "istio" => Mesh {
            baseline: scope(&[
                ("namespace", "shop"),
                ("workload", "cart-v1"),
                ("version", "v1"),
            ]),
            canary: scope(&[
                ("namespace", "shop"),
                ("workload", "cart-v2"),
                ("version", "v2"),
            ]),
            bounds: ISTIO_MS,
            scale: 1.0,
        },
        "linkerd" => Mesh {
            baseline: scope(&[("namespace", "shop"), ("workload", "cart-primary")]),
            canary: scope(&[("namespace", "shop"), ("workload", "cart")]),
            bounds: LINKERD_MS,
            scale: 1.0,
        },
        "consul" => Mesh {
            baseline: scope(&[
                ("namespace", "default"),
                ("workload", "cart"),
                ("version", "v1"),
            ]),
            canary: scope(&[
                ("namespace", "default"),
                ("workload", "cart"),
                ("version", "v2"),
            ]),
            bounds: ENVOY_MS,
            scale: 1.0,
        },
        "otel" => Mesh {
            baseline: scope(&[("service.name", "cart"), ("service.version", "1.4.1")]),
            canary: scope(&[("service.name", "cart"), ("service.version", "1.4.2")]),
            bounds: OTEL_S,
            scale: 1e-3,
        },
        other => panic!("no mesh {other}"),
    }
}

/// The shared Prometheus and exporters, and the time up to which data is complete.
struct Env {
    prometheus: Prometheus,
    /// Unix seconds of the latest scrape ingested for both exporters.
    end: f64,
}

/// Window length for every query: longer than the data, so it covers all of it.
const WINDOW: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_secs(2);
const SCRAPES: u64 = 6;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        // The exporters live on a runtime of their own: each test has its own runtime,
        // which ends with the test.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let baseline = Exporter::start(exposition(false)).await;
                let canary = Exporter::start(exposition(true)).await;
                let prometheus =
                    Prometheus::start(&[("baseline", baseline.addr), ("canary", canary.addr)], "")
                        .await;
                let end = prometheus
                    .wait_for_scrapes(&["baseline", "canary"], SCRAPES)
                    .await;
                tx.send(Env { prometheus, end }).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the test environment started")
    })
}

fn window(env: &Env) -> Window {
    Window {
        end: at(env.end),
        length: WINDOW,
        step: STEP,
    }
}

fn source_for(url: &str) -> QuerySource {
    QuerySource::new(
        Client::new(&PrometheusConfig::new(url)).unwrap(),
        PackCatalog::builtin(),
    )
}

fn prom(pack: &str, query: &str) -> PrometheusSource {
    PrometheusSource {
        pack: pack.into(),
        query: query.into(),
        promql: None,
    }
}

/// The factor every per-scrape amount of `job` is multiplied by in `increase()` over the
/// window: the increase of its scrape counter, which grows by 1 per scrape.
async fn factor(env: &Env, job: &str) -> f64 {
    env.prometheus
        .value(
            &format!(
                "increase(augury_test_scrapes_total{{job=\"{job}\"}}[{}s])",
                WINDOW.as_secs()
            ),
            Some(env.end),
        )
        .await
        .unwrap()
}

fn expect_counts(o: &Observation, per_scrape: (u64, u64), g: f64, what: &str) {
    let Observation::Counts(c) = o else {
        panic!("{what}: expected counts, got {o:?}")
    };
    // Each count is a rounded extrapolated increase: within half a request of exact.
    let (r, e) = (per_scrape.0 as f64 * g, per_scrape.1 as f64 * g);
    assert!(
        (c.requests as f64 - r).abs() <= 0.5 + 1e-6,
        "{what}: requests {} vs {r}",
        c.requests
    );
    assert!(
        (c.errors as f64 - e).abs() <= 0.5 + 1e-6,
        "{what}: errors {} vs {e}",
        c.errors
    );
}

fn expect_buckets(o: &Observation, bounds: &[f64], per_scrape: &[u64], g: f64, what: &str) {
    let Observation::Buckets(b) = o else {
        panic!("{what}: expected buckets, got {o:?}")
    };
    assert_eq!(b.bounds(), bounds, "{what}: bucket bounds");
    assert_eq!(b.counts().len(), per_scrape.len(), "{what}");
    // Each count is the difference of two rounded cumulative increases: within 1.
    for (k, (&got, &want)) in b.counts().iter().zip(per_scrape).enumerate() {
        let want = want as f64 * g;
        assert!(
            (got as f64 - want).abs() <= 1.0 + 1e-6,
            "{what}: bucket {k} holds {got}, expected {want} ({:?})",
            b.counts()
        );
    }
    let total: u64 = per_scrape.iter().sum();
    assert!(
        (b.total() as f64 - total as f64 * g).abs() <= 0.5 + 1e-6,
        "{what}: total"
    );
}

/// Rates of the scrape counter of `job` over the series query's range, times `k`.
async fn expected_rates(env: &Env, job: &str, k: f64) -> Vec<f64> {
    let client = Client::new(&PrometheusConfig::new(&env.prometheus.url)).unwrap();
    let w = window(env);
    let response = client
        .query_range(
            &format!(
                "rate(augury_test_scrapes_total{{job=\"{job}\"}}[{}s])",
                STEP.as_secs()
            ),
            w.end - w.length + w.step,
            w.end,
            w.step,
        )
        .await
        .unwrap();
    let augury::ingest::prometheus::QueryData::Matrix(series) = response.data else {
        panic!("{response:?}")
    };
    series[0].points.iter().map(|p| p.v * k).collect()
}

/// Checks a pack's three queries for both scopes against what the exporters produced.
async fn check_pack(name: &str) {
    check_pack_queries(name, "").await;
}

/// Checks the pack's `error-ratio`, `latency` and `request-rate` queries, each named with
/// `suffix` (`-by-workload`: the Istio queries that leave the version out).
async fn check_pack_queries(name: &str, suffix: &str) {
    let env = env();
    let m = mesh(name);
    let source = source_for(&env.prometheus.url);
    let w = window(env);
    for (side, traffic, scope) in [
        ("baseline", BASELINE, &m.baseline),
        ("canary", CANARY, &m.canary),
    ] {
        let g = factor(env, side).await;
        assert!(g >= SCRAPES as f64 - 1.0, "{side}: factor {g}");
        let what = format!("{name} {side}");

        let counts = source
            .fetch(&prom(name, &format!("error-ratio{suffix}")), scope, &w)
            .await
            .unwrap();
        expect_counts(
            &counts.observation,
            (requests(traffic), errors(traffic)),
            g,
            &what,
        );
        assert!(counts.warnings.is_empty(), "{:?}", counts.warnings);
        assert_eq!(counts.queries.len(), 2);

        let latency = source
            .fetch(&prom(name, &format!("latency{suffix}")), scope, &w)
            .await
            .unwrap();
        let per_scrape = bucketize(m.bounds, &latencies(traffic, m.scale));
        expect_buckets(&latency.observation, m.bounds, &per_scrape, g, &what);

        let rate = source
            .fetch(&prom(name, &format!("request-rate{suffix}")), scope, &w)
            .await
            .unwrap();
        let Observation::Samples(points) = &rate.observation else {
            panic!("{what}: expected samples, got {:?}", rate.observation)
        };
        let expected = expected_rates(env, side, requests(traffic) as f64).await;
        assert!(expected.len() >= 2, "{what}: {expected:?}");
        assert_eq!(
            points.len(),
            expected.len(),
            "{what}: {points:?} vs {expected:?}"
        );
        for (got, want) in points.iter().zip(&expected) {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs(),
                "{what}: rate {got} vs {want}"
            );
        }
    }
}

#[tokio::test]
async fn istio_pack_returns_what_the_exporters_produced() {
    check_pack("istio").await;
}

/// The queries of the `istio-workload` model (Flagger's `<target>` and `<target>-primary`
/// workloads) select each workload's series by `destination_workload` alone.
#[tokio::test]
async fn istio_by_workload_queries_return_what_the_exporters_produced() {
    check_pack_queries("istio", "-by-workload").await;
}

#[tokio::test]
async fn linkerd_pack_returns_what_the_exporters_produced() {
    check_pack("linkerd").await;
}

#[tokio::test]
async fn consul_pack_returns_what_the_exporters_produced() {
    check_pack("consul").await;
}

#[tokio::test]
async fn otel_pack_returns_what_the_exporters_produced() {
    check_pack("otel").await;
}

/// The built-in models fetch both metrics for both scopes into the judge's shapes.
#[tokio::test]
async fn built_in_models_fetch_judge_input_per_scope() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    let w = window(env);
    let catalog = Catalog::builtin();
    for name in ["istio", "linkerd", "consul"] {
        let model = catalog.get(name).unwrap();
        let m = mesh(name);
        assert!(PackCatalog::builtin().check_model(model, name).is_empty());
        let g_b = factor(env, "baseline").await;
        let g_c = factor(env, "canary").await;
        for metric in &model.metrics {
            let fetched = source
                .fetch_metric(metric, &m.baseline, &m.canary, &w)
                .await
                .unwrap();
            match fetched.data {
                Some(MetricData::Counts { baseline, canary }) => {
                    let (b, c) = (Observation::Counts(baseline), Observation::Counts(canary));
                    expect_counts(&b, (requests(BASELINE), errors(BASELINE)), g_b, name);
                    expect_counts(&c, (requests(CANARY), errors(CANARY)), g_c, name);
                }
                Some(MetricData::Histograms { .. }) => {
                    let (c, b) = fetched.buckets().unwrap();
                    let want_b = bucketize(m.bounds, &latencies(BASELINE, 1.0));
                    let want_c = bucketize(m.bounds, &latencies(CANARY, 1.0));
                    expect_buckets(
                        &Observation::Buckets(b.clone()),
                        m.bounds,
                        &want_b,
                        g_b,
                        name,
                    );
                    expect_buckets(
                        &Observation::Buckets(c.clone()),
                        m.bounds,
                        &want_c,
                        g_c,
                        name,
                    );
                }
                other => panic!("{name}/{}: {other:?}", metric.name),
            }
        }
    }
}

#[tokio::test]
async fn scopes_that_match_nothing_are_nodata_not_errors() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    let w = window(env);
    let absent = scope(&[
        ("namespace", "shop"),
        ("workload", "gone"),
        ("version", "v9"),
    ]);
    for query in ["error-ratio", "latency", "request-rate"] {
        let fetched = source
            .fetch(&prom("istio", query), &absent, &w)
            .await
            .unwrap();
        let Observation::Nodata(why) = &fetched.observation else {
            panic!("{query}: {:?}", fetched.observation)
        };
        assert!(why.contains("no series"), "{query}: {why}");
    }
    // A model metric with one side missing gives the judge nothing, not a crash.
    let model = Catalog::builtin().get("istio").cloned().unwrap();
    let m = mesh("istio");
    let fetched = source
        .fetch_metric(&model.metrics[0], &m.baseline, &absent, &w)
        .await
        .unwrap();
    assert_eq!(fetched.data, None);
    assert!(matches!(
        fetched.baseline.observation,
        Observation::Buckets(_)
    ));
}

#[tokio::test]
async fn no_error_series_counts_as_zero_errors() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    // The checkout distractor answers only 200s: `errors` has no series at all.
    let checkout = scope(&[
        ("namespace", "shop"),
        ("workload", "checkout-v1"),
        ("version", "v1"),
    ]);
    let fetched = source
        .fetch(&prom("istio", "error-ratio"), &checkout, &window(env))
        .await
        .unwrap();
    let g = factor(env, "baseline").await;
    expect_counts(&fetched.observation, (requests(OTHER), 0), g, "checkout");
    assert!(
        fetched
            .notes
            .iter()
            .any(|n| n.contains("counted as 0 errors")),
        "{:?}",
        fetched.notes
    );
}

#[tokio::test]
async fn scope_values_cannot_inject_promql() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    let mut evil = mesh("istio").baseline;
    // Unescaped, this would close the matcher and add every series in Prometheus.
    evil.insert(
        "version".into(),
        r#"v1"} or istio_requests_total{reporter=~".+"#.into(),
    );
    let fetched = source
        .fetch(&prom("istio", "error-ratio"), &evil, &window(env))
        .await
        .unwrap();
    assert!(fetched.observation.is_nodata(), "{:?}", fetched.observation);
    assert!(
        fetched.queries[0].contains(r#"destination_version="v1\"} or "#),
        "{}",
        fetched.queries[0]
    );
    // A regex matcher takes the value literally: `v.` does not match `v1`.
    let pack = Pack::from_yaml(
        r#"
name: t
queries:
  c:
    kind: counts
    requests: sum(increase(istio_requests_total{reporter="destination", destination_version=~"{{ v }}"}[{{ interval }}]))
    errors: sum(increase(istio_requests_total{reporter="destination", destination_version=~"{{ v }}", response_code=~"5.."}[{{ interval }}]))
"#,
        "t.yaml",
    )
    .unwrap();
    let mut packs = PackCatalog::default();
    packs.insert(pack);
    let source = QuerySource::new(
        Client::new(&PrometheusConfig::new(&env.prometheus.url)).unwrap(),
        packs,
    );
    let dotted = source
        .fetch(&prom("t", "c"), &scope(&[("v", "v.")]), &window(env))
        .await
        .unwrap();
    assert!(dotted.observation.is_nodata(), "{:?}", dotted.observation);
    let exact = source
        .fetch(&prom("t", "c"), &scope(&[("v", "v1")]), &window(env))
        .await
        .unwrap();
    assert!(
        matches!(exact.observation, Observation::Counts(_)),
        "{:?}",
        exact.observation
    );
}

#[tokio::test]
async fn missing_scope_variable_is_an_error_naming_it() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    let partial = scope(&[("namespace", "shop"), ("workload", "cart-v1")]);
    let e = source
        .fetch(&prom("istio", "latency"), &partial, &window(env))
        .await
        .unwrap_err();
    match &e {
        FetchError::Template(TemplateError::Missing { query, name, .. }) => {
            assert_eq!(query, "istio/latency");
            assert_eq!(name, "version");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("`{{ version }}`"), "{e}");
}

/// A pack of odd queries, run for the marker of the baseline exporter.
fn odd_pack() -> PackCatalog {
    let pack = Pack::from_yaml(
        r#"
name: odd
queries:
  nan-requests:
    kind: counts
    requests: sum(increase(augury_test_scrapes_total{job="{{ job }}"}[{{ interval }}])) * 0 / 0
    errors: sum(increase(augury_test_scrapes_total{job="{{ job }}"}[{{ interval }}])) * 0
  inf-requests:
    kind: counts
    requests: sum(increase(augury_test_scrapes_total{job="{{ job }}"}[{{ interval }}])) / 0
    errors: sum(increase(augury_test_scrapes_total{job="{{ job }}"}[{{ interval }}])) * 0
  unaggregated:
    kind: counts
    requests: increase(istio_requests_total{job="{{ job }}"}[{{ interval }}])
    errors: increase(istio_requests_total{job="{{ job }}", response_code=~"5.."}[{{ interval }}])
  range-selector:
    kind: histogram
    query: istio_request_duration_milliseconds_bucket{job="{{ job }}"}[{{ interval }}]
  no-le:
    kind: histogram
    query: sum(increase(istio_request_duration_milliseconds_bucket{job="{{ job }}"}[{{ interval }}]))
  nan-bucket:
    kind: histogram
    query: sum by (le) (increase(istio_request_duration_milliseconds_bucket{job="{{ job }}"}[{{ interval }}])) * 0 / 0
  by-code:
    kind: histogram
    query: sum by (le, response_code) (increase(istio_request_duration_milliseconds_bucket{job="{{ job }}"}[{{ interval }}]))
  inf-series:
    kind: series
    query: sum(rate(augury_test_scrapes_total{job="{{ job }}"}[{{ step }}])) / 0
  bad-syntax:
    kind: series
    query: sum(rate(augury_test_scrapes_total{job="{{ job }}"[{{ step }}]))
"#,
        "odd.yaml",
    )
    .unwrap();
    let mut packs = PackCatalog::default();
    packs.insert(pack);
    packs
}

#[tokio::test]
async fn nan_inf_and_wrong_shapes_are_nodata_or_clear_errors() {
    let env = env();
    let proxy = Proxy::start(&env.prometheus.url, ProxyRules::default()).await;
    let source = QuerySource::new(
        Client::new(&PrometheusConfig::new(&proxy.url)).unwrap(),
        odd_pack(),
    );
    let job = scope(&[("job", "baseline")]);
    let w = window(env);
    let fetch = |q: &'static str| {
        let (source, job) = (&source, &job);
        async move { source.fetch(&prom("odd", q), job, &w).await }
    };

    for (q, says) in [
        ("nan-requests", "`requests` is NaN"),
        ("inf-requests", "`requests` is inf"),
        ("nan-bucket", "is NaN"),
    ] {
        let o = fetch(q).await.unwrap().observation;
        let Observation::Nodata(why) = &o else {
            panic!("{q}: {o:?}")
        };
        assert!(why.contains(says), "{q}: {why}");
    }

    let f = fetch("inf-series").await.unwrap();
    let Observation::Samples(points) = &f.observation else {
        panic!("{:?}", f.observation)
    };
    assert!(
        !points.is_empty() && points.iter().all(|v| v.is_nan()),
        "{points:?}"
    );
    assert!(f.notes.iter().any(|n| n.contains("±Inf")), "{:?}", f.notes);

    for (q, says) in [
        ("unaggregated", "series where one number belongs"),
        (
            "range-selector",
            "returned a matrix where an instant vector",
        ),
        ("no-le", "has no `le` label"),
        ("by-code", "differ by more than `le`"),
    ] {
        let e = fetch(q).await.unwrap_err();
        assert!(matches!(e, FetchError::Shape { .. }), "{q}: {e}");
        assert!(e.to_string().contains(says), "{q}: {e}");
        assert!(e.to_string().contains(&format!("odd/{q}")), "{q}: {e}");
    }

    // A query Prometheus cannot parse is its answer, reported once, not retried.
    let before = proxy.requests();
    let e = fetch("bad-syntax").await.unwrap_err();
    let FetchError::Query { source, .. } = &e else {
        panic!("{e}")
    };
    match source.as_ref() {
        QueryError::Api {
            status,
            error_type,
            error,
            attempts,
            ..
        } => {
            assert_eq!(
                (*status, error_type.as_str(), *attempts),
                (400, "bad_data", 1)
            );
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(proxy.requests() - before, 1);
}

#[tokio::test]
async fn prometheus_warnings_are_reported_with_the_data() {
    // A remote_read to a closed port makes Prometheus answer with a warning.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let prometheus = Prometheus::start(
        &[],
        &format!("remote_read:\n  - url: http://127.0.0.1:{port}/api/v1/read\n"),
    )
    .await;
    let source = source_for(&prometheus.url);
    let w = Window {
        end: std::time::SystemTime::now(),
        length: WINDOW,
        step: STEP,
    };
    let fetched = source
        .fetch(&prom("istio", "latency"), &mesh("istio").baseline, &w)
        .await
        .unwrap();
    assert!(fetched.observation.is_nodata(), "{:?}", fetched.observation);
    assert!(
        fetched.warnings.iter().any(|w| w.contains("remote_read")),
        "{:?}",
        fetched.warnings
    );
}

fn fast(url: &str) -> PrometheusConfig {
    let mut config = PrometheusConfig::new(url);
    config.backoff = Duration::from_millis(10);
    config
}

#[tokio::test]
async fn bearer_basic_and_custom_headers_reach_the_server() {
    let env = env();
    let w = window(env);
    let m = mesh("istio");
    let tenant = ("X-Scope-OrgID".to_string(), "team-a".to_string());
    type Configure = Box<dyn Fn(&mut PrometheusConfig)>;
    let cases: Vec<(Vec<(String, String)>, Configure)> = vec![
        (
            vec![
                ("authorization".into(), "Bearer s3cret".into()),
                tenant.clone(),
            ],
            Box::new(|c: &mut PrometheusConfig| {
                c.bearer_token = Some("s3cret".into());
                c.headers.insert("X-Scope-OrgID".into(), "team-a".into());
            }),
        ),
        (
            // base64("augury:pa:ss")
            vec![("authorization".into(), "Basic YXVndXJ5OnBhOnNz".into())],
            Box::new(|c: &mut PrometheusConfig| {
                c.basic_auth = Some(augury::ingest::prometheus::BasicAuth {
                    username: "augury".into(),
                    password: "pa:ss".into(),
                });
            }),
        ),
    ];
    for (require, configure) in cases {
        let proxy = Proxy::start(
            &env.prometheus.url,
            ProxyRules {
                require: require.clone(),
                ..ProxyRules::default()
            },
        )
        .await;
        let mut config = fast(&proxy.url);
        configure(&mut config);
        let source = QuerySource::new(Client::new(&config).unwrap(), PackCatalog::builtin());
        let ok = source
            .fetch(&prom("istio", "latency"), &m.baseline, &w)
            .await
            .unwrap();
        assert!(
            matches!(ok.observation, Observation::Buckets(_)),
            "{require:?}"
        );

        // Without the credentials: 401, reported, not retried.
        let before = proxy.requests();
        let bare = QuerySource::new(
            Client::new(&fast(&proxy.url)).unwrap(),
            PackCatalog::builtin(),
        );
        let e = bare
            .fetch(&prom("istio", "latency"), &m.baseline, &w)
            .await
            .unwrap_err();
        let FetchError::Query { source, .. } = &e else {
            panic!("{e}")
        };
        assert!(
            matches!(
                source.as_ref(),
                QueryError::Status {
                    status: 401,
                    attempts: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(proxy.requests() - before, 1);
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_an_answer() {
    let env = env();
    let proxy = Proxy::start(
        &env.prometheus.url,
        ProxyRules {
            fail_first: 2,
            ..ProxyRules::default()
        },
    )
    .await;
    let source = QuerySource::new(
        Client::new(&fast(&proxy.url)).unwrap(),
        PackCatalog::builtin(),
    );
    let m = mesh("istio");
    let fetched = source
        .fetch(&prom("istio", "latency"), &m.baseline, &window(env))
        .await
        .unwrap();
    let g = factor(env, "baseline").await;
    expect_buckets(
        &fetched.observation,
        ISTIO_MS,
        &bucketize(ISTIO_MS, &latencies(BASELINE, 1.0)),
        g,
        "after retries",
    );
    assert_eq!(proxy.requests(), 3);

    // Retries run out: the last failure is reported with the attempt count.
    let proxy = Proxy::start(
        &env.prometheus.url,
        ProxyRules {
            fail_first: 10,
            ..ProxyRules::default()
        },
    )
    .await;
    let mut config = fast(&proxy.url);
    config.retries = 2;
    let client = Client::new(&config).unwrap();
    let e = client.query("up", at(env.end)).await.unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(proxy.requests(), 3);
}

#[tokio::test]
async fn timeouts_and_unreachable_servers_are_transport_errors() {
    let env = env();
    let proxy = Proxy::start(
        &env.prometheus.url,
        ProxyRules {
            stall_first: 2,
            ..ProxyRules::default()
        },
    )
    .await;
    let mut config = fast(&proxy.url);
    config.timeout = Duration::from_millis(300);
    config.retries = 1;
    let e = Client::new(&config)
        .unwrap()
        .query("up", at(env.end))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::Transport {
                timed_out: true,
                attempts: 2,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(proxy.requests(), 2);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = fast(&url);
    config.retries = 2;
    let e = Client::new(&config)
        .unwrap()
        .query("up", at(env.end))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::Transport {
                timed_out: false,
                attempts: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("refused"), "{e}");
}

/// The exact bucket rank test sees the canary's slower distribution in Prometheus data.
#[tokio::test]
async fn bucket_counts_align_for_the_rank_test() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    let m = mesh("linkerd");
    let w = window(env);
    let b = source
        .fetch(&prom("linkerd", "latency"), &m.baseline, &w)
        .await
        .unwrap();
    let c = source
        .fetch(&prom("linkerd", "latency"), &m.canary, &w)
        .await
        .unwrap();
    let (Observation::Buckets(b), Observation::Buckets(c)) = (&b.observation, &c.observation)
    else {
        panic!("{b:?} {c:?}")
    };
    let (c2, b2) = buckets::align(c, b);
    assert_eq!((c2.bounds(), b2.bounds()), (LINKERD_MS, LINKERD_MS));
    // Coarsened to another layout's bounds, totals survive.
    let coarse = Buckets::new(vec![5.0, 50.0, 500.0], vec![0, 0, 0, 0]).unwrap();
    let (c3, _) = buckets::align(c, &coarse);
    assert_eq!(c3.total(), c.total());
    assert_eq!(c3.bounds(), &[5.0, 50.0, 500.0]);
}

/// Prometheus data through the Istio model and the judge: the slower canary with more
/// 5xx fails on both metrics; the baseline judged against itself passes. The judge's rank
/// test on the converted histograms gives the exact bucket test's U.
#[tokio::test]
async fn judge_fails_the_slower_canary_on_prometheus_data() {
    let env = env();
    let source = source_for(&env.prometheus.url);
    let w = window(env);
    let model = Catalog::builtin().get("istio").cloned().unwrap();
    let m = mesh("istio");
    let mut canary_data = BTreeMap::new();
    let mut same_data = BTreeMap::new();
    let mut exact_u = None;
    for metric in &model.metrics {
        let f = source
            .fetch_metric(metric, &m.baseline, &m.canary, &w)
            .await
            .unwrap();
        if let Some((c, b)) = f.buckets() {
            let exact = buckets::mann_whitney(c, b, Alternative::Greater, Method::Auto).unwrap();
            assert!(exact.p_value < 0.01, "{exact:?}");
            exact_u = Some(exact.u);
        }
        canary_data.insert(metric.name.clone(), f.data.unwrap());
        let same = source
            .fetch_metric(metric, &m.baseline, &m.baseline, &w)
            .await
            .unwrap();
        same_data.insert(metric.name.clone(), same.data.unwrap());
    }
    let judged = judge(&model, &canary_data, &JudgeOptions::default()).unwrap();
    assert_eq!(judged.verdict, Verdict::Fail, "{:#?}", judged.reasons);
    for r in &judged.metrics {
        assert_eq!(
            r.classification,
            Classification::High,
            "{}: {}",
            r.name,
            r.reason
        );
    }
    let latency = judged.metrics.iter().find(|r| r.name == "latency").unwrap();
    assert_eq!(latency.mann_whitney.as_ref().map(|mw| mw.u), exact_u);

    let judged = judge(&model, &same_data, &JudgeOptions::default()).unwrap();
    assert_eq!(judged.verdict, Verdict::Pass, "{:#?}", judged.reasons);
}
