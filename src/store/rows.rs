//! Rows read back into records, the same for every backend: the JSON columns, the
//! analysis, summary, notification and interval rows, and the quarantine of rows that
//! cannot be read.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{StoreError, Summary, Unreadable};
use crate::analysis::{Analysis, Interval, Scope, Status};
use crate::judge::Verdict;
use crate::notify::{DeliveryState, Event, Notification};

/// A row of either backend, read by column name in the few types the schema has: text,
/// 64-bit integers, doubles and booleans.
pub trait Columns {
    fn text(&self, name: &str) -> Result<String, sqlx::Error>;
    fn text_opt(&self, name: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, name: &str) -> Result<i64, sqlx::Error>;
    fn int_opt(&self, name: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real_opt(&self, name: &str) -> Result<Option<f64>, sqlx::Error>;
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error>;
}

impl<R> Columns for R
where
    R: Row,
    for<'s> &'s str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, name: &str) -> Result<String, sqlx::Error> {
        self.try_get(name)
    }
    fn text_opt(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(name)
    }
    fn int(&self, name: &str) -> Result<i64, sqlx::Error> {
        self.try_get(name)
    }
    fn int_opt(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(name)
    }
    fn real_opt(&self, name: &str) -> Result<Option<f64>, sqlx::Error> {
        self.try_get(name)
    }
    fn flag(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.try_get(name)
    }
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    })
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    })
}

pub(super) const COLUMNS: &str = "id, key, request, model, status, interval_ms, lifetime_ms, \
     created_ms, next_due_ms, decided_ms, intervals, score, judgment, cumulative";

/// The id of an analysis row, even when the rest of the row is unreadable.
pub(super) fn row_id(row: &impl Columns) -> String {
    row.text("id")
        .unwrap_or_else(|_| "(unreadable id)".to_string())
}

/// An analysis row. A value of the wrong type is that row's corruption, not a database
/// failure: it is reported as [`StoreError::Corrupt`] so one bad row is never mistaken
/// for an unavailable database.
pub(super) fn analysis(row: &impl Columns) -> Result<Analysis, StoreError> {
    let id = row_id(row);
    let what = |field: &str| format!("analysis {id} {field}");
    let corrupt = |field: &str| {
        let what = what(field);
        move |e: sqlx::Error| StoreError::Corrupt {
            what,
            reason: e.to_string(),
        }
    };
    let text = |name: &str| row.text(name).map_err(corrupt(name));
    let int = |name: &str| row.int(name).map_err(corrupt(name));
    let status = text("status")?;
    let judgment = row.text_opt("judgment").map_err(corrupt("judgment"))?;
    Ok(Analysis {
        key: text("key")?,
        request: from_json(&text("request")?, &what("request"))?,
        model: from_json(&text("model")?, &what("model"))?,
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: what("status"),
            reason: format!("unknown status `{status}`"),
        })?,
        interval_ms: int("interval_ms")? as u64,
        lifetime_ms: int("lifetime_ms")? as u64,
        created_ms: int("created_ms")?,
        next_due_ms: int("next_due_ms")?,
        decided_ms: row.int_opt("decided_ms").map_err(corrupt("decided_ms"))?,
        intervals: int("intervals")? as u32,
        score: row.real_opt("score").map_err(corrupt("score"))?,
        judgment: judgment
            .map(|j| from_json(&j, &what("judgment")))
            .transpose()?,
        cumulative: from_json(&text("cumulative")?, &what("cumulative"))?,
        id,
    })
}

/// Reads every row of `rows` that can be read; the others are quarantined: reported by id
/// with the reason, and logged, so one bad row never hides the rest.
pub(super) fn readable<R: Columns>(rows: &[R]) -> (Vec<Analysis>, Vec<Unreadable>) {
    let mut good = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for row in rows {
        match analysis(row) {
            Ok(a) => good.push(a),
            Err(e) => bad.push(quarantined(row_id(row), e.to_string())),
        }
    }
    (good, bad)
}

pub(super) fn quarantined(id: String, reason: String) -> Unreadable {
    tracing::warn!(analysis = %id, reason = %reason, "stored analysis is unreadable; skipped");
    Unreadable { id, reason }
}

/// What the list reads of a row: the small columns, and from the JSON ones only the
/// fields a summary shows, extracted by the database (validity first, so a malformed
/// document quarantines its row instead of failing the whole query). `valid(doc)` and
/// `field(doc, name)` spell the backend's JSON functions.
pub(super) fn summary_columns(
    valid: impl Fn(&str) -> String,
    field: impl Fn(&str, &str) -> String,
) -> String {
    format!(
        "id, key, status, interval_ms, lifetime_ms, created_ms, decided_ms, intervals, score, \
         {} AS request_ok, {} AS model_ok, judgment IS NULL OR {} AS judgment_ok, \
         CASE WHEN {} THEN {} END AS model_name, \
         CASE WHEN {} THEN {} END AS baseline, \
         CASE WHEN {} THEN {} END AS canary, \
         CASE WHEN {} THEN {} END AS verdict",
        valid("request"),
        valid("model"),
        valid("judgment"),
        valid("model"),
        field("model", "name"),
        valid("request"),
        field("request", "baseline"),
        valid("request"),
        field("request", "canary"),
        valid("judgment"),
        field("judgment", "verdict"),
    )
}

/// A row of [`summary_columns`], or why it cannot be read.
pub(super) fn summary(row: &impl Columns) -> Result<Summary, String> {
    let id = row_id(row);
    fn err(name: &str) -> impl Fn(sqlx::Error) -> String + '_ {
        move |e| format!("{name}: {e}")
    }
    let text = |name: &str| row.text(name).map_err(err(name));
    let text_opt = |name: &str| row.text_opt(name).map_err(err(name));
    let int = |name: &str| row.int(name).map_err(err(name));
    let status = text("status")?;
    let status =
        Status::parse(&status).ok_or_else(|| format!("status: unknown status `{status}`"))?;
    for name in ["request", "model", "judgment"] {
        let ok_column = format!("{name}_ok");
        if !row.flag(&ok_column).map_err(err(&ok_column))? {
            return Err(format!("{name}: not valid JSON"));
        }
    }
    let scope = |name: &str| -> Result<Scope, String> {
        let text = text_opt(name)?.ok_or_else(|| format!("request: no `{name}` scope"))?;
        serde_json::from_str(&text).map_err(|e| format!("request {name}: {e}"))
    };
    let verdict = text_opt("verdict")?
        .map(|v| {
            serde_json::from_value::<Verdict>(serde_json::Value::String(v.clone()))
                .map_err(|_| format!("judgment: unknown verdict `{v}`"))
        })
        .transpose()?;
    Ok(Summary {
        key: text("key")?,
        status,
        model: text_opt("model_name")?.ok_or_else(|| "model: no name".to_string())?,
        baseline: scope("baseline")?,
        canary: scope("canary")?,
        interval_ms: int("interval_ms")? as u64,
        lifetime_ms: int("lifetime_ms")? as u64,
        created_ms: int("created_ms")?,
        decided_ms: row.int_opt("decided_ms").map_err(err("decided_ms"))?,
        intervals: int("intervals")? as u32,
        score: row.real_opt("score").map_err(err("score"))?,
        verdict,
        id,
    })
}

pub(super) const NOTIFICATION_COLUMNS: &str = "id, analysis_id, notifier, event, cause, state, \
     attempts, created_ms, next_attempt_ms, done_ms, last_status, last_error";

pub(super) fn notification(row: &impl Columns) -> Result<Notification, StoreError> {
    let id = row.int("id")?;
    let corrupt = |field: &str, value: &str| StoreError::Corrupt {
        what: format!("notification {id} {field}"),
        reason: format!("unknown value `{value}`"),
    };
    let event = row.text("event")?;
    let state = row.text("state")?;
    Ok(Notification {
        id,
        analysis_id: row.text("analysis_id")?,
        notifier: row.text("notifier")?,
        event: Event::parse(&event).ok_or_else(|| corrupt("event", &event))?,
        cause: row.text_opt("cause")?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        attempts: row.int("attempts")? as u32,
        created_ms: row.int("created_ms")?,
        next_attempt_ms: row.int("next_attempt_ms")?,
        done_ms: row.int_opt("done_ms")?,
        last_status: row.int_opt("last_status")?.map(|s| s as u16),
        last_error: row.text_opt("last_error")?,
    })
}

/// A row of the `intervals` table of analysis `id`.
pub(super) fn interval(row: &impl Columns, id: &str) -> Result<Interval, StoreError> {
    let seq = row.int("seq")?;
    let what = format!("analysis {id} interval {seq}");
    Ok(Interval {
        seq: seq as u32,
        start_ms: row.int("start_ms")?,
        end_ms: row.int("end_ms")?,
        data: from_json(&row.text("data")?, &what)?,
        judgment: from_json(&row.text("judgment")?, &what)?,
    })
}
