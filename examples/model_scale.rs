//! How the cost of one judged interval grows with the number of metrics in a model.
//!
//! `model_scale [N...]` builds, for each N (default 500 1000 2000 5000 10000), a model of
//! N distribution metrics, each in its own group with an OTLP source of its own span name
//! (the shape of the largest hostile inline models), and prints the best of three
//! wall-clock times of each step an interval goes through: validating the model (JSON to
//! `Model`), judging with data for every metric (20 samples a side), the runner's
//! tolerant judging when every metric's data has the wrong shape (each refusal costs a
//! judgment), and recording the judgment into the daemon's own metrics twice (the second
//! time merges the series an analysis already owns). A cost linear in N doubles when N
//! doubles. Past the model limit (`MAX_METRICS`) validation refuses the model; the other
//! steps are still timed on it, unvalidated, to show how they grow.
// An example panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use augury::analysis::policy::judge_tolerant;
use augury::judge::{JudgeOptions, MetricData, SequentialState, judge};
use augury::model::Model;
use augury::stats::proportions::Counts;
use augury::telemetry::Metrics;

fn model_json(n: usize) -> serde_json::Value {
    let metrics: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("m{i}"),
                "source": {"otlp": {"span_name": format!("span-{i}")}},
            })
        })
        .collect();
    serde_json::json!({"name": "scale", "metrics": metrics})
}

fn samples(n: usize) -> BTreeMap<String, MetricData> {
    (0..n)
        .map(|i| {
            let base: Vec<f64> = (0..20).map(|k| 10.0 + k as f64).collect();
            let canary: Vec<f64> = (0..20).map(|k| 10.5 + k as f64).collect();
            (
                format!("m{i}"),
                MetricData::Samples {
                    baseline: base,
                    canary,
                },
            )
        })
        .collect()
}

fn wrong_shape(n: usize) -> BTreeMap<String, MetricData> {
    let c = Counts {
        requests: 1000,
        errors: 1,
    };
    (0..n)
        .map(|i| {
            (
                format!("m{i}"),
                MetricData::Counts {
                    baseline: c,
                    canary: c,
                },
            )
        })
        .collect()
}

fn best<T>(mut f: impl FnMut() -> T) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a metric count"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![500, 1000, 2000, 5000, 10000]
    } else {
        sizes
    };
    println!("metrics | validate ms | judge ms | tolerant (all refused) ms | telemetry x2 ms");
    for n in sizes {
        let json = model_json(n);
        // Past the model limit validation refuses (in one count); the other steps read
        // the model unvalidated, to show how they grow.
        let validate = best(|| Model::from_json(json.clone(), "(inline)"));
        let model: Model = serde_json::from_value(json).unwrap();
        let data = samples(n);
        let judged = best(|| judge(&model, &data, &JudgeOptions::default()).unwrap());
        let bad = wrong_shape(n);
        let tolerant = best(|| {
            let mut cumulative = bad.clone();
            let mut look = bad.clone();
            let mut state = SequentialState::default();
            judge_tolerant(&model, &mut cumulative, &mut state, &mut look)
        });
        let judgment = judge(&model, &data, &JudgeOptions::default()).unwrap();
        let telemetry = best(|| {
            let m = Metrics::new();
            m.interval_judged("a", "k", &judgment, Duration::ZERO);
            m.interval_judged("a", "k", &judgment, Duration::ZERO);
        });
        println!(
            "{n} | {} | {} | {} | {}",
            ms(validate),
            ms(judged),
            ms(tolerant),
            ms(telemetry)
        );
    }
}
