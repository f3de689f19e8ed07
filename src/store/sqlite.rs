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

    use super::*;
    use crate::analysis::{AnalysisRequest, ValidRequest};
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
