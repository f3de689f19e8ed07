//! The store's contract, through the public `Store` API, on both backends: every test
//! runs once on a SQLite file in a temp dir (`sqlite::…`) and once on a fresh database of
//! a real PostgreSQL server (`postgres::…`), one server per test binary. What only
//! PostgreSQL has (a server that goes away and comes back) is tested on a server of its
//! own, which the test stops and starts.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use augury::analysis::{Analysis, AnalysisRequest, Status, ValidRequest};
use augury::model::Catalog;
use augury::notify::{Attempt, DeliveryState, Event, Notification, Outcome, Recipient};
use augury::store::{Change, ChangeKind, Cursor, IntervalUpdate, Store, StoreError};
use support::postgres::Postgres;

/// The PostgreSQL server the tests of this binary share, started by the first that needs
/// it; each test gets a database of its own.
fn server() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(Postgres::start)
}

/// A store on an empty database, and how to open it again.
struct Db {
    url: String,
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        Db {
            store: Store::open(&url).await.unwrap(),
            url,
            _dir: Some(dir),
        }
    }

    async fn postgres(name: &str) -> Db {
        let url = server().fresh_database(name);
        Db {
            store: Store::open(&url).await.unwrap(),
            url,
            _dir: None,
        }
    }

    /// Another store on the same database, as another replica (or process) has.
    async fn another(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// Runs `sql` with `id` bound to `$1` outside the store, as an operator (or a bug)
    /// would.
    async fn outside(&self, sql: &str, id: &str) {
        if self.url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// Runs each named test once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Db::postgres(stringify!($test)).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    create_then_get,
    create_is_idempotent_on_key,
    concurrent_creates_of_one_key_make_one_analysis,
    lists_and_pages_follow_creation_order,
    counts_by_status,
    an_interval_is_recorded_only_if_next_and_running,
    concurrent_records_of_one_interval_advance_once,
    cancel_stops_only_a_running_analysis,
    a_pass_supersedes_earlier_failures_of_the_same_canary,
    notifications_are_queued_with_their_change_and_delivered_in_order,
    unreadable_rows_are_quarantined_and_the_others_served,
    a_fresh_store_is_ready,
    gate_revisions_and_asks_are_kept,
    kayenta_configs_are_stored_listed_replaced_and_deleted,
);

fn request(key: &str, service: &str, baseline: &str, canary: &str) -> ValidRequest {
    let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": service, "service.version": baseline},
        "canary": {"service.name": service, "service.version": canary},
        "interval": "1s", "lifetime": "1h"}))
    .unwrap();
    r.validate(&Catalog::builtin()).unwrap()
}

/// A request for canary version 2 of service `s` against version 1.
fn simple(key: &str) -> ValidRequest {
    request(key, "s", "1", "2")
}

fn recipient(notifier: &str, events: &[Event]) -> Recipient {
    Recipient {
        notifier: notifier.into(),
        events: events.to_vec(),
    }
}

/// The next interval of `a` as the runner would write it, moving it to `status`.
fn next_interval(a: &Analysis, status: Status) -> IntervalUpdate {
    common::interval_update(a, status, 12)
}

/// Records the next interval of analysis `id` (as it stands now), which must advance it.
async fn advance(store: &Store, id: &str, status: Status) -> Analysis {
    let a = store.get(id).await.unwrap().unwrap();
    assert!(
        store
            .record_interval(id, &next_interval(&a, status))
            .await
            .unwrap()
    );
    store.get(id).await.unwrap().unwrap()
}

/// Every change `store` announces, as (id, kind).
fn heard(store: &Store) -> Arc<Mutex<Vec<(String, ChangeKind)>>> {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    store.on_change(Arc::new(move |c: &Change<'_>| {
        sink.lock().unwrap().push((c.id.to_string(), c.kind));
    }));
    heard
}

fn ids(analyses: &[Analysis]) -> Vec<&str> {
    analyses.iter().map(|a| a.id.as_str()).collect()
}

/// (notifier, event, state) of each row.
fn outbox(rows: &[Notification]) -> Vec<(&str, Event, DeliveryState)> {
    rows.iter()
        .map(|n| (n.notifier.as_str(), n.event, n.state))
        .collect()
}

async fn create_then_get(db: Db) {
    let (a, created) = db.store.create(&simple("k"), 1_000).await.unwrap();
    assert!(created);
    assert_eq!((a.key.as_str(), a.status), ("k", Status::Running));
    assert_eq!((a.created_ms, a.next_due_ms), (1_000, 2_000));
    assert_eq!((a.interval_ms, a.lifetime_ms), (1_000, 3_600_000));
    assert_eq!((a.intervals, a.decided_ms, a.score), (0, None, None));
    assert!(a.judgment.is_none() && a.cumulative.is_empty());
    assert_eq!(a.model.name, "http-red");
    assert_eq!(
        a.request.canary.get("service.version").map(String::as_str),
        Some("2")
    );

    let back = db.store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(format!("{back:?}"), format!("{a:?}"));
    assert!(db.store.get("no-such-id").await.unwrap().is_none());
    assert!(db.store.intervals(&a.id).await.unwrap().is_empty());
    // Another store on the same database reads the same row.
    let other = db.another().await;
    let there = other.get(&a.id).await.unwrap().unwrap();
    assert_eq!(format!("{there:?}"), format!("{a:?}"));
}

async fn create_is_idempotent_on_key(db: Db) {
    let heard = heard(&db.store);
    let pager = [recipient("pager", &[Event::Started])];
    let (a, created) = db
        .store
        .create_notifying(&simple("k"), &pager, 1_000)
        .await
        .unwrap();
    assert!(created);
    // The same key again, with another request: the first analysis, unchanged.
    let (again, created) = db
        .store
        .create_notifying(&request("k", "s", "1", "3"), &pager, 5_000)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(format!("{again:?}"), format!("{a:?}"));
    assert_eq!(ids(&db.store.list(None).await.unwrap()), [a.id.as_str()]);
    assert_eq!(
        *heard.lock().unwrap(),
        [(a.id.clone(), ChangeKind::Created)],
        "only the create that inserted is announced"
    );
    let rows = db.store.notifications(&a.id).await.unwrap();
    assert_eq!(
        outbox(&rows),
        [("pager", Event::Started, DeliveryState::Pending)]
    );
}

async fn concurrent_creates_of_one_key_make_one_analysis(db: Db) {
    // Two stores on one database, as two replicas have; each key is created four times
    // at once, twice through each.
    let stores = [db.store.clone(), db.another().await];
    let heard: Vec<_> = stores.iter().map(heard).collect();
    for key in ["k0", "k1", "k2", "k3", "k4"] {
        let mut creates = tokio::task::JoinSet::new();
        for n in 0..4 {
            let store = stores[n % 2].clone();
            let request = simple(key);
            creates.spawn(async move { store.create(&request, 1_000).await.unwrap() });
        }
        let answers: Vec<(Analysis, bool)> = creates.join_all().await;
        let inserted = answers.iter().filter(|(_, created)| *created).count();
        assert_eq!(inserted, 1, "{key}: one create inserts");
        let id = &answers[0].0.id;
        assert!(
            answers.iter().all(|(a, _)| &a.id == id),
            "{key}: every create answers with the same analysis"
        );
    }
    let all = db.store.list(None).await.unwrap();
    let mut keys: Vec<&str> = all.iter().map(|a| a.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
    let created: usize = heard.iter().map(|h| h.lock().unwrap().len()).sum();
    assert_eq!(
        created, 5,
        "each analysis is announced once, by the store that made it"
    );
}

async fn lists_and_pages_follow_creation_order(db: Db) {
    // Pairs share a creation time, so the order within them is by id.
    for n in 0..7i64 {
        db.store
            .create(&simple(&format!("k{n}")), 1_000 + n / 2)
            .await
            .unwrap();
    }
    let (b, _) = db.store.create(&simple("b"), 0).await.unwrap();
    db.store.cancel(&b.id, 5).await.unwrap();
    let all = db.store.list(None).await.unwrap();
    let order: Vec<(i64, &str)> = all.iter().map(|a| (a.created_ms, a.id.as_str())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "oldest first, then by id");
    assert_eq!((all.len(), all[0].key.as_str()), (8, "b"));

    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = db.store.list_page(None, cursor.as_ref(), 3).await.unwrap();
        pages += 1;
        assert!(page.analyses.len() <= 3 && page.unreadable.is_empty());
        seen.extend(page.analyses.into_iter().map(|s| s.id));
        match page.next {
            Some(next) => cursor = Some(Cursor::decode(&next.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));
    assert_eq!(pages, 3);
    let whole = db.store.list_page(None, None, 8).await.unwrap();
    assert_eq!(whole.next, None, "no empty page after the last one");

    let running = db
        .store
        .list_page(Some(Status::Running), None, 4)
        .await
        .unwrap();
    let rest = db
        .store
        .list_page(Some(Status::Running), running.next.as_ref(), 4)
        .await
        .unwrap();
    let running: Vec<String> = running
        .analyses
        .into_iter()
        .chain(rest.analyses)
        .map(|s| s.id)
        .collect();
    assert_eq!(running, ids(&all)[1..]);
    assert_eq!(
        ids(&db.store.list(Some(Status::Running)).await.unwrap()),
        ids(&all)[1..]
    );
    let (resumed, unreadable) = db.store.list_running().await.unwrap();
    assert_eq!(
        (ids(&resumed), unreadable.len()),
        (ids(&all)[1..].to_vec(), 0)
    );

    let cancelled = db
        .store
        .list_page(Some(Status::Cancelled), None, 100)
        .await
        .unwrap();
    let s = &cancelled.analyses[..];
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!((s.id.as_str(), s.key.as_str()), (b.id.as_str(), "b"));
    assert_eq!(
        (s.model.as_str(), s.planned_intervals()),
        ("http-red", 3600)
    );
    assert_eq!(
        s.canary.get("service.version").map(String::as_str),
        Some("2")
    );
    assert_eq!((s.decided_ms, s.verdict, s.score), (Some(5), None, None));
    assert!(
        db.store
            .list_page(Some(Status::Pass), None, 100)
            .await
            .unwrap()
            .analyses
            .is_empty()
    );
}

async fn counts_by_status(db: Db) {
    assert!(db.store.count_by_status().await.unwrap().is_empty());
    let mut made = Vec::new();
    for n in 0..6 {
        made.push(
            db.store
                .create(&simple(&format!("k{n}")), n)
                .await
                .unwrap()
                .0,
        );
    }
    db.store.cancel(&made[0].id, 10).await.unwrap();
    advance(&db.store, &made[1].id, Status::Fail).await;
    advance(&db.store, &made[2].id, Status::Fail).await;
    advance(&db.store, &made[3].id, Status::Pass).await;
    advance(&db.store, &made[4].id, Status::Running).await;
    let mut counts = db.store.count_by_status().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        counts,
        [
            (Status::Cancelled, 1),
            (Status::Fail, 2),
            (Status::Pass, 1),
            (Status::Running, 2),
        ]
    );
}

async fn an_interval_is_recorded_only_if_next_and_running(db: Db) {
    let heard = heard(&db.store);
    let (a, _) = db.store.create(&simple("k"), 1_000).await.unwrap();
    let first = next_interval(&a, Status::Running);
    assert!(db.store.record_interval(&a.id, &first).await.unwrap());
    let after_first = db.store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(after_first.intervals, 1);
    assert_eq!(after_first.next_due_ms, first.next_due_ms);
    assert_eq!(after_first.score, Some(first.interval.judgment.score));
    assert_eq!(
        format!("{:?}", after_first.judgment.as_ref().unwrap()),
        format!("{:?}", first.interval.judgment)
    );

    // The same interval again (a retry after a lost answer) and one that skips ahead
    // change nothing.
    assert!(!db.store.record_interval(&a.id, &first).await.unwrap());
    let mut third = next_interval(&after_first, Status::Running);
    third.interval.seq = 3;
    assert!(!db.store.record_interval(&a.id, &third).await.unwrap());
    assert!(
        !db.store
            .record_interval("no-such-id", &first)
            .await
            .unwrap()
    );
    let unchanged = db.store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(format!("{unchanged:?}"), format!("{after_first:?}"));

    let decided = advance(&db.store, &a.id, Status::Fail).await;
    assert_eq!((decided.status, decided.intervals), (Status::Fail, 2));
    assert_eq!(decided.decided_ms, Some(after_first.next_due_ms));
    // A decided analysis takes no more intervals.
    let late = next_interval(&decided, Status::Running);
    assert!(!db.store.record_interval(&a.id, &late).await.unwrap());

    let intervals = db.store.intervals(&a.id).await.unwrap();
    let seqs: Vec<u32> = intervals.iter().map(|i| i.seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(
        (intervals[0].start_ms, intervals[0].end_ms),
        (first.interval.start_ms, first.interval.end_ms)
    );
    assert_eq!(
        format!("{:?}", intervals[0].judgment),
        format!("{:?}", first.interval.judgment)
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (a.id.clone(), ChangeKind::Created),
            (a.id.clone(), ChangeKind::Recorded(Status::Running)),
            (a.id.clone(), ChangeKind::Recorded(Status::Fail)),
        ]
    );
}

async fn concurrent_records_of_one_interval_advance_once(db: Db) {
    // Two replicas judged the same interval: one write wins, the other is a no-op.
    let stores = [db.store.clone(), db.another().await];
    let (a, _) = db.store.create(&simple("k"), 1_000).await.unwrap();
    for round in 0..5 {
        let a = db.store.get(&a.id).await.unwrap().unwrap();
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..4 {
            let store = stores[n % 2].clone();
            let update = next_interval(&a, Status::Running);
            let id = a.id.clone();
            writes.spawn(async move { store.record_interval(&id, &update).await.unwrap() });
        }
        let advanced = writes.join_all().await.into_iter().filter(|w| *w).count();
        assert_eq!(advanced, 1, "round {round}");
    }
    assert_eq!(db.store.intervals(&a.id).await.unwrap().len(), 5);
    assert_eq!(db.store.get(&a.id).await.unwrap().unwrap().intervals, 5);
}

/// The Flagger gate's revision count (for payloads without a checksum) moves on once
/// per ended revision; asks of a running analysis keep the latest time, and stop with it.
async fn gate_revisions_and_asks_are_kept(db: Db) {
    let s = &db.store;
    assert_eq!(s.gate_revision("test/podinfo").await.unwrap(), 0);
    s.end_gate_revision("test/podinfo", 0).await.unwrap();
    assert_eq!(s.gate_revision("test/podinfo").await.unwrap(), 1);
    // A late repeat of the end of revision 0 does not end revision 1.
    s.end_gate_revision("test/podinfo", 0).await.unwrap();
    assert_eq!(s.gate_revision("test/podinfo").await.unwrap(), 1);
    s.end_gate_revision("test/podinfo", 1).await.unwrap();
    assert_eq!(s.gate_revision("test/podinfo").await.unwrap(), 2);
    assert_eq!(s.gate_revision("test/other").await.unwrap(), 0);

    let (a, _) = s.create_notifying(&simple("k"), &[], 1_000).await.unwrap();
    assert_eq!(s.asked_ms(&a.id).await.unwrap(), None);
    s.note_asked(&a.id, 5_000).await.unwrap();
    s.note_asked(&a.id, 4_000).await.unwrap();
    assert_eq!(s.asked_ms(&a.id).await.unwrap(), Some(5_000));
    s.cancel(&a.id, 6_000).await.unwrap();
    s.note_asked(&a.id, 7_000).await.unwrap();
    assert_eq!(s.asked_ms(&a.id).await.unwrap(), Some(5_000));
}

fn kayenta_config(id: &str, name: &str, updated_ms: i64) -> augury::store::KayentaConfig {
    augury::store::KayentaConfig {
        id: id.into(),
        name: name.into(),
        applications: vec!["checkout".into()],
        config: serde_json::json!({"name": name, "metrics": []}),
        created_ms: 1_000,
        updated_ms,
    }
}

async fn kayenta_configs_are_stored_listed_replaced_and_deleted(db: Db) {
    let s = &db.store;
    assert!(
        s.insert_kayenta_config(&kayenta_config("b", "zeta", 1_000))
            .await
            .unwrap()
    );
    assert!(
        s.insert_kayenta_config(&kayenta_config("a", "alpha", 1_000))
            .await
            .unwrap()
    );
    // An id already stored is left as it is.
    assert!(
        !s.insert_kayenta_config(&kayenta_config("a", "other", 5))
            .await
            .unwrap()
    );
    let names: Vec<String> = s
        .kayenta_configs()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);

    let mut changed = kayenta_config("a", "alpha-2", 2_000);
    changed.created_ms = 9_999;
    assert!(s.update_kayenta_config(&changed).await.unwrap());
    let read = s.kayenta_config("a").await.unwrap().unwrap();
    assert_eq!((read.name.as_str(), read.updated_ms), ("alpha-2", 2_000));
    assert_eq!(read.created_ms, 1_000, "the creation time is kept");
    assert_eq!(read.config["name"], "alpha-2");
    assert!(
        !s.update_kayenta_config(&kayenta_config("x", "x", 1))
            .await
            .unwrap()
    );

    assert!(s.delete_kayenta_config("a").await.unwrap());
    assert!(!s.delete_kayenta_config("a").await.unwrap());
    assert_eq!(s.kayenta_config("a").await.unwrap(), None);

    assert_eq!(s.kayenta_execution("kayenta/1").await.unwrap(), None);
    s.put_kayenta_execution("kayenta/1", "{\"application\":\"x\"}")
        .await
        .unwrap();
    assert_eq!(
        s.kayenta_execution("kayenta/1").await.unwrap().as_deref(),
        Some("{\"application\":\"x\"}")
    );
}

async fn cancel_stops_only_a_running_analysis(db: Db) {
    let heard = heard(&db.store);
    let pager = [recipient("pager", &[Event::Cancelled])];
    let (a, _) = db
        .store
        .create_notifying(&simple("k"), &pager, 1_000)
        .await
        .unwrap();
    let (cancelled, now) = db.store.cancel(&a.id, 1_500).await.unwrap().unwrap();
    assert!(now);
    assert_eq!(
        (cancelled.status, cancelled.decided_ms),
        (Status::Cancelled, Some(1_500))
    );
    let (again, now) = db.store.cancel(&a.id, 9_000).await.unwrap().unwrap();
    assert!(!now);
    assert_eq!(again.decided_ms, Some(1_500), "the first cancel stands");
    assert!(
        db.store
            .cancel("no-such-id", 9_000)
            .await
            .unwrap()
            .is_none()
    );
    // An interval judged before the cancel does not resurrect the analysis.
    assert!(
        !db.store
            .record_interval(&a.id, &next_interval(&a, Status::Pass))
            .await
            .unwrap()
    );
    assert_eq!(
        db.store.get(&a.id).await.unwrap().unwrap().status,
        Status::Cancelled
    );

    // A decided analysis cannot be cancelled.
    let (b, _) = db.store.create(&simple("b"), 2_000).await.unwrap();
    advance(&db.store, &b.id, Status::Pass).await;
    let (b, now) = db.store.cancel(&b.id, 9_000).await.unwrap().unwrap();
    assert!(!now);
    assert_eq!(b.status, Status::Pass);

    let rows = db.store.notifications(&a.id).await.unwrap();
    assert_eq!(
        outbox(&rows),
        [("pager", Event::Cancelled, DeliveryState::Pending)]
    );
    assert_eq!(rows[0].created_ms, 1_500);
    let cancels: Vec<_> = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, kind)| *kind == ChangeKind::Cancelled)
        .cloned()
        .collect();
    assert_eq!(cancels, [(a.id.clone(), ChangeKind::Cancelled)]);
}

async fn a_pass_supersedes_earlier_failures_of_the_same_canary(db: Db) {
    let pager = [recipient("pager", &[Event::Failed, Event::Superseded])];
    let create = async |key: &str, service: &str, baseline: &str, canary: &str, at: i64| {
        let request = request(key, service, baseline, canary);
        let (a, _) = db
            .store
            .create_notifying(&request, &pager, at)
            .await
            .unwrap();
        a.id
    };
    // Failed earlier: same baseline; same canary; another service; and one that asked
    // for no `superseded` notification.
    let same_baseline = create("f1", "s", "1", "2", 1_000).await;
    let same_canary = create("f2", "s", "0", "3", 1_001).await;
    let other_service = create("f3", "t", "1", "2", 1_002).await;
    let (quiet, _) = db
        .store
        .create_notifying(
            &request("f4", "s", "1", "4"),
            &[recipient("pager", &[Event::Failed])],
            1_003,
        )
        .await
        .unwrap();
    // Running (not failed) when the pass comes.
    let running = create("r", "s", "1", "5", 1_004).await;
    for id in [&same_baseline, &same_canary, &other_service, &quiet.id] {
        advance(&db.store, id, Status::Fail).await;
    }
    let passing = create("p", "s", "1", "3", 2_000).await;
    // Created after the pass's analysis: not superseded by it.
    let later = create("f5", "s", "1", "6", 3_000).await;
    advance(&db.store, &later, Status::Fail).await;

    let passed = advance(&db.store, &passing, Status::Pass).await;
    let superseded = async |id: &str| -> Vec<(Option<String>, i64)> {
        db.store
            .notifications(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.event == Event::Superseded)
            .map(|n| (n.cause, n.created_ms))
            .collect()
    };
    let by_pass = vec![(Some(passing.clone()), passed.decided_ms.unwrap())];
    assert_eq!(superseded(&same_baseline).await, by_pass);
    assert_eq!(superseded(&same_canary).await, by_pass);
    for id in [&other_service, &quiet.id, &running, &later, &passing] {
        assert!(superseded(id).await.is_empty(), "{id}");
    }

    // A second pass of the same canary tells nobody twice.
    let again = create("p2", "s", "1", "3", 4_000).await;
    advance(&db.store, &again, Status::Pass).await;
    assert_eq!(superseded(&same_baseline).await, by_pass);
}

async fn notifications_are_queued_with_their_change_and_delivered_in_order(db: Db) {
    let recipients = [
        recipient("pager", &[Event::Started, Event::Failed]),
        recipient("chat", &[Event::Failed]),
    ];
    let (a, _) = db
        .store
        .create_notifying(&simple("k"), &recipients, 1_000)
        .await
        .unwrap();
    let rows = db.store.notifications(&a.id).await.unwrap();
    assert_eq!(
        outbox(&rows),
        [("pager", Event::Started, DeliveryState::Pending)]
    );
    assert_eq!(
        (rows[0].created_ms, rows[0].next_attempt_ms),
        (1_000, 1_000)
    );
    assert_eq!(
        db.store.pending_notifications().await.unwrap(),
        (Some(1_000), 1)
    );

    let failed = advance(&db.store, &a.id, Status::Fail).await;
    let decided = failed.decided_ms.unwrap();
    let rows = db.store.notifications(&a.id).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(
        outbox(&rows[..1]),
        [("pager", Event::Started, DeliveryState::Pending)]
    );
    let mut verdicts = outbox(&rows[1..]);
    verdicts.sort_by_key(|(notifier, _, _)| *notifier);
    assert_eq!(
        verdicts,
        [
            ("chat", Event::Failed, DeliveryState::Pending),
            ("pager", Event::Failed, DeliveryState::Pending),
        ]
    );
    let row = |notifier: &str, event: Event| {
        rows.iter()
            .find(|n| n.notifier == notifier && n.event == event)
            .unwrap()
            .id
    };
    let (started, pager_failed, chat_failed) = (
        row("pager", Event::Started),
        row("pager", Event::Failed),
        row("chat", Event::Failed),
    );
    assert_eq!(
        db.store.pending_notifications().await.unwrap(),
        (Some(1_000), 3)
    );

    // The pager's verdict waits behind its `started`; the chat's is due.
    let due_ids = async |now: i64, limit: u32| -> Vec<i64> {
        let due = db.store.due_notifications(now, limit).await.unwrap();
        due.iter().map(|n| n.id).collect()
    };
    let mut first = vec![started, chat_failed];
    first.sort();
    assert_eq!(due_ids(decided, 10).await, first);
    assert_eq!(due_ids(decided, 1).await, first[..1]);
    assert!(
        due_ids(999, 10).await.is_empty(),
        "nothing is due before its time"
    );

    // The `started` fails once and is retried later: the pager's verdict still waits.
    let attempt = |outcome: Outcome, at_ms: i64, next_attempt_ms: i64| Attempt {
        at_ms,
        duration_ms: 7,
        status: Some(503),
        outcome,
        error: Some("unavailable".into()),
        next_attempt_ms,
    };
    db.store
        .record_attempt(started, &attempt(Outcome::Retry, 5_000, 60_000))
        .await
        .unwrap();
    assert_eq!(due_ids(10_000, 10).await, [chat_failed]);
    assert_eq!(
        due_ids(60_000, 10).await,
        [started, chat_failed],
        "due again at its retry time"
    );
    let retried = db.store.notifications(&a.id).await.unwrap();
    let retried = retried.iter().find(|n| n.id == started).unwrap();
    assert_eq!(
        (retried.attempts, retried.state, retried.next_attempt_ms),
        (1, DeliveryState::Pending, 60_000)
    );
    assert_eq!(
        (retried.last_status, retried.last_error.as_deref()),
        (Some(503), Some("unavailable"))
    );

    // Delivered: the pager's verdict is due now.
    db.store
        .record_attempt(started, &attempt(Outcome::Delivered, 61_000, 0))
        .await
        .unwrap();
    let mut now_due = vec![pager_failed, chat_failed];
    now_due.sort();
    assert_eq!(due_ids(61_000, 10).await, now_due);
    db.store
        .record_attempt(chat_failed, &attempt(Outcome::Failed, 62_000, 0))
        .await
        .unwrap();
    // A row that is no longer pending takes no more attempts.
    db.store
        .record_attempt(started, &attempt(Outcome::Retry, 63_000, 70_000))
        .await
        .unwrap();
    let rows = db.store.notifications(&a.id).await.unwrap();
    let states: Vec<(i64, DeliveryState, u32, Option<i64>)> = rows
        .iter()
        .map(|n| (n.id, n.state, n.attempts, n.done_ms))
        .collect();
    let mut expected = vec![
        (started, DeliveryState::Delivered, 2, Some(61_000)),
        (pager_failed, DeliveryState::Pending, 0, None),
        (chat_failed, DeliveryState::Failed, 1, Some(62_000)),
    ];
    expected.sort_by_key(|(id, ..)| *id);
    assert_eq!(states, expected);
    assert_eq!(
        db.store.pending_notifications().await.unwrap(),
        (Some(decided), 1)
    );
}

async fn unreadable_rows_are_quarantined_and_the_others_served(db: Db) {
    let mut made = Vec::new();
    for (n, key) in [
        "good1",
        "status",
        "request",
        "judgment",
        "cumulative",
        "good2",
    ]
    .iter()
    .enumerate()
    {
        made.push(
            db.store
                .create(&simple(key), 1_000 + n as i64)
                .await
                .unwrap()
                .0
                .id,
        );
    }
    for (id, set) in made[1..5].iter().zip([
        "status = 'paused'",
        "request = '{\"key\": '",
        "judgment = 'not json'",
        "cumulative = '[1, 2'",
    ]) {
        db.outside(&format!("UPDATE analyses SET {set} WHERE id = $1"), id)
            .await;
    }

    let page = db.store.list_page(None, None, 100).await.unwrap();
    let listed: Vec<&str> = page.analyses.iter().map(|s| s.key.as_str()).collect();
    // The list does not read the cumulative data, so that row still lists.
    assert_eq!(listed, ["good1", "cumulative", "good2"]);
    let reasons: Vec<(&str, &str)> = page
        .unreadable
        .iter()
        .map(|u| (u.id.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (made[1].as_str(), "status: unknown status `paused`"),
            (made[2].as_str(), "request: not valid JSON"),
            (made[3].as_str(), "judgment: not valid JSON"),
        ]
    );
    let (running, unreadable) = db.store.list_running().await.unwrap();
    assert_eq!(ids(&running), [made[0].as_str(), made[5].as_str()]);
    let bad: Vec<&str> = unreadable.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(bad, [&made[2], &made[3], &made[4]]);
    for (id, field) in made[1..5]
        .iter()
        .zip(["status", "request", "judgment", "cumulative"])
    {
        match db.store.get(id).await {
            Err(StoreError::Corrupt { what, .. }) => {
                assert_eq!(what, format!("analysis {id} {field}"));
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(
        db.store.ready().await,
        Ok(()),
        "a bad row is not a bad database"
    );
}

async fn a_fresh_store_is_ready(db: Db) {
    assert_eq!(db.store.ready().await, Ok(()));
    assert_eq!(db.store.is_shared(), db.url.starts_with("postgres"));
    db.store.close().await;
}

#[tokio::test]
async fn an_unknown_database_url_names_both_forms_and_hides_its_password() {
    let e = Store::open("mysql://augury:s3cret@db/augury")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Url(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("sqlite://") && text.contains("postgres://"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

/// Polls `ready` until it answers `want` (true: ready), a bounded number of times.
async fn until_ready_is(store: &Store, want: bool) -> Result<(), augury::store::NotReady> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = store.ready().await;
        if ready.is_ok() == want || Instant::now() > deadline {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server goes away: the store says not ready (not corrupt), writes fail as
/// retryable; the server comes back: the store is ready again with no restart, and
/// everything committed before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_not_ready_while_the_server_is_down_and_ready_again_after() {
    let pg = Postgres::start();
    let url = pg.fresh_database("restart");
    let store = Store::open(&url).await.unwrap();
    let (a, _) = store.create(&simple("before"), 1_000).await.unwrap();
    let a = advance(&store, &a.id, Status::Running).await;
    assert_eq!(store.ready().await, Ok(()));

    pg.stop();
    assert!(!pg.accepts_connections());
    let down = until_ready_is(&store, false).await.unwrap_err();
    assert!(!down.corrupt, "{down:?}");
    match store.create(&simple("during"), 2_000).await {
        Err(StoreError::Database(_)) => {}
        other => panic!("a create with the server down: {other:?}"),
    }
    assert!(matches!(
        store.get(&a.id).await,
        Err(StoreError::Database(_))
    ));

    pg.start_again();
    until_ready_is(&store, true).await.unwrap();
    let back = store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(format!("{back:?}"), format!("{a:?}"));
    assert_eq!(store.intervals(&a.id).await.unwrap().len(), 1);
    let (b, created) = store.create(&simple("after"), 3_000).await.unwrap();
    assert!(created);
    let keys: Vec<String> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key)
        .collect();
    assert_eq!(keys, ["before", "after"]);
    assert!(advance(&store, &b.id, Status::Pass).await.status == Status::Pass);
    store.close().await;
}
