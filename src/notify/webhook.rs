//! Generic webhooks: the full verdict as JSON, signed so the receiver can tell it came
//! from this daemon and is fresh.
//!
//! Two signature schemes, chosen per notifier (`signature:`):
//! - Augury's own: `X-Augury-Timestamp: <unix seconds>` and
//!   `X-Augury-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! - Standard Webhooks (standardwebhooks.com): `webhook-id` (the delivery id),
//!   `webhook-timestamp` and `webhook-signature: v1,<base64 of HMAC-SHA256(key,
//!   "<id>.<timestamp>.<body>")>`, where the key is the base64 after the secret's `whsec_`.
//!
//! With several secrets (a rotation), each signature header holds one value per secret,
//! separated by spaces, and a receiver accepts the request when any of them verifies.
//! Verification is described in docs/notifications.md.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Secret;
use super::message::Message;

pub const SIGNATURE_HEADER: &str = "x-augury-signature";
pub const TIMESTAMP_HEADER: &str = "x-augury-timestamp";
pub const EVENT_HEADER: &str = "x-augury-event";
pub const DELIVERY_HEADER: &str = "x-augury-delivery";
pub const STANDARD_ID_HEADER: &str = "webhook-id";
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

/// HMAC-SHA256 of the parts, one after the other, with `key`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// One `X-Augury-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mac = hmac(
        secret.expose().as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", body],
    );
    format!("sha256={}", hex::encode(mac))
}

/// The `X-Augury-Signature` header: one value per secret, separated by spaces.
pub fn signatures(secrets: &[&Secret], timestamp: i64, body: &[u8]) -> String {
    let values: Vec<String> = secrets
        .iter()
        .map(|s| signature(s, timestamp, body))
        .collect();
    values.join(" ")
}

/// Standard base64 read with or without its `=` padding, as the specification's own
/// libraries read secrets.
const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The HMAC key of a Standard Webhooks secret: the base64 after an optional `whsec_`,
/// 24 to 64 bytes as the specification recommends. `None` when it is not one.
pub fn standard_key(secret: &Secret) -> Option<Vec<u8>> {
    let encoded = secret.expose();
    let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
    BASE64_ANY_PADDING
        .decode(encoded)
        .ok()
        .filter(|key| (24..=64).contains(&key.len()))
}

/// The `webhook-signature` header: `v1,<base64>` per secret, separated by spaces. `None`
/// when a secret is not a Standard Webhooks secret (the config check refuses those).
pub fn standard_signatures(
    secrets: &[&Secret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let values = secrets
        .iter()
        .map(|s| {
            let key = standard_key(s)?;
            let mac = hmac(
                &key,
                &[
                    id.as_bytes(),
                    b".",
                    timestamp.to_string().as_bytes(),
                    b".",
                    body,
                ],
            );
            Some(format!("v1,{}", BASE64.encode(mac)))
        })
        .collect::<Option<Vec<String>>>()?;
    Some(values.join(" "))
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

    #[test]
    fn standard_signature_matches_the_specifications_example() {
        // The example message of the Standard Webhooks specification, signed with its
        // example secret; the value its reference libraries give.
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let s = standard_signatures(
            &[&secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            s.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn several_secrets_give_one_value_each_in_order() {
        let (a, b) = (
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        );
        let both = standard_signatures(&[&a, &b], "id", 1, b"{}").unwrap();
        let one = |s: &Secret| standard_signatures(&[s], "id", 1, b"{}").unwrap();
        assert_eq!(both, format!("{} {}", one(&a), one(&b)));
        assert_eq!(
            signatures(&[&a, &b], 1, b"{}"),
            format!("{} {}", signature(&a, 1, b"{}"), signature(&b, 1, b"{}"))
        );
    }

    #[test]
    fn a_standard_secret_is_base64_of_24_to_64_bytes() {
        let key = |s: &str| standard_key(&Secret::new(s)).map(|k| k.len());
        assert_eq!(key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some(24));
        assert_eq!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some(24));
        assert_eq!(
            key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA"),
            Some(25),
            "unpadded"
        );
        assert_eq!(key("whsec_c2hvcnQ="), None, "5 bytes is too short");
        assert_eq!(key("whsec_not base64!"), None);
        assert_eq!(
            key(&format!("whsec_{}", "QUFB".repeat(22))),
            None,
            "66 bytes"
        );
    }
}
