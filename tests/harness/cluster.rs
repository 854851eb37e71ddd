//! A RabbitMQ cluster of the test's own: nodes started from the machine's `rabbitmq-server`
//! with their own node names, ports, data folders and Erlang cookie (the machine's broker,
//! `rabbit@localhost`, is left alone), clustered, killed with SIGKILL and started again.
//!
//! Each node is the Erlang VM itself (`RUNNING_UNDER_SYSTEMD` makes the start script `exec`
//! it), so killing the child kills the node, as a power cut would. Dropping the cluster
//! kills every node; its folder goes with it.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The machine's RabbitMQ scripts (the ones in /usr/sbin switch to the rabbitmq user).
const BIN: &str = "/usr/lib/rabbitmq/bin";

pub struct Node {
    /// `penstock-<pid>-<n>@localhost`.
    pub name: String,
    pub port: u16,
    dist_port: u16,
    child: Option<Child>,
}

pub struct Cluster {
    dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

/// A TCP port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    /// Starts `count` nodes and joins every one to the first; returns once all of them run
    /// as one cluster.
    pub fn start(count: usize) -> Cluster {
        assert!(
            Path::new(BIN).join("rabbitmq-server").exists(),
            "the cluster tests start RabbitMQ nodes from {BIN}/rabbitmq-server (the machine's RabbitMQ package)"
        );
        let dir = tempfile::tempdir().unwrap();
        // One cookie for the nodes and rabbitmqctl: both read it from $HOME.
        let cookie = dir.path().join(".erlang.cookie");
        std::fs::write(&cookie, format!("penstock{}", uuid::Uuid::new_v4().simple())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400)).unwrap();
        let tag = format!(
            "penstock-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let nodes = (0..count)
            .map(|n| Node {
                name: format!("{tag}-{n}@localhost"),
                port: free_port(),
                dist_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = Cluster { dir, nodes };
        for n in 0..count {
            cluster.spawn(n);
        }
        for n in 0..count {
            cluster.await_startup(n);
        }
        let first = cluster.nodes[0].name.clone();
        for n in 1..count {
            cluster.ctl(n, &["stop_app"]);
            cluster.ctl(n, &["join_cluster", &first]);
            cluster.ctl(n, &["start_app"]);
        }
        cluster.await_running(count);
        cluster
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` of node `n`.
    pub fn url(&self, n: usize) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.nodes[n].port)
    }

    /// Every node's URL, comma-separated (as `PENSTOCK_AMQP_URL` takes them).
    pub fn urls(&self) -> String {
        (0..self.nodes.len()).map(|n| self.url(n)).collect::<Vec<_>>().join(",")
    }

    fn node_dir(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node{n}"))
    }

    fn spawn(&mut self, n: usize) {
        let dir = self.node_dir(n);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("rabbitmq.conf");
        std::fs::write(
            &config,
            format!(
                "listeners.tcp.local = 127.0.0.1:{}\nloopback_users = none\nlog.console = false\n",
                self.nodes[n].port
            ),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stdout.log"))
            .unwrap();
        let child = Command::new(Path::new(BIN).join("rabbitmq-server"))
            .envs(self.env(n))
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_DIST_PORT", self.nodes[n].dist_port.to_string())
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("none.config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rabbitmq-server starts");
        self.nodes[n].child = Some(child);
    }

    /// What every rabbitmq command of node `n` needs: its name and the cluster's cookie,
    /// and no machine-wide environment file (it would name the machine's broker).
    fn env(&self, n: usize) -> HashMap<&'static str, String> {
        HashMap::from([
            ("HOME", self.dir.path().display().to_string()),
            ("RABBITMQ_NODENAME", self.nodes[n].name.clone()),
            (
                "RABBITMQ_CONF_ENV_FILE",
                self.node_dir(n).join("none.env").display().to_string(),
            ),
        ])
    }

    /// Runs `rabbitmqctl -n <node n> args…`; returns its output whatever its exit status.
    pub fn try_ctl(&self, n: usize, args: &[&str]) -> Output {
        Command::new(Path::new(BIN).join("rabbitmqctl"))
            .envs(self.env(n))
            .args(["-q", "-n", &self.nodes[n].name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("rabbitmqctl runs")
    }

    /// Runs `rabbitmqctl` against node `n`, panicking with its output when it fails.
    pub fn ctl(&self, n: usize, args: &[&str]) -> String {
        let out = self.try_ctl(n, args);
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?} on {}: {}{}\n{}",
            self.nodes[n].name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(n)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until node `n` runs (`await_startup` fails at once while the node has not
    /// registered with epmd yet, so it is asked again).
    fn await_startup(&mut self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if self.try_ctl(n, &["--timeout", "60", "await_startup"]).status.success() {
                return;
            }
            if let Some(status) = self.nodes[n].child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("node {} exited ({status}):\n{}", self.nodes[n].name, self.log_tail(n));
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not start:\n{}",
                self.nodes[n].name,
                self.log_tail(n)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The last lines node `n` wrote to its log (for a failure's message).
    pub fn log_tail(&self, n: usize) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.node_dir(n).join("log")) {
            for entry in entries.flatten() {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text.push_str(&std::fs::read_to_string(self.node_dir(n).join("stdout.log")).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Whether node `n` was started and not killed since.
    pub fn is_running(&self, n: usize) -> bool {
        self.nodes[n].child.is_some()
    }

    /// Kills node `n` with SIGKILL.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut child) = self.nodes[n].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `n` again (same name, ports and data folder): it rejoins the cluster by
    /// itself. Returns once it runs.
    pub fn restart(&mut self, n: usize) {
        assert!(self.nodes[n].child.is_none(), "node {n} is running");
        self.spawn(n);
        self.await_startup(n);
    }

    /// The nodes the cluster says are running, as seen from the first running node.
    pub fn running(&self) -> Vec<String> {
        for n in (0..self.nodes.len()).filter(|n| self.is_running(*n)) {
            let out = self.try_ctl(n, &["eval", "rabbit_nodes:all_running()."]);
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                let mut names: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|node| text.contains(&node.name.replace("@localhost", "")))
                    .map(|node| node.name.clone())
                    .collect();
                names.sort();
                return names;
            }
        }
        Vec::new()
    }

    /// Waits until `count` nodes run as one cluster.
    pub fn await_running(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let running = self.running();
            if running.len() == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster runs {running:?}, not {count} nodes"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// How many client connections each node holds (by its AMQP port), asked of node `n`.
    pub fn connections_by_node(&self, n: usize) -> Vec<usize> {
        let listed = self.ctl(n, &["list_connections", "port"]);
        let ports: Vec<u16> = listed.lines().filter_map(|l| l.trim().parse().ok()).collect();
        self.nodes
            .iter()
            .map(|node| ports.iter().filter(|p| **p == node.port).count())
            .collect()
    }

    /// The online members of quorum queue `queue`, asked of node `n`.
    pub fn quorum_members(&self, n: usize, queue: &str) -> Vec<String> {
        let listed = self.ctl(n, &["list_queues", "name", "online"]);
        listed
            .lines()
            .find(|line| line.split_whitespace().next() == Some(queue))
            .map(|line| {
                self.nodes
                    .iter()
                    .filter(|node| line.contains(&node.name))
                    .map(|node| node.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 0..self.nodes.len() {
            self.kill(n);
        }
    }
}
