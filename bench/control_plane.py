#!/usr/bin/env python3
"""Helper of bench/control-plane: config, start-up timing, change latency, report.

Standard library only. Every loop is bounded in count and time; every packet goes to a
loopback address (127.0.0.0/8), checked before anything is sent.

Subcommands (bench/control-plane calls them; see there for the flow):
  ports N                      N free loopback ports (UDP and TCP bindable), below the
                               ephemeral range
  config ...                   the dnsward TOML: [server], [api], [store], one [[zone]],
                               ENDPOINTS [[endpoint]]s with 2 backends each, check = "none"
  wait-start ...               time from a process start to its first good answer
  settle ...                   waits until the started node is quiet (its first whole
                               encoding done): rounds measure changes, not start-up
  rounds ...                   sequential down/up changes: latency, CPU per change, memory
  burst-prepare ...            push backend 1 of the burst's "up" endpoints down, wait
  burst ...                    RATE changes per second for SECS, each change's latency
  status --api A --out F       zones' breakers and the audit log by action (a tripped
                               breaker explains changes that never reach the wire)
  memory --pid P --out F       VmRSS and VmHWM now
  report ...                   the table of one size; `summary` the final one

Endpoint i is ep<i>.bench.test. with backends 127.100.<i/250>.<i%250+1> (backend 1, the
one pushed down and up) and 127.101.<i/250>.<i%250+1> (backend 2, always healthy).
"""
import argparse
import http.client
import ipaddress
import json
import math
import os
import random
import select
import socket
import struct
import sys
import time

ORIGIN = "bench.test."
POLL_INTERVAL_S = 0.002  # a pending change's answer is asked at most this often
QUERY_RESEND_S = 0.1  # a query without a reply by then is asked again
MAX_PORT_TRIES = 500


def endpoint_name(i):
    return f"ep{i}.{ORIGIN}"


def backend(i, b):
    if i >= 250 * 256:
        raise SystemExit(f"endpoint {i}: at most {250 * 256} endpoints have addresses")
    return f"127.{100 + b}.{i // 250}.{i % 250 + 1}"


def loopback(hostport):
    host, port = hostport.rsplit(":", 1)
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"{hostport}: only loopback addresses may be targets")
    return host, int(port)


# ---------------------------------------------------------------------------- DNS over UDP


def build_query(qid, name, qtype):
    out = bytearray(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0))
    for label in name.rstrip(".").split("."):
        out.append(len(label))
        out += label.encode("ascii")
    out.append(0)
    out += struct.pack("!HH", qtype, 1)
    return bytes(out)


def skip_name(msg, off):
    for _ in range(128):
        length = msg[off]
        if length == 0:
            return off + 1
        if length & 0xC0 == 0xC0:
            return off + 2
        off += length + 1
    raise ValueError("name too long")


def parse_answer(msg):
    """(id, rcode, set of A addresses in the answer section, answer count)."""
    qid, flags, qdcount, ancount = struct.unpack("!HHHH", msg[:8])
    off = 12
    for _ in range(qdcount):
        off = skip_name(msg, off) + 4
    addresses = set()
    for _ in range(ancount):
        off = skip_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off : off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            addresses.add(socket.inet_ntoa(msg[off : off + 4]))
        off += rdlen
    return qid, flags & 0xF, addresses, ancount


def make_socket(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.connect(server)
    sock.setblocking(False)
    return sock


# ---------------------------------------------------------------------------- HTTP API


class Api:
    """POST /v1/health over one kept-alive connection (reconnects once on failure)."""

    def __init__(self, hostport, token=None):
        self.host, self.port = loopback(hostport)
        self.token = token
        self.conn = None

    def get(self, path):
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            if response.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {response.status}: {text[:300]}")
            return json.loads(text)
        finally:
            conn.close()

    def push(self, reports):
        body = json.dumps({"reports": reports})
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request("POST", "/v1/health", body=body, headers=headers)
                response = self.conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                if response.status != 200:
                    raise RuntimeError(f"POST /v1/health: HTTP {response.status}: {text}")
                return json.loads(text)
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise


# ---------------------------------------------------------------------------- /proc


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------- change engine


class Change:
    def __init__(self, index, endpoint, kind):
        self.index = index
        self.endpoint = endpoint
        self.kind = kind  # "down": backend 1 pushed unhealthy; "up": pushed healthy again
        self.name = endpoint_name(endpoint)
        self.b1 = backend(endpoint, 0)
        self.b2 = backend(endpoint, 1)
        self.t0 = None  # monotonic, just before the push
        self.push_s = None  # how long the HTTP push took
        self.latency_s = None  # t0 to the first answer showing the change
        self.error = None
        self.untimed = None  # why this change is pushed but not timed (it would prove nothing)
        self.qid = None
        self.sent = -1.0
        self.next_poll = 0.0

    def report(self):
        return {"address": self.b1, "healthy": self.kind == "up"}

    def shows(self, addresses):
        if self.kind == "down":
            return self.b1 not in addresses and self.b2 in addresses
        return self.b1 in addresses and self.b2 in addresses


def breaker_note(api):
    """'' when every zone's breaker is closed, else what tripped it (a frozen zone takes no
    automated change, so every later change fails)."""
    try:
        zones = api.get("/v1/status")["zones"]
    except Exception as error:  # noqa: BLE001 - only a note
        return f"; status unavailable: {error}"
    notes = [f"{z['zone']} breaker {z['breaker']}: {str(z.get('breaker_reason'))[:160]}"
             for z in zones if z.get("breaker") != "closed"]
    return ("; " + "; ".join(notes)) if notes else ""


def run_changes(sock, api, schedule, deadline_s, poll_cap, pid, pushed=False):
    """Pushes each change at its due offset (seconds) and asks its name until the answer
    shows it, at most `deadline_s` after its push. `pushed`: already pushed (t0 set).
    Returns (queries sent, replies received)."""
    start = time.monotonic()
    schedule = sorted(schedule, key=lambda item: item[0])
    hard_end = start + (schedule[-1][0] if schedule else 0) + deadline_s + 5
    by_qid = {}
    pending = []
    next_qid = random.randrange(65536)
    sent = received = 0
    at = 0
    last_alive_check = start
    while (at < len(schedule) or pending) and time.monotonic() < hard_end:
        now = time.monotonic()
        while at < len(schedule) and start + schedule[at][0] <= now:
            change = schedule[at][1]
            at += 1
            if not pushed:
                change.t0 = time.monotonic()
                try:
                    api.push([change.report()])
                except Exception as error:  # noqa: BLE001 - recorded as a failure
                    change.error = f"push failed: {error}"
                    continue
                change.push_s = time.monotonic() - change.t0
            if change.untimed is None:
                pending.append(change)
            now = time.monotonic()
        # Give up on changes past their deadline.
        for change in [c for c in pending if now - c.t0 > deadline_s]:
            change.error = f"not visible within {deadline_s:.0f} s"
            pending.remove(change)
            by_qid.pop(change.qid, None)
        if now - last_alive_check > 1.0:
            last_alive_check = now
            if not alive(pid):
                for change in pending:
                    change.error = "the node exited"
                raise SystemExit(f"the node (pid {pid}) exited during the measurement")
        # Ask every pending name that is due (spread so the total stays under poll_cap/s).
        interval = max(POLL_INTERVAL_S, len(pending) / poll_cap)
        for change in pending:
            if change.next_poll <= now and (change.qid is None or now - change.sent > QUERY_RESEND_S):
                by_qid.pop(change.qid, None)
                next_qid = (next_qid + 1) & 0xFFFF
                change.qid = next_qid
                by_qid[next_qid] = change
                try:
                    sock.send(build_query(next_qid, change.name, 1))
                    sent += 1
                except BlockingIOError:
                    pass
                change.sent = now
                change.next_poll = now + interval
        wake = [c.next_poll for c in pending] + [c.sent + QUERY_RESEND_S for c in pending]
        if at < len(schedule):
            wake.append(start + schedule[at][0])
        timeout = min(wake) - time.monotonic() if wake else 0.001
        timeout = min(max(timeout, 0.0), POLL_INTERVAL_S)
        readable, _, _ = select.select([sock], [], [], timeout)
        if not readable:
            continue
        for _ in range(4096):
            try:
                msg = sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                break
            got = time.monotonic()
            received += 1
            try:
                qid, rcode, addresses, _ = parse_answer(msg)
            except (ValueError, struct.error, IndexError):
                continue
            change = by_qid.pop(qid, None)
            if change is None:
                continue
            change.qid = None
            if rcode == 0 and change.shows(addresses):
                change.latency_s = got - change.t0
                pending.remove(change)
    for change in pending:
        change.error = f"not visible within {deadline_s:.0f} s (run over)"
    return sent, received


def current_addresses(sock, name, timeout_s=2.0):
    """The A addresses the server answers for `name` now (None: no answer in time)."""
    qid = random.randrange(65536)
    end = time.monotonic() + timeout_s
    for _ in range(20):
        if time.monotonic() >= end:
            break
        try:
            sock.send(build_query(qid, name, 1))
        except (BlockingIOError, ConnectionRefusedError):
            pass
        resend = min(end, time.monotonic() + 0.1)
        while time.monotonic() < resend:
            readable, _, _ = select.select([sock], [], [], max(0.0, resend - time.monotonic()))
            if not readable:
                break
            try:
                got_qid, rcode, addresses, _ = parse_answer(sock.recv(4096))
            except (BlockingIOError, ConnectionRefusedError, ValueError, struct.error, IndexError):
                continue
            if got_qid == qid and rcode == 0:
                return addresses
    return None


def stats_ms(values):
    values = sorted(v * 1000 for v in values)
    if not values:
        return None

    def rank(p):
        return values[max(0, math.ceil(p * len(values)) - 1)]

    return {"n": len(values), "p50": rank(0.5), "p99": rank(0.99), "max": values[-1],
            "mean": sum(values) / len(values)}


def summarize(changes):
    ok = [c.latency_s for c in changes if c.latency_s is not None]
    failures = [{"index": c.index, "endpoint": c.name, "kind": c.kind, "error": c.error}
                for c in changes if c.latency_s is None and c.untimed is None]
    untimed = [{"index": c.index, "endpoint": c.name, "kind": c.kind, "why": c.untimed}
               for c in changes if c.untimed is not None]
    pushes = [c.push_s for c in changes if c.push_s is not None]
    return {"latency": stats_ms(ok), "failures": failures, "untimed": untimed,
            "push": stats_ms(pushes), "count": len(changes)}


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


# ---------------------------------------------------------------------------- subcommands


def cmd_ports(args):
    ports = []
    rng = random.Random()
    for _ in range(MAX_PORT_TRIES):
        if len(ports) == args.count:
            break
        port = rng.randrange(20000, 32000)  # below the ephemeral range (32768-)
        if port in ports:
            continue
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            ports.append(port)
    if len(ports) < args.count:
        raise SystemExit("no free loopback ports found")
    print(" ".join(map(str, ports)))


def cmd_config(args):
    lines = [
        "# bench/control-plane: written for one measurement",
        "[server]",
        f'listen = "127.0.0.1:{args.dns_port}"',
        "# dnsperf and the prober load the server from one address: rate limiting off.",
        "[server.rrl]",
        "responses_per_second = 0",
        "[api]",
        f'listen = "127.0.0.1:{args.api_port}"',
    ]
    if args.token:
        lines.append(f'token = "{args.token}"')
    lines += ["[store]", f'path = "{args.store}"']
    if args.validator == "false":
        lines += ["[validator]", "enabled = false"]
    lines += ["[[zone]]", 'name = "bench.test"', f'file = "{args.zone_file}"']
    for i in range(args.endpoints):
        lines += [
            "[[endpoint]]",
            f'name = "{endpoint_name(i)}"',
            "min_answers = 1",
            f'backends = [{{ address = "{backend(i, 0)}", check = "none" }}, '
            f'{{ address = "{backend(i, 1)}", check = "none" }}]',
        ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


def cmd_wait_start(args):
    """Polls (every 2 ms) until the server answers: the SOA of bench.test. (--soa), or ep0
    with both its backends. Prints and stores seconds since --start-ns (CLOCK_REALTIME)."""
    server = loopback(args.dns)
    sock = make_socket(server)
    end = time.monotonic() + args.deadline
    qid = 0
    soa_at = None
    first_any = None
    want = {backend(0, 0), backend(0, 1)}
    polls = 0
    while time.monotonic() < end:
        polls += 1
        if polls % 500 == 0 and not alive(args.pid):
            raise SystemExit(f"the server (pid {args.pid}) exited before answering")
        for name, qtype in ((ORIGIN, 6), (endpoint_name(0), 1)):
            qid = (qid + 1) & 0xFFFF
            try:
                sock.send(build_query(qid, name, qtype))
            except (BlockingIOError, ConnectionRefusedError):
                pass
        stop = time.monotonic() + POLL_INTERVAL_S
        while True:
            left = stop - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                break
            try:
                msg = sock.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            now_ns = time.time_ns()
            try:
                _, rcode, addresses, ancount = parse_answer(msg)
            except (ValueError, struct.error, IndexError):
                continue
            qtype = struct.unpack("!H", msg[skip_name(msg, 12): skip_name(msg, 12) + 2])[0]
            seconds = (now_ns - args.start_ns) / 1e9
            if first_any is None:
                first_any = seconds
            if qtype == 6 and rcode == 0 and ancount > 0 and soa_at is None:
                soa_at = seconds
                if args.soa:
                    write_json(args.out, {"soa_s": soa_at, "first_reply_s": first_any})
                    return
            if qtype == 1 and rcode == 0 and want <= addresses and not args.soa:
                write_json(args.out, {"endpoint_s": seconds, "soa_s": soa_at,
                                      "first_reply_s": first_any})
                return
    raise SystemExit(f"no good answer from {args.dns} within {args.deadline} s")


def common_engine_args(args):
    return make_socket(loopback(args.dns)), Api(args.api, args.token)


def cmd_settle(args):
    """Waits (bounded) until the node used less than --max-rate CPU seconds per second over
    a --window, i.e. finished what start-up left running in the background (the first
    whole encoding of the zone's answers). Stores seconds since --start-ns and the memory."""
    end = time.monotonic() + args.deadline
    rate = None
    while time.monotonic() < end:
        cpu0, t0 = cpu_seconds(args.pid), time.monotonic()
        time.sleep(args.window)
        rate = (cpu_seconds(args.pid) - cpu0) / (time.monotonic() - t0)
        if rate < args.max_rate:
            break
    settled = rate is not None and rate < args.max_rate
    seconds = time.time_ns() / 1e9 - args.start_ns / 1e9
    write_json(args.out, {"settled_s": seconds if settled else None, "last_rate": rate,
                          "memory_kib": memory_kib(args.pid)})
    if settled:
        print(f"  settled {seconds:.2f} s after start (below {args.max_rate} CPU s/s over {args.window} s)")
    else:
        print(f"  not settled within {args.deadline:.0f} s (last {rate:.2f} CPU s/s); measuring anyway")


def cmd_rounds(args):
    sock, api = common_engine_args(args)
    pid = args.pid
    # The node's CPU while nothing changes (validator rounds, timers): subtracted below.
    idle_cpu0, idle_t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(args.idle_secs)
    idle_rate = (cpu_seconds(pid) - idle_cpu0) / (time.monotonic() - idle_t0)
    changes = []
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    for r in range(args.count):
        endpoint = args.first + r
        for kind in ("down", "up"):
            change = Change(len(changes), endpoint, kind)
            changes.append(change)
            if kind == "up" and changes[-2].latency_s is None and \
                    change.b1 in (current_addresses(sock, change.name) or {change.b1}):
                # The down never showed (not even late): an answer with both backends
                # would prove nothing. Restore the backend, untimed.
                change.untimed = "its down never became visible"
            run_changes(sock, api, [(0.0, change)], args.deadline, args.poll_cap, pid)
            if change.latency_s is not None:
                shown = f"{change.latency_s * 1000:9.1f} ms"
            elif change.untimed is not None:
                shown = f"not timed ({change.untimed}); pushed"
            else:
                shown = f"FAILED ({change.error}{breaker_note(api)})"
            print(f"  round {r + 1:3d} {kind:4s} {change.name:22s} {shown}", flush=True)
    cpu = cpu_seconds(pid) - cpu0
    wall = time.monotonic() - t0
    down = summarize([c for c in changes if c.kind == "down"])
    up = summarize([c for c in changes if c.kind == "up"])
    write_json(args.out, {
        "rounds": args.count, "down": down, "up": up,
        "push": summarize(changes)["push"],
        "cpu_s": cpu, "wall_s": wall, "changes": len(changes),
        "cpu_per_change_s": cpu / len(changes),
        "idle_cpu_per_s": idle_rate,
        "net_cpu_per_change_s": max(0.0, cpu - idle_rate * wall) / len(changes),
        "memory_kib": memory_kib(pid),
    })


def cmd_burst_prepare(args):
    """Backend 1 of endpoints [first, first+count) down in one push, then waits (up to three
    deadlines: this is set-up, not a measurement) until they answer without it. Writes the
    endpoints that never did: the burst pushes them up but does not time them."""
    sock, api = common_engine_args(args)
    changes = [Change(i, args.first + i, "down") for i in range(args.count)]
    if changes:
        t0 = time.monotonic()
        api.push([c.report() for c in changes])
        for c in changes:
            c.t0 = t0
        run_changes(sock, api, [(0.0, c) for c in changes], 3 * args.deadline, args.poll_cap,
                    args.pid, pushed=True)
    result = summarize(changes)
    not_visible = [c.endpoint for c in changes if c.latency_s is None]
    last = f"{result['latency']['max']:.0f} ms" if result["latency"] else "-"
    print(f"  prepared: backend 1 of {len(changes)} endpoints down in one push; the last visible "
          f"after {last}; {len(not_visible)} not visible within {3 * args.deadline:.0f} s"
          + (" (their up changes in the burst are pushed but not timed)" + breaker_note(api)
             if not_visible else ""),
          flush=True)
    write_json(args.out, {"not_visible": not_visible, "latency": result["latency"]})


def cmd_burst(args):
    """Change i at i/RATE seconds: even i push backend 1 of a fresh endpoint down, odd i
    push backend 1 of a prepared (down) endpoint up; every change on its own endpoint."""
    sock, api = common_engine_args(args)
    not_visible = set(load(args.prepared)["not_visible"]) if args.prepared else set()
    total = int(round(args.rate * args.secs))
    schedule = []
    downs = ups = 0
    for i in range(total):
        if i % 2 == 0:
            change = Change(i, args.fresh_first + downs, "down")
            downs += 1
        else:
            change = Change(i, args.up_first + ups, "up")
            ups += 1
            if change.endpoint in not_visible:
                change.untimed = "its prepared down never became visible"
        schedule.append((i / args.rate, change))
    cpu0 = cpu_seconds(args.pid)
    t0 = time.monotonic()
    sent, received = run_changes(sock, api, schedule, args.deadline, args.poll_cap, args.pid)
    wall = time.monotonic() - t0
    changes = [c for _, c in schedule]
    result = summarize(changes)
    result.update({
        "rate": args.rate, "secs": args.secs, "wall_s": wall,
        "poll_queries": sent, "poll_replies": received,
        "poll_qps": sent / wall if wall > 0 else 0.0,
        "cpu_s": cpu_seconds(args.pid) - cpu0,
        "down": summarize([c for c in changes if c.kind == "down"])["latency"],
        "up": summarize([c for c in changes if c.kind == "up"])["latency"],
        "memory_kib": memory_kib(args.pid),
    })
    for failure in result["failures"]:
        print(f"  burst change {failure['index']} ({failure['kind']} {failure['endpoint']}): "
              f"FAILED: {failure['error']}", flush=True)
    if result["failures"]:
        note = breaker_note(api)
        if note:
            print(f"  after the burst{note}", flush=True)
    write_json(args.out, result)


def fmt_ms(s, key):
    if not s:
        return "-"
    value = s[key]
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cmd_report(args):
    d = args.dir
    ks, ds = load(f"{d}/knot-start.json"), load(f"{d}/dnsward-start.json")
    rounds, burst, qps = load(f"{d}/rounds.json"), load(f"{d}/burst.json"), load(f"{d}/qps.json")
    status = load(f"{d}/status.json")
    print()
    print(f"== {args.names:,} names ({args.records:,} records in the file), "
          f"{args.endpoints:,} endpoints x 2 backends (check = \"none\") ==")
    if ds:
        soa = f"{ds['soa_s']:.3f} s" if ds.get("soa_s") is not None else "-"
        print(f"start-up to first answer   dnsward {ds['endpoint_s']:8.3f} s (ep0 with both backends; "
              f"SOA first at {soa})")
    settle = load(f"{d}/settle.json")
    if settle and settle.get("settled_s") is not None:
        m = settle["memory_kib"]
        print(f"  quiet (first whole encoding done) {settle['settled_s']:.2f} s after start; "
              f"VmRSS {m.get('VmRSS', 0) / 1024:.0f} MiB, peak VmHWM {m.get('VmHWM', 0) / 1024:.0f} MiB")
    if ks:
        print(f"                           knot    {ks['soa_s']:8.3f} s (SOA, zone loaded)")
    if ds and ks:
        print(f"                           ratio dnsward/knot {ds['endpoint_s'] / ks['soa_s']:.1f}")
    if rounds:
        print(f"rounds: {rounds['rounds']} x (down, up), one change at a time; "
              f"latency from just before the push to the answer on the wire")
        print(f"  {'':14s} {'p50 ms':>9s} {'p99 ms':>9s} {'max ms':>9s} {'failed':>7s}")
        for kind in ("down", "up"):
            s = rounds[kind]
            untimed = f"   ({len(s['untimed'])} not timed)" if s.get("untimed") else ""
            print(f"  {kind:14s} {fmt_ms(s['latency'], 'p50'):>9s} {fmt_ms(s['latency'], 'p99'):>9s} "
                  f"{fmt_ms(s['latency'], 'max'):>9s} {len(s['failures']):7d}{untimed}")
        print(f"  {'HTTP push':14s} {fmt_ms(rounds['push'], 'p50'):>9s} {fmt_ms(rounds['push'], 'p99'):>9s} "
              f"{fmt_ms(rounds['push'], 'max'):>9s}")
        m = rounds["memory_kib"]
        print(f"  node CPU per change {rounds['cpu_per_change_s']:.3f} s "
              f"({rounds['cpu_s']:.2f} s over {rounds['changes']} changes in {rounds['wall_s']:.1f} s; "
              f"idle {rounds['idle_cpu_per_s']:.3f} CPU s/s, net of idle {rounds['net_cpu_per_change_s']:.3f} s)")
        if rounds["idle_cpu_per_s"] >= 0.8:
            print("  (the node used most of a core while nothing changed, so the net figure means little)")
        print(f"  node memory after the rounds: VmRSS {m.get('VmRSS', 0) / 1024:.0f} MiB, "
              f"peak VmHWM {m.get('VmHWM', 0) / 1024:.0f} MiB")
    if burst:
        print(f"burst: {burst['rate']:g} changes/s for {burst['secs']:g} s ({burst['count']} changes, "
              f"down and up alternating, each on its own endpoint), dnsperf running")
        print(f"  {'':14s} {'p50 ms':>9s} {'p99 ms':>9s} {'max ms':>9s} {'failed':>7s}")
        untimed = f"   ({len(burst['untimed'])} not timed)" if burst.get("untimed") else ""
        print(f"  {'every change':14s} {fmt_ms(burst['latency'], 'p50'):>9s} {fmt_ms(burst['latency'], 'p99'):>9s} "
              f"{fmt_ms(burst['latency'], 'max'):>9s} {len(burst['failures']):7d}{untimed}")
        for kind in ("down", "up"):
            print(f"  {kind:14s} {fmt_ms(burst[kind], 'p50'):>9s} {fmt_ms(burst[kind], 'p99'):>9s} "
                  f"{fmt_ms(burst[kind], 'max'):>9s}")
        m = burst["memory_kib"]
        print(f"  poll queries {burst['poll_qps']:.0f}/s on average; node memory after: VmRSS "
              f"{m.get('VmRSS', 0) / 1024:.0f} MiB, peak VmHWM {m.get('VmHWM', 0) / 1024:.0f} MiB")
    if qps:
        drop = (1 - qps["with"] / qps["alone"]) * 100 if qps.get("alone") else float("nan")
        print(f"  dnsperf qps  alone {qps['alone']:,.0f} ({qps['alone_secs']} s)   with changes "
              f"{qps['with']:,.0f} ({qps['with_secs']} s)   drop {drop:.1f} %"
              f"   (lost {qps['alone_lost']} / {qps['with_lost']})")
    if status:
        for zone in status["zones"]:
            breaker = zone["breaker"] + (f" ({zone['breaker_reason']})" if zone.get("breaker_reason") else "")
            print(f"node at the end: {zone['zone']} active generation {zone['active']}, serial "
                  f"{zone['serial']}, breaker {breaker}")
        if any(zone["breaker"] != "closed" for zone in status["zones"]):
            print("  WARNING: the breaker tripped during the run: automation stopped, later changes never "
                  "reached the wire, and a rollback may have made an 'up' look done")
        actions = ", ".join(f"{k} {v}" for k, v in sorted(status["actions"].items()))
        print(f"  audit log: {actions}")
        for line in status["notable"]:
            print(f"  audit: {line}")


def cmd_summary(args):
    print()
    print("== summary ==")
    header = (f"{'names':>9s} {'start s':>8s} {'knot s':>7s} {'down p50/p99/max ms':>22s} "
              f"{'up p50/p99/max ms':>22s} {'CPU s/chg':>9s} {'RSS/HWM MiB':>12s} "
              f"{'burst p50/p99/max ms':>22s} {'fail':>4s} {'qps drop':>8s}  breaker at the end")
    print(header)
    for entry in args.entries:
        names, d = entry.split("=", 1)
        ks, ds = load(f"{d}/knot-start.json"), load(f"{d}/dnsward-start.json")
        rounds, burst, qps = load(f"{d}/rounds.json"), load(f"{d}/burst.json"), load(f"{d}/qps.json")

        def triple(s):
            if not s:
                return "-"
            return f"{fmt_ms(s, 'p50')}/{fmt_ms(s, 'p99')}/{fmt_ms(s, 'max')}"

        start = f"{ds['endpoint_s']:.2f}" if ds else "-"
        knot = f"{ks['soa_s']:.2f}" if ks else "-"
        down = triple(rounds["down"]["latency"]) if rounds else "-"
        up = triple(rounds["up"]["latency"]) if rounds else "-"
        cpu = f"{rounds['cpu_per_change_s']:.3f}" if rounds else "-"
        mem = (f"{rounds['memory_kib'].get('VmRSS', 0) / 1024:.0f}/"
               f"{rounds['memory_kib'].get('VmHWM', 0) / 1024:.0f}") if rounds else "-"
        b = triple(burst["latency"]) if burst else "-"
        fails = str(len(burst["failures"]) + len(rounds["down"]["failures"]) + len(rounds["up"]["failures"])) \
            if burst and rounds else "-"
        drop = f"{(1 - qps['with'] / qps['alone']) * 100:.1f} %" if qps and qps.get("alone") else "-"
        status = load(f"{d}/status.json")
        breaker = ",".join(z["breaker"] for z in status["zones"]) if status else "-"
        print(f"{int(names):>9,d} {start:>8s} {knot:>7s} {down:>22s} {up:>22s} {cpu:>9s} {mem:>12s} "
              f"{b:>22s} {fails:>4s} {drop:>8s}  {breaker}")


def cmd_status(args):
    """The node's zone status and its audit log by action, for the report: a tripped
    breaker (e.g. a validator rollback) explains changes that never reach the wire."""
    api = Api(args.api, args.token)
    out = {"zones": api.get("/v1/status")["zones"], "actions": {}, "notable": []}
    entries = api.get("/v1/audit?limit=100000")["entries"]
    for entry in entries:
        action = entry.get("action", "?")
        out["actions"][action] = out["actions"].get(action, 0) + 1
        if action not in ("ref-move", "pin", "unpin", "cleanup", "validated-good"):
            out["notable"].append(f"{action}: {str(entry.get('reason', ''))[:200]}")
    out["notable"] = out["notable"][:10]
    write_json(args.out, out)


def cmd_memory(args):
    write_json(args.out, memory_kib(args.pid))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("ports")
    s.add_argument("count", type=int)
    s.set_defaults(func=cmd_ports)

    s = sub.add_parser("config")
    for key in ("--out", "--zone-file", "--store"):
        s.add_argument(key, required=True)
    s.add_argument("--dns-port", type=int, required=True)
    s.add_argument("--api-port", type=int, required=True)
    s.add_argument("--endpoints", type=int, default=1000)
    s.add_argument("--validator", choices=("true", "false"), default="true")
    s.add_argument("--token", default=os.environ.get("CONTROL_PLANE_TOKEN", ""))
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("wait-start")
    s.add_argument("--dns", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--start-ns", type=int, required=True)
    s.add_argument("--deadline", type=float, default=900)
    s.add_argument("--soa", action="store_true")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_wait_start)

    def engine(s):
        s.add_argument("--dns", required=True)
        s.add_argument("--api", required=True)
        s.add_argument("--token", default=os.environ.get("CONTROL_PLANE_TOKEN", ""))
        s.add_argument("--pid", type=int, required=True)
        s.add_argument("--deadline", type=float, default=60)
        s.add_argument("--poll-cap", type=float, default=1000,
                       help="most answer-checking queries per second, all changes together")

    s = sub.add_parser("settle")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--start-ns", type=int, required=True)
    s.add_argument("--max-rate", type=float, default=0.2)
    s.add_argument("--window", type=float, default=1.0)
    s.add_argument("--deadline", type=float, default=300)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_settle)

    s = sub.add_parser("rounds")
    engine(s)
    s.add_argument("--first", type=int, default=0)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--idle-secs", type=float, default=3)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_rounds)

    s = sub.add_parser("burst-prepare")
    engine(s)
    s.add_argument("--first", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_burst_prepare)

    s = sub.add_parser("burst")
    engine(s)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--secs", type=float, required=True)
    s.add_argument("--fresh-first", type=int, required=True)
    s.add_argument("--up-first", type=int, required=True)
    s.add_argument("--prepared", help="burst-prepare's output")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_burst)

    s = sub.add_parser("status")
    s.add_argument("--api", required=True)
    s.add_argument("--token", default=os.environ.get("CONTROL_PLANE_TOKEN", ""))
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("memory")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_memory)

    s = sub.add_parser("report")
    s.add_argument("--dir", required=True)
    s.add_argument("--names", type=int, required=True)
    s.add_argument("--records", type=int, required=True)
    s.add_argument("--endpoints", type=int, required=True)
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("summary")
    s.add_argument("entries", nargs="*", help="NAMES=DIR")
    s.set_defaults(func=cmd_summary)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
