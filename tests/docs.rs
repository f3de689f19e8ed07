//! The reference docs against the code they describe, both ways: whatever the daemon
//! reads or exposes is documented, and whatever the docs list exists.
//!
//! - docs/configuration.md: every `augury serve` flag with its environment variable and
//!   default (as `--help` gives them), every config-file key (as serde reads them), every
//!   environment variable any command reads.
//! - docs/api.md: every metric family `/metrics` can serve.
//! - models/README.md: every built-in model.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::CommandFactory;
use serde::de::{self, Deserialize, Deserializer, Visitor};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The rows of every Markdown table in `text` whose first cell starts with a backtick,
/// as their cells.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The first backticked word of a cell.
fn code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

/// The field names serde reads for the struct `T`: a deserializer that records what
/// `deserialize_struct` is told and stops there.
fn fields<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    struct Recorder(Option<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for &mut Recorder {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut r = Recorder(None);
    let _ = T::deserialize(&mut r);
    r.0.expect("a struct with named fields").to_vec()
}

/// Every config-file key the daemon reads, nested sections as `section.key`.
fn config_keys() -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = fields::<augury::config::FileConfig>()
        .into_iter()
        .map(String::from)
        .collect();
    for (section, names) in [
        ("limits", fields::<augury::config::LimitsConfig>()),
        (
            "prometheus",
            fields::<augury::ingest::prometheus::PrometheusConfig>(),
        ),
        (
            "notify_delivery",
            fields::<augury::notify::DeliverySettings>(),
        ),
    ] {
        keys.extend(names.into_iter().map(|k| format!("{section}.{k}")));
    }
    keys
}

const CONFIGURATION: &str = "docs/configuration.md";

/// The default `--help` gives in the argument's text (`[default: …]`), if any.
fn help_default(arg: &clap::Arg) -> Option<String> {
    let help = arg.get_help()?.to_string();
    let start = help.find("[default: ")? + "[default: ".len();
    let len = help[start..].find(']')?;
    Some(help[start..start + len].to_string())
}

#[test]
fn every_serve_flag_is_in_the_reference_with_its_variable_and_default() {
    let docs = read(CONFIGURATION);
    let rows: BTreeMap<String, Vec<String>> = table_rows(&docs)
        .into_iter()
        .filter(|r| r[0].starts_with("`--"))
        .map(|r| (code(&r[0]).unwrap().to_string(), r))
        .collect();
    let cli = augury::cli::Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let mut flags = BTreeSet::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        let flag = format!("--{long}");
        flags.insert(flag.clone());
        let row = rows
            .get(&flag)
            .unwrap_or_else(|| panic!("{flag} is not in {CONFIGURATION}"));
        let env = arg.get_env().unwrap().to_str().unwrap();
        assert_eq!(code(&row[1]), Some(env), "{flag}: variable in {row:?}");
        if let Some(default) = help_default(arg) {
            assert!(
                row[3] == format!("`{default}`") || row[3] == default,
                "{flag}: --help says the default is `{default}`, the reference {row:?}"
            );
        }
    }
    let documented: BTreeSet<String> = rows.keys().cloned().collect();
    assert_eq!(
        documented, flags,
        "the flags {CONFIGURATION} lists against those `augury serve` takes"
    );
}

#[test]
fn every_config_key_is_in_the_reference_and_every_key_there_is_read() {
    let docs = read(CONFIGURATION);
    let mut documented = BTreeSet::new();
    for row in table_rows(&docs) {
        // The flags table names the key in its third column, the others in their first.
        let cell = if row[0].starts_with("`--") {
            &row[2]
        } else {
            &row[0]
        };
        if let Some(key) = code(cell) {
            documented.insert(key.to_string());
        }
    }
    let read = config_keys();
    let missing: Vec<&String> = read.iter().filter(|k| !documented.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys read but not in {CONFIGURATION}: {missing:?}"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|k| {
            k.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                && !read.contains(*k)
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "{CONFIGURATION} lists keys nothing reads: {unknown:?}"
    );
}

/// `"AUGURY_…"` string literals in the sources: variables read without clap. A literal in
/// `env!(…)` is not one: it is the build script's output, read when compiling.
fn variables_in_sources(path: &Path, found: &mut BTreeSet<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            variables_in_sources(&entry.unwrap().path(), found);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        for (i, _) in text.match_indices("\"AUGURY_") {
            if text[..i].ends_with("env!(") {
                continue;
            }
            let name: String = text[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
}

#[test]
fn every_environment_variable_read_is_in_the_reference_and_none_else() {
    let docs = read(CONFIGURATION);
    let mut read = BTreeSet::new();
    let cli = augury::cli::Cli::command();
    for command in cli.get_subcommands() {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                read.insert(env.to_str().unwrap().to_string());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    variables_in_sources(&root.join("src"), &mut read);
    variables_in_sources(&root.join("build.rs"), &mut read);
    for name in &read {
        assert!(
            docs.contains(&format!("`{name}`")),
            "{name} is read but not in {CONFIGURATION}"
        );
    }
    let mut documented = BTreeSet::new();
    for (i, _) in docs.match_indices("`AUGURY_") {
        let name: String = docs[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        documented.insert(name);
    }
    let unknown: Vec<&String> = documented.difference(&read).collect();
    assert!(
        unknown.is_empty(),
        "{CONFIGURATION} names variables nothing reads: {unknown:?}"
    );
}

/// The families the daemon registers, as `src/telemetry/families.rs` names them.
fn registered_families() -> BTreeSet<String> {
    let text = read("src/telemetry/families.rs");
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices(".register(") {
        let rest = &text[i..];
        let start = rest.find('"').unwrap() + 1;
        let len = rest[start..].find('"').unwrap();
        names.insert(rest[start..start + len].to_string());
    }
    names
}

#[test]
fn every_metric_family_is_in_the_api_docs_and_every_one_there_exists() {
    let registered = registered_families();
    assert!(registered.len() >= 20, "{registered:?}");
    let docs = read("docs/api.md");
    let section = &docs[docs.find("## Own metrics").unwrap()..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    // Counters are exposed (and documented) with their `_total` suffix.
    let documented: BTreeSet<String> = table_rows(section)
        .iter()
        .filter_map(|r| code(&r[0]))
        .map(|name| {
            let bare = name.strip_suffix("_total").unwrap_or(name);
            if registered.contains(bare) {
                bare
            } else {
                name
            }
            .to_string()
        })
        .collect();
    assert_eq!(
        documented, registered,
        "the families docs/api.md lists against those the daemon registers"
    );
}

#[test]
fn the_models_readme_lists_every_built_in_model() {
    let readme = read("models/README.md");
    let listed: BTreeSet<String> = table_rows(&readme)
        .iter()
        .filter_map(|r| code(&r[0]).map(String::from))
        .filter(|name| !name.contains(' '))
        .collect();
    let built_in: BTreeSet<String> = augury::model::Catalog::builtin()
        .names()
        .map(String::from)
        .collect();
    assert!(built_in.len() >= 5, "{built_in:?}");
    let missing: Vec<&String> = built_in.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "models/README.md leaves out {missing:?}"
    );
}
