//! Embeds the commit the binary is built from, for `augury --version`, as the compile-time
//! variable `AUGURY_COMMIT`:
//!
//! 1. `AUGURY_BUILD_COMMIT` from the environment when set (a container build or a source
//!    tarball has no `.git`; the packager says which commit it is);
//! 2. else the short commit of the git work tree this crate is the root of
//!    (`git rev-parse --short HEAD`);
//! 3. else `unknown`. The build never fails for want of a commit.
//!
//! Cargo reruns this script when `AUGURY_BUILD_COMMIT` changes, when `HEAD` moves to
//! another branch or commit, and when the branch it names gets a new commit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable a build without `.git` takes its commit from.
const COMMIT_ENV: &str = "AUGURY_BUILD_COMMIT";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={COMMIT_ENV}");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let from_env = std::env::var(COMMIT_ENV).ok();
    let (commit, warning) = commit(&manifest_dir, from_env.as_deref());
    if let Some(warning) = warning {
        println!("cargo:warning={warning}");
    }
    for path in watched_git_files(&manifest_dir) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-env=AUGURY_COMMIT={commit}");
}

/// The commit to embed, and a warning to show when `from_env` had to be ignored.
pub fn commit(manifest_dir: &Path, from_env: Option<&str>) -> (String, Option<String>) {
    let mut warning = None;
    if let Some(value) = from_env.map(str::trim).filter(|v| !v.is_empty()) {
        if is_commit_like(value) {
            return (value.to_string(), None);
        }
        warning = Some(format!(
            "{COMMIT_ENV}=`{value}` ignored: want a commit id or tag of at most 64 letters, \
             digits, `.`, `-`, `_` or `+`"
        ));
    }
    let commit = own_work_tree(manifest_dir)
        .and_then(|_| git(manifest_dir, &["rev-parse", "--short", "HEAD"]))
        .filter(|c| is_commit_like(c))
        .unwrap_or_else(|| "unknown".to_string());
    (commit, warning)
}

/// A short, printable, single-word value: what `--version` may show.
fn is_commit_like(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

/// `Some` when `manifest_dir` is the top of a git work tree: a crate unpacked inside some
/// other repository (vendored, or a tarball in a monorepo) must not take that one's commit.
fn own_work_tree(manifest_dir: &Path) -> Option<()> {
    let top = git(manifest_dir, &["rev-parse", "--show-toplevel"])?;
    let top = Path::new(&top).canonicalize().ok()?;
    (manifest_dir.canonicalize().ok()? == top).then_some(())
}

/// The files whose change means another commit: `HEAD`, the branch it names (its loose
/// ref, or while the branch is packed, the folder a new loose ref appears in) and
/// `packed-refs`. Worktrees keep `HEAD` apart from the refs; `--git-path` knows where.
pub fn watched_git_files(manifest_dir: &Path) -> Vec<PathBuf> {
    if own_work_tree(manifest_dir).is_none() {
        return Vec::new();
    }
    let path = |name: &str| {
        git(manifest_dir, &["rev-parse", "--git-path", name]).map(|p| manifest_dir.join(p))
    };
    let mut files: Vec<PathBuf> = path("HEAD").into_iter().collect();
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"])
        && let Some(loose) = path(&branch)
    {
        if loose.is_file() {
            files.push(loose);
        } else if let Some(folder) = loose.parent().filter(|f| f.is_dir()) {
            files.push(folder.to_path_buf());
        }
    }
    files.extend(path("packed-refs").filter(|p| p.is_file()));
    files
}

/// The trimmed output of a successful `git ARGS` in `dir`; `None` when git is missing or
/// says no.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
