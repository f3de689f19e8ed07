use std::time::{Duration, Instant, SystemTime};

use super::*;

fn scope(pairs: &[(&str, &str)]) -> Scope {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn checkout(version: &str) -> Scope {
    scope(&[("service.name", "checkout"), ("service.version", version)])
}

/// The entries a lookup finds for these slot values.
fn lookup(windows: &Windows, values: &[Option<ScopeValue<'_>>]) -> Vec<u32> {
    let index = windows.index();
    let mut out = Vec::new();
    index.lookup(values, &mut Vec::new(), &mut out);
    out
}

fn histogram_of(values: &[f64]) -> LogHistogram {
    let mut h = LogHistogram::new();
    for &v in values {
        h.record(v);
    }
    h
}

#[test]
fn take_returns_what_was_recorded_and_starts_a_new_interval() {
    let windows = Windows::new(WindowsConfig {
        shards: 3,
        ..WindowsConfig::default()
    });
    let id = windows.watch(checkout("1"), SpanFilter::default()).unwrap();
    let index = windows.index();
    let window = &index.entry(0).window;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
    let t1 = t0 + Duration::from_secs(5);
    window.record(&[1.0, 2.0], 1, t1);
    window.record(&[3.0], 0, t0);

    let data = windows.take(id).unwrap();
    assert_eq!(data.requests, 3);
    assert_eq!(data.errors, 1);
    assert_eq!(data.histogram, histogram_of(&[1.0, 2.0, 3.0]));
    assert_eq!(data.first_seen, Some(t0));
    assert_eq!(data.last_seen, Some(t1));

    assert_eq!(windows.take(id).unwrap(), WindowData::default());
}

#[test]
fn records_from_many_threads_all_land_exactly_once() {
    let windows = Windows::new(WindowsConfig {
        shards: 4,
        ..WindowsConfig::default()
    });
    let id = windows.watch(checkout("1"), SpanFilter::default()).unwrap();
    let index = windows.index();
    let window = &index.entry(0).window;
    let mut taken = WindowData::default();
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for i in 0..500 {
                    window.record(
                        &[f64::from(t * 1000 + i)],
                        u64::from(i % 2 == 0),
                        SystemTime::now(),
                    );
                }
            });
        }
        // Interleave takes with the recording; nothing may be lost or counted twice.
        for _ in 0..50 {
            taken.merge(&windows.take(id).unwrap());
        }
    });
    taken.merge(&windows.take(id).unwrap());
    assert_eq!(taken.requests, 2000);
    assert_eq!(taken.errors, 1000);
    let all: Vec<f64> = (0..4)
        .flat_map(|t| (0..500).map(move |i| f64::from(t * 1000 + i)))
        .collect();
    assert_eq!(taken.histogram, histogram_of(&all));
}

#[test]
fn lookup_matches_every_listed_name_and_nothing_else() {
    let windows = Windows::default();
    let v1 = windows.watch(checkout("1"), SpanFilter::default()).unwrap();
    let _v2 = windows.watch(checkout("2"), SpanFilter::default()).unwrap();
    // Slots follow first appearance of each name over the sorted scope keys.
    let names: Vec<String> = windows
        .index()
        .names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["service.name", "service.version"]);

    let one = [
        Some(ScopeValue::Str("checkout")),
        Some(ScopeValue::Str("1")),
    ];
    let two = [
        Some(ScopeValue::Str("checkout")),
        Some(ScopeValue::Str("2")),
    ];
    let int_two = [Some(ScopeValue::Str("checkout")), Some(ScopeValue::Int(2))];
    let other = [Some(ScopeValue::Str("cart")), Some(ScopeValue::Str("1"))];
    let missing = [Some(ScopeValue::Str("checkout")), None];
    assert_eq!(lookup(&windows, &one), [0]);
    assert_eq!(lookup(&windows, &two), [1]);
    assert_eq!(lookup(&windows, &int_two), [1]);
    assert!(lookup(&windows, &other).is_empty());
    assert!(lookup(&windows, &missing).is_empty());

    assert!(windows.unwatch(v1));
    assert!(!windows.unwatch(v1));
    assert_eq!(lookup(&windows, &two), [0]);
    assert!(lookup(&windows, &one).is_empty());
}

#[test]
fn scopes_listing_different_names_are_matched_side_by_side() {
    let windows = Windows::default();
    windows
        .watch(scope(&[("service.name", "api")]), SpanFilter::default())
        .unwrap();
    windows
        .watch(
            scope(&[("deployment.environment", "prod"), ("service.name", "api")]),
            SpanFilter::default(),
        )
        .unwrap();
    windows
        .watch(scope(&[("feature", "true")]), SpanFilter::default())
        .unwrap();
    let names: Vec<String> = windows
        .index()
        .names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["service.name", "deployment.environment", "feature"]);

    let api_prod = [
        Some(ScopeValue::Str("api")),
        Some(ScopeValue::Str("prod")),
        Some(ScopeValue::Bool(true)),
    ];
    assert_eq!(lookup(&windows, &api_prod), [0, 1, 2]);
    let api_only = [Some(ScopeValue::Str("api")), None, None];
    assert_eq!(lookup(&windows, &api_only), [0]);
}

#[test]
fn values_that_concatenate_alike_do_not_collide() {
    let windows = Windows::default();
    windows
        .watch(scope(&[("a", "xy"), ("b", "z")]), SpanFilter::default())
        .unwrap();
    let shifted = [Some(ScopeValue::Str("x")), Some(ScopeValue::Str("yz"))];
    assert!(lookup(&windows, &shifted).is_empty());
}

#[test]
fn the_watch_cap_is_enforced_and_freed_by_unwatch() {
    let windows = Windows::new(WindowsConfig {
        max_watches: 2,
        ..WindowsConfig::default()
    });
    let a = windows.watch(checkout("1"), SpanFilter::default()).unwrap();
    windows.watch(checkout("2"), SpanFilter::default()).unwrap();
    assert_eq!(
        windows.watch(checkout("3"), SpanFilter::default()),
        Err(WindowsError::TooManyWatches { limit: 2 })
    );
    windows.unwatch(a);
    assert!(windows.watch(checkout("3"), SpanFilter::default()).is_ok());
    assert_eq!(windows.stats().live_watches, 2);
}

#[test]
fn an_empty_scope_is_refused() {
    let windows = Windows::default();
    assert_eq!(
        windows.watch(Scope::new(), SpanFilter::default()),
        Err(WindowsError::EmptyScope)
    );
}

#[test]
fn idle_watches_expire_and_taken_ones_do_not() {
    let windows = Windows::new(WindowsConfig {
        idle_timeout: Duration::from_secs(60),
        ..WindowsConfig::default()
    });
    let idle = windows.watch(checkout("1"), SpanFilter::default()).unwrap();
    let busy = windows.watch(checkout("2"), SpanFilter::default()).unwrap();
    // Time is handed in; nothing sleeps. Both watches started at or before `start`.
    let start = Instant::now();
    windows
        .take_at(busy, start + Duration::from_secs(50))
        .unwrap();
    assert_eq!(windows.expire_idle(start + Duration::from_secs(30)), 0);
    assert_eq!(windows.expire_idle(start + Duration::from_secs(61)), 1);
    assert_eq!(
        windows.take(idle),
        Err(WindowsError::UnknownWatch(idle.get()))
    );
    assert!(windows.take(busy).is_ok());
    let stats = windows.stats();
    assert_eq!(stats.live_watches, 1);
    assert_eq!(stats.expired_watches, 1);
    assert_eq!(windows.index().names().len(), 2);
    let one = [
        Some(ScopeValue::Str("checkout")),
        Some(ScopeValue::Str("1")),
    ];
    assert!(lookup(&windows, &one).is_empty());
}

#[test]
fn filters_keep_by_kind_name_and_route() {
    let windows = Windows::default();
    windows.watch(checkout("1"), SpanFilter::default()).unwrap();
    windows
        .watch(
            checkout("1"),
            SpanFilter {
                kind: None,
                name: Some("GET /a".into()),
                route: Some("/a".into()),
            },
        )
        .unwrap();
    let index = windows.index();
    let server = SpanKind::Server.otlp_value();
    let client = SpanKind::Client.otlp_value();
    assert!(index.entry(0).keeps(server, "anything", None));
    assert!(!index.entry(0).keeps(client, "anything", None));
    assert!(index.entry(1).keeps(client, "GET /a", Some("/a")));
    assert!(!index.entry(1).keeps(server, "GET /a", None));
    assert!(!index.entry(1).keeps(server, "GET /b", Some("/a")));
}

#[test]
fn describe_returns_the_registration() {
    let windows = Windows::default();
    let id = windows.watch(checkout("7"), SpanFilter::default()).unwrap();
    assert_eq!(
        windows.describe(id),
        Some((checkout("7"), SpanFilter::default()))
    );
}

#[test]
fn counts_accumulate() {
    let windows = Windows::default();
    windows.add_counts(SpanCounts {
        accepted: 3,
        dropped: 2,
        filtered: 1,
        rejected: 4,
    });
    windows.add_counts(SpanCounts {
        accepted: 1,
        ..SpanCounts::default()
    });
    let stats = windows.stats();
    assert_eq!(
        (
            stats.accepted_spans,
            stats.dropped_spans,
            stats.filtered_spans,
            stats.rejected_spans
        ),
        (4, 2, 1, 4)
    );
}
