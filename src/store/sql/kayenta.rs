//! Kayenta's stored canary configs and the context of its executions
//! ([`crate::store::KayentaConfig`]) on either backend.

use sqlx::{Encode, Executor, IntoArguments, Type};

use super::{Backend, SqlStore};
use crate::store::KayentaConfig;
use crate::store::StoreError;
use crate::store::rows::{Columns, from_json, to_json};

const CONFIG_COLUMNS: &str = "id, name, applications, config, created_ms, updated_ms";

fn config(row: &impl Columns) -> Result<KayentaConfig, StoreError> {
    let id = row.text("id")?;
    let what = |field: &str| format!("kayenta config {id} {field}");
    Ok(KayentaConfig {
        name: row.text("name")?,
        applications: from_json(&row.text("applications")?, &what("applications"))?,
        config: from_json(&row.text("config")?, &what("config"))?,
        created_ms: row.int("created_ms")?,
        updated_ms: row.int("updated_ms")?,
        id,
    })
}

impl<B: Backend> SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    B::Row: Columns,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> String: Encode<'q, B> + Type<B>,
    for<'q> i64: Encode<'q, B> + Type<B>,
    for<'q> f64: Encode<'q, B> + Type<B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'q> Option<i64>: Encode<'q, B>,
{
    /// Every stored Kayenta config, by name then id.
    pub async fn kayenta_configs(&self) -> Result<Vec<KayentaConfig>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CONFIG_COLUMNS} FROM kayenta_configs ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await;
        self.noted(rows)?.iter().map(config).collect()
    }

    pub async fn kayenta_config(&self, id: &str) -> Result<Option<KayentaConfig>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONFIG_COLUMNS} FROM kayenta_configs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await;
        self.noted(row)?.as_ref().map(config).transpose()
    }

    /// Stores a new config; false (and nothing written) when its id is taken.
    pub async fn insert_kayenta_config(&self, c: &KayentaConfig) -> Result<bool, StoreError> {
        let (applications, body) = (
            to_json(&c.applications, "applications")?,
            to_json(&c.config, "config")?,
        );
        self.write(async |tx| {
            let result = sqlx::query(
                "INSERT INTO kayenta_configs (id, name, applications, config, created_ms, \
                 updated_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(c.id.as_str())
            .bind(c.name.as_str())
            .bind(applications)
            .bind(body)
            .bind(c.created_ms)
            .bind(c.updated_ms)
            .execute(&mut *tx)
            .await?;
            Ok(B::rows_affected(&result) == 1)
        })
        .await
    }

    /// Replaces a stored config (its creation time kept); false when there is none.
    pub async fn update_kayenta_config(&self, c: &KayentaConfig) -> Result<bool, StoreError> {
        let (applications, body) = (
            to_json(&c.applications, "applications")?,
            to_json(&c.config, "config")?,
        );
        self.write(async |tx| {
            let result = sqlx::query(
                "UPDATE kayenta_configs SET name = $2, applications = $3, config = $4, \
                 updated_ms = $5 WHERE id = $1",
            )
            .bind(c.id.as_str())
            .bind(c.name.as_str())
            .bind(applications)
            .bind(body)
            .bind(c.updated_ms)
            .execute(&mut *tx)
            .await?;
            Ok(B::rows_affected(&result) == 1)
        })
        .await
    }

    /// Deletes a stored config; false when there was none.
    pub async fn delete_kayenta_config(&self, id: &str) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let result = sqlx::query("DELETE FROM kayenta_configs WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            Ok(B::rows_affected(&result) == 1)
        })
        .await
    }

    /// Keeps what the Kayenta execution whose analysis has key `key` was started with.
    pub async fn put_kayenta_execution(&self, key: &str, context: &str) -> Result<(), StoreError> {
        self.write(async |tx| {
            sqlx::query(
                "INSERT INTO kayenta_executions (key, context) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET context = excluded.context",
            )
            .bind(key)
            .bind(context)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
        .await
    }

    /// What the Kayenta execution of the analysis with key `key` was started with.
    pub async fn kayenta_execution(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT context FROM kayenta_executions WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await;
        self.noted(row)?
            .map(|r| r.text("context").map_err(StoreError::from))
            .transpose()
    }
}
