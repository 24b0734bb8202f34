"""Print, per experiment with records, the provenance facts results/README.md quotes.

    python tools/results_facts.py [RESULTS_DIR]

Runs ok/failed, the commits and machines that produced them, the first start, the last end and
the summed run time (records only; the sweep's own overhead between runs is not in it).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from bench.results import load_records


def facts(results: Path) -> list[str]:
    lines = ["| experiment | runs ok / failed | commit(s) | device | first start | last end | run time |",
             "|---|---|---|---|---|---|---|"]
    by_experiment: dict[str, list[dict]] = {}
    for record in load_records(results):  # the one record reader (bench.results)
        by_experiment.setdefault(record["experiment"], []).append(record)
    for name, records in sorted(by_experiment.items()):
        env = [r.get("env", {}) for r in records]
        starts = [datetime.fromisoformat(e["started"]) for e in env if e.get("started")]
        ends = [datetime.fromisoformat(e["ended"]) for e in env if e.get("ended")]
        seconds = sum((b - a).total_seconds() for a, b in zip(starts, ends))
        ok = sum(r.get("status") == "ok" for r in records)
        commits = sorted({(e.get("git_commit") or "?")[:7] + ("+dirty" if e.get("git_dirty") else "") for e in env})
        devices = sorted({e.get("device", "?") for e in env})
        lines.append(f"| {name} | {ok} / {len(records) - ok} | {', '.join(commits)} | {'; '.join(devices)} | "
                     f"{min(starts):%Y-%m-%d %H:%M} | {max(ends):%H:%M} UTC | {seconds / 60:.1f} min |")
    return lines


if __name__ == "__main__":
    print("\n".join(facts(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))))
