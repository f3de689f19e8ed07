//! The container image, built and run for real. The repository's `Dockerfile` is built
//! with podman on base images made here from Debian's packages (`scripts/image/bases.sh`:
//! this machine cannot pull images); the build stage's base has no Rust of its own, the
//! host's toolchain and cargo registry are mounted into the build read-only. This machine
//! cannot run containers either (the OCI runtime may not set the rlimits it wants), so the
//! image's root file system, exported from podman, is run the way a runtime would run it
//! (`scripts/image/run-rootfs.sh`): read-only, in a mount namespace of its own, chrooted,
//! as the image's user, with the image's environment, a tmpfs on /tmp and a volume on
//! /var/lib/augury. The daemon in it must refuse to start without a token (the image's
//! config requires one), then answer `/readyz`, judge over HTTP, and keep an analysis in
//! the volume.
//!
//! `scripts/test` installs podman and debootstrap (Debian packages) and passes their paths
//! as `AUGURY_PODMAN` and `AUGURY_DEBOOTSTRAP`. Runs as root (image storage, mounts).
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::http;

const NAME: &str = "localhost/augury:container-test";
/// What the test passes as the `AUGURY_COMMIT` build argument.
const COMMIT: &str = "container-test";
const TOKEN: &str = "container-test-token";
/// The user the image runs as (docs/container.md).
const USER: u32 = 65532;

/// The built image: its name, `podman image inspect`, and its root file system.
struct Image {
    config: Value,
    runtime_base: Value,
    rootfs: PathBuf,
    _dir: tempfile::TempDir,
}

/// A tool `scripts/test` installs, from the variable it sets.
fn tool(var: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.is_file() => path,
        other => panic!(
            "{var} is {other:?}: run scripts/test, which installs podman and debootstrap \
             (Debian packages) and sets AUGURY_PODMAN and AUGURY_DEBOOTSTRAP to them"
        ),
    }
}

/// A JSON array of strings as strings (none for anything else).
fn strings(value: &Value) -> Vec<&str> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).collect()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command`; its stdout, or an error with the end of what it wrote.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let tail: String = {
        let chars: Vec<char> = text.chars().collect();
        chars[chars.len().saturating_sub(12_000)..].iter().collect()
    };
    Err(format!("{command:?} failed ({}):\n{tail}", output.status))
}

fn inspect(podman: &Path, name: &str) -> Result<Value, String> {
    let text = run(Command::new(podman).args(["image", "inspect", name]))?;
    let all: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    Ok(all[0].clone())
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    match IMAGE.get_or_init(build) {
        Ok(image) => image,
        Err(e) => panic!("{e}"),
    }
}

/// Bases, build, inspect, export: what every test here looks at.
fn build() -> Result<Image, String> {
    let podman = tool("AUGURY_PODMAN");
    let debootstrap = tool("AUGURY_DEBOOTSTRAP");
    let root = std::fs::metadata("/proc/self")
        .map_err(|e| e.to_string())?
        .uid()
        == 0;
    if !root {
        return Err("tests/container.rs runs as root (podman's storage, mounts, chroot)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;

    let started = Instant::now();
    let bases = run(Command::new(repo().join("scripts/image/bases.sh"))
        .arg(dir.path().join("bases"))
        .env("AUGURY_PODMAN", &podman)
        .env("AUGURY_DEBOOTSTRAP", &debootstrap))?;
    let [build_base, runtime_base] = bases.lines().collect::<Vec<_>>()[..] else {
        return Err(format!("bases.sh printed {bases:?}, not two image names"));
    };
    eprintln!("base images: {:.0} s", started.elapsed().as_secs_f64());

    let sysroot = run(Command::new("rustc").args(["--print", "sysroot"]))?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let started = Instant::now();
    run(Command::new(&podman)
        // No OCI runtime here: RUN steps go through buildah's chroot isolation.
        .args(["build", "--isolation", "chroot", "--file"])
        .arg(repo().join("Dockerfile"))
        .arg("--build-arg")
        .arg(format!("BUILD_IMAGE={build_base}"))
        .arg("--build-arg")
        .arg(format!("RUNTIME_IMAGE={runtime_base}"))
        .arg("--build-arg")
        .arg(format!("AUGURY_COMMIT={COMMIT}"))
        .arg("--volume")
        .arg(format!("{}:/opt/rust:ro", sysroot.trim()))
        .arg("--volume")
        .arg(format!(
            "{}:/opt/cargo-home/registry:ro",
            cargo_home.join("registry").display()
        ))
        .args(["--tag", NAME])
        .arg(repo()))?;
    eprintln!("image build: {:.0} s", started.elapsed().as_secs_f64());

    let config = inspect(&podman, NAME)?;
    let runtime_base = inspect(&podman, runtime_base)?;
    let container = run(Command::new(&podman).args(["create", NAME]))?;
    let container = container.trim();
    let tar = dir.path().join("rootfs.tar");
    let exported = run(Command::new(&podman)
        .arg("export")
        .arg("-o")
        .arg(&tar)
        .arg(container));
    run(Command::new(&podman).args(["rm", container]))?;
    exported?;
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(|e| e.to_string())?;
    run(Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&rootfs)
        .arg("-xf")
        .arg(&tar))?;
    std::fs::remove_file(&tar).map_err(|e| e.to_string())?;
    Ok(Image {
        config,
        runtime_base,
        rootfs,
        _dir: dir,
    })
}

#[test]
fn image_runs_as_non_root_with_the_documented_ports_command_and_volume() {
    let image = image();
    let config = &image.config["Config"];
    assert_eq!(config["User"], format!("{USER}:{USER}"), "{config:#}");
    let mut ports: Vec<&str> = config["ExposedPorts"]
        .as_object()
        .unwrap_or_else(|| panic!("no ExposedPorts: {config:#}"))
        .keys()
        .map(String::as_str)
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, ["4317/tcp", "4318/tcp", "8080/tcp"]);
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/augury"]));
    assert_eq!(config["Cmd"], json!(["serve"]));
    assert_eq!(config["WorkingDir"], "/var/lib/augury");
    assert!(
        config["Volumes"].get("/var/lib/augury").is_some(),
        "{config:#}"
    );
    let env: Vec<&str> = strings(&config["Env"]);
    assert!(
        env.contains(&"AUGURY_CONFIG=/etc/augury/augury.yaml"),
        "{env:?}"
    );
    // Probes are the orchestrator's (docs/container.md): no HEALTHCHECK in the image.
    for at in [&image.config, config] {
        for key in ["Healthcheck", "HealthCheck", "Health"] {
            assert!(at[key].is_null(), "{key}: {at:#}");
        }
    }

    let size = |v: &Value| v["Size"].as_u64().unwrap();
    eprintln!(
        "image size: {} bytes uncompressed, {} of them the runtime base's, {} Augury's layers",
        size(&image.config),
        size(&image.runtime_base),
        size(&image.config) - size(&image.runtime_base)
    );
}

#[test]
fn image_holds_the_binary_the_ca_bundle_the_config_and_a_volume_its_user_owns() {
    let rootfs = &image().rootfs;
    let binary = std::fs::metadata(rootfs.join("usr/local/bin/augury")).unwrap();
    // Executable by all, writable by root only: the daemon cannot replace itself.
    assert_eq!(
        (binary.uid(), binary.permissions().mode() & 0o777),
        (0, 0o755)
    );

    // HTTPS notifiers verify against the system CA bundle.
    let bundle = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt"))
        .expect("the image has the CA bundle at /etc/ssl/certs/ca-certificates.crt");
    let certificates = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(
        certificates >= 50,
        "{certificates} certificates in the bundle"
    );

    let config = std::fs::read_to_string(rootfs.join("etc/augury/augury.yaml")).unwrap();
    let shipped = std::fs::read_to_string(repo().join("scripts/image/augury.yaml")).unwrap();
    assert_eq!(config, shipped);

    let volume = std::fs::metadata(rootfs.join("var/lib/augury")).unwrap();
    assert!(volume.is_dir());
    assert_eq!((volume.uid(), volume.gid()), (USER, USER));
}

/// `scripts/image/run-rootfs.sh` set up as the image's config says: user, working
/// directory, environment, entry point; `volume` on /var/lib/augury. A launcher for
/// [`Daemon`]: an executable that takes the command's arguments.
fn launcher(image: &Image, dir: &Path, volume: &Path) -> PathBuf {
    let config = &image.config["Config"];
    let env: Vec<&str> = strings(&config["Env"]);
    let env_file = dir.join("image.env");
    std::fs::write(&env_file, env.join("\n")).unwrap();
    let entrypoint: Vec<&str> = strings(&config["Entrypoint"]);
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let words: Vec<String> = [
        repo()
            .join("scripts/image/run-rootfs.sh")
            .display()
            .to_string(),
        image.rootfs.display().to_string(),
        config["User"].as_str().unwrap().to_string(),
        config["WorkingDir"].as_str().unwrap().to_string(),
        env_file.display().to_string(),
        format!("{}:/var/lib/augury", volume.display()),
        "--".to_string(),
    ]
    .into_iter()
    .chain(entrypoint.iter().map(|s| s.to_string()))
    .map(|w| quote(&w))
    .collect();
    let path = dir.join("run");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nexec {} \"$@\"\n", words.join(" ")),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The `Uid:`/`Gid:`/`Groups:` lines of `/proc/PID/status`.
fn identity(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn daemon_in_the_image_serves_and_judges_from_a_read_only_root_as_its_user() {
    let image = image();
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(USER), Some(USER)).unwrap();
    let run = launcher(image, dir.path(), &volume);

    // The binary runs in the image as its user; the build argument reached the build.
    let version = Command::new(&run).arg("--version").output().unwrap();
    let version_text = String::from_utf8_lossy(&version.stdout);
    assert!(version.status.success(), "{version:?}");
    if repo().join("build.rs").is_file() {
        assert!(version_text.contains(COMMIT), "{version_text}");
    }

    // The image's database, in the volume; addresses of 127.0.0.1 picked at run time.
    let launch = Daemon::on_url("sqlite:///var/lib/augury/augury.db")
        .binary(&run)
        .env("RUN_ROOTFS_PASS", "AUGURY_LOG AUGURY_API_TOKENS");
    // The image's config (AUGURY_CONFIG) says `auth: tokens`: no token, no start.
    let refused = launch.try_start().err().expect("started without a token");
    assert!(refused.contains("token"), "{refused}");

    let daemon = launch.env("AUGURY_API_TOKENS", TOKEN).start();
    let pid = daemon.pid().unwrap();
    let ids = identity(pid);
    assert_eq!(
        ids,
        [
            format!("Uid: {USER} {USER} {USER} {USER}"),
            format!("Gid: {USER} {USER} {USER} {USER}"),
            "Groups:".to_string()
        ]
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        image.rootfs.canonicalize().unwrap()
    );
    // Its root (`/` as it sees it) is mounted read-only; /tmp and the volume are not.
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let options = |point: &str| -> Vec<String> {
        mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| f.len() > 5 && f[4] == point)
            .map(|f| f[5].to_string())
            .collect()
    };
    let mount_options = [options("/"), options("/tmp"), options("/var/lib/augury")];
    assert!(
        matches!(&mount_options, [root, tmp, data]
            if root.len() == 1 && root[0].starts_with("ro,")
            && tmp.len() == 1 && tmp[0].starts_with("rw,")
            && data.len() == 1 && data[0].starts_with("rw,")),
        "{mount_options:?}\n{mounts}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {TOKEN}").parse().unwrap(),
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .unwrap();
        let api = &daemon.api;
        assert_eq!(http::get(&client, api, "/healthz").await.0, 200);
        let (status, body) = http::get(&client, api, "/readyz").await;
        assert_eq!((status, &body), (200, &json!({"status": "ok"})));

        // docs/api.md's judgment: 9x the errors is a failing canary.
        let request = json!({"model": "http-red", "metrics": {"error-rate": {
            "baseline": {"requests": 10000, "errors": 10},
            "canary": {"requests": 10000, "errors": 90}}}});
        let (status, judgment) = http::post(&client, api, "/api/v1/judge", &request).await;
        assert_eq!(status, 200, "{judgment:#}");
        assert_eq!(judgment["verdict"], "fail", "{judgment:#}");

        // An analysis is written to the database in the volume, and reads back.
        let analysis = json!({"key": "checkout@1.4.2", "model": "http-red",
            "baseline": {"service.name": "checkout", "service.version": "1.4.1"},
            "canary": {"service.name": "checkout", "service.version": "1.4.2"},
            "interval": "30s", "lifetime": "10m"});
        let (status, created) = http::post(&client, api, "/api/v1/analyses", &analysis).await;
        assert_eq!(status, 201, "{created:#}");
        let id = created["id"].as_str().unwrap();
        let (status, read) = http::get(&client, api, &format!("/api/v1/analyses/{id}")).await;
        assert_eq!(
            (status, &read["key"]),
            (200, &json!("checkout@1.4.2")),
            "{read:#}"
        );
    });

    let log = daemon.log_text();
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}\n{log}");
    let database = std::fs::metadata(volume.join("augury.db")).unwrap();
    assert_eq!((database.uid(), database.gid()), (USER, USER));
}
