//! Every judgment the judge can produce survives the store: written by `record_interval`,
//! read back by `get` and `intervals`, bit for bit, including judgments with infinite
//! e-values, zero p-values, empty sides and extreme counts. A judgment that could not be
//! read back made its analysis, and the list of all analyses, unreadable.
//!
//! "Bit for bit" is checked on the `Debug` text of the values, which prints every `f64`
//! in its shortest exact form (and NaN, infinities and -0 distinctly) without going
//! through serde, so a lossy serializer cannot hide behind itself.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use augury::analysis::{AnalysisRequest, Status, ValidRequest};
use augury::judge::data::HistogramSide;
use augury::judge::{JudgeOptions, Judgment, MetricData, judge_looks};
use augury::model::{Catalog, Model};
use augury::stats::LogHistogram;
use augury::stats::proportions::Counts;
use augury::store::{IntervalUpdate, Store};
use proptest::prelude::*;

const MODELS: [&str; 4] = [
    "name: e\nmetrics:\n  - {name: errors, kind: error-ratio, critical: true}\n",
    "name: s\nmetrics:\n  - {name: errors, kind: error-ratio, test: sequential, equivalence_margin: 0.2}\n",
    "name: d\nmetrics:\n  - {name: latency, critical: true}\n",
    "name: q\nmetrics:\n  - {name: latency, test: sequential, equivalence_margin: 0.1}\n",
];

fn valid(key: &str) -> ValidRequest {
    let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": "s", "service.version": "1"},
        "canary": {"service.name": "s", "service.version": "2"},
        "interval": "30s", "lifetime": "5m"}))
    .unwrap();
    r.validate(&Catalog::builtin()).unwrap()
}

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    (store, dir)
}

/// Judges `looks` under `model` and checks the judgment and the last look's data come
/// back from the store exactly.
async fn round_trip(
    store: &Store,
    key: &str,
    model: &Model,
    looks: &[BTreeMap<String, MetricData>],
) {
    let mut cumulative: BTreeMap<String, MetricData> = BTreeMap::new();
    for look in looks {
        for (name, d) in look {
            match cumulative.get_mut(name) {
                Some(c) => c.merge(d),
                None => {
                    cumulative.insert(name.clone(), d.clone());
                }
            }
        }
    }
    let refs: Vec<_> = looks.iter().collect();
    let judgment: Judgment = match judge_looks(model, &cumulative, &refs, &JudgeOptions::default())
    {
        Ok(j) => j,
        // Input the judge refuses never reaches the store.
        Err(_) => return,
    };
    let (a, _) = store.create(&valid(key), 0).await.unwrap();
    let update = IntervalUpdate {
        interval: augury::analysis::Interval {
            seq: 1,
            start_ms: 0,
            end_ms: 30_000,
            data: looks.last().cloned().unwrap_or_default(),
            judgment: judgment.clone(),
        },
        status: Status::Running,
        next_due_ms: 60_000,
        decided_ms: None,
        cumulative: cumulative.clone(),
    };
    assert!(store.record_interval(&a.id, &update).await.unwrap());
    let back = store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(
        format!("{:?}", back.judgment.as_ref().unwrap()),
        format!("{judgment:?}")
    );
    assert_eq!(format!("{:?}", back.cumulative), format!("{cumulative:?}"));
    let intervals = store.intervals(&a.id).await.unwrap();
    assert_eq!(
        format!("{:?}", intervals[0].judgment),
        format!("{judgment:?}")
    );
    assert_eq!(
        format!("{:?}", intervals[0].data),
        format!("{:?}", update.interval.data)
    );
    // And the list that reads every row still answers.
    store.list(None).await.unwrap();
}

fn counts(requests: u64, errors: u64) -> Counts {
    Counts { requests, errors }
}

fn errors_look(b: Counts, c: Counts) -> BTreeMap<String, MetricData> {
    BTreeMap::from([(
        "errors".to_string(),
        MetricData::Counts {
            baseline: b,
            canary: c,
        },
    )])
}

fn histogram(points: &[(f64, u64)]) -> LogHistogram {
    let mut h = LogHistogram::new();
    for &(v, n) in points {
        h.record_n(v, n);
    }
    h
}

fn latency_look(b: LogHistogram, c: LogHistogram) -> BTreeMap<String, MetricData> {
    BTreeMap::from([(
        "latency".to_string(),
        MetricData::Histograms {
            baseline: HistogramSide { histogram: b },
            canary: HistogramSide { histogram: c },
        },
    )])
}

#[tokio::test]
async fn overwhelming_error_evidence_at_a_billion_requests_a_look() {
    let (store, _dir) = store().await;
    let model = Model::from_yaml(MODELS[1], "s").unwrap();
    // 10^9 requests per side per interval, 1% vs 2% errors, for 3,000 looks: the
    // e-value passes 1e308 on the first look; its log stays finite.
    let look = errors_look(
        counts(1_000_000_000, 10_000_000),
        counts(1_000_000_000, 20_000_000),
    );
    let looks = vec![look; 3_000];
    let mut cumulative = looks[0].clone();
    for l in &looks[1..] {
        cumulative.get_mut("errors").unwrap().merge(&l["errors"]);
    }
    let refs: Vec<_> = looks.iter().collect();
    let j = judge_looks(&model, &cumulative, &refs, &JudgeOptions::default()).unwrap();
    let seq = j.metrics[0].sequential.as_ref().unwrap();
    let errors = seq.errors.as_ref().unwrap();
    assert_eq!(errors.e_value, f64::INFINITY);
    assert!(
        errors.ln_e_value.is_finite() && errors.ln_e_value > 1e6,
        "{}",
        errors.ln_e_value
    );
    assert_eq!(seq.p_value, 0.0);
    assert_eq!(errors.canary.requests, 3_000_000_000_000);
    round_trip(&store, "billion", &model, &looks).await;
}

#[tokio::test]
async fn a_clear_latency_regression_over_thousands_of_looks() {
    let (store, _dir) = store().await;
    let model = Model::from_yaml(MODELS[3], "q").unwrap();
    let b = histogram(&[(10.0, 40_000), (20.0, 40_000), (40.0, 20_000)]);
    let c = histogram(&[(20.0, 40_000), (40.0, 40_000), (80.0, 20_000)]);
    let looks = vec![latency_look(b, c); 2_000];
    round_trip(&store, "latency", &model, &looks).await;
    let mut cumulative = looks[0].clone();
    for l in &looks[1..] {
        cumulative.get_mut("latency").unwrap().merge(&l["latency"]);
    }
    let refs: Vec<_> = looks.iter().collect();
    let j = judge_looks(&model, &cumulative, &refs, &JudgeOptions::default()).unwrap();
    let latency = j.metrics[0]
        .sequential
        .as_ref()
        .unwrap()
        .latency
        .as_ref()
        .unwrap();
    assert!(latency.ln_e_value.is_finite(), "{latency:?}");
    assert!(latency.exceedance.iter().all(|e| e.ln_e_value.is_finite()));
}

/// Counts from nothing to beyond any real traffic, errors anywhere in range.
fn any_counts() -> impl Strategy<Value = Counts> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        1u64..1_000,
        Just(1_000_000_000u64),
        Just(1u64 << 50),
    ]
    .prop_flat_map(|requests| {
        prop_oneof![Just(0), Just(requests), 0..=requests]
            .prop_map(move |errors| counts(requests, errors))
    })
}

/// Histograms: empty, one constant value, or a spread with extreme values and counts.
fn any_histogram() -> impl Strategy<Value = LogHistogram> {
    let value = prop_oneof![Just(0.0), Just(1e-6), 0.001f64..1e6, Just(1e9)];
    let count = prop_oneof![Just(1u64), 1u64..10_000, Just(100_000u64)];
    prop::collection::vec((value, count), 0..6).prop_map(|points| histogram(&points))
}

fn any_look(model: usize) -> BoxedStrategy<BTreeMap<String, MetricData>> {
    if model < 2 {
        (any_counts(), any_counts())
            .prop_map(|(b, c)| errors_look(b, c))
            .boxed()
    } else {
        (any_histogram(), any_histogram())
            .prop_map(|(b, c)| latency_look(b, c))
            .boxed()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_judgment_round_trips_through_the_store(
        (model, looks) in (0usize..MODELS.len()).prop_flat_map(|m| {
            (Just(m), prop::collection::vec(any_look(m), 1..8))
        }),
        key in "[a-z]{12}",
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (store, _dir) = store().await;
            let model = Model::from_yaml(MODELS[model], "m").unwrap();
            round_trip(&store, &key, &model, &looks).await;
        });
    }
}
