//! A `dnsward run` node in a folder of its own, on fresh loopback ports, killed when
//! dropped: the configuration's `[server]`, `[api]` and `[store]` are made here, the
//! caller adds the rest (`[[key]]`, `[[zone]]`, `[validator]`, `[server.rrl]`, …).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{free_port, wait_until, START_DEADLINE};

pub struct Node {
    pub dir: tempfile::TempDir,
    pub child: Child,
    /// DNS over UDP and TCP.
    pub dns: SocketAddr,
    /// The HTTP API, `http://127.0.0.1:PORT`.
    pub api: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dnsward run` in `dir`, logging (appending) to `node.log` there.
fn spawn(dir: &tempfile::TempDir) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("node.log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .current_dir(dir.path())
        .args(["run", "--config", "dnsward.toml"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dnsward run")
}

impl Node {
    /// Starts a node with `blocks` appended to its configuration and `files` written into
    /// its folder, on fresh ports; returns once its API accepts connections (its zones may
    /// not be served yet).
    pub fn start(blocks: &str, files: &[(&str, String)]) -> Node {
        Node::start_on(blocks, files, free_port())
    }

    /// [`Node::start`] answering DNS on `port` (chosen before, e.g. so a primary can
    /// notify it).
    pub fn start_on(blocks: &str, files: &[(&str, String)], port: u16) -> Node {
        Node::start_with_store("[store]\npath = \"node.db\"\n", blocks, files, port)
    }

    /// [`Node::start_on`] with `store` as the configuration's `[store]` table (and anything
    /// else that goes before `blocks`, e.g. `[node]`).
    pub fn start_with_store(
        store: &str,
        blocks: &str,
        files: &[(&str, String)],
        port: u16,
    ) -> Node {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write a file of the node");
        }
        let dns = SocketAddr::from(([127, 0, 0, 1], port));
        let api_port = free_port();
        let config = format!(
            "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n\
             {store}{blocks}"
        );
        std::fs::write(dir.path().join("dnsward.toml"), config).expect("write config");
        let mut node = Node {
            child: spawn(&dir),
            dir,
            dns,
            api: format!("http://127.0.0.1:{api_port}"),
        };
        node.wait_api();
        node
    }

    /// Kills the node (SIGKILL) and starts it again on the same folder, configuration and
    /// ports; returns once its API accepts connections.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.dir);
        self.wait_api();
    }

    fn wait_api(&mut self) {
        let api: SocketAddr = self
            .api
            .trim_start_matches("http://")
            .parse()
            .expect("the API address");
        let log = self.path("node.log");
        wait_until(
            START_DEADLINE,
            || std::net::TcpStream::connect(api).is_ok(),
            || {
                format!(
                    "the node's API never answered\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            },
        );
    }

    /// A file in the node's folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// What the node logged so far (info and up).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("node.log")).unwrap_or_default()
    }

    /// A runbook command against the node (its API and token); its output. Fails the test
    /// when the command fails.
    pub fn cli(&self, args: &[&str]) -> String {
        super::cli_at(&self.api, &self.path("dnsward.toml"), args)
    }

    /// The first zone of `dnsward status --json`.
    pub fn status(&self) -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_str(&self.cli(&["status", "--json"])).expect("status is JSON");
        status["zones"][0].clone()
    }

    /// The node's audit log of `zone` (API), oldest first.
    pub fn audit(&self, zone: &str) -> Vec<serde_json::Value> {
        let body = ureq::get(&format!("{}/v1/audit?zone={zone}&limit=1000", self.api))
            .call()
            .expect("audit")
            .body_mut()
            .read_to_string()
            .expect("audit body");
        let audit: serde_json::Value = serde_json::from_str(&body).expect("audit is JSON");
        audit["entries"].as_array().cloned().unwrap_or_default()
    }
}
