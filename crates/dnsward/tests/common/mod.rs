//! Test harness shared by dnsward's integration tests: peer servers (NSD) and dnsward
//! processes on loopback ports, and a small DNS client built on hickory-proto.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod node;
pub mod queries;
pub mod secondaries;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// How long a peer or dnsward process may take to start answering.
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long one query waits for its answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often [`wait_until`] asks again: a log file or an API polled in a tight loop would
/// take the CPU from the process under test.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Asks `done` every [`POLL_INTERVAL`] until it holds and returns how long that took; fails
/// the test with `failure()` (a message with whatever explains it) once `deadline` passes.
pub fn wait_until(
    deadline: Duration,
    mut done: impl FnMut() -> bool,
    failure: impl Fn() -> String,
) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < deadline, "{}", failure());
        std::thread::sleep(POLL_INTERVAL);
    }
    started.elapsed()
}

/// Asks `done` every [`POLL_INTERVAL`] until it holds (`true`) or `deadline` passes
/// (`false`): for a condition that may rightly never hold, where the caller decides.
pub fn holds_within(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example_zone() -> PathBuf {
    repo_root().join("examples/zones/example.test.zone")
}

/// The loopback ports [`free_port`] hands out: below the kernel's ephemeral range
/// (32768–60999 on Linux), so no outgoing connection or `bind(0)` of any process can take
/// a port between the moment a test reserves it and the moment its server binds it (a
/// port reserved by `bind(0)` and released is the next source port of someone's connect).
const TEST_PORTS: std::ops::Range<u16> = 20000..32000;

/// A loopback port free for both UDP and TCP right now, never handed out before by this
/// test process: each process starts at its own offset in [`TEST_PORTS`] (by process id)
/// and walks on, so parallel tests in one binary never share a port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(97) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = TEST_PORTS.start + offset as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}")
}

/// A child process killed when dropped, with its log kept for failure messages.
pub struct Process {
    pub name: String,
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Process {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server answers an SOA query for `zone` over UDP.
    pub fn wait_ready(&mut self, zone: &str) {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log_text());
            }
            let query = query(zone, RecordType::SOA, Some(1232));
            if let Ok(reply) = udp_exchange(self.addr, &query, Duration::from_millis(200)) {
                if reply.metadata.response_code == hickory_proto::op::ResponseCode::NoError {
                    return;
                }
            }
        }
        panic!(
            "{} did not answer within {START_DEADLINE:?}:\n{}",
            self.name,
            self.log_text()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts NSD in the foreground serving `zone_file` for `zone` on a fresh loopback port.
pub fn start_nsd(zone: &str, zone_file: &Path) -> Process {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let config = dir.path().join("nsd.conf");
    let d = dir.path().display();
    std::fs::write(
        &config,
        format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  \
             zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  \
             xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  \
             server-count: 1\n  verbosity: 1\n  logfile: \"{d}/nsd.log\"\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: {zone}\n  zonefile: \"{}\"\n",
            zone_file
                .canonicalize()
                .expect("zone file exists")
                .display()
        ),
    )
    .expect("write nsd.conf");
    let log = dir.path().join("nsd.log");
    let child = Command::new("nsd")
        .args(["-d", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("nsd.stderr")).expect("stderr file"))
        .spawn()
        .expect("nsd is installed by scripts/test");
    let mut process = Process {
        name: "nsd".into(),
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        _dir: Some(dir),
    };
    process.wait_ready(zone);
    process
}

/// Starts `dnsward ARGS... --listen 127.0.0.1:PORT` and waits until it answers for `zone`.
pub fn start_dnsward(args: &[&str], zone: &str) -> Process {
    start_dnsward_on(args, zone, free_port())
}

/// [`start_dnsward`] on a given port, e.g. to replace a process that was stopped.
pub fn start_dnsward_on(args: &[&str], zone: &str, port: u16) -> Process {
    let dir = tempfile::tempdir().expect("temporary directory");
    let listen = format!("127.0.0.1:{port}");
    let log = dir.path().join("dnsward.log");
    let child = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(args)
        .args(["--listen", &listen])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("dnsward binary was built by cargo");
    let mut process = Process {
        name: "dnsward".into(),
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        _dir: Some(dir),
    };
    process.wait_ready(zone);
    process
}

/// The `Authorization` header value of the node whose configuration is `config`: its
/// token, which the node wrote beside the configuration at its first start.
pub fn bearer(config: &std::path::Path) -> String {
    let file = config.with_file_name("dnsward.token");
    let token = std::fs::read_to_string(&file)
        .unwrap_or_else(|error| panic!("{}: {error}; has the node started?", file.display()));
    format!("Bearer {}", token.trim())
}

/// A query message; `edns` is the advertised UDP payload size, `None` for no OPT record.
pub fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("test names are valid"),
        rtype,
    ));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.set_edns(opt);
    }
    message
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x1234);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

pub fn udp_exchange(
    server: SocketAddr,
    query: &Message,
    timeout: Duration,
) -> std::io::Result<Message> {
    let bytes = query.to_vec().map_err(std::io::Error::other)?;
    let reply = udp_exchange_raw(server, &bytes, timeout)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "no UDP reply"))?;
    Message::from_vec(&reply).map_err(std::io::Error::other)
}

/// Sends raw bytes; `Ok(None)` when no reply came before the timeout.
pub fn udp_exchange_raw(
    server: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<Option<Vec<u8>>> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(bytes, server)?;
    let mut buffer = vec![0u8; 65_535];
    match socket.recv_from(&mut buffer) {
        Ok((len, _)) => Ok(Some(buffer[..len].to_vec())),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub fn tcp_exchange(server: SocketAddr, query: &Message) -> std::io::Result<Message> {
    let bytes = query.to_vec().map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&server, QUERY_TIMEOUT)?;
    stream.set_read_timeout(Some(QUERY_TIMEOUT))?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed)?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    let mut reply = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut reply)?;
    Message::from_vec(&reply).map_err(std::io::Error::other)
}

/// `dig +short` for the name's A records over UDP; `None` when dig failed.
pub fn dig(server: SocketAddr, name: &str) -> Option<std::collections::BTreeSet<String>> {
    let output = Command::new("dig")
        .args([
            "+short",
            "+time=1",
            "+tries=1",
            &format!("@{}", server.ip()),
            "-p",
        ])
        .arg(server.port().to_string())
        .args([name, "A"])
        .output()
        .expect("dig is installed by scripts/test");
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
            .map(|line| line.trim().to_string())
            .collect(),
    )
}

/// Runs a `dnsward` runbook command against the node's API at `api`, with the token of
/// the node whose configuration is `config`, and returns its standard output; fails the
/// test when the command fails.
pub fn cli_at(api: &str, config: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(args)
        .args(["--api", api])
        .arg("--config")
        .arg(config)
        .output()
        .expect("run dnsward CLI");
    assert!(
        output.status.success(),
        "dnsward {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
