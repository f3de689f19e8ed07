//! SQLite backend: one file, WAL journal, migrations embedded in the binary. The store's
//! queries and transactions are [`SqlStore`]'s; this is how SQLite is opened, how its JSON
//! functions are spelled and which of its errors mean it cannot write.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteQueryResult, SqliteSynchronous};

use super::StoreError;
use super::sql::{Backend, SqlStore, pool_options};

/// The store on a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

impl Backend for Sqlite {
    fn json_valid(doc: &str) -> String {
        format!("json_valid({doc})")
    }

    fn json_field(doc: &str, name: &str) -> String {
        format!("json_extract({doc}, '$.{name}')")
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// Whether `e` says the database cannot write (as opposed to contention or a bad row).
    fn write_fault(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
            _ => super::sqlite_code(e).is_some_and(|code| {
                matches!(
                    code & 0xff,
                    super::SQLITE_READONLY
                        | super::SQLITE_NOMEM
                        | super::SQLITE_IOERR
                        | super::SQLITE_FULL
                        | super::SQLITE_CANTOPEN
                        | super::SQLITE_PROTOCOL
                )
            }),
        }
    }
}

impl SqlStore<Sqlite> {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        SqliteStore::open_with(options).await
    }

    /// Opens the database `options` name with the store's settings on top.
    pub(super) async fn open_with(
        options: SqliteConnectOptions,
    ) -> Result<SqliteStore, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed transaction survives a process crash (kill -9);
            // only an OS crash can lose the last few, which the next interval redoes.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = pool_options::<Sqlite>(4).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore::new(pool))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;
    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};

    use super::super::Cursor;
    use super::*;
    use crate::analysis::{AnalysisRequest, Status, ValidRequest};
    use crate::model::Catalog;

    fn request(key: &str, version: &str) -> ValidRequest {
        let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": key, "model": "http-red",
            "baseline": {"service.name": "s", "service.version": "1"},
            "canary": {"service.name": "s", "service.version": version},
            "interval": "1s", "lifetime": "1h"}))
        .unwrap();
        r.validate(&Catalog::builtin()).unwrap()
    }

    async fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&url(dir)).await.unwrap()
    }

    fn url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("a.db").display())
    }

    /// A connection to the same file outside the store's pool, as another process has.
    async fn outsider(dir: &tempfile::TempDir) -> SqlitePool {
        let options = SqliteConnectOptions::from_str(&url(dir))
            .unwrap()
            .busy_timeout(Duration::from_secs(5));
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap()
    }

    async fn keys(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT key FROM analyses ORDER BY key")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_left_inside_a_transaction_never_goes_back_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        {
            // A write whose rollback never ran, as when ROLLBACK fails on a full disk:
            // the transaction stays open on the connection and holds the write lock.
            let mut conn = store.pool.acquire().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("INSERT INTO store_probe (id, at_ms) VALUES (1, 1)")
                .execute(&mut *tx)
                .await
                .unwrap();
            std::mem::forget(tx);
        }
        // Were that connection reused, this create would either wait out the lock and
        // fail, or run inside the dead transaction and "commit" nothing.
        for key in ["a", "b", "c", "d", "e"] {
            store.create(&request(key, "2"), &[], 1_000).await.unwrap();
        }
        let others = outsider(&dir).await;
        assert_eq!(keys(&others).await, ["a", "b", "c", "d", "e"]);
        let probe: Option<i64> = sqlx::query_scalar("SELECT at_ms FROM store_probe")
            .fetch_optional(&others)
            .await
            .unwrap();
        assert_eq!(probe, None, "the abandoned write was rolled back");
    }

    #[tokio::test]
    async fn a_failed_write_is_not_acknowledged_holds_no_lock_and_makes_the_store_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let pages: i64 = {
            let store = open(&dir).await;
            store
                .create(&request("first", "2"), &[], 1_000)
                .await
                .unwrap();
            let pages = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            store.close().await;
            pages
        };
        // A database that may not grow: the next writes fail with SQLITE_FULL, as on a
        // full disk.
        let options = SqliteConnectOptions::from_str(&url(&dir))
            .unwrap()
            .pragma("max_page_count", (pages + 2).to_string());
        let store = SqliteStore::open_with(options).await.unwrap();
        assert_eq!(store.ready().await, Ok(()));
        let mut failed = None;
        for n in 0..200 {
            match store
                .create(&request(&format!("k{n}"), "2"), &[], 1_000)
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    failed = Some((format!("k{n}"), e));
                    break;
                }
            }
        }
        let (key, e) = failed.expect("the database filled up");
        let StoreError::Database(inner) = &e else {
            panic!("a full database is retryable, not {e:?}");
        };
        assert_eq!(super::super::sqlite_code(inner).map(|c| c & 0xff), Some(13));
        // (The health state itself: a probe here could rewrite its row in place, which
        // a page limit does not stop the way a full disk does.)
        let not_ready = store
            .health
            .not_ready()
            .expect("not ready after a failed write");
        assert!(!not_ready.corrupt);
        assert!(not_ready.reason.contains("full"), "{}", not_ready.reason);

        // Nothing holds the write lock, and the failed create is not there.
        let others = outsider(&dir).await;
        assert!(!keys(&others).await.contains(&key));
        sqlx::query("DELETE FROM analyses")
            .execute(&others)
            .await
            .unwrap();
        // With room again, the next write commits and the store is ready at once.
        store.create(&request(&key, "2"), &[], 1_000).await.unwrap();
        assert_eq!(store.health.not_ready(), None);
        assert_eq!(store.ready().await, Ok(()));
        assert_eq!(keys(&others).await, [key]);
    }

    #[tokio::test]
    async fn unreadable_rows_are_quarantined_and_the_others_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let mut ids = Vec::new();
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
            let (a, _) = store
                .create(&request(key, "2"), &[], 1_000 + n as i64)
                .await
                .unwrap();
            ids.push(a.id);
        }
        for (id, set) in ids[1..5].iter().zip([
            "status = 'paused'",
            "request = '{\"key\": '",
            "judgment = 'not json'",
            "cumulative = '[1, 2'",
        ]) {
            sqlx::query(&format!("UPDATE analyses SET {set} WHERE id = ?"))
                .bind(id)
                .execute(&store.pool)
                .await
                .unwrap();
        }

        let page = store.list_page(None, None, 100).await.unwrap();
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
                (ids[1].as_str(), "status: unknown status `paused`"),
                (ids[2].as_str(), "request: not valid JSON"),
                (ids[3].as_str(), "judgment: not valid JSON"),
            ]
        );

        // The runner's resume list: the readable running analyses, and the others by id.
        let (running, unreadable) = store.list_running().await.unwrap();
        let running: Vec<&str> = running.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(running, ["good1", "good2"]);
        let bad: Vec<&str> = unreadable.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(bad, [&ids[2], &ids[3], &ids[4]]);
        assert!(
            unreadable[2].reason.contains("cumulative is corrupt"),
            "{}",
            unreadable[2].reason
        );

        // One by one: the bad ones name what is wrong, the good ones read.
        for (id, field) in ids[1..5]
            .iter()
            .zip(["status", "request", "judgment", "cumulative"])
        {
            match store.get(id).await {
                Err(StoreError::Corrupt { what, .. }) => {
                    assert_eq!(what, format!("analysis {id} {field}"));
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(store.get(&ids[0]).await.unwrap().is_some());
        assert_eq!(
            store.ready().await,
            Ok(()),
            "a bad row is not a bad database"
        );
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        // Pairs share a creation time, so the order within them is by id.
        for n in 0..7i64 {
            store
                .create(&request(&format!("k{n}"), "2"), &[], 1_000 + n / 2)
                .await
                .unwrap();
        }
        let (b, _) = store.create(&request("b", "2"), &[], 0).await.unwrap();
        store.cancel(&b.id, 5).await.unwrap();
        let all: Vec<String> = store
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(all.len(), 8);

        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = store.list_page(None, cursor.as_ref(), 3).await.unwrap();
            pages += 1;
            assert!(page.analyses.len() <= 3);
            seen.extend(page.analyses.into_iter().map(|s| s.id));
            match page.next {
                Some(next) => {
                    let text = next.encode();
                    cursor = Some(Cursor::decode(&text).unwrap());
                    assert_eq!(cursor.as_ref(), Some(&next));
                }
                None => break,
            }
        }
        assert_eq!(seen, all);
        assert_eq!(pages, 3);
        let first = store.list_page(None, None, 8).await.unwrap();
        assert_eq!(first.next, None, "no empty page after the last one");

        let running = store
            .list_page(Some(Status::Running), None, 100)
            .await
            .unwrap();
        assert_eq!(running.analyses.len(), 7);
        let cancelled = store
            .list_page(Some(Status::Cancelled), None, 100)
            .await
            .unwrap();
        let s = &cancelled.analyses[0];
        assert_eq!((s.id.as_str(), s.key.as_str()), (b.id.as_str(), "b"));
        assert_eq!(
            (s.model.as_str(), s.planned_intervals()),
            ("http-red", 3600)
        );
        assert_eq!(
            s.canary.get("service.version").map(String::as_str),
            Some("2")
        );
        assert_eq!(s.decided_ms, Some(5));

        for bad in ["", "12", "x.00", "12.zz", "12.ff"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_damaged_database_file_is_corrupt_not_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(&dir).await;
            for n in 0..300 {
                store
                    .create(&request(&format!("key-{n:04}"), &"9".repeat(200)), &[], n)
                    .await
                    .unwrap();
            }
            // Closing the last connection checkpoints the WAL into the file.
            store.close().await;
        }
        let path = dir.path().join("a.db");
        let mut bytes = std::fs::read(&path).unwrap();
        let pages = bytes.len() / 4096;
        assert!(pages > 40, "{pages} pages");
        // Ten pages in the middle of the file overwritten, as a bad sector would.
        let from = pages / 2 * 4096;
        bytes[from..from + 10 * 4096].fill(0xff);
        std::fs::write(&path, &bytes).unwrap();

        let store = open(&dir).await;
        let e = store.list_page(None, None, 1000).await.unwrap_err();
        assert!(matches!(e, StoreError::DatabaseCorrupt(_)), "{e:?}");
        let not_ready = store.ready().await.unwrap_err();
        assert!(not_ready.corrupt, "{not_ready:?}");
        assert!(not_ready.reason.contains("corrupt"), "{}", not_ready.reason);
    }
}
