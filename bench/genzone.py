#!/usr/bin/env python3
"""Writes the benchmark zone and query mix.

Usage: bench/genzone.py OUTDIR [RECORDS]   (default 280000 records on 200000 names)

Zone bench.test, per 280k records (scaled linearly for other sizes):
  170k host names with one A; 50k of them a second A, 10k an AAAA, 10k a TXT;
  10k alias names with a CNAME to a host; 10k delegations sub<i> (two NS, one glue A).
Query mix (1M lines, dnsperf format): 80 % A of hosts, 5 % AAAA of hosts that have one,
5 % A of aliases (CNAME followed), 5 % A of names that do not exist (NXDOMAIN),
5 % A of names below a delegation (referral).
"""
import os
import random
import sys

out = sys.argv[1]
records = int(sys.argv[2]) if len(sys.argv) > 2 else 280_000
scale = records / 280_000
hosts = int(170_000 * scale)
double = int(50_000 * scale)
with_aaaa = int(10_000 * scale)
with_txt = int(10_000 * scale)
aliases = int(10_000 * scale)
subs = int(10_000 * scale)
os.makedirs(out, exist_ok=True)
origin = "bench.test."
zone_path = os.path.join(out, f"bench-{records}.zone")
query_path = os.path.join(out, f"queries-{records}.txt")

with open(zone_path, "w") as z:
    z.write(f"$ORIGIN {origin}\n$TTL 3600\n")
    z.write("@ 3600 IN SOA ns1.bench.test. hostmaster.bench.test. 1 3600 600 86400 300\n")
    z.write("@ 3600 IN NS ns1.bench.test.\n@ 3600 IN NS ns2.bench.test.\n")
    z.write("ns1 3600 IN A 192.0.2.1\nns2 3600 IN A 192.0.2.2\n")
    for i in range(hosts):
        z.write(f"host{i} 300 IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
        if i < double:
            z.write(f"host{i} 300 IN A 10.{128 + ((i >> 16) & 127)}.{(i >> 8) & 255}.{i & 255}\n")
        if i % 17 == 0 and i // 17 < with_aaaa:
            z.write(f"host{i} 300 IN AAAA 2001:db8::{(i >> 16):x}:{i & 0xffff:x}\n")
        if i % 13 == 1 and i // 13 < with_txt:
            z.write(f'host{i} 300 IN TXT "v=bench {i}"\n')
    for i in range(aliases):
        z.write(f"alias{i} 300 IN CNAME host{(i * 7919) % hosts}\n")
    for i in range(subs):
        z.write(f"sub{i} 3600 IN NS ns.sub{i}\nsub{i} 3600 IN NS ns.provider.example.\n")
        z.write(f"ns.sub{i} 3600 IN A 198.51.{(i >> 8) & 255}.{i & 255}\n")

aaaa_hosts = [i for i in range(hosts) if i % 17 == 0 and i // 17 < with_aaaa]
rng = random.Random(8)
with open(query_path, "w") as q:
    for _ in range(1_000_000):
        r = rng.random()
        if r < 0.80:
            q.write(f"host{rng.randrange(hosts)}.{origin} A\n")
        elif r < 0.85:
            q.write(f"host{rng.choice(aaaa_hosts)}.{origin} AAAA\n")
        elif r < 0.90:
            q.write(f"alias{rng.randrange(aliases)}.{origin} A\n")
        elif r < 0.95:
            q.write(f"nx{rng.randrange(1_000_000)}.{origin} A\n")
        else:
            q.write(f"www.sub{rng.randrange(subs)}.{origin} A\n")
print(zone_path, query_path)
