//! Store faults, end to end, on the real `augury serve` binary: its database on a small
//! tmpfs that fills up and is freed again while analyses are created and judged; and a
//! database holding an unreadable running analysis at start-up.
//!
//! Mounting needs root (as in CI). A run without it fails saying so: skipping would
//! report a pass for something never checked.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::Daemon;

/// Longest any awaited state may take to arrive.
const DEADLINE: Duration = Duration::from_secs(90);
/// Pause between two polls of a state.
const POLL: Duration = Duration::from_millis(100);

fn http() -> reqwest::Client {
    support::http::client(Duration::from_secs(30))
}

async fn post(api: &str, path: &str, body: &Value) -> (u16, Value) {
    support::http::post(&http(), api, path, body).await
}

async fn get(api: &str, path: &str) -> (u16, Value) {
    support::http::get(&http(), api, path).await
}

/// An analysis judged every second for an hour, so it keeps writing intervals.
fn request(key: &str) -> Value {
    json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": "checkout", "service.version": "1.0.0"},
        "canary": {"service.name": "checkout", "service.version": key},
        "interval": "1s", "lifetime": "1h",
    })
}

/// Polls `check` until it gives a value, failing the test at the deadline with `what`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(POLL).await;
    }
}

fn require_root() {
    let uid = Command::new("id").arg("-u").output().expect("`id -u` runs");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    assert_eq!(
        uid, "0",
        "this test mounts a tmpfs and must run as root (uid 0), not uid {uid}; \
         run it as root (CI does) rather than skip it"
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped, whatever the
/// test did (declare it before anything that keeps files open on it).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file there (a daemon not yet reaped): detach now,
            // the kernel frees it when the last file closes.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 16 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Whatever is buffered is the kernel's now; an ENOSPC here is the point.
    let _ = file.sync_all();
    written
}

/// Every create the daemon acknowledged (201), by id, with its key.
#[derive(Default)]
struct Acknowledged(BTreeMap<String, String>);

impl Acknowledged {
    /// Creates analysis `key`; returns the status and body, remembering a 201.
    async fn create(&mut self, api: &str, key: &str) -> (u16, Value) {
        let (status, v) = post(api, "/api/v1/analyses", &request(key)).await;
        if status == 201 {
            self.0
                .insert(v["id"].as_str().unwrap().to_string(), key.to_string());
        }
        (status, v)
    }
}

async fn intervals(api: &str, id: &str) -> u64 {
    let (status, v) = get(api, &format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(status, 200, "{v}");
    v["progress"]["intervals"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_makes_the_daemon_not_ready_and_it_recovers_without_losing_an_acknowledged_create()
 {
    let tmpfs = Tmpfs::mount("4m");
    let database: PathBuf = tmpfs.path().join("a.db");
    let daemon = Daemon::on(&database).start();
    let api_owned = daemon.api.clone();
    let api: &str = &api_owned;
    let mut acked = Acknowledged::default();

    // Load: analyses created, each judged every second.
    for n in 0..20 {
        let (status, v) = acked.create(api, &format!("before-{n}")).await;
        assert_eq!(status, 201, "{v}");
    }
    let (status, _) = get(api, "/readyz").await;
    assert_eq!(status, 200);
    let early_owned = acked.0.keys().next().unwrap().clone();
    let early: &str = &early_owned;
    until("the runner judging", move || async move {
        (intervals(api, early).await >= 1).then_some(())
    })
    .await;

    // The disk fills up.
    let filler = tmpfs.path().join("filler");
    assert!(fill(&filler) > 0);
    // Creates go on until the first refusal; those acknowledged before it count.
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    let refused = loop {
        n += 1;
        let (status, v) = acked.create(api, &format!("during-{n}")).await;
        if status != 201 {
            break (status, v);
        }
        assert!(
            Instant::now() < deadline,
            "no create refused on a full disk"
        );
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert_eq!(
        refused.1["error"]["code"], "store_unavailable",
        "{}",
        refused.1
    );
    let not_ready = until("/readyz not ready", move || async move {
        let (status, v) = get(api, "/readyz").await;
        (status != 200).then_some((status, v))
    })
    .await;
    assert_eq!(not_ready.0, 503, "{}", not_ready.1);
    assert_eq!(not_ready.1["error"]["code"], "store_unavailable");
    let message = not_ready.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("full"), "{message}");

    // Room again: the daemon recovers by itself, no restart.
    std::fs::remove_file(&filler).unwrap();
    until("/readyz ready again", move || async move {
        (get(api, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let (status, v) = acked.create(api, "after").await;
    assert_eq!(status, 201, "{v}");
    let after_owned = v["id"].as_str().unwrap().to_string();
    let after: &str = &after_owned;
    until(
        "intervals recorded after the recovery",
        move || async move { (intervals(api, after).await >= 2).then_some(()) },
    )
    .await;
    let before = intervals(api, early).await;
    until(
        "an analysis from before the fault advancing",
        move || async move { (intervals(api, early).await > before).then_some(()) },
    )
    .await;

    // A crash, then a restart: every acknowledged create is there.
    daemon.kill9();
    let daemon = Daemon::on(&database).start();
    let mut listed = BTreeMap::new();
    let mut path = "/api/v1/analyses?limit=7".to_string();
    loop {
        let (status, page) = get(&daemon.api, &path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["unreadable"], json!([]));
        for a in page["analyses"].as_array().unwrap() {
            listed.insert(
                a["id"].as_str().unwrap().to_string(),
                a["key"].as_str().unwrap().to_string(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/analyses?limit=7&cursor={c}"),
            None => break,
        }
    }
    for (id, key) in &acked.0 {
        assert_eq!(
            listed.get(id),
            Some(key),
            "acknowledged create {key} ({id}) lost"
        );
        let (status, d) = get(&daemon.api, &format!("/api/v1/analyses/{id}")).await;
        assert_eq!(
            (status, d["key"].as_str()),
            (200, Some(key.as_str())),
            "{d}"
        );
    }
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_starts_with_an_unreadable_running_analysis_and_serves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("a.db");
    let daemon = Daemon::on(&database).start();
    let (status, good) = post(&daemon.api, "/api/v1/analyses", &request("good")).await;
    assert_eq!(status, 201, "{good}");
    let good = good["id"].as_str().unwrap().to_string();
    let (status, bad) = post(&daemon.api, "/api/v1/analyses", &request("bad")).await;
    assert_eq!(status, 201, "{bad}");
    let bad = bad["id"].as_str().unwrap().to_string();
    assert!(daemon.terminate().success());

    // The running analysis's request is damaged while the daemon is down.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE analyses SET request = '{\"key\": \"bad\", ' WHERE id = ?")
        .bind(&bad)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;

    let daemon = Daemon::on(&database).start();
    let (status, _) = get(&daemon.api, "/readyz").await;
    assert_eq!(status, 200);
    let (status, list) = get(&daemon.api, "/api/v1/analyses").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["analyses"][0]["id"], good.as_str());
    assert_eq!(
        list["unreadable"],
        json!([{"id": bad, "reason": "request: not valid JSON"}])
    );
    let (status, v) = get(&daemon.api, &format!("/api/v1/analyses/{bad}")).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (500, Some("corrupt_record"))
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("stored analysis {bad} request is corrupt")),
        "{message}"
    );
    // The readable analysis resumed: it is judged again after the restart.
    let (api, id): (&str, &str) = (&daemon.api, &good);
    let before = intervals(api, id).await;
    until(
        "the readable analysis judged after the restart",
        move || async move { (intervals(api, id).await > before).then_some(()) },
    )
    .await;
    // The daemon is still up, and says which row it skipped.
    let (status, _) = get(&daemon.api, "/healthz").await;
    assert_eq!(status, 200);
    assert!(
        daemon
            .log_json()
            .iter()
            .any(|l| l["fields"]["analysis"] == bad.as_str()),
        "the unreadable row is logged by id"
    );
    assert!(daemon.terminate().success());
}
