//! The soak's fleet: every role its own `penstock run <role>` process, killed with SIGKILL
//! and started again (a chunker with another `chunk_bytes` each time), each writing its
//! log to a file of its own so a failure can show what the processes said.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

/// The roles and how many processes of each.
pub const LAYOUT: [(&str, usize); 7] = [
    ("scanner", 2),
    ("chunker", 2),
    ("database", 3),
    ("errors", 1),
    ("notifications", 1),
    ("reconciler", 1),
    ("api", 1),
];

/// The chunk sizes a chunker is started with (a rolling deploy that changes it).
const CHUNK_BYTES: [&str; 3] = ["16384", "32768", "65536"];

struct Proc {
    role: &'static str,
    n: usize,
    child: Option<Child>,
    /// When a killed process is started again.
    restart_at: Option<Instant>,
}

pub struct Procs {
    list: Vec<Proc>,
    env: HashMap<String, String>,
    logs: PathBuf,
    pub kills: u32,
    pub starts: u32,
    /// Processes that exited without being killed: (role, exit status).
    pub exited: Vec<(String, String)>,
}

impl Procs {
    /// Starts every process of [`LAYOUT`].
    pub fn start(env: HashMap<String, String>, logs: &Path, rng: &mut impl Rng) -> Procs {
        let mut procs = Procs {
            list: Vec::new(),
            env,
            logs: logs.to_path_buf(),
            kills: 0,
            starts: 0,
            exited: Vec::new(),
        };
        for (role, count) in LAYOUT {
            for n in 0..count {
                procs.list.push(Proc {
                    role,
                    n,
                    child: None,
                    restart_at: None,
                });
            }
        }
        for i in 0..procs.list.len() {
            procs.spawn(i, rng);
        }
        procs
    }

    fn spawn(&mut self, i: usize, rng: &mut impl Rng) {
        let (role, n) = (self.list[i].role, self.list[i].n);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{role}-{n}.log")))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_penstock"));
        cmd.args(["run", role])
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if role == "chunker" {
            cmd.env(
                "PENSTOCK_CHUNK_BYTES",
                CHUNK_BYTES[rng.random_range(0..CHUNK_BYTES.len())],
            );
        }
        self.list[i].child = Some(cmd.spawn().expect("penstock starts"));
        self.list[i].restart_at = None;
        self.starts += 1;
    }

    /// SIGKILLs one running process at random; it starts again within `down` at most.
    pub fn kill_one(&mut self, rng: &mut impl Rng, down: Duration) -> String {
        let running: Vec<usize> = (0..self.list.len()).filter(|&i| self.list[i].child.is_some()).collect();
        let i = running[rng.random_range(0..running.len())];
        let proc = &mut self.list[i];
        let mut child = proc.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        proc.restart_at = Some(Instant::now() + down.mul_f64(rng.random()));
        self.kills += 1;
        format!("{}-{}", proc.role, proc.n)
    }

    /// Starts what is due to start again, and notes (then restarts) any process that exited
    /// by itself.
    pub fn tick(&mut self, rng: &mut impl Rng) {
        for i in 0..self.list.len() {
            let proc = &mut self.list[i];
            if let Some(child) = proc.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let name = format!("{}-{}", proc.role, proc.n);
                proc.child = None;
                let said = last_line(&self.logs.join(format!("{name}.log")));
                self.exited.push((name, format!("{status}: {said}")));
                self.spawn(i, rng);
            } else if proc.restart_at.is_some_and(|at| at <= Instant::now()) {
                self.spawn(i, rng);
            }
        }
    }

    /// Starts every process that is down, now.
    pub fn all_up(&mut self, rng: &mut impl Rng) {
        for i in 0..self.list.len() {
            if self.list[i].child.is_none() {
                self.spawn(i, rng);
            }
        }
    }

    /// The last lines of every process's log (for a failure message).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for proc in &self.list {
            let path = self.logs.join(format!("{}-{}.log", proc.role, proc.n));
            let Ok(mut file) = File::open(&path) else { continue };
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- {}-{} ---\n", proc.role, proc.n));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// The last line of a log file.
fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().last().unwrap_or_default().to_string()
}

impl Drop for Procs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(15));
        }
        for proc in &mut self.list {
            if let Some(mut child) = proc.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
