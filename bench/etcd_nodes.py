#!/usr/bin/env python3
"""bench/etcd-nodes: three `dnsward run` nodes on a three-member etcd cluster against one
node on SQLite, in the same run, on the same zone.

Usage: bench/etcd_nodes.py BIN WORKDIR NAMES ROUNDS STREAM

For each set-up (first "sqlite": one node; then "etcd": three nodes named node-a/b/c
sharing the store, etcd members on loopback), in WORKDIR/<setup>:
  1. the zone of bench/genzone.py with NAMES names and ROUNDS + STREAM [[endpoint]]s,
     each with two backends, check = "none" (health only from POST /v1/health);
  2. start every node, wait until each answers ep0 with both backends, then until each is
     quiet (its first whole encoding done);
  3. ROUNDS rounds on endpoint i: push backend 1 down to every node (the same report to
     each: every node's health view is the same), time until EVERY node's answer lacks
     it; then up, until every node shows it again: p50/p99/max per direction;
  4. a stream: STREAM changes pushed one after another to every node without waiting,
     time until every node shows the last; commits per second = ref moves the audit log
     gained / that time.
Prints a table with both set-ups and the etcd/sqlite ratios. Standard library only; every
packet and connection goes to a loopback address; every wait is bounded.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control_plane as cp  # noqa: E402  (helpers: queries, API pushes, stats)

DEADLINE_S = 120.0
START_DEADLINE_S = 900.0
TOKEN = "bench-etcd-nodes-token-0123456789abcdef"
started = []


def free_ports(count):
    ports = set()
    base = 40000 - 8000
    for port in range(10000 + os.getpid() % 5000, base):
        if len(ports) == count:
            break
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
            ports.add(port)
    return sorted(ports)


def spawn(args, log, cwd=None):
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                               cwd=cwd, start_new_session=True)
    started.append(process)
    return process


def stop_all():
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    started.clear()


def start_etcd(work, ports):
    members = [(f"m{i}", ports[2 * i], ports[2 * i + 1]) for i in range(3)]
    cluster = ",".join(f"{name}=http://127.0.0.1:{peer}" for name, _, peer in members)
    for name, client, peer in members:
        spawn(["etcd", "--name", name, "--data-dir", f"{work}/{name}.etcd",
               "--listen-client-urls", f"http://127.0.0.1:{client}",
               "--advertise-client-urls", f"http://127.0.0.1:{client}",
               "--listen-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-cluster", cluster, "--initial-cluster-state", "new",
               "--quota-backend-bytes", str(8 << 30),
               "--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"],
              f"{work}/{name}.log")
    endpoints = [f"127.0.0.1:{client}" for _, client, _ in members]
    end = time.monotonic() + 60
    while time.monotonic() < end:
        ok = subprocess.run(["etcdctl", "--endpoints", ",".join(endpoints), "endpoint", "health"],
                            capture_output=True).returncode == 0
        if ok:
            return endpoints
        time.sleep(0.2)
    raise SystemExit("etcd did not start")


def write_config(path, zone_file, dns, api, store_lines, endpoints):
    lines = ["[server]", f'listen = "127.0.0.1:{dns}"', "[server.rrl]", "responses_per_second = 0",
             "[api]", f'listen = "127.0.0.1:{api}"', f'token = "{TOKEN}"'] + store_lines
    lines += ["[guard]", "max_removals_per_window = 1000000",
              "[[zone]]", 'name = "bench.test"', f'file = "{zone_file}"']
    for i in range(endpoints):
        lines += ["[[endpoint]]", f'name = "{cp.endpoint_name(i)}"', "min_answers = 1",
                  f'backends = [{{ address = "{cp.backend(i, 0)}", check = "none" }}, '
                  f'{{ address = "{cp.backend(i, 1)}", check = "none" }}]']
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Node:
    def __init__(self, name, directory, dns, api, process):
        self.name, self.dir, self.dns, self.api_port, self.process = name, directory, dns, api, process
        self.api = cp.Api(f"127.0.0.1:{api}", TOKEN)
        self.sock = cp.make_socket(("127.0.0.1", dns))


def shows_everywhere(nodes, name, address, present):
    for node in nodes:
        addresses = cp.current_addresses(node.sock, name, timeout_s=1.0)
        if addresses is None or (address in addresses) != present:
            return False
    return True


def wait_everywhere(nodes, name, address, present, deadline_s=DEADLINE_S):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if shows_everywhere(nodes, name, address, present):
            return time.monotonic() - start
        for node in nodes:
            if node.process.poll() is not None:
                raise SystemExit(f"{node.name} exited; see {node.dir}/node.log")
        time.sleep(0.002)
    return None


def settle(nodes):
    for node in nodes:
        end = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < end:
            cpu0, t0 = cp.cpu_seconds(node.process.pid), time.monotonic()
            time.sleep(1.0)
            if (cp.cpu_seconds(node.process.pid) - cpu0) / (time.monotonic() - t0) < 0.05:
                break


def ref_moves(node):
    total, after = 0, 0
    for _ in range(10_000):
        page = node.api.get(f"/v1/audit?zone=bench.test.&limit=1000&after={after}")
        entries = page.get("entries", [])
        if not entries:
            break
        total += sum(1 for e in entries if e["action"] == "ref-move")
        after = entries[-1]["sequence"]
        if len(entries) < 1000:
            break
    return total


def push_all(nodes, endpoint, healthy):
    report = [{"address": cp.backend(endpoint, 0), "healthy": healthy}]
    for node in nodes:
        node.api.push(report)


def measure(setup, bin_path, work, zone_file, names, rounds, stream):
    d = f"{work}/{setup}"
    os.makedirs(d, exist_ok=True)
    endpoints = rounds + stream
    node_names = ["node-a"] if setup == "sqlite" else ["node-a", "node-b", "node-c"]
    ports = free_ports(2 * len(node_names) + 6)
    if setup == "etcd":
        etcd = start_etcd(d, ports[-6:])
        store = ["[store]", "etcd = { endpoints = [%s], timeout_ms = 5000 }" % ", ".join(f'"{e}"' for e in etcd)]
    nodes = []
    t0 = time.monotonic()
    for i, name in enumerate(node_names):
        nd = f"{d}/{name}"
        os.makedirs(nd, exist_ok=True)
        dns, api = ports[2 * i], ports[2 * i + 1]
        lines = (store if setup == "etcd" else ["[store]", 'path = "node.db"']) + ["[node]", f'name = "{name}"']
        write_config(f"{nd}/dnsward.toml", zone_file, dns, api, lines, endpoints)
        process = spawn([bin_path, "run", "--config", "dnsward.toml"], f"{nd}/node.log", cwd=nd)
        nodes.append(Node(name, nd, dns, api, process))
    if wait_everywhere(nodes, cp.endpoint_name(0), cp.backend(0, 0), True, START_DEADLINE_S) is None:
        raise SystemExit(f"{setup}: the nodes did not answer within {START_DEADLINE_S} s")
    start_s = time.monotonic() - t0
    settle(nodes)
    down, up, failures = [], [], 0
    for i in range(rounds):
        name, address = cp.endpoint_name(i), cp.backend(i, 0)
        push_all(nodes, i, False)
        took = wait_everywhere(nodes, name, address, False)
        (down.append(took) if took is not None else None)
        failures += took is None
        push_all(nodes, i, True)
        took = wait_everywhere(nodes, name, address, True)
        (up.append(took) if took is not None else None)
        failures += took is None
    before = ref_moves(nodes[0])
    t = time.monotonic()
    for i in range(rounds, rounds + stream):
        push_all(nodes, i, False)
    last = rounds + stream - 1
    took = wait_everywhere(nodes, cp.endpoint_name(last), cp.backend(last, 0), False)
    elapsed = time.monotonic() - t
    all_gone = all(wait_everywhere(nodes, cp.endpoint_name(i), cp.backend(i, 0), False, 10) is not None
                   for i in range(rounds, rounds + stream))
    commits = ref_moves(nodes[0]) - before
    memory = [cp.memory_kib(node.process.pid) for node in nodes]
    stop_all()
    return {"setup": setup, "nodes": len(nodes), "start_s": start_s, "down": cp.stats_ms(down),
            "up": cp.stats_ms(up), "failures": failures, "stream_s": elapsed if took is not None else None,
            "stream_complete": all_gone, "commits": commits,
            "commits_per_s": commits / elapsed if elapsed > 0 else None, "memory_kib": memory}


def fmt(stats, key):
    return f"{stats[key]:.0f}" if stats else "-"


def main():
    bin_path, work, names, rounds, stream = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    records = names * 7 // 5
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "genzone.py"), work, str(records)],
                   check=True, stdout=subprocess.DEVNULL)
    zone_file = f"{work}/bench-{records}.zone"
    os.remove(f"{work}/queries-{records}.txt")
    results = []
    try:
        for setup in ("sqlite", "etcd"):
            print(f"## {names} names: {setup}", flush=True)
            results.append(measure(setup, bin_path, work, zone_file, names, rounds, stream))
            print(json.dumps(results[-1]), flush=True)
    finally:
        stop_all()
    print()
    print(f"# {names} names, {rounds} rounds, a stream of {stream} changes; latency is push → every node answers the change")
    print(f"{'setup':<16} {'start s':>8} {'down p50':>9} {'p99':>6} {'max':>6} {'up p50':>8} {'p99':>6} {'fail':>5} {'commits/s':>10} {'MiB/node':>9}")
    for r in results:
        rss = [m.get("VmRSS", 0) for m in r["memory_kib"]]
        mib = sum(rss) / len(rss) / 1024 if rss else 0
        cps = f"{r['commits_per_s']:.1f}" if r["commits_per_s"] else "-"
        print(f"{str(r['nodes']) + ' on ' + r['setup']:<16} {r['start_s']:>8.1f} {fmt(r['down'], 'p50'):>9} {fmt(r['down'], 'p99'):>6} "
              f"{fmt(r['down'], 'max'):>6} {fmt(r['up'], 'p50'):>8} {fmt(r['up'], 'p99'):>6} {r['failures']:>5} {cps:>10} {mib:>9.0f}")
    if len(results) == 2 and results[0]["down"] and results[1]["down"]:
        s, e = results
        print(f"ratio etcd/sqlite: down p50 {e['down']['p50'] / s['down']['p50']:.2f}, p99 {e['down']['p99'] / s['down']['p99']:.2f}; "
              f"commits/s {(e['commits_per_s'] or 0) / (s['commits_per_s'] or 1):.2f}")


if __name__ == "__main__":
    main()
