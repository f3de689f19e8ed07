//! Generic webhooks: the full verdict as JSON, signed so the receiver can tell it came
//! from this daemon and is fresh.
//!
//! Headers: `X-Augury-Timestamp: <unix seconds>` and
//! `X-Augury-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! Verification is described in docs/notifications.md.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Secret;
use super::message::Message;

pub const SIGNATURE_HEADER: &str = "x-augury-signature";
pub const TIMESTAMP_HEADER: &str = "x-augury-timestamp";
pub const EVENT_HEADER: &str = "x-augury-event";
pub const DELIVERY_HEADER: &str = "x-augury-delivery";

/// The value of `X-Augury-Signature` for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The identity of a notification, the same on every attempt: receivers deduplicate on it.
pub fn delivery_id(m: &Message) -> String {
    format!(
        "{}:{}:{}",
        m.analysis.id,
        m.notification.notifier,
        m.event().as_str()
    )
}

pub fn body(m: &Message) -> Value {
    let a = m.analysis;
    json!({
        "event": m.event(),
        "delivery": delivery_id(m),
        "summary": m.headline(),
        "analysis": m.verdict,
        "baseline": a.request.baseline,
        "canary": a.request.canary,
        "model": a.model.name,
        "superseded_by": m.notification.cause,
        "judgment": a.judgment,
        "links": {"analysis": m.analysis_url, "grafana": m.grafana_url},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Python: hmac.new(b"s3cret", b'1700000000.{"event":"failed"}', hashlib.sha256)
        let s = signature(
            &Secret::new("s3cret"),
            1_700_000_000,
            br#"{"event":"failed"}"#,
        );
        assert_eq!(
            s,
            "sha256=dc16f864a1ed730fdc85552ba2deb93ed4eb00c605b74907d4bc0c9a756c0748"
        );
    }
}
