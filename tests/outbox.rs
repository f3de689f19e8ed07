//! The notification outbox in the store: rows commit with the change they announce, once,
//! and come due in order per analysis and notifier.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use augury::analysis::{AnalysisRequest, Status, ValidRequest};
use augury::model::Catalog;
use augury::notify::{Attempt, DeliveryState, Event, Notification, Outcome, Recipient};
use augury::store::Store;
use common::interval_update;

fn valid(key: &str, canary: &str) -> ValidRequest {
    let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": "checkout", "service.version": "1"},
        "canary": {"service.name": "checkout", "service.version": canary},
        "interval": "30s", "lifetime": "5m"}))
    .unwrap();
    r.validate(&Catalog::builtin()).unwrap()
}

fn recipients() -> Vec<Recipient> {
    vec![
        Recipient {
            notifier: "pd".into(),
            events: vec![Event::Failed, Event::Cancelled, Event::Superseded],
        },
        Recipient {
            notifier: "slack".into(),
            events: vec![Event::Started, Event::Failed, Event::Passed],
        },
    ]
}

fn rows(n: &[Notification]) -> Vec<(&str, Event)> {
    n.iter().map(|n| (n.notifier.as_str(), n.event)).collect()
}

fn delivered(at_ms: i64) -> Attempt {
    Attempt {
        at_ms,
        duration_ms: 3,
        status: Some(202),
        outcome: Outcome::Delivered,
        error: None,
        next_attempt_ms: at_ms,
    }
}

#[tokio::test]
async fn notifications_commit_with_the_change_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    let now = 1_000_000;

    // Created: the `started` row commits with the analysis; a repeat adds nothing.
    let (a, created) = store
        .create_notifying(&valid("a", "2"), &recipients(), now)
        .await
        .unwrap();
    assert!(created);
    let (_, again) = store
        .create_notifying(&valid("a", "2"), &recipients(), now)
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(
        rows(&store.notifications(&a.id).await.unwrap()),
        [("slack", Event::Started)]
    );

    // Failed: the verdict's rows commit with it; a stale write adds none.
    let update = interval_update(&a, Status::Fail, 900);
    assert!(store.record_interval(&a.id, &update).await.unwrap());
    assert!(!store.record_interval(&a.id, &update).await.unwrap());
    assert_eq!(
        rows(&store.notifications(&a.id).await.unwrap()),
        [
            ("slack", Event::Started),
            ("pd", Event::Failed),
            ("slack", Event::Failed)
        ]
    );

    // A later analysis of the same canary passes: `a` is superseded, once.
    for (key, version) in [("b", "3"), ("c", "4")] {
        let (b, _) = store
            .create_notifying(&valid(key, version), &recipients(), now + 10)
            .await
            .unwrap();
        let update = interval_update(&b, Status::Pass, 10);
        assert!(store.record_interval(&b.id, &update).await.unwrap());
    }
    let n = store.notifications(&a.id).await.unwrap();
    assert_eq!(rows(&n)[3..], [("pd", Event::Superseded)]);
    let b = store.list(None).await.unwrap()[1].clone();
    assert_eq!(n[3].cause.as_deref(), Some(b.id.as_str()));

    // Due rows: the resolve waits for its trigger.
    let due = store.due_notifications(i64::MAX, 100).await.unwrap();
    let of_a: Vec<_> = due.iter().filter(|d| d.analysis_id == a.id).collect();
    assert!(
        of_a.iter().all(|d| d.event != Event::Superseded),
        "{of_a:?}"
    );
    let trigger = of_a.iter().find(|d| d.notifier == "pd").unwrap();
    store
        .record_attempt(trigger.id, &delivered(now + 20))
        .await
        .unwrap();
    let due = store.due_notifications(i64::MAX, 100).await.unwrap();
    assert!(
        due.iter()
            .any(|d| d.analysis_id == a.id && d.event == Event::Superseded)
    );

    // A delivered row stays delivered: a late second attempt changes nothing.
    store
        .record_attempt(trigger.id, &delivered(now + 30))
        .await
        .unwrap();
    let row = store
        .notifications(&a.id)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.id == trigger.id)
        .unwrap();
    assert_eq!(
        (row.state, row.attempts, row.done_ms),
        (DeliveryState::Delivered, 1, Some(now + 20))
    );

    // Cancelled: the row commits with the cancel, only when it cancels.
    let (d, _) = store
        .create_notifying(&valid("d", "5"), &recipients(), now)
        .await
        .unwrap();
    assert!(store.cancel(&d.id, now + 40).await.unwrap().unwrap().1);
    assert!(!store.cancel(&d.id, now + 50).await.unwrap().unwrap().1);
    assert_eq!(
        rows(&store.notifications(&d.id).await.unwrap()),
        [("slack", Event::Started), ("pd", Event::Cancelled)]
    );
    let (pending_next, pending) = store.pending_notifications().await.unwrap();
    assert!(pending_next.is_some() && pending > 0);
}
