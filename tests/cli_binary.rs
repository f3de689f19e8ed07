//! The binary as a user installs it: shell completions loaded by a real bash, the man
//! pages rendered by a real `man` (`AUGURY_MAN`, from Debian's man-db and groff, which
//! `scripts/test` installs), and `--version` naming the commit (`build.rs`, whose logic is
//! also run here on repositories made for the test).
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The build script's functions, run on folders made here.
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use augury::cli::Cli;
use clap::CommandFactory;

fn augury(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augury"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The subcommands a user can type, from the command definition itself.
fn subcommands() -> BTreeSet<String> {
    let names: BTreeSet<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for expected in ["serve", "judge", "analyze", "wait", "completions", "man"] {
        assert!(names.contains(expected), "{names:?}");
    }
    names
}

/// What bash's completion offers for the words typed so far (the last one being
/// completed), with `augury completions bash` sourced into a real bash.
fn bash_completes(words: &[&str]) -> BTreeSet<String> {
    let line = words.join(" ");
    let words_array = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        r#"set -e
source <("$AUGURY" completions bash)
complete -p augury
COMP_WORDS=({words_array})
COMP_CWORD={cword}
COMP_LINE='{line}'
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
func=$(complete -p augury | sed -n 's/.*-F \([^ ]*\).*/\1/p')
"$func" augury "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf 'reply:%s\n' "${{COMPREPLY[@]}}"
"#,
        cword = words.len() - 1,
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .env("AUGURY", env!("CARGO_BIN_EXE_augury"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "bash: {stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("complete ") && stdout.lines().next().unwrap().contains(" -F _augury "),
        "`complete -p augury` shows the function: {stdout}"
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("reply:"))
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn bash_completion_offers_the_subcommands_and_their_flags() {
    let offered = bash_completes(&["augury", ""]);
    for name in subcommands() {
        assert!(offered.contains(&name), "`{name}` not offered: {offered:?}");
    }
    assert_eq!(
        bash_completes(&["augury", "ser"]),
        BTreeSet::from(["serve".to_string()])
    );
    let flags = bash_completes(&["augury", "wait", "--"]);
    for flag in ["--server", "--timeout", "--poll"] {
        assert!(flags.contains(flag), "{flag} not offered: {flags:?}");
    }
    let shells = bash_completes(&["augury", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.contains(shell), "{shell}: {shells:?}");
    }
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = augury(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for name in subcommands() {
            assert!(script.contains(&name), "{shell} script lacks `{name}`");
        }
    }
    let out = augury(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value 'tcsh'"));
}

/// `man`: `AUGURY_MAN`, which `scripts/test` sets after installing man-db and groff.
fn man() -> PathBuf {
    match std::env::var_os("AUGURY_MAN").map(PathBuf::from) {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "AUGURY_MAN does not name `man`: run scripts/test, which installs Debian's man-db \
             and groff-base and sets AUGURY_MAN"
        ),
    }
}

/// A page rendered by `man -l` as a terminal user reads it, its words one space apart
/// (justified lines space them out); groff's warnings fail.
fn render(page: &Path) -> String {
    let out = Command::new(man())
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "man -l {}: {stderr}",
        page.display()
    );
    // Bold and underline as overstrikes when man thinks it writes to a terminal.
    let mut plain = String::new();
    for c in text(&out.stdout).chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn man_page_renders_and_names_every_subcommand() {
    let out = augury(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("augury.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let shown = render(&page);
    assert!(shown.contains("NAME"), "{shown}");
    assert!(shown.contains("augury - Canary judge"), "{shown}");
    assert!(shown.contains("SUBCOMMANDS"), "{shown}");
    for name in subcommands() {
        assert!(
            shown.contains(&format!("augury-{name}(1)")),
            "the page does not name `{name}`:\n{shown}"
        );
    }
    assert!(shown.contains(augury::cli::VERSION), "{shown}");
}

#[test]
fn man_out_dir_writes_one_rendered_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = augury(&["man", "--out-dir", pages.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written: BTreeSet<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    // One page per command at every depth (`augury import kayenta` is
    // `augury-import-kayenta.1`), as clap_mangen names them.
    fn pages_of(command: &clap::Command, prefix: &str, out: &mut BTreeSet<String>) {
        for sub in command.get_subcommands() {
            let name = format!("{prefix}-{}", sub.get_name());
            out.insert(format!("{name}.1"));
            pages_of(sub, &name, out);
        }
    }
    let mut expected = BTreeSet::from(["augury.1".to_string()]);
    pages_of(&Cli::command(), "augury", &mut expected);
    assert!(expected.contains("augury-import-kayenta.1"), "{expected:?}");
    assert_eq!(written, expected);
    let serve = render(&pages.join("augury-serve.1"));
    assert!(serve.contains("--listen"), "{serve}");
    let wait = render(&pages.join("augury-wait.1"));
    assert!(wait.contains("--timeout"), "{wait}");

    // A folder that cannot be made is an operational error, said plainly.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = augury(&["man", "--out-dir", file.join("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).starts_with("augury man: cannot write the pages to"),
        "{}",
        text(&out.stderr)
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let commit = git(repo, &["rev-parse", "--short", "HEAD"]);
    let out = augury(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("augury {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn build_script_takes_the_commit_from_git_else_the_environment_else_unknown() {
    use build_script::commit;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    // No .git: the environment, else `unknown`; a value that is no commit is refused.
    assert_eq!(commit(&root, None), ("unknown".to_string(), None));
    assert_eq!(
        commit(&root, Some(" v1.2.3-4-gabc1234 ")).0,
        "v1.2.3-4-gabc1234"
    );
    let (value, warning) = commit(&root, Some("x\ny"));
    assert_eq!(value, "unknown");
    assert!(warning.unwrap().contains("ignored"));

    // A repository of its own: its short commit, and the files to watch for a new one.
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("f"), "1").unwrap();
    git(&root, &["add", "f"]);
    git(&root, &["commit", "-q", "-m", "one"]);
    let first = git(&root, &["rev-parse", "--short", "HEAD"]);
    assert_eq!(commit(&root, None).0, first);
    assert_eq!(
        commit(&root, Some("abc1234")).0,
        "abc1234",
        "the environment wins"
    );
    let watched = build_script::watched_git_files(&root);
    assert!(watched.contains(&root.join(".git/HEAD")), "{watched:?}");
    assert!(
        watched.contains(&root.join(".git/refs/heads/main")),
        "{watched:?}"
    );

    // Packed refs: the folder the next loose ref appears in, and packed-refs.
    git(&root, &["pack-refs", "--all"]);
    let watched = build_script::watched_git_files(&root);
    assert!(
        watched.contains(&root.join(".git/refs/heads")),
        "{watched:?}"
    );
    assert!(
        watched.contains(&root.join(".git/packed-refs")),
        "{watched:?}"
    );

    // A worktree: its own HEAD, the shared branch ref.
    let tree = root.join("wt");
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            tree.to_str().unwrap(),
        ],
    );
    let watched = build_script::watched_git_files(&tree);
    assert!(
        watched.contains(&root.join(".git/worktrees/wt/HEAD")),
        "{watched:?}"
    );
    assert_eq!(commit(&tree, None).0, first);

    // A crate unpacked inside another repository does not take that one's commit.
    let nested = root.join("vendor/augury");
    std::fs::create_dir_all(&nested).unwrap();
    assert_eq!(commit(&nested, None).0, "unknown");
    assert!(build_script::watched_git_files(&nested).is_empty());
}
