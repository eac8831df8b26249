#!/usr/bin/env python3
"""bench/torture's driver: kill -9 a running dnsward node at random moments while its
backends flap, and count what a crash must never do.

  kills DNSWARD N       N times: start `dnsward run` (a fresh port pair, the same store),
                        flap the three backends through POST /v1/health, read the API's
                        status (the acknowledged active generation and serial) and the
                        served SOA serial with dig, then SIGKILL the node at a random moment.
                        After every restart, checks:
                          * lost: the store's active generation or serial is below one the
                            API acknowledged before a kill;
                          * uncommitted: a served serial above every serial the store has
                            committed (read from the file after the kill);
                          * empty: app.example.test answered with no address;
                        and every 100 kills, `dnsward store check`. Prints the counts.
  soak DNSWARD SECONDS  one node under dnsperf at 80 % of its measured maximum qps while the
                        backends flap every 100 ms; prints RSS every minute.

Only loopback addresses are used; every loop is bounded.
"""

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

APP = "app.example.test"
BACKENDS = ["127.0.9.61", "127.0.9.62", "127.0.9.63"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZONE = os.path.join(ROOT, "examples", "zones", "example.test.zone")
START_DEADLINE = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory, dns_port, api_port):
    backends = ", ".join(f'{{ address = "{b}" }}' for b in BACKENDS)
    with open(os.path.join(directory, "dnsward.toml"), "w") as f:
        f.write(
            f'[server]\nlisten = "127.0.0.1:{dns_port}"\n'
            # The prober asks from one address far faster than a client would.
            "[server.rrl]\nresponses_per_second = 0\n"
            f'[api]\nlisten = "127.0.0.1:{api_port}"\n'
            '[store]\npath = "node.db"\n'
            '[[zone]]\nname = "example.test"\nfile = "example.test.zone"\n'
            f'[[endpoint]]\nname = "{APP}"\nmin_answers = 1\nbackends = [ {backends} ]\n'
        )


def dig(port, name, rtype, timeout=1):
    """The answer's records (rdata), or None when no reply came; a reply whose status is
    not NOERROR is [] with the status kept in dig.last."""
    out = subprocess.run(
        ["dig", "+noall", "+comments", "+answer", f"+time={timeout}", "+tries=1", "@127.0.0.1", "-p", str(port), name, rtype],
        capture_output=True,
        text=True,
    ).stdout
    dig.last = out
    # dig's own query coming back (its random source port was the server's port, which
    # the server's SO_REUSEPORT group lets another socket of the same user share): not an
    # answer of the server.
    if "status:" not in out or "query response not set" in out:
        return None
    if "status: NOERROR" not in out:
        return []
    return [
        " ".join(line.split()[4:])
        for line in out.splitlines()
        if line.strip() and not line.startswith(";")
    ]


def served_serial(port):
    answer = dig(port, "example.test", "SOA")
    if not answer:
        return None
    try:
        return int(answer[0].split()[2])
    except (IndexError, ValueError):
        return None


def api(port, path, token=None, body=None, timeout=2):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def store_committed(directory):
    """The store's active generation, its serial, and the highest serial ever committed."""
    db = sqlite3.connect(f"file:{os.path.join(directory, 'node.db')}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT z.active, v.serial, z.last_serial FROM zones z "
            "LEFT JOIN versions v ON v.zone = z.name AND v.generation = z.active"
        ).fetchone()
        return row if row else (None, None, None)
    finally:
        db.close()


def start(binary, directory, log):
    return subprocess.Popen(
        [binary, "run", "--config", "dnsward.toml"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )


def wait_ready(node, dns_port, api_port):
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if node.poll() is not None:
            return False
        if served_serial(dns_port) is not None:
            try:
                api(api_port, "/v1/status")
                return True
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.02)
    return False


def kills(binary, count):
    directory = tempfile.mkdtemp(prefix="dnsward-torture-")
    os.symlink(ZONE, os.path.join(directory, "example.test.zone"))
    log = open(os.path.join(directory, "node.log"), "ab")
    rng = random.Random(int(os.environ.get("TORTURE_SEED", "16")))
    acknowledged = (0, 0)  # highest (generation, serial) the API reported active
    lost = uncommitted = empty = failed_starts = checks = 0
    pushes = statuses = 0
    started = time.monotonic()
    for kill in range(1, count + 1):
        dns_port, api_port = free_port(), free_port()
        write_config(directory, dns_port, api_port)
        node = start(binary, directory, log)
        if not wait_ready(node, dns_port, api_port):
            failed_starts += 1
            print(f"kill {kill}: the node did not start within {START_DEADLINE}s (see {directory}/node.log)", flush=True)
            node.kill()
            node.wait()
            continue
        active, serial, _ = store_committed(directory)
        if active is not None and (active, serial) < acknowledged:
            lost += 1
            print(f"kill {kill}: LOST: the store's active is {active} (serial {serial}), {acknowledged} was acknowledged", flush=True)
        token = open(os.path.join(directory, "dnsward.token")).read().strip()
        served = []
        # Flap and observe for a random while, then kill.
        deadline = time.monotonic() + rng.uniform(0.0, 0.6)
        while True:
            backend = rng.choice(BACKENDS)
            try:
                api(api_port, "/v1/health", token, {"reports": [{"address": backend, "healthy": rng.random() < 0.5}]})
                pushes += 1
                status = api(api_port, "/v1/status")
                zone = status["zones"][0]
                if zone.get("active") is not None:
                    statuses += 1
                    acknowledged = max(acknowledged, (zone["active"], zone["serial"]))
            except (urllib.error.URLError, OSError, KeyError, IndexError):
                pass
            serial_now = served_serial(dns_port)
            if serial_now is not None:
                served.append(serial_now)
            answer = dig(dns_port, APP, "A")
            if answer == []:
                empty += 1
                print(f"kill {kill}: EMPTY answer for {APP}:\n{dig.last}", flush=True)
            if time.monotonic() >= deadline:
                break
            time.sleep(rng.uniform(0.0, 0.05))
        node.send_signal(signal.SIGKILL)
        node.wait()
        _, _, last_serial = store_committed(directory)
        for serial_seen in served:
            if last_serial is None or serial_seen > last_serial:
                uncommitted += 1
                print(f"kill {kill}: UNCOMMITTED: served serial {serial_seen}, the store's last is {last_serial}", flush=True)
        if kill % 100 == 0 or kill == count:
            checks += 1
            check = subprocess.run([binary, "store", "check", "--store", os.path.join(directory, "node.db")], capture_output=True, text=True)
            if check.returncode != 0:
                print(f"kill {kill}: STORE CHECK FAILED: {check.stderr.strip()}", flush=True)
                lost += 1
            print(
                f"# {kill} kills, {time.monotonic() - started:.0f}s: lost {lost}, uncommitted {uncommitted}, "
                f"empty {empty}, failed starts {failed_starts}; acknowledged generation {acknowledged[0]}",
                flush=True,
            )
    print(f"kills {count}")
    print(f"health pushes {pushes}, status reads {statuses}, store checks {checks}")
    print(f"highest acknowledged generation {acknowledged[0]} (serial {acknowledged[1]})")
    print(f"lost acknowledged versions {lost}")
    print(f"served uncommitted states {uncommitted}")
    print(f"empty answers {empty}")
    print(f"failed starts {failed_starts}")
    print(f"seconds {time.monotonic() - started:.0f}")
    return 0 if lost == uncommitted == empty == failed_starts == 0 else 1


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def soak(binary, seconds):
    directory = tempfile.mkdtemp(prefix="dnsward-soak-")
    os.symlink(ZONE, os.path.join(directory, "example.test.zone"))
    dns_port, api_port = free_port(), free_port()
    write_config(directory, dns_port, api_port)
    log = open(os.path.join(directory, "node.log"), "ab")
    node = start(binary, directory, log)
    if not wait_ready(node, dns_port, api_port):
        print("the node did not start", file=sys.stderr)
        return 1
    token = open(os.path.join(directory, "dnsward.token")).read().strip()
    queries = os.path.join(directory, "queries.txt")
    with open(queries, "w") as f:
        for name in ["www.example.test A", f"{APP} A", "example.test SOA", "nothing.example.test A", "example.test NS"]:
            f.write(name + "\n")
    def dnsperf(extra):
        out = subprocess.run(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(dns_port), "-d", queries, "-c", "8", "-q", "128"] + extra,
            capture_output=True, text=True,
        ).stdout
        for line in out.splitlines():
            if "Queries per second" in line:
                return float(line.split()[-1])
        return 0.0
    maximum = dnsperf(["-l", "10"])
    target = int(maximum * 0.8)
    print(f"# max {maximum:.0f} qps; soaking at {target} qps for {seconds}s with a health change every 100 ms")
    load = subprocess.Popen(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(dns_port), "-d", queries, "-c", "8", "-q", "128", "-Q", str(target), "-l", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    rng = random.Random(7)
    started = time.monotonic()
    next_sample = started
    changes = 0
    print("seconds rss_mib changes")
    while load.poll() is None and time.monotonic() - started < seconds + 30:
        try:
            api(api_port, "/v1/health", token, {"reports": [{"address": rng.choice(BACKENDS), "healthy": rng.random() < 0.6}]})
            changes += 1
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() >= next_sample:
            print(f"{time.monotonic() - started:.0f} {rss_kib(node.pid) / 1024:.1f} {changes}", flush=True)
            next_sample += 60
        time.sleep(0.1)
    out, _ = load.communicate()
    print(f"{time.monotonic() - started:.0f} {rss_kib(node.pid) / 1024:.1f} {changes}")
    for line in out.splitlines():
        if "Queries" in line or "Average Latency" in line:
            print("#", line.strip())
    node.send_signal(signal.SIGTERM)
    node.wait()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("kills", "soak"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command, binary, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.exit(kills(binary, number) if command == "kills" else soak(binary, number))
