//! Where the time of `augury judge --baseline B --canary C` goes, phase by phase.
//!
//! `judge_timing BASELINE CANARY [REPS] [MODEL]` runs the steps of the command one after
//! the other on the two files and prints, per phase, the best of REPS wall-clock times:
//! read the files, parse them, then the judge's own steps (NaN check and copy, the sort
//! of both sides, the two summaries, Mann-Whitney, Hodges-Lehmann, the effect sizes),
//! the whole `judge` call, and the JSON and text reports. MODEL (a model file or a
//! built-in name, default a Mann-Whitney model written here) is what `judge` runs.
//! Process start-up and exit are not in any phase: compare the total with a timed run
//! of the binary to see them.
// An example panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use augury::cli::input::parse_samples;
use augury::judge::{JudgeOptions, MetricData, Summary, judge};
use augury::model::Model;
use augury::stats::effect::effect_sizes;
use augury::stats::hodges_lehmann::hodges_lehmann;
use augury::stats::mannwhitney::mann_whitney;
use augury::stats::{Alternative, Method, Sorted};

const MANN_WHITNEY_MODEL: &str = "name: default-mw
metrics:
  - name: value
    kind: distribution
    test: mann-whitney
    direction: increase
    alpha: 0.01
    min_samples: 3
    effect: {measure: median-ratio, allowed_increase: 1.0}
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(baseline_path), Some(canary_path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: judge_timing BASELINE CANARY [REPS] [MODEL]");
        std::process::exit(2);
    };
    let reps: usize = args
        .get(2)
        .map_or(5, |r| r.parse().expect("REPS is a number"));
    let model = match args.get(3) {
        Some(spec) if std::path::Path::new(spec).exists() => {
            Model::from_file(std::path::Path::new(spec)).expect("a valid model file")
        }
        Some(name) => augury::model::Catalog::builtin()
            .get(name)
            .cloned()
            .expect("a built-in model"),
        None => {
            Model::from_yaml(MANN_WHITNEY_MODEL, "judge_timing").expect("the model above is valid")
        }
    };
    let metric = model.metrics[0].name.clone();
    let conf_level = model.metrics[0].conf_level();

    let mut phases: Vec<(&str, f64)> = Vec::new();
    let mut time = |name: &'static str, secs: f64| match phases.iter_mut().find(|p| p.0 == name) {
        Some(p) => p.1 = p.1.min(secs),
        None => phases.push((name, secs)),
    };
    for _ in 0..reps {
        let t = Instant::now();
        let b_text = std::fs::read_to_string(baseline_path).expect("readable baseline");
        let c_text = std::fs::read_to_string(canary_path).expect("readable canary");
        time("read files", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let b = parse_samples(&b_text, baseline_path, None).expect("baseline parses");
        let c = parse_samples(&c_text, canary_path, None).expect("canary parses");
        time("parse", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let (cv, bv): (Vec<f64>, Vec<f64>) = (c.values.clone(), b.values.clone());
        assert!(!cv.iter().chain(&bv).any(|v| v.is_nan()));
        time("  NaN check + copy", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let (cs, bs) = Sorted::pair(cv, bv).expect("no NaN");
        time("  sort both", t.elapsed().as_secs_f64());

        let t = Instant::now();
        std::hint::black_box((Summary::of_samples(&bs, 0), Summary::of_samples(&cs, 0)));
        time("  summaries", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mw = mann_whitney(&cs, &bs, Alternative::Greater, Method::Auto).expect("non-empty");
        time("  Mann-Whitney", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let shift = hodges_lehmann(&cs, &bs, conf_level, Method::Auto).expect("finite");
        time("  Hodges-Lehmann", t.elapsed().as_secs_f64());

        let t = Instant::now();
        std::hint::black_box(effect_sizes(&cs, &bs, mw.u, Some(&shift)));
        time("  effect sizes", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let data = BTreeMap::from([(
            metric.clone(),
            MetricData::Samples {
                baseline: b.values.clone(),
                canary: c.values.clone(),
            },
        )]);
        time("build input", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let judgment = judge(&model, &data, &JudgeOptions::default()).expect("judges");
        time("judge (whole call)", t.elapsed().as_secs_f64());

        let t = Instant::now();
        std::hint::black_box(serde_json::to_string_pretty(&judgment).expect("serialises"));
        time("JSON report", t.elapsed().as_secs_f64());

        let t = Instant::now();
        drop((data, b, c, b_text, c_text, cs, bs));
        time("free", t.elapsed().as_secs_f64());
    }
    let total: f64 = phases
        .iter()
        .filter(|(name, _)| !name.starts_with(' '))
        .map(|p| p.1)
        .sum();
    println!("best of {reps}, seconds");
    for (name, secs) in &phases {
        println!("{name:<22}{secs:>10.4}");
    }
    println!("{:<22}{total:>10.4}", "total (unindented)");
}
