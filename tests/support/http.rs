//! JSON over the daemon's HTTP API, answered with the status and the body (`null` when
//! the body is not JSON), for tests that look at refusals as closely as at successes.
//! Each test brings its own client, with the timeout its scenario allows.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

/// A client whose every request gives up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// `POST api+path` with `body` as JSON.
pub async fn post(http: &reqwest::Client, api: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http
        .post(format!("{api}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// `GET api+path`.
pub async fn get(http: &reqwest::Client, api: &str, path: &str) -> (u16, Value) {
    answer(http.get(format!("{api}{path}")).send().await.unwrap()).await
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
