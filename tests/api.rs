//! The HTTP API, end to end: real HTTP against the router over a real SQLite store.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use augury::analysis::Status;
use augury::api::Limits;
use augury::daemon::runner::Command;
use augury::judge::{JudgeOptions, judge};
use augury::model::Model;
use common::{ERRORS_MODEL, Options, Server, request, start, start_with};
use serde_json::{Value, json};

fn scheduled(server: &mut Server) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(c) = server.commands.try_recv() {
        match c {
            Command::Schedule(id) => ids.push(format!("schedule {id}")),
            Command::Cancel(id) => ids.push(format!("cancel {id}")),
        }
    }
    ids
}

fn error_of(v: &Value) -> (&str, Option<&str>, &str) {
    (
        v["error"]["code"].as_str().unwrap_or("(no code)"),
        v["error"]["field"].as_str(),
        v["error"]["message"].as_str().unwrap_or("(no message)"),
    )
}

#[tokio::test]
async fn creating_is_idempotent_on_the_key() {
    let mut s = start().await;
    let body = request("checkout@1.4.2");
    let r = s
        .http
        .post(s.url("/api/v1/analyses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let (_, created) = common::json_of(r).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/analyses/{id}"));
    assert_eq!(created["key"], "checkout@1.4.2");
    assert_eq!(created["status"], "running");
    assert_eq!(created["progress"]["intervals"], 0);
    assert_eq!(created["progress"]["planned"], 10);
    assert_eq!(created["score"], Value::Null);
    assert_eq!(scheduled(&mut s), vec![format!("schedule {id}")]);

    // The same request again, durations written differently: the same analysis.
    let mut again = body.clone();
    again["lifetime"] = json!("300s");
    let (code, v) = s.post("/api/v1/analyses", &again).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["id"], id.as_str());

    // The same key for something else is refused, naming the key.
    let mut other = body.clone();
    other["canary"]["workload"] = json!("checkout-v2");
    let (code, v) = s.post("/api/v1/analyses", &other).await;
    assert_eq!(code, 409, "{v}");
    let (err, field, message) = error_of(&v);
    assert_eq!((err, field), ("key_conflict", Some("key")));
    assert!(message.contains(&id), "{message}");

    let (code, list) = s.get("/api/v1/analyses").await;
    assert_eq!(code, 200);
    assert_eq!(list["analyses"].as_array().unwrap().len(), 1);
    assert_eq!(list["analyses"][0]["model"], "errors");
}

#[tokio::test]
async fn the_verdict_follows_every_recorded_interval() {
    let s = start().await;
    let id = s.create(&request("k1")).await;
    let verdict = format!("/api/v1/analyses/{id}/verdict");
    let (code, v) = s.get(&verdict).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "running");
    assert_eq!(v["verdict"], Value::Null);
    assert!(v["progress"]["elapsed_seconds"].as_f64().unwrap() >= 0.0);

    // The poll above was cached; a recorded interval must show at once.
    let first = s.record(&id, Status::Running, 12).await;
    let (_, v) = s.get(&verdict).await;
    assert_eq!(v["status"], "running");
    assert_eq!(v["progress"]["intervals"], 1);
    assert_eq!(v["score"], json!(first.score));
    assert_eq!(v["verdict"], "pass");

    let last = s.record(&id, Status::Fail, 90).await;
    let (_, v) = s.get(&verdict).await;
    assert_eq!(v["status"], "fail");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["progress"]["intervals"], 2);
    assert!(v["decided_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["reasons"], json!(last.reasons));
    assert!(!last.reasons.is_empty());
    let m = &v["metrics"][0];
    let expected = &last.metrics[0];
    assert_eq!(m["name"], "error-rate");
    assert_eq!(m["classification"], "high");
    assert_eq!(
        m["p_value"],
        json!(expected.proportions.as_ref().unwrap().p_value)
    );
    assert_eq!(
        m["effect"],
        json!(expected.effect_gate.as_ref().unwrap().value)
    );
    assert_eq!(m["measure"], "ratio");
    // A decided verdict does not move.
    let (_, again) = s.get(&verdict).await;
    assert_eq!(again, v);

    let (code, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(d["status"], "fail");
    assert_eq!(d["model"]["name"], "errors");
    assert_eq!(d["request"]["key"], "k1");
    assert_eq!(d["interval_seconds"], 30.0);
    let intervals = d["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 2);
    assert_eq!(intervals[0]["seq"], 1);
    assert_eq!(
        intervals[0]["judgment"],
        serde_json::to_value(&first).unwrap()
    );
    assert_eq!(
        intervals[1]["judgment"],
        serde_json::to_value(&last).unwrap()
    );
    assert!(intervals[0].get("data").is_none());
    let (_, d) = s.get(&format!("/api/v1/analyses/{id}?data=true")).await;
    assert_eq!(
        d["intervals"][1]["data"]["error-rate"]["canary"],
        json!({"requests": 10_000, "errors": 90})
    );
}

fn ids(v: &Value) -> Vec<String> {
    v["analyses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_list_filters_by_status() {
    let s = start().await;
    let a = s.create(&request("a")).await;
    let b = s.create(&request("b")).await;
    s.record(&b, Status::Pass, 10).await;
    let (_, all) = s.get("/api/v1/analyses").await;
    assert_eq!(ids(&all), vec![a.clone(), b.clone()]);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(all["unreadable"], json!([]));
    let (_, running) = s.get("/api/v1/analyses?status=running").await;
    assert_eq!(ids(&running), vec![a]);
    let (_, passed) = s.get("/api/v1/analyses?status=pass").await;
    assert_eq!(ids(&passed), vec![b]);
    let p = &passed["analyses"][0];
    assert_eq!(p["key"], "b");
    assert_eq!(p["model"], "errors");
    assert_eq!(p["verdict"], "pass");
    assert_eq!(
        p["canary"],
        json!({"namespace": "shop", "workload": "checkout"})
    );
    assert_eq!(
        p["baseline"],
        json!({"namespace": "shop", "workload": "checkout-primary"})
    );
    assert_eq!(p["progress"]["intervals"], 1);
    assert_eq!(p["progress"]["planned"], 10);
    assert!(p["score"].is_number());
    assert!(p["decided_at"].as_str().unwrap().ends_with('Z'));
    assert!(p.get("judgment").is_none() && p.get("cumulative").is_none());
    let (code, v) = s.get("/api/v1/analyses?status=done").await;
    assert_eq!(code, 400);
    assert_eq!(error_of(&v).0, "invalid_query");
    assert_eq!(error_of(&v).1, Some("status"));
    s.assert_serving().await;
}

#[tokio::test]
async fn the_list_pages_oldest_first_with_a_cursor() {
    let s = start().await;
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(s.create(&request(&format!("p{n}"))).await);
    }
    s.record(&created[3], Status::Fail, 90).await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/analyses?limit=3".to_string();
    let mut pages = 0;
    loop {
        let (code, page) = s.get(&path).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        assert!(page["analyses"].as_array().unwrap().len() <= 3);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/analyses?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every analysis once, in creation order");
    // The same walk again gives the same pages.
    let (_, first) = s.get("/api/v1/analyses?limit=3").await;
    assert_eq!(ids(&first), created[..3]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = s
        .get(&format!("/api/v1/analyses?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), created[3..6]);
    // A cursor also works with a status filter: the running ones after the first page.
    let (_, running) = s
        .get(&format!("/api/v1/analyses?status=running&cursor={cursor}"))
        .await;
    assert_eq!(ids(&running), created[4..]);

    for (query, field) in [
        ("cursor=nonsense", "cursor"),
        ("cursor=12.zz", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
    ] {
        let (code, v) = s.get(&format!("/api/v1/analyses?{query}")).await;
        assert_eq!(code, 400, "{query}: {v}");
        assert_eq!(error_of(&v).0, "invalid_query", "{query}");
        assert_eq!(error_of(&v).1, Some(field), "{query}");
    }
    let (code, all) = s.get("/api/v1/analyses?limit=1000").await;
    assert_eq!((code, ids(&all)), (200, created));
}

#[tokio::test]
async fn an_unreadable_row_is_named_and_the_others_are_served() {
    let s = start().await;
    let good = s.create(&request("good")).await;
    let status = s.create(&request("bad-status")).await;
    let model = s.create(&request("bad-model")).await;
    let judgment = s.create(&request("bad-judgment")).await;
    let last = s.create(&request("last")).await;
    s.record(&judgment, Status::Running, 10).await;
    // Damage written straight into the database, as a bad disk or a bad hand would.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.database.display()))
        .await
        .unwrap();
    for (id, set) in [
        (&status, "status = 'paused'"),
        (&model, "model = '{\"name\": \"errors\", '"),
        (&judgment, "judgment = '{\"verdict\": \"pass\"'"),
    ] {
        sqlx::query(&format!("UPDATE analyses SET {set} WHERE id = ?"))
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
    }

    let (code, list) = s.get("/api/v1/analyses").await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(ids(&list), [good.clone(), last.clone()]);
    assert_eq!(
        list["unreadable"],
        json!([
            {"id": status, "reason": "status: unknown status `paused`"},
            {"id": model, "reason": "model: not valid JSON"},
            {"id": judgment, "reason": "judgment: not valid JSON"},
        ])
    );
    // A page of only bad rows is still a page, and the walk goes on past it.
    let (code, page) = s.get("/api/v1/analyses?limit=2").await;
    assert_eq!(code, 200);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = s
        .get(&format!("/api/v1/analyses?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&page), Vec::<String>::new());
    assert_eq!(page["unreadable"].as_array().unwrap().len(), 2);

    for (id, field) in [
        (&status, "status"),
        (&model, "model"),
        (&judgment, "judgment"),
    ] {
        for path in [
            format!("/api/v1/analyses/{id}"),
            format!("/api/v1/analyses/{id}/verdict"),
        ] {
            let (code, v) = s.get(&path).await;
            assert_eq!(code, 500, "{path}: {v}");
            let (err, _, message) = error_of(&v);
            assert_eq!(err, "corrupt_record", "{path}");
            assert!(
                message.contains(&format!("stored analysis {id} {field} is corrupt")),
                "{message}"
            );
        }
    }
    for id in [&good, &last] {
        let (code, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
        assert_eq!(code, 200, "{d}");
    }
    let (code, _) = s.get("/readyz").await;
    assert_eq!(code, 200, "a bad row is not a bad database");
}

#[tokio::test]
async fn cancelling_stops_a_running_analysis_only() {
    let mut s = start().await;
    let id = s.create(&request("c")).await;
    scheduled(&mut s);
    let (code, v) = s.delete(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("cancelled at ")
    );
    assert_eq!(scheduled(&mut s), vec![format!("cancel {id}")]);
    let (_, verdict) = s.get(&format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(verdict["status"], "cancelled");

    // Again: still cancelled, and nothing new for the runner.
    let (code, _) = s.delete(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(code, 200);
    assert!(scheduled(&mut s).is_empty());

    // A late interval from the runner does not revive it.
    let a = s.store.get(&id).await.unwrap().unwrap();
    let late = common::interval_update(&a, Status::Pass, 10);
    assert!(!s.store.record_interval(&id, &late).await.unwrap());
    let (_, verdict) = s.get(&format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(verdict["status"], "cancelled");

    let done = s.create(&request("d")).await;
    s.record(&done, Status::Pass, 10).await;
    let (code, v) = s.delete(&format!("/api/v1/analyses/{done}")).await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(error_of(&v).0, "already_decided");

    let text = s.metrics.encode();
    assert!(
        text.contains("augury_verdicts_total{outcome=\"cancelled\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_ids_routes_and_methods_are_json_404_and_405() {
    let s = start().await;
    for path in ["/api/v1/analyses/nope", "/api/v1/analyses/nope/verdict"] {
        let (code, v) = s.get(path).await;
        assert_eq!(code, 404, "{path}");
        let (err, _, message) = error_of(&v);
        assert_eq!(err, "not_found");
        assert!(message.contains("`nope`"), "{message}");
    }
    let (code, v) = s.delete("/api/v1/analyses/nope").await;
    assert_eq!((code, error_of(&v).0), (404, "not_found"));
    let (code, v) = s.get("/api/v2/things").await;
    assert_eq!((code, error_of(&v).0), (404, "not_found"));
    let r = s.http.put(s.url("/api/v1/analyses")).send().await.unwrap();
    let (code, v) = common::json_of(r).await;
    assert_eq!((code, error_of(&v).0), (405, "method_not_allowed"));
    s.assert_serving().await;
}

#[tokio::test]
async fn bad_requests_get_precise_4xx_and_the_server_goes_on() {
    let s = start().await;
    let post_raw = |body: Vec<u8>| {
        s.http
            .post(s.url("/api/v1/analyses"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let mut unknown_model = request("x");
    unknown_model["model"] = json!("nope");
    let (code, v) = s.post("/api/v1/analyses", &unknown_model).await;
    assert_eq!(code, 400);
    let (err, field, message) = error_of(&v);
    assert_eq!((err, field), ("invalid_request", Some("model")));
    assert!(message.contains("unknown model `nope`"), "{message}");
    assert!(message.contains("http-red"), "{message}");
    s.assert_serving().await;

    let mut missing = request("x");
    missing["canary"] = json!({"namespace": "shop"});
    let (code, v) = s.post("/api/v1/analyses", &missing).await;
    assert_eq!(code, 400);
    let (err, field, message) = error_of(&v);
    assert_eq!((err, field), ("invalid_request", Some("canary")));
    assert!(message.contains("missing `workload`"), "{message}");
    s.assert_serving().await;

    let (code, v) = common::json_of(post_raw(b"{\"key\": \"x\",".to_vec()).await.unwrap()).await;
    assert_eq!(code, 400);
    let (err, _, message) = error_of(&v);
    assert_eq!(err, "malformed_json");
    assert!(message.contains("line 1 column"), "{message}");
    s.assert_serving().await;

    let mut wrong_type = request("x");
    wrong_type["interval"] = json!(30);
    let (code, v) = s.post("/api/v1/analyses", &wrong_type).await;
    assert_eq!(code, 400);
    assert_eq!(error_of(&v).0, "invalid_body");
    assert_eq!(error_of(&v).1, Some("interval"));
    s.assert_serving().await;

    let huge = vec![b' '; 2 << 20];
    let (code, v) = common::json_of(post_raw(huge).await.unwrap()).await;
    assert_eq!(code, 413);
    let (err, _, message) = error_of(&v);
    assert_eq!(err, "payload_too_large");
    assert!(message.contains("1048576 bytes"), "{message}");
    s.assert_serving().await;

    let (_, list) = s.get("/api/v1/analyses").await;
    assert_eq!(list["analyses"], json!([]), "nothing was created");
    assert_eq!(list["next_cursor"], Value::Null);
}

#[tokio::test]
async fn judge_gives_what_the_judge_gives() {
    let s = start().await;
    let model: Value =
        serde_json::to_value(Model::from_yaml(ERRORS_MODEL, "errors").unwrap()).unwrap();
    let metrics = json!({"error-rate": {
        "baseline": {"requests": 10000, "errors": 10},
        "canary": {"requests": 10000, "errors": 90}}});
    for model_ref in [json!("errors"), model] {
        let (code, v) = s
            .post(
                "/api/v1/judge",
                &json!({"model": model_ref, "metrics": metrics}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        let expected = judge(
            &Model::from_yaml(ERRORS_MODEL, "errors").unwrap(),
            &common::counts(90),
            &JudgeOptions::default(),
        )
        .unwrap();
        assert_eq!(v, serde_json::to_value(&expected).unwrap());
        assert_eq!(v["verdict"], "fail");
    }

    // No model: the default one, a distribution judged by Mann-Whitney U.
    let baseline: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i)).collect();
    let canary: Vec<f64> = (0..40).map(|i| 112.0 + f64::from(i)).collect();
    let (code, v) = s
        .post(
            "/api/v1/judge",
            &json!({"metrics": {"value": {"baseline": baseline, "canary": canary}},
                    "method": "asymptotic"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let data = [(
        "value".to_string(),
        augury::judge::MetricData::Samples { baseline, canary },
    )]
    .into();
    let options = JudgeOptions {
        method: augury::stats::Method::Asymptotic,
        alternative: None,
    };
    let expected = judge(&augury::model::builtin("default").unwrap(), &data, &options).unwrap();
    assert_eq!(v, serde_json::to_value(&expected).unwrap());
    assert_eq!(v["metrics"][0]["mann_whitney"]["method"], "asymptotic");

    let (code, v) = s
        .post("/api/v1/judge", &json!({"model": "nope", "metrics": {}}))
        .await;
    assert_eq!((code, error_of(&v).1), (400, Some("model")));
    let (code, v) = s
        .post(
            "/api/v1/judge",
            &json!({"model": "errors", "metrics": {"latency": {"baseline": [1.0], "canary": [2.0]}}}),
        )
        .await;
    assert_eq!(code, 400);
    let (err, field, message) = error_of(&v);
    assert_eq!((err, field), ("invalid_request", Some("metrics.latency")));
    assert!(message.contains("no such metric"), "{message}");
    let (code, v) = s
        .post(
            "/api/v1/judge",
            &json!({"model": "errors", "metrics": {"error-rate": {"baseline": {"requests": 5, "errors": 9}, "canary": {"requests": 5, "errors": 0}}}}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(error_of(&v).1, Some("metrics.error-rate"));
    s.assert_serving().await;
}

fn flagger(name: &str, checksum: &str, metadata: Value) -> Value {
    json!({"name": name, "namespace": "shop", "phase": "Progressing",
           "checksum": checksum, "metadata": metadata})
}

#[tokio::test]
async fn the_flagger_gate_answers_with_the_codes_flagger_acts_on() {
    let s = start().await;
    let meta = json!({"model": "errors", "lifetime": "2m"});
    let gate = "/api/v1/gates/flagger";
    let confirm = "/api/v1/gates/flagger?mode=confirm-promotion";

    // Running: the rollout goes on, promotion waits.
    let (code, v) = s
        .post(gate, &flagger("checkout", "abc1", meta.clone()))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["mode"], "gate");
    assert_eq!(v["phase"], "Progressing");
    assert_eq!(v["analysis"]["key"], "flagger/shop/checkout/abc1");
    assert_eq!(v["analysis"]["progress"]["planned"], 4);
    let id = v["analysis"]["id"].as_str().unwrap().to_string();
    let (_, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(
        d["request"]["baseline"],
        json!({"namespace": "shop", "workload": "checkout-primary"})
    );
    assert_eq!(
        d["request"]["canary"],
        json!({"namespace": "shop", "workload": "checkout"})
    );
    let (code, v) = s
        .post(confirm, &flagger("checkout", "abc1", meta.clone()))
        .await;
    assert_eq!(code, 423, "{v}");
    assert_eq!(v["allowed"], false);
    assert_eq!(
        v["analysis"]["id"],
        id.as_str(),
        "one revision, one analysis"
    );

    // Failed: every mode refuses with a status Flagger counts as a failed check.
    s.record(&id, Status::Fail, 90).await;
    for path in [gate, confirm] {
        let (code, v) = s
            .post(path, &flagger("checkout", "abc1", meta.clone()))
            .await;
        assert_eq!(code, 409, "{v}");
        assert_eq!(v["allowed"], false);
        assert!(
            v["reason"].as_str().unwrap().starts_with("canary fail"),
            "{v}"
        );
    }

    // The next revision is a new analysis; once it passes, promotion may go on.
    let mut meta_confirm = meta.clone();
    meta_confirm["mode"] = json!("confirm-promotion");
    let (code, v) = s
        .post(gate, &flagger("checkout", "abc2", meta.clone()))
        .await;
    assert_eq!(code, 200);
    let id2 = v["analysis"]["id"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    let (code, _) = s
        .post(gate, &flagger("checkout", "abc2", meta_confirm.clone()))
        .await;
    assert_eq!(code, 423, "mode from metadata");
    s.record(&id2, Status::Pass, 10).await;
    for path in [gate, confirm] {
        let (code, v) = s
            .post(path, &flagger("checkout", "abc2", meta.clone()))
            .await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["allowed"], true);
    }
    s.assert_serving().await;
}

#[tokio::test]
async fn the_flagger_gate_names_what_its_payload_lacks() {
    let s = start().await;
    let gate = "/api/v1/gates/flagger";
    // http-red needs service.version too; the workload alone does not make its scope.
    let (code, v) = s.post(gate, &flagger("checkout", "c1", json!({}))).await;
    assert_eq!(code, 400, "{v}");
    let (err, field, message) = error_of(&v);
    assert_eq!((err, field), ("invalid_request", Some("metadata.baseline")));
    assert!(message.contains("`service.version`"), "{message}");
    assert!(message.contains("scope.<name>"), "{message}");

    // With the versions in the metadata it is a valid http-red analysis.
    let meta = json!({"baseline.service.version": "1.4.1", "canary.service.version": "1.4.2",
                      "workload_scope": "service.name"});
    let (code, v) = s.post(gate, &flagger("checkout", "c1", meta)).await;
    assert_eq!(code, 200, "{v}");
    let id = v["analysis"]["id"].as_str().unwrap();
    let (_, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(
        d["request"]["canary"],
        json!({"service.name": "checkout", "service.version": "1.4.2"})
    );

    let (code, v) = s
        .post(
            "/api/v1/gates/flagger?mode=promote",
            &flagger("checkout", "c2", json!({"model": "errors"})),
        )
        .await;
    assert_eq!((code, error_of(&v).1), (400, Some("mode")));
    s.assert_serving().await;
}

/// Argo Rollouts' Web provider posts the same body every measurement and reads
/// `{$.status}`: `running` is neither success nor failure, then `pass` or `fail`.
#[tokio::test]
async fn argo_web_provider_polls_see_running_then_the_verdict() {
    let s = start().await;
    let body = request("checkout-rollout-6d5f7c9b8");
    let (code, first) = s.post("/api/v1/analyses", &body).await;
    assert_eq!(code, 201);
    assert_eq!(first["status"], "running");
    let id = first["id"].as_str().unwrap().to_string();
    let (code, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("running")));
    s.record(&id, Status::Running, 10).await;
    let (_, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!(v["status"], "running");
    s.record(&id, Status::Pass, 10).await;
    let (code, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("pass")));
    let (_, v) = s.get(&format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(v["status"], "pass");
}

#[tokio::test]
async fn mutating_routes_need_a_token_when_auth_is_on() {
    let s = start_with(Options {
        auth: Some(vec!["s3cret".into(), "other".into()]),
        ..Options::default()
    })
    .await;
    let post = |token: Option<&str>| {
        let r = s
            .http
            .post(s.url("/api/v1/analyses"))
            .json(&request("auth"));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
        .send()
    };
    let r = post(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (_, v) = common::json_of(r).await;
    assert_eq!(error_of(&v).0, "unauthorized");
    assert_eq!(post(Some("s3cre")).await.unwrap().status().as_u16(), 401);
    let r = post(Some("other")).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (_, v) = common::json_of(r).await;
    let id = v["id"].as_str().unwrap().to_string();

    // Reading needs no token.
    let (code, _) = s.get(&format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(code, 200);
    let (code, _) = s.delete(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(code, 401);
    let (code, _) = s.post("/api/v1/judge", &json!({"metrics": {}})).await;
    assert_eq!(code, 401);

    // Flagger cannot send headers: its metadata carries the token.
    let (code, _) = s
        .post(
            "/api/v1/gates/flagger",
            &flagger("checkout", "t1", json!({"model": "errors"})),
        )
        .await;
    assert_eq!(code, 401);
    let (code, v) = s
        .post(
            "/api/v1/gates/flagger",
            &flagger(
                "checkout",
                "t1",
                json!({"model": "errors", "token": "s3cret"}),
            ),
        )
        .await;
    assert_eq!(code, 200, "{v}");
}

#[tokio::test]
async fn health_metrics_and_the_openapi_document() {
    let s = start().await;
    s.assert_serving().await;
    let (code, v) = s.get("/readyz").await;
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")));

    s.create(&request("m")).await;
    let text = s.metrics_text().await;
    assert!(
        text.contains("augury_analyses{status=\"running\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("augury_http_requests_total{route=\"/api/v1/analyses\",code=\"201\"} 1\n"),
        "{text}"
    );
    let r = s
        .http
        .get(s.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));

    let (code, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(code, 200);
    for path in [
        "/api/v1/analyses",
        "/api/v1/analyses/{id}",
        "/api/v1/analyses/{id}/verdict",
        "/api/v1/judge",
        "/api/v1/gates/flagger",
        "/api/v1/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    for schema in [
        "VerdictView",
        "AnalysisRequest",
        "Judgment",
        "ErrorBody",
        "FlaggerPayload",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_with(Options {
        limits: Limits {
            request_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..Options::default()
    })
    .await;
    // A client that promises a body and never sends it.
    let mut conn = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    conn.write_all(
        b"POST /api/v1/analyses HTTP/1.1\r\nhost: augury\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("}}") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    s.assert_serving().await;
}

/// An inline model whose metric reads Prometheus is checked against this daemon: refused
/// without Prometheus, refused when its query does not exist, accepted when it does.
#[tokio::test]
async fn inline_models_are_checked_against_the_query_packs() {
    let mut body = request("inline-prom");
    body["baseline"]["version"] = json!("v1");
    body["canary"]["version"] = json!("v2");
    body["model"] = json!({
        "name": "mesh",
        "scope": ["namespace", "workload", "version"],
        "metrics": [
            {"name": "latency", "kind": "distribution", "source": {"otlp": {"span_kind": "server"}}},
            {"name": "errors", "kind": "error-ratio",
             "source": {"prometheus": {"pack": "istio", "query": "no-such-query"}}},
        ],
    });
    let s = start().await;
    let (code, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!(code, 400, "{v}");
    let (err, field, message) = error_of(&v);
    assert_eq!(
        (err, field),
        (
            "invalid_request",
            Some("model.metrics[1].source.prometheus")
        )
    );
    assert!(message.contains("no Prometheus configured"), "{message}");

    let s = start_with(Options {
        packs: Some(augury::ingest::prometheus::PackCatalog::builtin()),
        ..Options::default()
    })
    .await;
    let (code, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!(code, 400, "{v}");
    let (_, field, message) = error_of(&v);
    assert_eq!(field, Some("model.metrics[1].source.prometheus"));
    assert!(message.contains("no query `no-such-query`"), "{message}");

    body["model"]["metrics"][1]["source"]["prometheus"]["query"] = json!("error-ratio");
    let (code, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!(code, 201, "{v}");
}
