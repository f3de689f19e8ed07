//! Replica coordination in the store, on both backends: two `Store`s opened on one
//! database stand for two replicas. Leases (fair share, renewal, takeover after expiry,
//! fencing), partial windows (kept until merged, pruned with the verdict) and outbox
//! claims (one claimant at a time, taken over after expiry, released by the attempt or by
//! leaving). Time is passed in, so expiry needs no waiting.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use augury::analysis::{Analysis, AnalysisRequest, Partial, SourceError, Status, ValidRequest};
use augury::judge::MetricData;
use augury::model::Catalog;
use augury::notify::{Attempt, Event, Outcome, Recipient};
use augury::stats::proportions::Counts;
use augury::store::{Claimant, Fence, Store};
use common::interval_update;
use support::postgres::Postgres;

const TTL: i64 = 10_000;

/// One PostgreSQL server for this file's tests, a fresh database per test.
fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(Postgres::start)
}

/// Two replicas' stores on one database of each backend, with the backend's name.
async fn on_both(name: &str) -> Vec<(&'static str, Store, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("r.db").display());
    let pg = postgres().fresh_database(name);
    let mut out = Vec::new();
    for (backend, url, keep) in [("sqlite", sqlite, Some(dir)), ("postgres", pg, None)] {
        let a = Store::open(&url).await.unwrap();
        let b = Store::open(&url).await.unwrap();
        out.push((backend, a, b, keep));
    }
    out
}

fn valid(key: &str) -> ValidRequest {
    let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": "checkout", "service.version": "1"},
        "canary": {"service.name": "checkout", "service.version": "2"},
        "interval": "30s", "lifetime": "5m"}))
    .unwrap();
    r.validate(&Catalog::builtin()).unwrap()
}

async fn analyses(store: &Store, n: usize, now: i64) -> Vec<Analysis> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            store
                .create(&valid(&format!("k{i}")), now + i as i64)
                .await
                .unwrap()
                .0,
        );
    }
    out
}

fn held(leases: &[augury::store::Lease]) -> Vec<String> {
    let mut ids: Vec<String> = leases.iter().map(|l| l.analysis.clone()).collect();
    ids.sort();
    ids
}

fn share(requests: u64, errors: u64) -> Partial {
    Partial {
        data: BTreeMap::from([(
            "errors".to_string(),
            MetricData::Counts {
                baseline: Counts {
                    requests,
                    errors: 0,
                },
                canary: Counts { requests, errors },
            },
        )]),
        errors: vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_are_shared_fairly_taken_over_after_expiry_and_fence_off_the_old_owner() {
    for (backend, a, b, _dir) in on_both("leases").await {
        let now = 1_000_000;
        let all = analyses(&a, 4, now).await;
        // Two replicas alive: two analyses each, none held by both.
        let mine = a.leases("a", now, TTL, 2).await.unwrap();
        let theirs = b.leases("b", now, TTL, 2).await.unwrap();
        assert_eq!((mine.len(), theirs.len()), (2, 2), "{backend}");
        assert!(mine.iter().all(|l| !l.taken_over), "{backend}");
        let mut both = [held(&mine), held(&theirs)].concat();
        both.sort();
        both.dedup();
        assert_eq!(both.len(), 4, "{backend}: every analysis has one owner");

        // Renewed before expiry: the same leases, the same fences, nothing taken.
        let renewed = a.leases("a", now + TTL / 2, TTL, 2).await.unwrap();
        assert_eq!(renewed, mine, "{backend}");
        assert!(b.leases("b", now + TTL / 2, TTL, 1).await.unwrap().len() == 2);

        // `a` stops renewing; once its leases expire `b` (now alone) takes them over.
        let later = now + TTL / 2 + TTL + 1;
        let taken = b.leases("b", later, TTL, 1).await.unwrap();
        assert_eq!(taken.len(), 4, "{backend}");
        let over: Vec<_> = taken.iter().filter(|l| l.taken_over).collect();
        assert_eq!(over.len(), 2, "{backend}");
        let id = &over[0].analysis;
        let old = mine.iter().find(|l| &l.analysis == id).unwrap();
        assert!(
            over[0].fence > old.fence,
            "{backend}: a new owner, a new fence"
        );

        // The old owner's interval is fenced off; the new owner's commits.
        let analysis = all.iter().find(|x| &x.id == id).unwrap();
        let update = interval_update(analysis, Status::Running, 0);
        let stale = Fence {
            replica: "a".into(),
            fence: old.fence,
        };
        assert!(
            !a.record_interval_fenced(id, &update, &stale, &[])
                .await
                .unwrap(),
            "{backend}"
        );
        let current = Fence {
            replica: "b".into(),
            fence: over[0].fence,
        };
        assert!(
            b.record_interval_fenced(id, &update, &current, &[])
                .await
                .unwrap()
        );
        assert_eq!(b.intervals(id).await.unwrap().len(), 1, "{backend}");
        // `a` renewing finds nothing left of what it held.
        assert!(
            a.leases("a", later, TTL, 2).await.unwrap().is_empty(),
            "{backend}"
        );

        // Leaving hands every lease back at once.
        b.leave("b").await.unwrap();
        assert_eq!(
            a.leases("a", later, TTL, 1).await.unwrap().len(),
            4,
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_windows_are_kept_until_merged_and_pruned_with_the_verdict() {
    for (backend, a, b, _dir) in on_both("partials").await {
        let now = 2_000_000;
        let x = analyses(&a, 1, now).await.remove(0);
        assert!(
            a.put_partial(&x.id, 1, "a", &share(10, 1), now)
                .await
                .unwrap()
        );
        assert!(
            b.put_partial(&x.id, 1, "b", &share(20, 2), now)
                .await
                .unwrap()
        );
        // A replica writing its window again replaces it.
        let mut late = share(5, 0);
        late.errors.push(SourceError {
            metric: "errors".into(),
            reason: "late watch".into(),
        });
        assert!(b.put_partial(&x.id, 2, "b", &late, now).await.unwrap());
        assert!(b.put_partial(&x.id, 2, "b", &late, now + 1).await.unwrap());
        let stored = a.partials(&x.id).await.unwrap();
        let keys: Vec<(u32, &str)> = stored.iter().map(|p| (p.seq, p.replica.as_str())).collect();
        assert_eq!(keys, [(1, "a"), (1, "b"), (2, "b")], "{backend}");
        assert_eq!(stored[2].partial, late, "{backend}: read back as written");

        // Interval 1 merges both windows of seq 1; they go with its commit, seq 2 stays.
        let lease = a.leases("a", now, TTL, 1).await.unwrap().remove(0);
        let fence = Fence {
            replica: "a".into(),
            fence: lease.fence,
        };
        let update = interval_update(&x, Status::Running, 0);
        let consumed = [(1, "a".to_string()), (1, "b".to_string())];
        assert!(
            a.record_interval_fenced(&x.id, &update, &fence, &consumed)
                .await
                .unwrap()
        );
        let left: Vec<u32> = a
            .partials(&x.id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(left, [2], "{backend}");

        // The verdict prunes whatever is left; a decided analysis takes no more.
        let x = a.get(&x.id).await.unwrap().unwrap();
        let update = interval_update(&x, Status::Pass, 0);
        assert!(
            a.record_interval_fenced(&x.id, &update, &fence, &[])
                .await
                .unwrap()
        );
        assert!(a.partials(&x.id).await.unwrap().is_empty(), "{backend}");
        assert!(
            !b.put_partial(&x.id, 3, "b", &share(1, 0), now)
                .await
                .unwrap()
        );
        assert!(a.partials(&x.id).await.unwrap().is_empty(), "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_is_claimed_by_one_replica_until_its_claim_expires_or_ends() {
    for (backend, a, b, _dir) in on_both("claims").await {
        let now = 3_000_000;
        let recipients = [Recipient {
            notifier: "slack".into(),
            events: vec![Event::Started],
        }];
        for key in ["x", "y"] {
            a.create_notifying(&valid(key), &recipients, now)
                .await
                .unwrap();
        }
        let ca = Claimant {
            replica: "a".into(),
            ttl_ms: TTL,
        };
        let cb = Claimant {
            replica: "b".into(),
            ttl_ms: TTL,
        };
        let claimed = a.claim_notifications(now, 10, &ca).await.unwrap();
        assert_eq!(claimed.len(), 2, "{backend}");
        // Claimed by `a`: `b` gets nothing while the claim lives; `a` may take its own
        // again (an attempt it could not record).
        assert!(
            b.claim_notifications(now + 1, 10, &cb)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            a.claim_notifications(now + 1, 10, &ca).await.unwrap().len(),
            2
        );

        // `a` delivers one; the other's claim expires and `b` takes it over.
        a.record_attempt(
            claimed[0].id,
            &Attempt {
                at_ms: now + 2,
                duration_ms: 1,
                status: Some(200),
                outcome: Outcome::Delivered,
                error: None,
                next_attempt_ms: now + 2,
            },
        )
        .await
        .unwrap();
        let after = now + 1 + TTL + 1;
        let taken = b.claim_notifications(after, 10, &cb).await.unwrap();
        assert_eq!(
            taken.iter().map(|n| n.id).collect::<Vec<_>>(),
            [claimed[1].id],
            "{backend}"
        );
        // A retry ends the claim: due again, anyone may take it.
        b.record_attempt(
            taken[0].id,
            &Attempt {
                at_ms: after,
                duration_ms: 1,
                status: Some(503),
                outcome: Outcome::Retry,
                error: Some("busy".into()),
                next_attempt_ms: after + 5,
            },
        )
        .await
        .unwrap();
        assert!(
            a.claim_notifications(after + 4, 10, &ca)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            a.claim_notifications(after + 5, 10, &ca)
                .await
                .unwrap()
                .len(),
            1
        );
        // Leaving gives the claim back.
        a.leave("a").await.unwrap();
        assert_eq!(
            b.claim_notifications(after + 6, 10, &cb)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_say_who_is_alive() {
    for (backend, a, b, _dir) in on_both("heartbeats").await {
        let now = 4_000_000;
        a.heartbeat("a", now - 50, now, TTL).await.unwrap();
        let alive = b.heartbeat("b", now, now + 1, TTL).await.unwrap();
        let ids: Vec<&str> = alive.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "{backend}");
        assert_eq!(alive[0].started_ms, now - 50);
        // `a` falls silent past the TTL: no longer alive.
        let alive = b.heartbeat("b", now, now + TTL + 1, TTL).await.unwrap();
        let ids: Vec<&str> = alive.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b"], "{backend}");
        let x = analyses(&a, 2, now).await;
        a.cancel(&x[0].id, now).await.unwrap();
        assert_eq!(
            b.running_ids().await.unwrap(),
            [x[1].id.clone()],
            "{backend}"
        );
    }
}

/// Replicas racing for the same leases and rows at the same moment, many times over:
/// every analysis gets one owner and every row one claimant (on PostgreSQL the racers
/// queue on the row and the second finds it taken).
#[tokio::test(flavor = "multi_thread")]
async fn replicas_racing_for_leases_and_rows_never_both_win() {
    for (backend, a, b, _dir) in on_both("races").await {
        let recipients = [Recipient {
            notifier: "slack".into(),
            events: vec![Event::Started],
        }];
        for round in 0..10 {
            let now = 5_000_000 + round * 100_000;
            let mut ids = Vec::new();
            for i in 0..8 {
                let key = format!("race-{round}-{i}");
                let (x, _) = a
                    .create_notifying(&valid(&key), &recipients, now)
                    .await
                    .unwrap();
                ids.push(x.id);
            }
            // Each believes itself alone, so each tries to take every lease and row.
            let (la, lb) = tokio::join!(a.leases("a", now, TTL, 1), b.leases("b", now, TTL, 1));
            let (la, lb) = (held(&la.unwrap()), held(&lb.unwrap()));
            assert!(
                la.iter().all(|id| !lb.contains(id)),
                "{backend}: {la:?} {lb:?}"
            );
            for id in &ids {
                assert!(
                    la.contains(id) || lb.contains(id),
                    "{backend}: {id} unowned"
                );
            }
            let claimant = |r: &str| Claimant {
                replica: r.into(),
                ttl_ms: TTL,
            };
            let (for_a, for_b) = (claimant("a"), claimant("b"));
            let (ca, cb) = tokio::join!(
                a.claim_notifications(now, 100, &for_a),
                b.claim_notifications(now, 100, &for_b)
            );
            let ca: Vec<i64> = ca.unwrap().iter().map(|n| n.id).collect();
            let cb: Vec<i64> = cb.unwrap().iter().map(|n| n.id).collect();
            assert!(
                ca.iter().all(|id| !cb.contains(id)),
                "{backend}: {ca:?} {cb:?}"
            );
            assert_eq!(ca.len() + cb.len(), 8, "{backend}");
            // Done with this round's rows and analyses.
            for id in ca.iter().chain(&cb) {
                let delivered = Attempt {
                    at_ms: now,
                    duration_ms: 1,
                    status: Some(200),
                    outcome: Outcome::Delivered,
                    error: None,
                    next_attempt_ms: now,
                };
                a.record_attempt(*id, &delivered).await.unwrap();
            }
            for id in &ids {
                a.cancel(id, now).await.unwrap();
            }
        }
    }
}
