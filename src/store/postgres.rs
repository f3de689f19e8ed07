//! PostgreSQL backend: a server several replicas may share, migrations embedded in the
//! binary. The store's queries and transactions are [`SqlStore`]'s; this is how the
//! server is reached, how its JSON functions are spelled and which of its errors mean it
//! cannot write.
//!
//! Differences from SQLite: there is no damaged-file state (a server that cannot be
//! reached is [`StoreError::Database`], retryable, and makes the store not ready until a
//! write commits again); concurrent writers do not queue on one lock but on the rows they
//! touch, and the store's guarded writes stay correct under that (see [`super::sql`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgQueryResult};

use super::StoreError;
use super::sql::{Backend, SqlStore, pool_options};

/// The store on a PostgreSQL database.
pub type PgStore = SqlStore<Postgres>;

/// Connections per store (per replica).
const MAX_CONNECTIONS: u32 = 8;
/// How long the store waits for a connection before it reports the database unavailable
/// (a server that is down or unreachable, or every connection busy): a down server is
/// an error within seconds, never a hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl Backend for Postgres {
    fn json_valid(doc: &str) -> String {
        // Defined by migrations/postgres/0003_list_and_probe.sql.
        format!("augury_json_valid({doc})")
    }

    fn json_field(doc: &str, name: &str) -> String {
        format!("({doc}::json ->> '{name}')")
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// The server cannot be reached or cannot write: the connection failed or was cut
    /// (I/O, TLS, protocol, no connection within the acquire timeout), or the server says
    /// so (SQLSTATE classes 08 connection exception, 53 insufficient resources such as a
    /// full disk, 57 shut down or restarting, 58 system error, XX internal error, and
    /// 25006 a read-only server such as a standby). A cancelled statement (57014) is not.
    fn write_fault(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|code| {
                code != "57014"
                    && (["08", "53", "57", "58", "XX"]
                        .iter()
                        .any(|class| code.starts_with(class))
                        || code == "25006")
            }),
            _ => false,
        }
    }
}

impl SqlStore<Postgres> {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`) and brings
    /// its schema up to date. Replicas starting together migrate one at a time (the
    /// migrator holds an advisory lock).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("augury");
        let pool = pool_options::<Postgres>(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore::new(pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_server_is_a_write_fault_a_bad_row_is_not() {
        assert!(Postgres::write_fault(&sqlx::Error::PoolTimedOut));
        assert!(Postgres::write_fault(&sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset)
        )));
        assert!(!Postgres::write_fault(&sqlx::Error::RowNotFound));
        assert!(!Postgres::write_fault(&sqlx::Error::ColumnNotFound(
            "x".into()
        )));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_an_unavailable_database_not_a_hang() {
        // A port nobody listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = PgStore::open(&format!("postgres://augury@127.0.0.1:{port}/augury"))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Database(_)), "{e:?}");
    }
}
