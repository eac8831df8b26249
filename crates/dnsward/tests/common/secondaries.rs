//! Other DNS servers as primaries and secondaries of a zone, for the zone-transfer tests:
//! NSD 4.6, Knot 3.2 and BIND 9.18 from the Debian packages, each configured from scratch
//! here and run in the foreground as the current user (no privilege dropping, no chroot)
//! on a fresh loopback port (UDP and TCP), with every file it writes (configuration,
//! zone copies, journals, pid file, transfer state, control socket, log) in its own
//! temporary directory, and killed when its [`Process`] is dropped.
//!
//! Each server logs its transfers and NOTIFYs to [`Process::log`] (also whatever it says
//! before its logging is set up, except BIND, whose configuration `named-checkconf`
//! checks first).
//!
//! A secondary needs its primary's address and a primary its secondaries' addresses (for
//! NOTIFY): reserve with [`free_port`] the ports of the side started last, and start it
//! with the `…_on` function. A primary started after its secondaries sends NOTIFY as it
//! loads the zone, and they transfer it at once.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use super::{free_port, query, udp_exchange, wait_until, Process, START_DEADLINE};

/// How long one SOA query of [`soa_serial`] waits: it is polled, so it is kept short.
const SOA_QUERY_TIMEOUT: Duration = Duration::from_millis(500);

/// A TSIG key shared by a primary and its secondaries.
#[derive(Clone, Debug)]
pub struct TsigKey {
    /// The key's name, e.g. `xfr-key` (the same in every server's configuration).
    pub name: String,
    /// The algorithm as all three servers spell it: `hmac-sha256`, `hmac-sha512`, ….
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl TsigKey {
    /// A key named `name` for `algorithm` (e.g. `hmac-sha256`) with a random 32-byte
    /// secret.
    pub fn new(name: &str, algorithm: &str) -> TsigKey {
        let mut secret = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("open /dev/urandom"),
            &mut secret,
        )
        .expect("read /dev/urandom");
        TsigKey {
            name: name.to_string(),
            algorithm: algorithm.to_string(),
            secret: base64(&secret),
        }
    }
}

/// Standard base64 with padding (RFC 4648), as the servers' `secret` settings take it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Which server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// NSD (`/usr/sbin/nsd`, Debian package `nsd`).
    Nsd,
    /// Knot DNS (`/usr/sbin/knotd` and `knotc`, package `knot`).
    Knot,
    /// BIND (`/usr/sbin/named` and `rndc`, package `bind9`).
    Bind,
}

impl Kind {
    /// Every kind, e.g. to run a test against each secondary.
    pub const ALL: [Kind; 3] = [Kind::Nsd, Kind::Knot, Kind::Bind];

    /// The server's program, which also begins its [`Process::name`].
    pub fn program(self) -> &'static str {
        match self {
            Kind::Nsd => "nsd",
            Kind::Knot => "knotd",
            Kind::Bind => "named",
        }
    }
}

/// Starts `kind` as a secondary of `zone` pulling it from `primary`, on a fresh loopback
/// port; see [`start_secondary_on`].
pub fn start_secondary(
    kind: Kind,
    zone: &str,
    primary: SocketAddr,
    key: Option<&TsigKey>,
) -> Process {
    start_secondary_on(kind, zone, primary, key, free_port())
}

/// Starts `kind` as a secondary of `zone` on 127.0.0.1:`port`, pulling the zone from
/// `primary` (IXFR once it has a version, AXFR otherwise or when the primary answers
/// IXFR with a full zone) signed with `key` (`None`: unsigned), and accepting NOTIFY
/// from 127.0.0.1 (NSD and Knot only signed with `key` when there is one, BIND signed or
/// not). Returns once the process answers
/// queries on its port; it may not have the zone yet: see [`wait_serial`].
pub fn start_secondary_on(
    kind: Kind,
    zone: &str,
    primary: SocketAddr,
    key: Option<&TsigKey>,
    port: u16,
) -> Process {
    let zone = fqdn(zone);
    let dir = tempfile::tempdir().expect("temporary directory");
    let d = dir.path().display().to_string();
    let (ip, pport) = (primary.ip(), primary.port());
    let config = match kind {
        Kind::Nsd => {
            let key_name = key.map_or("NOKEY", |key| key.name.as_str());
            format!(
                "{server}{keys}zone:\n  name: \"{zone}\"\n  zonefile: \"{d}/secondary.zone\"\n  \
                 request-xfr: {ip}@{pport} {key_name}\n  allow-notify: 127.0.0.1 {key_name}\n",
                server = nsd_server(&d, port, false),
                keys = nsd_key(key),
            )
        }
        Kind::Knot => {
            let key_line = key.map_or(String::new(), |key| format!("    key: {}\n", key.name));
            format!(
                "{server}{keys}remote:\n  - id: primary\n    address: {ip}@{pport}\n{key_line}\
                 acl:\n  - id: notify-from-primary\n    address: 127.0.0.1\n{key_line}    \
                 action: notify\n\
                 zone:\n  - domain: \"{zone}\"\n    file: \"{d}/secondary.zone\"\n    \
                 master: primary\n    acl: notify-from-primary\n    \
                 refresh-min-interval: 2\n    retry-min-interval: 2\n",
                server = knot_server(&d, port),
                keys = knot_key(key),
            )
        }
        Kind::Bind => {
            let key_clause = key.map_or(String::new(), |key| format!(" key \"{}\"", key.name));
            format!(
                "{server}zone \"{zone}\" {{\n  type secondary;\n  file \"{d}/secondary.zone\";\n  \
                 primaries {{ {ip} port {pport}{key_clause}; }};\n  \
                 allow-notify {{ 127.0.0.1; }};\n}};\n",
                server = bind_server(&d, port, key),
            )
        }
    };
    let mut process = spawn(kind, "secondary", dir, port, &config);
    wait_started(&mut process, &zone, false);
    process
}

/// Starts `kind` as a primary of `zone` on a fresh loopback port; see
/// [`start_primary_on`].
pub fn start_primary(
    kind: Kind,
    zone: &str,
    zone_file: &Path,
    notify: &[SocketAddr],
    key: Option<&TsigKey>,
) -> Process {
    start_primary_on(kind, zone, zone_file, notify, key, free_port())
}

/// Starts `kind` as a primary on 127.0.0.1:`port` serving `zone` from `zone_file`,
/// sending NOTIFY (signed with `key`) to each of `notify` when it loads the zone and
/// after each [`reload_primary`], and allowing transfers from 127.0.0.0/8 signed with
/// `key` (`None`: unsigned). It answers IXFR from the differences between the versions
/// of the file it loaded (NSD 4.6 too: `create-ixfr`). It never writes `zone_file` or its
/// directory. Returns once it serves the zone.
pub fn start_primary_on(
    kind: Kind,
    zone: &str,
    zone_file: &Path,
    notify: &[SocketAddr],
    key: Option<&TsigKey>,
    port: u16,
) -> Process {
    let zone = fqdn(zone);
    let zone_file = zone_file
        .canonicalize()
        .unwrap_or_else(|error| panic!("zone file {}: {error}", zone_file.display()));
    let dir = tempfile::tempdir().expect("temporary directory");
    let d = dir.path().display().to_string();
    let config = match kind {
        Kind::Nsd => {
            // NSD writes the IXFR it creates beside the zone file: the link keeps it here.
            let link = dir.path().join("primary.zone");
            std::os::unix::fs::symlink(&zone_file, &link).expect("link the zone file");
            let key_name = key.map_or("NOKEY", |key| key.name.as_str());
            let notify: String = notify
                .iter()
                .map(|to| format!("  notify: {}@{} {key_name}\n", to.ip(), to.port()))
                .collect();
            format!(
                "{server}{keys}zone:\n  name: \"{zone}\"\n  zonefile: \"{}\"\n  \
                 provide-xfr: 127.0.0.0/8 {key_name}\n{notify}  \
                 store-ixfr: yes\n  create-ixfr: yes\n",
                link.display(),
                server = nsd_server(&d, port, true),
                keys = nsd_key(key),
            )
        }
        Kind::Knot => {
            let key_line = key.map_or(String::new(), |key| format!("    key: {}\n", key.name));
            let remotes: String = notify
                .iter()
                .enumerate()
                .map(|(i, to)| {
                    format!(
                        "  - id: secondary{i}\n    address: {}@{}\n{key_line}",
                        to.ip(),
                        to.port()
                    )
                })
                .collect();
            let remotes = if remotes.is_empty() {
                String::new()
            } else {
                format!("remote:\n{remotes}")
            };
            let ids: Vec<String> = (0..notify.len()).map(|i| format!("secondary{i}")).collect();
            let notify_line = if ids.is_empty() {
                String::new()
            } else {
                format!("    notify: [{}]\n", ids.join(", "))
            };
            format!(
                "{server}{keys}{remotes}\
                 acl:\n  - id: transfer\n    address: 127.0.0.0/8\n{key_line}    action: transfer\n\
                 zone:\n  - domain: \"{zone}\"\n    file: \"{}\"\n    \
                 zonefile-load: difference\n    zonefile-sync: -1\n    journal-content: changes\n\
                 {notify_line}    acl: transfer\n",
                zone_file.display(),
                server = knot_server(&d, port),
                keys = knot_key(key),
            )
        }
        Kind::Bind => {
            let key_clause = key.map_or(String::new(), |key| format!(" key \"{}\"", key.name));
            let also_notify: String = notify
                .iter()
                .map(|to| format!(" {} port {}{key_clause};", to.ip(), to.port()))
                .collect();
            let also_notify = if also_notify.is_empty() {
                String::new()
            } else {
                format!("  also-notify {{{also_notify} }};\n")
            };
            let allow_transfer = match key {
                // From 127.0.0.0/8 and signed with the key (BIND's "and" of two elements).
                Some(key) => format!("!{{ !127.0.0.0/8; any; }}; key \"{}\";", key.name),
                None => "127.0.0.0/8;".to_string(),
            };
            // BIND 9.18 would wait 5 s before each NOTIFY (notify-delay) and answer IXFR
            // of a small zone with AXFR (max-ixfr-ratio 100%).
            format!(
                "{server}zone \"{zone}\" {{\n  type primary;\n  file \"{}\";\n  \
                 journal \"{d}/primary.jnl\";\n  ixfr-from-differences yes;\n  \
                 max-ixfr-ratio unlimited;\n  notify explicit;\n  notify-delay 0;\n\
                 {also_notify}  allow-transfer {{ {allow_transfer} }};\n}};\n",
                zone_file.display(),
                server = bind_server(&d, port, key),
            )
        }
    };
    let mut process = spawn(kind, "primary", dir, port, &config);
    wait_started(&mut process, &zone, true);
    process
}

/// Makes the primary `process` (started by [`start_primary`] as `kind`) load its zone
/// file again after the test rewrote it, so that it serves the new version and sends
/// NOTIFY; the file's SOA serial must have grown. BIND: `rndc reload ZONE` (queued, it
/// returns at once); Knot: `knotc -b zone-reload ZONE` (returns once loaded); NSD:
/// `nsd-control reload ZONE`. Fails with the command's output and the server's log.
pub fn reload_primary(kind: Kind, process: &Process, zone: &str) {
    let zone = fqdn(zone);
    let dir = process
        .log
        .parent()
        .expect("the log is in the server's directory");
    let (tool, args): (&str, Vec<PathBuf>) = match kind {
        Kind::Nsd => (
            "nsd-control",
            vec!["-c".into(), dir.join("nsd.conf"), "reload".into()],
        ),
        Kind::Knot => (
            "knotc",
            vec![
                "-b".into(),
                "-s".into(),
                dir.join("knot.sock"),
                "zone-reload".into(),
            ],
        ),
        Kind::Bind => (
            "rndc",
            vec!["-c".into(), dir.join("rndc.conf"), "reload".into()],
        ),
    };
    let mut command = Command::new(installed(tool));
    command.args(args);
    let output = command
        .arg(&zone)
        .output()
        .unwrap_or_else(|error| panic!("run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}\n{} log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        process.name,
        process.log_text()
    );
}

/// The SOA serial `server` answers for `zone` over UDP; `None` when it does not answer,
/// answers with an error (e.g. SERVFAIL before a secondary has the zone) or without the
/// SOA.
pub fn soa_serial(server: SocketAddr, zone: &str) -> Option<u32> {
    let reply = udp_exchange(
        server,
        &query(&fqdn(zone), RecordType::SOA, Some(1232)),
        SOA_QUERY_TIMEOUT,
    )
    .ok()?;
    if reply.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    reply.answers.iter().find_map(|record| match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Waits until `process` serves `serial` for `zone` and returns how long that took; fails
/// after `deadline` with the serial it serves and its log.
pub fn wait_serial(process: &Process, zone: &str, serial: u32, deadline: Duration) -> Duration {
    wait_until(
        deadline,
        || soa_serial(process.addr, zone) == Some(serial),
        || {
            format!(
                "{} did not serve serial {serial} of {zone} within {deadline:?} (it serves \
                 {:?}); its log:\n{}",
                process.name,
                soa_serial(process.addr, zone),
                process.log_text()
            )
        },
    )
}

/// How the secondary `process` last received `zone`, as its log shows it: `"IXFR"` (an
/// incremental answer applied) or `"AXFR"` (a full zone, also when it asked for IXFR and
/// the primary answered with the whole zone); `None` when its log shows no completed
/// transfer of the zone.
///
/// Knot: `[ZONE.] IXFR, incoming, remote …, finished, …` (or `AXFR, incoming`); BIND
/// (`xfer-in` logged at debug 3): `transfer of 'ZONE/IN' from …: got incremental response`
/// (or `got nonincremental response`), counted once `Transfer status: success` follows.
/// NSD 4.6 logs no transfer type at any verbosity (`zone ZONE. received update to serial
/// N … of B bytes` either way): `None` for it; ask the primary's log instead.
pub fn last_transfer_kind(process: &Process, zone: &str) -> Option<&'static str> {
    let zone = fqdn(zone).to_ascii_lowercase();
    let knot_zone = format!("[{zone}] ");
    let bind_transfer = format!("transfer of '{}/in' from ", zone.trim_end_matches('.'));
    let mut last = None;
    let mut bind_pending = None;
    for line in process.log_text().lines() {
        let line = line.to_ascii_lowercase();
        if line.contains(&knot_zone) && line.contains(", finished") {
            if line.contains("] ixfr, incoming, ") {
                last = Some("IXFR");
            } else if line.contains("] axfr, incoming, ") {
                last = Some("AXFR");
            }
        } else if line.contains(&bind_transfer) {
            if line.ends_with(": got incremental response") {
                bind_pending = Some("IXFR");
            } else if line.ends_with(": got nonincremental response") {
                bind_pending = Some("AXFR");
            } else if line.ends_with(": transfer status: success") {
                last = bind_pending.take().or(last);
            }
        }
    }
    last
}

/// `zone` with its trailing dot.
fn fqdn(zone: &str) -> String {
    if zone.ends_with('.') {
        zone.to_string()
    } else {
        format!("{zone}.")
    }
}

/// The installed path of `name` (the server programs are in /usr/sbin, outside a
/// non-root user's PATH), or `name` for a PATH search.
fn installed(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// NSD's `server:` (state and transfer files in `d`; its log at verbosity 2: transfers,
/// NOTIFYs, reloads; a transfer served at once, not up to 1 s after the one before) and
/// `remote-control:` (with `control`: on the socket `d/nsd.sock`, for `nsd-control`,
/// which needs no TLS keys there).
/// NSD's `server:` (response rate limiting off: tests and benchmarks poll its serial).
fn nsd_server(d: &str, port: u16, control: bool) -> String {
    let control = if control {
        format!("yes\n  control-interface: \"{d}/nsd.sock\"")
    } else {
        "no".to_string()
    };
    format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  \
         zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  \
         xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  zonelistfile: \"{d}/zone.list\"\n  \
         server-count: 1\n  verbosity: 2\n  logfile: \"{d}/nsd.log\"\n  \
         xfrd-reload-timeout: 0\n  rrl-ratelimit: 0\n\
         remote-control:\n  control-enable: {control}\n"
    )
}

fn nsd_key(key: Option<&TsigKey>) -> String {
    key.map_or(String::new(), |key| {
        format!(
            "key:\n  name: \"{}\"\n  algorithm: {}\n  secret: \"{}\"\n",
            key.name, key.algorithm, key.secret
        )
    })
}

/// Knot's `server:`, `database:`, `control:` and `log:` (everything at info to stderr,
/// which [`spawn`] sends to the log file). Knot 3.2 needs `rundir` and `storage` when
/// not run by its service; it keeps no user of its own unless told (`user:`).
fn knot_server(d: &str, port: u16) -> String {
    format!(
        "server:\n  rundir: \"{d}\"\n  listen: 127.0.0.1@{port}\n\
         database:\n  storage: \"{d}\"\n\
         control:\n  listen: \"{d}/knot.sock\"\n\
         log:\n  - target: stderr\n    any: info\n"
    )
}

fn knot_key(key: Option<&TsigKey>) -> String {
    key.map_or(String::new(), |key| {
        format!(
            "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
            key.name, key.algorithm, key.secret
        )
    })
}

/// BIND's `options`, keys (`key`, and `rndc-key` for [`reload_primary`] through
/// `d/rndc.conf`), `controls` on a fresh port and `logging`: everything at info to the
/// log file, and `xfer-in` at debug 3 (the only place 9.18 says whether a transfer was
/// incremental; `named -d 1` turns debug logging on).
///
/// The rates are raised from their defaults. `serial-query-rate`: after a failed refresh
/// (e.g. before its primary runs) a 9.18 secondary stays "refreshing" until the next tick
/// of that rate limiter, 500 ms by default, and acknowledges and drops a NOTIFY received
/// meanwhile: the zone came a minute later, at the next retry (now the window is 10 ms).
/// `notify-rate`: by default a primary sent one NOTIFY every 500 ms.
fn bind_server(d: &str, port: u16, key: Option<&TsigKey>) -> String {
    let control_port = free_port();
    let rndc_secret = TsigKey::new("rndc-key", "hmac-sha256").secret;
    std::fs::write(
        Path::new(d).join("rndc.conf"),
        format!(
            "key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{rndc_secret}\"; }};\n\
             options {{ default-key \"rndc-key\"; default-server 127.0.0.1; \
             default-port {control_port}; }};\n"
        ),
    )
    .expect("write rndc.conf");
    let key = key.map_or(String::new(), |key| {
        format!(
            "key \"{}\" {{ algorithm {}; secret \"{}\"; }};\n",
            key.name, key.algorithm, key.secret
        )
    });
    let channel = |name: &str, severity: &str| {
        format!(
            "  channel {name} {{ file \"{d}/named.log\"; severity {severity}; print-time yes; \
             print-category yes; print-severity yes; }};\n"
        )
    };
    format!(
        "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  \
         listen-on-v6 {{ none; }};\n  pid-file \"{d}/named.pid\";\n  \
         session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
         recursion no;\n  dnssec-validation no;\n  min-refresh-time 1;\n  \
         min-retry-time 1;\n  serial-query-rate 1000;\n  notify-rate 1000;\n  \
         startup-notify-rate 1000;\n}};\n\
         {key}key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{rndc_secret}\"; }};\n\
         controls {{ inet 127.0.0.1 port {control_port} allow {{ 127.0.0.1; }} \
         keys {{ \"rndc-key\"; }}; }};\n\
         logging {{\n{}{}  category default {{ main; }};\n  category xfer-in {{ xfer; }};\n}};\n",
        channel("main", "info"),
        channel("xfer", "debug 3"),
    )
}

/// Writes `config` into `dir` and starts `kind` on it in the foreground, its standard
/// error appended to the log file the server also writes.
fn spawn(kind: Kind, role: &str, dir: tempfile::TempDir, port: u16, config: &str) -> Process {
    let name = format!("{} {role}", kind.program());
    let config_file = dir.path().join(match kind {
        Kind::Nsd => "nsd.conf",
        Kind::Knot => "knot.conf",
        Kind::Bind => "named.conf",
    });
    std::fs::write(&config_file, config).expect("write the server's configuration");
    let log = dir.path().join(format!("{}.log", kind.program()));
    if kind == Kind::Bind {
        // named -f says nothing about a configuration it cannot load: ask before.
        let output = Command::new(installed("named-checkconf"))
            .arg(&config_file)
            .output()
            .expect("named-checkconf is installed with BIND");
        assert!(
            output.status.success(),
            "{name}: named-checkconf rejects its configuration: {}{}\n{config}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("create the log file");
    // In the foreground: NSD -d, Knot by default, BIND -f (-g would log to stderr only,
    // ignoring the logging statement) with debug logging on (-d 1) for xfer-in.
    let foreground: &[&str] = match kind {
        Kind::Nsd => &["-d"],
        Kind::Knot => &[],
        Kind::Bind => &["-f", "-d", "1"],
    };
    let mut command = Command::new(installed(kind.program()));
    // In its own directory: BIND with -d writes `named.run` into its working directory.
    let child = command
        .current_dir(dir.path())
        .args(foreground)
        .arg("-c")
        .arg(&config_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|error| panic!("start {name} ({command:?}): {error}; is it installed?"));
    Process {
        name,
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        _dir: Some(dir),
    }
}

/// Waits until `process` answers an SOA query for `zone` over UDP: with the SOA when
/// `serving`, else with anything (a secondary without the zone yet answers SERVFAIL);
/// fails when it exits or after [`START_DEADLINE`], with its log.
fn wait_started(process: &mut Process, zone: &str, serving: bool) {
    let message = query(zone, RecordType::SOA, Some(1232));
    let (name, log) = (process.name.clone(), process.log.clone());
    wait_until(
        START_DEADLINE,
        || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "{} exited with {status}:\n{}",
                    process.name,
                    process.log_text()
                );
            }
            // Short: a query sent before the server listens is lost, not refused.
            match udp_exchange(process.addr, &message, Duration::from_millis(50)) {
                Ok(_) if !serving => true,
                Ok(reply) => reply
                    .answers
                    .iter()
                    .any(|r| matches!(r.data, RData::SOA(_))),
                Err(_) => false,
            }
        },
        || {
            format!(
                "{name} did not {} within {START_DEADLINE:?}:\n{}",
                if serving { "serve its zone" } else { "answer" },
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        },
    );
}
