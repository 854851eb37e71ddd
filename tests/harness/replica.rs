//! A PostgreSQL primary and a streaming hot standby of the test's own, started from the
//! machine's PostgreSQL 15 binaries (initdb, pg_basebackup) on spare ports, in a folder the
//! test owns, run as the `postgres` user when the test runs as root (PostgreSQL refuses to
//! run as root). The
//! machine's own server is left alone. Dropping it stops both servers; the folder goes too.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 keeps its server binaries.
const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Replicated {
    dir: tempfile::TempDir,
    pub primary_port: u16,
    pub standby_port: u16,
    /// Set when the test runs as root: PostgreSQL's programs run as this user instead.
    user: Option<(u32, u32)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether this process runs as root (PostgreSQL's programs then run as `postgres`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Who runs PostgreSQL's programs: `postgres` when the test runs as root (PostgreSQL refuses
/// root), otherwise the test's own user.
fn server_user() -> Option<(u32, u32)> {
    is_root().then(postgres_user)
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("a postgres user (the machine's PostgreSQL package makes one)");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

impl Replicated {
    /// Starts a primary, takes a base backup of it, and starts that as a streaming standby;
    /// returns once the standby streams.
    pub fn start() -> Replicated {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "the replica tests run PostgreSQL from {BIN} (the machine's PostgreSQL 15 package)"
        );
        let user = server_user();
        let dir = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let replicated = Replicated {
            dir,
            primary_port: free_port(),
            standby_port: free_port(),
            user,
        };
        let primary = replicated.data("primary");
        replicated.run(
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        replicated.pg_ctl_start("primary", replicated.primary_port);
        replicated.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &replicated.primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &replicated.data("standby"),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        replicated.pg_ctl_start("standby", replicated.standby_port);
        let deadline = Instant::now() + Duration::from_secs(60);
        while replicated.standby_sql("SELECT status FROM pg_stat_wal_receiver").trim() != "streaming" {
            assert!(Instant::now() < deadline, "the standby never started streaming");
            std::thread::sleep(Duration::from_millis(200));
        }
        replicated
    }

    /// `postgres://postgres@127.0.0.1:<primary>/<database>`.
    pub fn primary_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.primary_port)
    }

    pub fn standby_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.standby_port)
    }

    fn as_server_user(&self, mut command: Command) -> Command {
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn data(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// Runs one of PostgreSQL's programs as the postgres user; panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .as_server_user(Command::new(Path::new(BIN).join(program)))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn pg_ctl_start(&self, name: &str, port: u16) {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(name),
                "-o",
                &options,
                "-l",
                &self.log(name).display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the primary at once (`pg_ctl stop -m immediate`: a crash, as far as the standby
    /// can tell).
    pub fn stop_primary(&self) {
        self.run("pg_ctl", &["-D", &self.data("primary"), "-m", "immediate", "stop"]);
    }

    /// One statement on the standby through psql (as superuser); its output, unaligned.
    pub fn standby_sql(&self, sql: &str) -> String {
        let out = Command::new(Path::new(BIN).join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.standby_port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-XAtq", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        for name in ["standby", "primary"] {
            let _ = self
                .as_server_user(Command::new(Path::new(BIN).join("pg_ctl")))
                .args(["-D", &self.data(name), "-m", "immediate", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
