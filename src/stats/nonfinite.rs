//! Numbers that JSON cannot spell: infinities and NaN, written so they round-trip.
//!
//! JSON has no infinity and no NaN, and `serde_json` writes both as `null`, which then
//! fails to read back into an `f64`. A result that is genuinely infinite (an e-value after
//! overwhelming evidence, a ratio over a zero baseline) would make the record holding it
//! unreadable. Fields that can hold such a value use this module
//! (`#[serde(with = "crate::stats::nonfinite")]`, or [`option`] for `Option<f64>`): finite
//! values stay JSON numbers, the others become the strings `"+Inf"`, `"-Inf"` and `"NaN"`
//! (Prometheus' spelling, which dashboards and scripts already parse).
//!
//! Reading is tolerant: a number, one of those strings (also `"Infinity"`, `"inf"` and
//! the like, any case), or `null`. `null` is what earlier versions stored for a
//! non-finite value; it reads as NaN here, and as +infinity through
//! [`overflowed`] for quantities that can only overflow upwards (e-values).
//!
//! Pure: serde only.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// The spelling of a non-finite value; `None` for finite ones.
pub fn spelling(value: f64) -> Option<&'static str> {
    if value.is_nan() {
        Some("NaN")
    } else if value == f64::INFINITY {
        Some("+Inf")
    } else if value == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Reads a spelling of a non-finite value (case-insensitive).
pub fn parse(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    match spelling(*value) {
        Some(text) => s.serialize_str(text),
        None => s.serialize_f64(*value),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(FloatVisitor { null: f64::NAN })
}

/// For values that can only become non-finite by overflowing upwards (e-values, products
/// of likelihood ratios): a legacy `null` reads as +infinity.
pub mod overflowed {
    use super::*;

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(value, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(FloatVisitor {
            null: f64::INFINITY,
        })
    }
}

/// `Option<f64>`: `null` is `None`; a present value as in the parent module.
pub mod option {
    use super::*;

    /// A NaN with a payload no arithmetic produces, marking "was null" while reading.
    const NULL_BITS: u64 = 0x7ff8_dead_beef_0001;

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let v = d.deserialize_any(FloatVisitor {
            null: f64::from_bits(NULL_BITS),
        })?;
        Ok((v.to_bits() != NULL_BITS).then_some(v))
    }
}

struct FloatVisitor {
    /// What `null` reads as.
    null: f64,
}

impl<'de> Visitor<'de> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, null, or one of \"+Inf\", \"-Inf\", \"NaN\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(self.null)
    }

    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(self.null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "super")]
        x: f64,
        #[serde(with = "super::overflowed")]
        e: f64,
        #[serde(default, with = "super::option")]
        o: Option<f64>,
    }

    fn text(r: &Record) -> String {
        serde_json::to_string(r).unwrap()
    }

    fn read(s: &str) -> Record {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn non_finite_values_are_strings_and_come_back() {
        let r = Record {
            x: f64::NEG_INFINITY,
            e: f64::INFINITY,
            o: Some(f64::NAN),
        };
        let s = text(&r);
        assert_eq!(s, r#"{"x":"-Inf","e":"+Inf","o":"NaN"}"#);
        let back = read(&s);
        assert_eq!(back.x, f64::NEG_INFINITY);
        assert_eq!(back.e, f64::INFINITY);
        assert!(back.o.unwrap().is_nan());
        // Finite values stay numbers, exactly.
        let r = Record {
            x: 0.1 + 0.2,
            e: -0.0,
            o: None,
        };
        let s = text(&r);
        assert_eq!(s, r#"{"x":0.30000000000000004,"e":-0.0,"o":null}"#);
        let back = read(&s);
        assert_eq!(back.x.to_bits(), r.x.to_bits());
        assert_eq!(back.e.to_bits(), (-0.0f64).to_bits());
        assert_eq!(back.o, None);
    }

    #[test]
    fn what_earlier_versions_wrote_still_reads() {
        // `null` for an overflowed e-value, integers, other spellings, a missing option.
        let back = read(r#"{"x":null,"e":null}"#);
        assert!(back.x.is_nan());
        assert_eq!(back.e, f64::INFINITY);
        assert_eq!(back.o, None);
        let back = read(r#"{"x":3,"e":"Infinity","o":"-inf"}"#);
        assert_eq!(
            (back.x, back.e, back.o),
            (3.0, f64::INFINITY, Some(f64::NEG_INFINITY))
        );
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        let e = serde_json::from_str::<Record>(r#"{"x":"lots","e":1}"#).unwrap_err();
        assert!(e.to_string().contains("\"+Inf\""), "{e}");
        assert!(serde_json::from_str::<Record>(r#"{"x":[1],"e":1}"#).is_err());
    }
}
