//! The models in the repository's `models/` folder, built into the binary so `augury`
//! works from any directory. A test checks this list against the folder.

/// (file name, YAML text) of every built-in model.
pub const BUILTIN_MODELS: &[(&str, &str)] = &[
    (
        "models/consul.yaml",
        include_str!("../../models/consul.yaml"),
    ),
    (
        "models/default.yaml",
        include_str!("../../models/default.yaml"),
    ),
    (
        "models/http-red.yaml",
        include_str!("../../models/http-red.yaml"),
    ),
    (
        "models/istio-workload.yaml",
        include_str!("../../models/istio-workload.yaml"),
    ),
    ("models/istio.yaml", include_str!("../../models/istio.yaml")),
    (
        "models/linkerd.yaml",
        include_str!("../../models/linkerd.yaml"),
    ),
];

/// The model `augury judge` uses when it is given none.
pub const DEFAULT_MODEL: &str = "default";

/// A built-in model by name.
pub fn builtin(name: &str) -> Option<super::Model> {
    super::Catalog::builtin().get(name).cloned()
}
