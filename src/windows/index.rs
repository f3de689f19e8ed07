//! The lookup from a span's attribute values to the watches that want it.
//!
//! Built once per change of the watch set and never mutated, so receivers read it without
//! locks. Watches are grouped by the set of attribute names their scope lists (usually one
//! group: `service.name` + `service.version`); each group maps the encoded values of its
//! names to the watches with exactly those values, so matching a resource costs one hash
//! lookup per group whatever the number of watches.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Scope, SpanFilter, Window};

/// A value a span or resource carries for a scope name. Integers and booleans match the
/// scope value that spells them in decimal / `true` / `false`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ScopeValue<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

#[derive(Default)]
pub(crate) struct Index {
    /// Attribute names any watch lists; a name's position is its slot.
    names: Vec<Box<str>>,
    groups: Vec<Group>,
    entries: Vec<Entry>,
}

/// Encoded scope values -> entries, while building.
type KeyMap = HashMap<Box<[u8]>, Vec<u32>>;

struct Group {
    /// Slots of the group's names, in the scope's (sorted) name order.
    slots: Box<[usize]>,
    by_key: HashMap<Box<[u8]>, Box<[u32]>>,
}

/// One watch as ingest sees it: its filter and where its data goes.
pub(crate) struct Entry {
    kind: Option<i32>,
    name: Option<Box<str>>,
    route: Option<Box<str>>,
    pub(crate) window: Arc<Window>,
}

impl Entry {
    /// Whether a span of the watched scope passes this watch's filter.
    pub(crate) fn keeps(&self, kind: i32, name: &str, route: Option<&str>) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.name.as_deref().is_none_or(|n| n == name)
            && self.route.as_deref().is_none_or(|r| Some(r) == route)
    }
}

impl Index {
    pub(crate) fn build<'s>(
        watches: impl Iterator<Item = (&'s Scope, &'s SpanFilter, Arc<Window>)>,
    ) -> Self {
        let mut index = Index::default();
        // Few distinct name sets exist (usually one), so a list beats a map here.
        let mut groups: Vec<(Box<[usize]>, KeyMap)> = Vec::new();
        let mut key = Vec::new();
        for (scope, filter, window) in watches {
            let slots: Box<[usize]> = scope.keys().map(|name| index.slot_of(name)).collect();
            key.clear();
            for value in scope.values() {
                push_part(&mut key, value.as_bytes());
            }
            let entry = index.entries.len() as u32;
            index.entries.push(Entry {
                kind: filter.kind.map(|k| k.otlp_value()),
                name: filter.name.as_deref().map(Box::from),
                route: filter.route.as_deref().map(Box::from),
                window,
            });
            let at = match groups.iter().position(|(s, _)| *s == slots) {
                Some(at) => at,
                None => {
                    groups.push((slots, HashMap::new()));
                    groups.len() - 1
                }
            };
            groups[at]
                .1
                .entry(key.as_slice().into())
                .or_default()
                .push(entry);
        }
        index.groups = groups
            .into_iter()
            .map(|(slots, by_key)| Group {
                slots,
                by_key: by_key
                    .into_iter()
                    .map(|(k, v)| (k, v.into_boxed_slice()))
                    .collect(),
            })
            .collect();
        index
    }

    fn slot_of(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| &**n == name) {
            Some(slot) => slot,
            None => {
                self.names.push(name.into());
                self.names.len() - 1
            }
        }
    }

    /// Attribute names whose values decide scopes; ingest reports values slot by slot.
    pub(crate) fn names(&self) -> &[Box<str>] {
        &self.names
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn entry(&self, at: u32) -> &Entry {
        &self.entries[at as usize]
    }

    /// Appends to `out` the entries whose scope equals `values` (one per slot) on every
    /// name the scope lists. `key` is scratch space, reused across calls.
    pub(crate) fn lookup(
        &self,
        values: &[Option<ScopeValue<'_>>],
        key: &mut Vec<u8>,
        out: &mut Vec<u32>,
    ) {
        'groups: for group in &self.groups {
            key.clear();
            for &slot in group.slots.iter() {
                match values.get(slot).copied().flatten() {
                    Some(ScopeValue::Str(s)) => push_part(key, s.as_bytes()),
                    Some(ScopeValue::Int(i)) => push_part(key, i.to_string().as_bytes()),
                    Some(ScopeValue::Bool(b)) => push_part(key, if b { b"true" } else { b"false" }),
                    None => continue 'groups,
                }
            }
            if let Some(found) = group.by_key.get(key.as_slice()) {
                out.extend_from_slice(found);
            }
        }
    }
}

/// Length-prefixed, so ("ab", "c") and ("a", "bc") never collide.
fn push_part(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&(part.len() as u32).to_le_bytes());
    key.extend_from_slice(part);
}
