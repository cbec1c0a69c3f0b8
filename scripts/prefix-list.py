#!/usr/bin/env python3
"""Writes a set file of mixed prefixes for measuring dynamic sets (docs/performance.md).

usage: prefix-list.py COUNT SEED OUT

One prefix a line after a comment line: 3 in 4 IPv4 /16-/32 (never inside 192.0.2.0/24),
1 in 4 IPv6 /32-/64 inside 2000::/3, host bits cleared, random with SEED (two seeds give
nearly disjoint lists: 1,000,000 lines of seed 1 hold 974,241 distinct prefixes, of
which 70,453 are also in seed 2's, most of them /16s).
"""
import ipaddress
import random
import sys

count, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
with open(out, "w") as f:
    f.write(f"# {count} mixed prefixes, seed {seed}\n")
    for index in range(count):
        if index % 4 == 3:
            length = rng.randint(32, 64)
            high = (0x2 << 60) | rng.getrandbits(61)
            high &= ~((1 << (64 - length)) - 1) & ((1 << 64) - 1)
            f.write(f"{ipaddress.IPv6Address(high << 64)}/{length}\n")
        else:
            length = rng.randint(16, 32)
            value = rng.getrandbits(32)
            if value >> 8 == 0xC00002:
                value ^= 0x01000000
            value &= ~((1 << (32 - length)) - 1) & 0xFFFFFFFF
            f.write(f"{ipaddress.IPv4Address(value)}/{length}\n")
