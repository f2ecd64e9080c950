#!/usr/bin/env python3
"""compare.py NAME STRINGS ORACLE_IDS SALIGN_IDS - compare two id files line by line.

Prints "NAME: N/N identical" or the first mismatches (the string, both id lists, and where they
first differ); exit status 0 only if every line is identical.
"""
import json
import sys

name, fs, fo, fa = sys.argv[1:5]
strings = [json.loads(l) for l in open(fs, encoding="utf-8") if l.strip()]
oracle = [l.strip() for l in open(fo, encoding="utf-8") if l.strip()]
ours = [l.strip() for l in open(fa, encoding="utf-8") if l.strip()]
if not (len(strings) == len(oracle) == len(ours)):
    print(f"{name}: line counts differ: {len(strings)} strings, {len(oracle)} oracle, {len(ours)} salign")
    sys.exit(1)
bad = [i for i in range(len(strings)) if json.loads(oracle[i]) != json.loads(ours[i])]
if not bad:
    print(f"{name}: {len(strings)}/{len(strings)} identical")
    sys.exit(0)
print(f"{name}: {len(strings) - len(bad)}/{len(strings)} identical; first mismatches:")
for i in bad[:3]:
    a, b = json.loads(oracle[i]), json.loads(ours[i])
    k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
    print(f"  string {i}: {json.dumps(strings[i], ensure_ascii=False)[:300]}")
    print(f"    oracle: {a[max(0, k - 3):k + 8]} (differs at id {k} of {len(a)})")
    print(f"    salign: {b[max(0, k - 3):k + 8]} ({len(b)} ids)")
sys.exit(1)
