//! Test harness: a real PostgreSQL server of the test's own (Debian's `postgresql`
//! package, binaries in /usr/lib/postgresql/<version>/bin, the highest version, or the
//! directory `$AUGURY_PG_BIN`).
//!
//! [`Postgres::start`] makes a cluster in a temp dir (initdb, trust authentication, user
//! `augury`, UTF-8, locale C) and starts it with `pg_ctl` on 127.0.0.1 at a port chosen
//! at run time, its unix socket in the temp dir; [`Postgres::fresh_database`] creates an
//! empty database and gives its URL; [`Postgres::stop`] and [`Postgres::start_again`]
//! (same data, same port) make restart tests. initdb, pg_ctl and postgres refuse to run as
//! root: as root (as in CI) they run as the `postgres` system user that the package
//! creates (`runuser -u postgres --`), with the temp dir handed to that user.
//!
//! No server outlives the tests: dropping the harness stops the server, and a watchdog
//! `sh` (whose stdin the harness holds) stops it and removes its directory too when the
//! test process ends however it ends, which also covers a harness kept in a `static`.

#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the server gets to accept connections after `pg_ctl start`.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running PostgreSQL cluster with its own data directory and port.
pub struct Postgres {
    port: u16,
    bin: PathBuf,
    /// Run the server's programs as the `postgres` user (the tests run as root).
    as_postgres: bool,
    watchdog: Option<Child>,
    databases: AtomicU64,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Makes a cluster and starts it; panics with the reason (and the server's log) if it
    /// cannot.
    pub fn start() -> Postgres {
        let bin = binaries();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("augury-pg-")
            .tempdir()
            .unwrap();
        if as_postgres {
            hand_to_postgres(dir.path());
        }
        let mut pg = Postgres {
            port: 0,
            bin,
            as_postgres,
            watchdog: None,
            databases: AtomicU64::new(0),
            dir,
        };
        pg.server_command("initdb")
            .arg("--pgdata")
            .arg(pg.data_dir())
            .args([
                "--auth=trust",
                "--username=augury",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .run("initdb");
        pg.watchdog = Some(pg.watchdog());
        // The port is free when chosen but could be taken before the server binds it.
        for _ in 0..3 {
            pg.port = super::free_port();
            if pg.launch() {
                return pg;
            }
            if !pg.log().contains("could not bind") {
                break;
            }
        }
        panic!("PostgreSQL did not start; its log:\n{}", pg.log());
    }

    /// The URL of the `postgres` database (every cluster has it).
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://augury@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database named after `name` (made unique on this server) and
    /// returns its URL.
    pub fn fresh_database(&self, name: &str) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name: String = format!("{name}_{n}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args(["--host=127.0.0.1", "--username=augury"])
            .arg(format!("--port={}", self.port))
            .arg(&name);
        Run(createdb).run("createdb");
        self.url_of(&name)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: sessions are ended, committed data is kept).
    pub fn stop(&self) {
        self.pg_ctl()
            .args(["stop", "--wait", "--mode=fast"])
            .run("pg_ctl stop");
    }

    /// Starts the stopped server again: same data, same port.
    pub fn start_again(&self) {
        assert!(
            self.launch(),
            "PostgreSQL did not start again; its log:\n{}",
            self.log()
        );
    }

    /// Whether the server accepts connections now.
    pub fn accepts_connections(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["--host=127.0.0.1", "--username=augury", "--dbname=postgres"])
            .arg(format!("--port={}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `pg_ctl start`, then waits (bounded) until the server accepts connections; false
    /// if it did not come up.
    fn launch(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        // What the log says from here on is about this start.
        let logged_before = self.log().len();
        let started = self
            .pg_ctl()
            .args(["start", "--no-wait", "-o", &options, "-l"])
            .arg(self.log_path())
            .0
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !started {
            return false;
        }
        let deadline = std::time::Instant::now() + READY_WITHIN;
        while std::time::Instant::now() < deadline {
            if self.accepts_connections() {
                return true;
            }
            // A server that failed says so in its log and leaves no pid file.
            let failed = || {
                let log = self.log();
                log.get(logged_before..)
                    .is_some_and(|new| new.contains("FATAL"))
            };
            if !self.data_dir().join("postmaster.pid").exists() && failed() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn pg_ctl(&self) -> Run {
        let mut c = self.server_command("pg_ctl");
        c.0.arg("--pgdata").arg(self.data_dir());
        c
    }

    /// One of the server's programs, as the `postgres` user when the tests run as root.
    fn server_command(&self, program: &str) -> Run {
        let path = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // Somewhere the postgres user may read (not the test's working directory).
        c.current_dir(self.dir.path());
        Run(c)
    }

    /// A shell that stops the server and removes its directory when its stdin closes:
    /// when the harness is dropped, or when the test process ends.
    fn watchdog(&self) -> Child {
        let Run(mut stop) = self.pg_ctl();
        stop.args(["stop", "--mode=fast"]);
        let program = stop.get_program().to_owned();
        let args: Vec<_> = stop.get_args().map(|a| a.to_owned()).collect();
        Command::new("sh")
            .arg("-c")
            .arg(r#"read _ignored; "$@" >/dev/null 2>&1; rm -rf -- "$AUGURY_PG_DIR""#)
            .arg("sh")
            .arg(program)
            .args(args)
            .env("AUGURY_PG_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`sh` runs")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            // Closing its stdin makes the watchdog stop the server; wait until it did, so
            // the data directory is no longer in use when it is removed.
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// A command whose failure fails the test with what it printed.
struct Run(Command);

impl Run {
    fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.0.arg(arg);
        self
    }

    fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&mut self, args: I) -> &mut Self {
        self.0.args(args);
        self
    }

    fn run(&mut self, what: &str) {
        let out = self
            .0
            .output()
            .unwrap_or_else(|e| panic!("{what} could not run: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The directory of PostgreSQL's programs: `$AUGURY_PG_BIN`, or the highest version's
/// under /usr/lib/postgresql.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("AUGURY_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").exists(),
            "AUGURY_PG_BIN={} holds no initdb",
            dir.display()
        );
        return dir;
    }
    let highest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match highest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL not installed: scripts/test installs Debian's postgresql \
             (or set AUGURY_PG_BIN to the directory holding initdb and pg_ctl)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Gives `dir` to the `postgres` system user, which the server's programs run as.
fn hand_to_postgres(dir: &Path) {
    let out = Command::new("chown")
        .arg("postgres:")
        .arg(dir)
        .output()
        .expect("chown runs");
    assert!(
        out.status.success(),
        "running as root, the PostgreSQL server runs as the `postgres` user, which \
         Debian's postgresql package creates (scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
