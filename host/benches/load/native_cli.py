#!/usr/bin/env python3
"""The Python twin of the bench fixture's tools, spawned once per call by the load benchmark.

Usage: python3 native_cli.py echo|summarize  (arguments as JSON on stdin, result as JSON on
stdout). `summarize` repeats plugins-src/fixtures/bench/src/summary.rs step for step: sums run
in input order with plain `+=` (not sum(), which compensates rounding since Python 3.12), so
every twin gets the same floats and the benchmark can check all results alike.
"""

import json
import sys


def summarize(args):
    records = args["records"]
    total = 0.0
    teams = {}
    for r in records:
        cpu = float(r["cpu_ms"])
        total += cpu
        team = teams.get(r["team"])
        if team is None:
            team = teams[r["team"]] = {
                "team": r["team"],
                "count": 0,
                "total_cpu_ms": 0.0,
                "mean_cpu_ms": 0.0,
                "statuses": {"ok": 0, "degraded": 0, "down": 0},
                "busiest": "",
            }
        team["count"] += 1
        team["total_cpu_ms"] += cpu
        team["statuses"][r["status"]] += 1
    ranked_records = sorted(records, key=lambda r: (-float(r["cpu_ms"]), r["name"]))
    for team in teams.values():
        team["mean_cpu_ms"] = team["total_cpu_ms"] / team["count"]
    ranked = []
    for rank, r in enumerate(ranked_records, start=1):
        cpu = float(r["cpu_ms"])
        team = teams[r["team"]]
        if not team["busiest"]:
            team["busiest"] = r["name"]
        ranked.append(
            {
                "rank": rank,
                "name": r["name"],
                "team": r["team"],
                "cpu_ms": cpu,
                "share_pct": cpu * 100.0 / total if total > 0.0 else 0.0,
                "status": r["status"],
                "tags": r["tags"],
            }
        )
    return {
        "total_cpu_ms": total,
        "records": ranked,
        "teams": [teams[name] for name in sorted(teams)],
    }


def main():
    tool = sys.argv[1] if len(sys.argv) > 1 else ""
    args = json.load(sys.stdin)
    if tool == "echo":
        result = args["text"]
    elif tool == "summarize":
        result = summarize(args)
    else:
        sys.exit(f"unknown tool {tool!r}")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
