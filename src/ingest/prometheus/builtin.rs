//! The query packs in the repository's `queries/` folder, built into the binary so
//! `augury` works from any directory. A test checks this list against the folder.

/// (file name, YAML text) of every built-in pack.
pub const BUILTIN_PACKS: &[(&str, &str)] = &[
    (
        "queries/consul.yaml",
        include_str!("../../../queries/consul.yaml"),
    ),
    (
        "queries/istio.yaml",
        include_str!("../../../queries/istio.yaml"),
    ),
    (
        "queries/linkerd.yaml",
        include_str!("../../../queries/linkerd.yaml"),
    ),
    (
        "queries/otel.yaml",
        include_str!("../../../queries/otel.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::pack::{Pack, PackCatalog};
    use super::*;
    use crate::model::{BUILTIN_MODELS, Model, Source, yaml_files};

    #[test]
    fn every_file_in_queries_is_built_in_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
        let on_disk: Vec<String> = yaml_files(&dir)
            .unwrap()
            .iter()
            .map(|p| format!("queries/{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        let built_in: Vec<String> = BUILTIN_PACKS.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(
            on_disk, built_in,
            "src/ingest/prometheus/builtin.rs must list every queries/*.yaml"
        );
        for (file, text) in BUILTIN_PACKS {
            let pack = Pack::from_yaml(text, file).unwrap();
            // The file name is the pack name, so `--queries` overrides are predictable.
            assert_eq!(format!("queries/{}.yaml", pack.name), *file);
            for q in ["request-rate", "error-ratio", "latency"] {
                assert!(pack.query(q).is_some(), "{file} lacks `{q}`");
            }
        }
    }

    #[test]
    fn built_in_models_with_prometheus_sources_fit_the_packs() {
        let catalog = PackCatalog::builtin();
        let mut checked = 0;
        for (file, text) in BUILTIN_MODELS {
            let model = Model::from_yaml(text, file).unwrap();
            let problems = catalog.check_model(&model, file);
            assert!(problems.is_empty(), "{problems:#?}");
            checked += model
                .metrics
                .iter()
                .filter(|m| matches!(m.source, Some(Source::Prometheus(_))))
                .count();
        }
        assert!(
            checked >= 6,
            "only {checked} prometheus-sourced metrics in built-in models"
        );
    }
}
