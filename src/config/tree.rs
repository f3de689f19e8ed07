//! The config file read as a tree of values that remember their line, with `${NAME}`
//! references expanded inside string values (never in the YAML text, so a value holding
//! `"`, `:` or a newline stays one string and cannot add keys), then turned into JSON for
//! the typed settings, with a map from each value's path to its line for errors.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML value and the line it is on (1-based; 0 when the parser could not tell).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// In file order; keys are unique (the parser refuses a repeated key).
    Map(Vec<(String, Node)>),
}

/// A value without its line, as `Spanned<Node>` reads it.
struct Bare(Value);

impl<'de> Deserialize<'de> for Bare {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BareVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Bare>::deserialize(d)?;
        Ok(Node {
            line: spanned.referenced.line() as usize,
            value: spanned.value.0,
        })
    }
}

struct BareVisitor;

impl<'de> Visitor<'de> for BareVisitor {
    type Value = Bare;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Bare, E> {
        Ok(Bare(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Bare, E> {
        Ok(Bare(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Bare, D::Error> {
        Bare::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Bare, E> {
        Ok(Bare(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Bare, E> {
        Ok(Bare(Value::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Bare, E> {
        Ok(Bare(Value::UInt(v)))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Bare, E> {
        Err(E::custom("a number too large for any setting"))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Bare, E> {
        Err(E::custom("a number too large for any setting"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Bare, E> {
        Ok(Bare(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Bare, E> {
        Ok(Bare(Value::Str(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Bare, E> {
        Ok(Bare(Value::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bare, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Bare(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bare, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            let value = map.next_value::<Node>()?;
            if entries.iter().any(|(k, _)| *k == key.0) {
                return Err(de::Error::custom(format!(
                    "key `{}` appears twice in one mapping",
                    key.0
                )));
            }
            entries.push((key.0, value));
        }
        Ok(Bare(Value::Map(entries)))
    }
}

/// A mapping key as text: config keys are names, and a number or boolean used as one
/// (`404: x`, `on: y`) is read as the text it is written as.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        // As text: `n:` or `on:` is a name here, not YAML 1.1's boolean.
        d.deserialize_str(V)
    }
}

/// Why a reference could not be expanded, and on which line.
#[derive(Debug, PartialEq)]
pub(super) struct ExpandError {
    pub line: usize,
    pub reason: String,
}

impl Node {
    /// Expands `${NAME}` in every string value with `env`; `$${` stays a literal `${`.
    /// Keys are names and are left alone. An expanded value is a string whatever its
    /// text: `${N}` in `runner_concurrency: ${N}` gives the string `"8"`, refused where a
    /// number is expected.
    pub fn expand(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ExpandError> {
        match &mut self.value {
            Value::Str(s) => {
                *s = expand_text(s, env).map_err(|reason| ExpandError {
                    line: self.line,
                    reason,
                })?;
            }
            Value::Seq(items) => {
                for item in items {
                    item.expand(env)?;
                }
            }
            Value::Map(entries) => {
                for (_, node) in entries {
                    node.expand(env)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The tree as JSON for the typed settings, and the line of every value by its path
    /// (`notifiers.pd.routing_key`, `api_tokens[0]`).
    pub fn into_json(self) -> (serde_json::Value, Lines) {
        let mut lines = Lines::default();
        let json = self.json_at(String::new(), &mut lines);
        (json, lines)
    }

    fn json_at(self, path: String, lines: &mut Lines) -> serde_json::Value {
        use serde_json::Value as J;
        let json = match self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(i) => J::from(i),
            Value::UInt(u) => J::from(u),
            // A float JSON cannot hold (inf, NaN) stays out of reach of a setting.
            Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s),
            Value::Seq(items) => J::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| n.json_at(format!("{path}[{i}]"), lines))
                    .collect(),
            ),
            Value::Map(entries) => J::Object(
                entries
                    .into_iter()
                    .map(|(k, n)| {
                        let at = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        (k, n.json_at(at, lines))
                    })
                    .collect(),
            ),
        };
        if self.line > 0 {
            lines.0.insert(path, self.line);
        }
        json
    }
}

/// Replaces every `${NAME}` in `text`; `$${` stays a literal `${`.
fn expand_text(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if at > 0 && rest.as_bytes()[at - 1] == b'$' {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without a closing `}`".to_string())?;
        let name = &after[..end];
        let value = env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The line of each value of the config file, by its path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lines(BTreeMap<String, usize>);

impl Lines {
    /// The line of `path`, or of the nearest enclosing value the file has (a missing
    /// field is reported on the line of the mapping that lacks it).
    pub fn of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Node {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn every_value_knows_its_line() {
        let (json, lines) = tree("a: 1\nb:\n  c: [x, z]\n  d:\n    - e: true\n").into_json();
        assert_eq!(json["b"]["c"][1], "z");
        assert_eq!(json["b"]["d"][0]["e"], true);
        assert_eq!(lines.of("a"), Some(1));
        assert_eq!(lines.of("b.c[1]"), Some(3));
        assert_eq!(lines.of("b.d[0].e"), Some(5));
        // Unknown below a known value: the nearest one's line.
        assert_eq!(lines.of("b.d[0].e.f"), Some(5));
        assert_eq!(lines.of("zz"), None);
    }

    #[test]
    fn references_expand_as_values_never_as_yaml() {
        let env = |name: &str| match name {
            "QUOTE" => Some("x\"\nlisten: 0.0.0.0:1".to_string()),
            "N" => Some("8".to_string()),
            _ => None,
        };
        let mut t = tree("token: \"${QUOTE}\"\nn: ${N}\nlit: \"$${HOME}\"\n");
        t.expand(&env).unwrap();
        let (json, _) = t.into_json();
        assert_eq!(json["token"], "x\"\nlisten: 0.0.0.0:1");
        assert!(json.get("listen").is_none());
        assert_eq!(json["n"], "8");
        assert_eq!(json["lit"], "${HOME}");

        let mut t = tree("a: 1\nb: [\"${MISSING}\"]\n");
        assert_eq!(
            t.expand(&env).unwrap_err(),
            ExpandError {
                line: 2,
                reason: "environment variable `MISSING` is not set".into()
            }
        );
    }

    #[test]
    fn a_repeated_key_is_refused() {
        assert!(serde_saphyr::from_str::<Node>("a: 1\na: 2\n").is_err());
    }
}
