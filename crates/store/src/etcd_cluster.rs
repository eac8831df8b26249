//! Real etcd members on loopback, for tests and benchmarks: the contract suite runs against
//! one, the cross-host tests against three.
//!
//! Each member runs under a small shell that holds a pipe from this process: when this
//! process ends (a test binary exits, a panic unwinds past everything), the pipe closes and
//! the shell kills its member, so no etcd outlives the tests that started it. Members listen
//! on ports below the kernel's ephemeral range (10000–20000, apart from the ports the dnsward
//! test harness hands out), so no outgoing connection can take one in between.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a member may take to answer after it starts.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// The ports members use.
const PORTS: std::ops::Range<u16> = 10_000..20_000;

/// A free loopback TCP port in [`PORTS`], never handed out before by this process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORTS.end - PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(131) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = PORTS.start + (NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORTS:?}")
}

/// One member: its ports, data directory and (while it runs) its process.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    data: PathBuf,
    log: PathBuf,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    shell: Child,
    /// Held open: closing it makes the shell kill the member.
    _lifeline: ChildStdin,
    pid: u32,
}

/// A cluster of etcd members on loopback, stopped when dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    pub members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `size` members (1 or 3, usually) as one new cluster and waits until every
    /// member answers. Panics with the members' logs when etcd is missing or does not start.
    pub fn start(size: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("a scratch directory for etcd");
        let members: Vec<Member> = (0..size)
            .map(|index| {
                let name = format!("member{index}");
                Member {
                    client_port: free_port(),
                    peer_port: free_port(),
                    data: dir.path().join(format!("{name}.etcd")),
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    running: None,
                }
            })
            .collect();
        let mut cluster = EtcdCluster { dir, members };
        for index in 0..size {
            cluster.spawn(index, "new");
        }
        for index in 0..size {
            cluster.wait_answering(index);
        }
        cluster
    }

    /// `host:port` of every member's client listener.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|member| format!("127.0.0.1:{}", member.client_port))
            .collect()
    }

    /// Where the cluster's members keep their data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of a running member.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.members[index]
            .running
            .as_ref()
            .map(|running| running.pid)
    }

    /// Kills a member with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self, index: usize) {
        if let Some(Running {
            mut shell,
            _lifeline,
            pid,
        }) = self.members[index].running.take()
        {
            signal(pid, "KILL");
            // The shell waits for its stdin to close before it exits.
            drop(_lifeline);
            let _ = shell.wait();
        }
    }

    /// Sends SIGSTOP (`stop = true`) or SIGCONT to a running member.
    pub fn pause(&self, index: usize, stop: bool) {
        if let Some(pid) = self.pid(index) {
            signal(pid, if stop { "STOP" } else { "CONT" });
        }
    }

    /// Starts a killed member again on its data directory and waits until it answers.
    pub fn restart(&mut self, index: usize) {
        if self.members[index].running.is_none() {
            self.spawn(index, "existing");
            self.wait_answering(index);
        }
    }

    /// The member's log so far.
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(&self.members[index].log).unwrap_or_default()
    }

    fn spawn(&mut self, index: usize, state: &str) {
        let initial_cluster = self
            .members
            .iter()
            .map(|member| format!("{}=http://127.0.0.1:{}", member.name, member.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let member = &mut self.members[index];
        let log = std::fs::File::create(&member.log).expect("an etcd log file");
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        // The shell starts etcd, prints its pid, and kills it once stdin closes.
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(r#"etcd "$@" & pid=$!; echo "$pid"; read _; kill -9 "$pid" 2>/dev/null; wait"#)
            .arg("sh")
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "dnsward-test"])
            // Old revisions go, so long runs stay small; the store never reads history.
            .args(["--auto-compaction-mode", "revision"])
            .args(["--auto-compaction-retention", "10000"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("sh starts (is etcd installed? Debian package etcd-server)");
        let lifeline = shell.stdin.take().expect("piped stdin");
        let mut first = String::new();
        BufReader::new(shell.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("the shell prints etcd's pid");
        let pid = first.trim().parse().unwrap_or_else(|_| {
            panic!("etcd did not start (is the Debian package etcd-server installed?): {first:?}")
        });
        member.running = Some(Running {
            shell,
            _lifeline: lifeline,
            pid,
        });
    }

    fn wait_answering(&mut self, index: usize) {
        let started = Instant::now();
        let port = self.members[index].client_port;
        loop {
            if healthy(port) {
                return;
            }
            let exited = self.members[index]
                .running
                .as_mut()
                .map(|running| running.shell.try_wait());
            if let Some(Ok(Some(status))) = exited {
                panic!(
                    "etcd {} exited with {status}:\n{}",
                    self.members[index].name,
                    self.log(index)
                );
            }
            if started.elapsed() > START_DEADLINE {
                panic!(
                    "etcd {} did not answer within {START_DEADLINE:?}:\n{}",
                    self.members[index].name,
                    self.log(index)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.pause(index, false);
            self.kill(index);
        }
    }
}

/// Whether the member on `port` says it is healthy (`GET /health`: it has a leader).
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    answer.contains("\"health\":\"true\"")
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}
