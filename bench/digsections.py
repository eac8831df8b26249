#!/usr/bin/env python3
"""Reads `dig -f ... +noall +comments +answer +authority +additional` output on stdin and
prints one line per reply: status, flags, then every record (lower-cased, sorted), so two
servers' replies compare with `cmp`."""
import sys

replies, current = [], None
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith(";; ->>HEADER<<-"):
        current = [line.split("status: ")[1].split(",")[0]]
        replies.append(current)
    elif current is None:
        continue
    elif line.startswith(";; flags:"):
        current.append(line[3:])
    elif line and not line.startswith(";"):
        current.append(" ".join(line.lower().split()))
for reply in replies:
    print(" | ".join(reply[:2] + sorted(reply[2:])))
