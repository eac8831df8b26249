//! The health monitor against real loopback backends: TCP listeners and tiny HTTP servers on
//! their own 127.0.0.x addresses. Tests wait for a condition on the watch channel (or on a
//! backend's request count) with a deadline, never for a fixed time.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use health::{HealthError, HealthMonitor, ProbeTarget, PushedReport};
use model::{Check, HealthView, Hysteresis};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Generous on a loaded two-core machine; every wait ends as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(10);
const INTERVAL_MS: u64 = 100;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Milliseconds since the test started: the monitor's clock seam.
fn clock() -> impl Fn() -> u64 + Send + Sync + 'static {
    let start = Instant::now();
    move || u64::try_from(start.elapsed().as_millis()).expect("a test lasts less than an age")
}

fn target(address: IpAddr, check: Check, rise: u32, fall: u32) -> ProbeTarget {
    ProbeTarget {
        address,
        check,
        interval_ms: INTERVAL_MS,
        timeout_ms: 200,
        hysteresis: Hysteresis { rise, fall },
    }
}

fn http_check(addr: SocketAddr) -> Check {
    Check::parse(&format!("http://{addr}/health")).expect("loopback URLs parse")
}

async fn wait_for(
    receiver: &mut watch::Receiver<HealthView>,
    what: &str,
    condition: impl FnMut(&HealthView) -> bool,
) -> HealthView {
    let waited = tokio::time::timeout(DEADLINE, receiver.wait_for(condition))
        .await
        .map(|result| result.map(|view| view.clone()));
    match waited {
        Ok(Ok(view)) => view,
        Ok(Err(_)) => panic!("the monitor stopped while waiting for {what}"),
        Err(_) => panic!(
            "no {what} within {DEADLINE:?}; last view: {:?}",
            *receiver.borrow()
        ),
    }
}

/// A TCP listener that accepts and drops every connection.
struct TcpBackend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TcpBackend {
    async fn start(address: IpAddr) -> TcpBackend {
        let listener = TcpListener::bind((address, 0))
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        TcpBackend { addr, task }
    }

    /// Closes the listening socket: connections are refused from now on.
    async fn stop(self) {
        self.task.abort();
        // Returns once the task, and with it the listener, is gone.
        let _ = self.task.await;
    }
}

/// How a test HTTP server answers.
#[derive(Clone, Copy)]
enum Answer {
    /// The scripted statuses first, then the current `status`, after `delay`.
    Status { delay: Duration },
    /// Read the request and never answer.
    Never,
    /// Answer a 200 status line and never finish the headers.
    StatusLineOnly,
}

/// A tiny HTTP/1.1 server that counts requests and how many it handles at once.
struct HttpBackend {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    requests: watch::Receiver<u64>,
    max_in_flight: Arc<AtomicUsize>,
}

impl HttpBackend {
    async fn start(address: IpAddr, answer: Answer, script: &[u16]) -> HttpBackend {
        let listener = TcpListener::bind((address, 0))
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let status = Arc::new(AtomicU16::new(200));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (requests_sender, requests) = watch::channel(0u64);
        let requests_sender = Arc::new(requests_sender);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let backend = HttpBackend {
            addr,
            status: Arc::clone(&status),
            requests,
            max_in_flight: Arc::clone(&max_in_flight),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // Counted from accept: the prober holds a permit from before it connects
                // until it has read the answer, and the answer is written after the count
                // goes down again, so this never over-counts the prober's probes in flight.
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(now, Ordering::SeqCst);
                let (status, script) = (Arc::clone(&status), Arc::clone(&script));
                let (requests, in_flight) = (Arc::clone(&requests_sender), Arc::clone(&in_flight));
                tokio::spawn(async move {
                    serve(stream, answer, &status, &script, &requests, &in_flight).await;
                });
            }
        });
        backend
    }

    async fn wait_for_requests(&mut self, count: u64) {
        let waited = tokio::time::timeout(DEADLINE, self.requests.wait_for(|&n| n >= count));
        assert!(
            matches!(waited.await, Ok(Ok(_))),
            "the backend at {} did not see {count} requests within {DEADLINE:?}",
            self.addr
        );
    }
}

async fn serve(
    mut stream: TcpStream,
    answer: Answer,
    status: &AtomicU16,
    script: &Mutex<VecDeque<u16>>,
    requests: &watch::Sender<u64>,
    in_flight: &AtomicUsize,
) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    assert!(
        request.starts_with(b"GET /health HTTP/1.1\r\n"),
        "{}",
        String::from_utf8_lossy(&request)
    );
    assert!(
        String::from_utf8_lossy(&request).contains("\r\nHost: 127.0.0."),
        "HTTP/1.1 needs a Host header"
    );
    requests.send_modify(|count| *count += 1);
    match answer {
        Answer::Never => {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            // Hold the connection open until the prober gives up and closes it.
            while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
        }
        Answer::StatusLineOnly => {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            // "200 OK", then nothing: the headers never end.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
            while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
        }
        Answer::Status { delay } => {
            tokio::time::sleep(delay).await;
            let scripted = script
                .lock()
                .expect("no test thread panics holding it")
                .pop_front();
            let code = scripted.unwrap_or_else(|| status.load(Ordering::SeqCst));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let response =
                format!("HTTP/1.1 {code} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(response.as_bytes()).await;
        }
    }
}

fn start(
    targets: Vec<ProbeTarget>,
    max_concurrent_probes: usize,
) -> (HealthMonitor, watch::Receiver<HealthView>) {
    HealthMonitor::start(targets, clock(), max_concurrent_probes).expect("valid targets")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_tcp_backend_becomes_healthy_after_rise_probes() {
    let address = ip(21);
    let backend = TcpBackend::start(address).await;
    let (monitor, mut receiver) = start(vec![target(address, Check::Tcp(backend.addr), 3, 2)], 8);
    assert_eq!(
        monitor.view(),
        HealthView::new(),
        "no verdict before any probe"
    );

    let view = wait_for(&mut receiver, "verdict", |view| {
        view.healthy(&address).is_some()
    })
    .await;
    assert_eq!(view.healthy(&address), Some(true));
    let counters = monitor.counters();
    assert!(
        counters.probes_run >= 3,
        "up only after rise = 3: {counters:?}"
    );
    assert_eq!(counters.probe_failures, 0);
    assert_eq!(counters.flips, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_tcp_listener_goes_down_after_fall_failed_probes() {
    let address = ip(22);
    let backend = TcpBackend::start(address).await;
    let fall = 3;
    let probed = target(address, Check::Tcp(backend.addr), 1, fall);
    // The goal, printed (a test does not assert a wall-clock duration).
    let goal = Duration::from_millis(probed.interval_ms * u64::from(fall) + probed.timeout_ms);
    let (monitor, mut receiver) = start(vec![probed], 8);
    wait_for(&mut receiver, "healthy", |view| {
        view.healthy(&address) == Some(true)
    })
    .await;

    backend.stop().await;
    let stopped = Instant::now();
    wait_for(&mut receiver, "unhealthy", |view| {
        view.healthy(&address) == Some(false)
    })
    .await;
    println!(
        "down after {:?} (goal interval × fall + timeout = {goal:?})",
        stopped.elapsed()
    );
    let counters = monitor.counters();
    assert!(counters.probe_failures >= u64::from(fall), "{counters:?}");
    assert_eq!(counters.flips, 2, "up once, down once: {counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_backend_follows_its_status_code() {
    let address = ip(23);
    let backend = HttpBackend::start(
        address,
        Answer::Status {
            delay: Duration::ZERO,
        },
        &[],
    )
    .await;
    let (monitor, mut receiver) = start(vec![target(address, http_check(backend.addr), 2, 2)], 8);
    wait_for(&mut receiver, "healthy on 200", |view| {
        view.healthy(&address) == Some(true)
    })
    .await;

    backend.status.store(503, Ordering::SeqCst);
    wait_for(&mut receiver, "unhealthy on 503", |view| {
        view.healthy(&address) == Some(false)
    })
    .await;

    backend.status.store(204, Ordering::SeqCst);
    wait_for(&mut receiver, "healthy again on 204", |view| {
        view.healthy(&address) == Some(true)
    })
    .await;
    assert_eq!(monitor.counters().flips, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_backend_that_sends_200_and_never_finishes_its_headers_goes_down() {
    let address = ip(25);
    let mut backend = HttpBackend::start(address, Answer::StatusLineOnly, &[]).await;
    let (_monitor, mut receiver) = start(vec![target(address, http_check(backend.addr), 1, 2)], 8);
    let view = wait_for(&mut receiver, "verdict", |view| {
        view.healthy(&address).is_some()
    })
    .await;
    assert_eq!(
        view.healthy(&address),
        Some(false),
        "a server stuck in its headers is down"
    );
    backend.wait_for_requests(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_backend_that_never_answers_times_out_and_goes_down() {
    let address = ip(24);
    let mut backend = HttpBackend::start(address, Answer::Never, &[]).await;
    let (monitor, mut receiver) = start(vec![target(address, http_check(backend.addr), 1, 2)], 8);
    let view = wait_for(&mut receiver, "verdict", |view| {
        view.healthy(&address).is_some()
    })
    .await;
    assert_eq!(
        view.healthy(&address),
        Some(false),
        "a silent server is down"
    );
    backend.wait_for_requests(2).await;
    let counters = monitor.counters();
    assert!(counters.probe_failures >= 2, "{counters:?}");
    assert_eq!(counters.probes_run, counters.probe_failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_probe_among_successes_does_not_flip() {
    let address = ip(25);
    let mut backend = HttpBackend::start(
        address,
        Answer::Status {
            delay: Duration::ZERO,
        },
        &[200, 200, 200, 503, 200, 200],
    )
    .await;
    let (monitor, mut receiver) = start(vec![target(address, http_check(backend.addr), 2, 2)], 8);
    let first = wait_for(&mut receiver, "healthy", |view| {
        view.healthy(&address) == Some(true)
    })
    .await;

    // The next probe of a target starts only after the last one's result was folded in, so
    // an 8th request means the 503 and the successes around it have all been counted.
    backend.wait_for_requests(8).await;
    assert_eq!(
        monitor.view(),
        first,
        "still up, and up since the first verdict"
    );
    let counters = monitor.counters();
    assert!(
        counters.probe_failures >= 1,
        "the 503 was seen: {counters:?}"
    );
    assert_eq!(counters.flips, 1, "only the first verdict: {counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_report_flips_at_once_and_an_unknown_address_is_refused() {
    let unprobed = ip(26);
    let probed = ip(31);
    let backend = TcpBackend::start(probed).await;
    let (monitor, mut receiver) = start(
        vec![
            target(unprobed, Check::None, 2, 2),
            target(probed, Check::Tcp(backend.addr), 2, 2),
        ],
        8,
    );
    wait_for(&mut receiver, "probed backend up", |view| {
        view.healthy(&probed) == Some(true)
    })
    .await;
    receiver.mark_unchanged();

    monitor
        .push(vec![PushedReport {
            address: unprobed,
            healthy: false,
        }])
        .expect("a configured backend");
    assert!(receiver.has_changed().expect("monitor alive"), "published");
    assert_eq!(receiver.borrow_and_update().healthy(&unprobed), Some(false));

    let stranger = ip(99);
    let error = monitor
        .push(vec![
            PushedReport {
                address: unprobed,
                healthy: true,
            },
            PushedReport {
                address: stranger,
                healthy: true,
            },
        ])
        .unwrap_err();
    assert_eq!(
        error,
        HealthError::UnknownBackends {
            addresses: vec![stranger]
        }
    );
    assert!(error.to_string().contains("127.0.0.99"), "{error}");
    assert_eq!(
        monitor.view().healthy(&unprobed),
        Some(false),
        "a refused report applies nothing"
    );

    // A pushed verdict on a probed backend holds until rise probes overturn it.
    monitor
        .push(vec![PushedReport {
            address: probed,
            healthy: false,
        }])
        .expect("a configured backend");
    assert_eq!(receiver.borrow_and_update().healthy(&probed), Some(false));
    wait_for(&mut receiver, "probes to bring it back", |view| {
        view.healthy(&probed) == Some(true)
    })
    .await;
    assert_eq!(monitor.counters().reports_pushed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_in_flight_never_exceed_the_concurrency_bound() {
    let mut backend = HttpBackend::start(
        ip(27),
        Answer::Status {
            delay: Duration::from_millis(50),
        },
        &[],
    )
    .await;
    // Eight backends, all checked through the one server, all due at once.
    let addresses: Vec<IpAddr> = (101..=108).map(ip).collect();
    let targets = addresses
        .iter()
        .map(|&address| target(address, http_check(backend.addr), 1, 2))
        .map(|target| ProbeTarget {
            timeout_ms: 5_000,
            ..target
        })
        .collect();
    let (_monitor, mut receiver) = start(targets, 2);
    wait_for(&mut receiver, "all eight up", |view| {
        addresses
            .iter()
            .all(|address| view.healthy(address) == Some(true))
    })
    .await;
    backend.wait_for_requests(24).await;
    assert_eq!(
        backend.max_in_flight.load(Ordering::SeqCst),
        2,
        "two probes at a time, and the bound is used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_targets_keeps_the_state_of_unchanged_targets() {
    let kept = ip(28);
    let added = ip(29);
    let backend = TcpBackend::start(kept).await;
    let (monitor, mut receiver) = start(vec![target(kept, Check::Tcp(backend.addr), 2, 2)], 8);
    let before = wait_for(&mut receiver, "healthy", |view| {
        view.healthy(&kept) == Some(true)
    })
    .await;
    receiver.mark_unchanged();

    // Same check, other interval and rise: history kept, nothing to publish.
    let mut retuned = target(kept, Check::Tcp(backend.addr), 5, 3);
    retuned.interval_ms = 200;
    monitor
        .set_targets(vec![retuned.clone(), target(added, Check::None, 2, 2)])
        .expect("valid targets");
    assert_eq!(
        monitor.view(),
        before,
        "the verdict and its since_ms survive a reload"
    );
    assert!(!receiver.has_changed().expect("monitor alive"));
    monitor
        .push(vec![PushedReport {
            address: added,
            healthy: true,
        }])
        .expect("the added target is known");

    // Dropping a target removes its verdict and tells the consumers.
    monitor
        .set_targets(vec![target(added, Check::None, 2, 2)])
        .expect("valid targets");
    assert!(receiver.has_changed().expect("monitor alive"));
    assert_eq!(receiver.borrow_and_update().healthy(&kept), None);
    assert!(matches!(
        monitor.push(vec![PushedReport {
            address: kept,
            healthy: true
        }]),
        Err(HealthError::UnknownBackends { .. })
    ));

    // A reload that names one address with two checks is refused whole.
    let error = monitor
        .set_targets(vec![retuned, target(kept, Check::None, 2, 2)])
        .unwrap_err();
    assert!(
        matches!(error, HealthError::ConflictingChecks { .. }),
        "{error}"
    );
    assert_eq!(monitor.view().healthy(&added), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_probing() {
    let address = ip(30);
    let mut backend = HttpBackend::start(
        address,
        Answer::Status {
            delay: Duration::ZERO,
        },
        &[],
    )
    .await;
    let (monitor, mut receiver) = start(vec![target(address, http_check(backend.addr), 1, 2)], 8);
    wait_for(&mut receiver, "healthy", |view| {
        view.healthy(&address) == Some(true)
    })
    .await;
    backend.wait_for_requests(1).await;
    monitor.shutdown().await;
    let probes = monitor.counters().probes_run;
    // Another monitor's probes of the same server show time passing without a fixed sleep.
    let (_other, mut other_receiver) =
        start(vec![target(ip(32), http_check(backend.addr), 3, 2)], 8);
    wait_for(&mut other_receiver, "the other monitor's verdict", |view| {
        view.healthy(&ip(32)).is_some()
    })
    .await;
    assert_eq!(
        monitor.counters().probes_run,
        probes,
        "no probe after shutdown"
    );
    assert_eq!(
        monitor.view().healthy(&address),
        Some(true),
        "the last view stays"
    );
}
