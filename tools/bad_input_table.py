"""Run `bench` on every bad input we know of and write what each gets into docs/bad-input.md.

    .venv/bin/python tools/bad_input_table.py            # runs every case (a few minutes), rewrites the file

Each case sets up a fresh temporary results dir, runs the real command in a subprocess and
records its exit code and stderr; temporary paths are shown as TMP. Nothing here is typed by
hand: the table is what the commands printed. tests/test_reliability.py checks that the file
lists every case below.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bad-input.md"
ENV = {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
SHORT = ["--variants", "largefov", "--seeds", "1", "--max-steps", "2", "--num-val", "8", "--wandb", "disabled"]


def _record(tmp: Path, content: str) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.results_dir import ResultsDir

    path = ResultsDir(tmp / "results").record("ablation-aspp", "largefov", 0)
    path.parent.mkdir(parents=True)
    path.write_text(content)


def _finished_run(tmp: Path, weights: str) -> None:
    """A recorded largefov run whose checkpoint is ``weights`` (another variant's, or garbage)."""
    sys.path.insert(0, str(ROOT))
    from bench.checkpoints import save_checkpoint
    from bench.models import build_model
    from bench.registry import get_experiment
    from bench.results import SCHEMA_VERSION, write_record
    from bench.results_dir import ResultsDir
    from bench.runner import plan_runs

    results = tmp / "results"
    [cfg] = plan_runs(get_experiment("ablation-aspp"), scale="tiny", data="synthetic", seeds=1,
                      variants=["largefov"], max_steps=2, results_dir=results)
    write_record(results, {"schema": SCHEMA_VERSION, "experiment": cfg.experiment, "variant": cfg.variant,
                           "seed": 0, "status": "ok", "config": cfg.to_dict(),
                           "knobs": cfg.knobs, "metrics": {"miou": 1.0}})
    path = ResultsDir(results).checkpoint(cfg.experiment, cfg.variant, 0)
    if weights == "other-variant":
        knobs = {**cfg.knobs, "head": "aspp-s"}
        save_checkpoint(path, build_model("v2", **knobs), "v2", knobs)
    elif weights == "relabelled":  # says largefov, holds aspp-s's weights
        path.parent.mkdir(parents=True)
        torch.save({"version": "v2", "knobs": cfg.knobs,
                    "state_dict": build_model("v2", **{**cfg.knobs, "head": "aspp-s"}).state_dict()}, path)
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00garbage")


def _resume_checkpoint(tmp: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.registry import get_experiment
    from bench.resume import resume_path
    from bench.runner import plan_runs

    [cfg] = plan_runs(get_experiment("ablation-aspp"), scale="tiny", data="synthetic", seeds=1,
                      variants=["largefov"], max_steps=2, num_val=8, results_dir=tmp / "results")
    path = resume_path(tmp / "results", cfg.to_dict())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated by a full disk")


def _claim(tmp: Path, pid: int) -> None:
    import platform

    sys.path.insert(0, str(ROOT))
    from bench.results_dir import ResultsDir

    path = ResultsDir(tmp / "results").claim("ablation-aspp", "largefov", 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": pid, "host": platform.node(), "started": "2026-01-01T00:00:00+00:00",
                                "proc_start": None}))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# (what is wrong, setup(tmp) or None, bench arguments; "TMP" is replaced by the temporary dir)
CASES: list[tuple[str, Callable[[Path], None] | None, list[str]]] = [
    ("unknown experiment", None, ["run", "no-such-experiment"]),
    ("unknown variant", None, ["run", "ablation-aspp", "--variants", "aspp-xl"]),
    ("unknown data spec", None, ["run", "ablation-aspp", "--data", "imagenet"]),
    ("data spec without a path", None, ["run", "ablation-aspp", "--data", "voc:"]),
    ("VOC folder that does not exist", None, ["run", "ablation-aspp", "--data", "voc:TMP/VOCdevkit"]),
    ("`--seeds 0`", None, ["run", "ablation-aspp", "--seeds", "0"]),
    ("`--seeds abc` (caught by argparse)", None, ["run", "ablation-aspp", "--seeds", "abc"]),
    ("`--scale huge` (caught by argparse)", None, ["run", "ablation-aspp", "--scale", "huge"]),
    ("`--max-steps 0`", None, ["run", "ablation-aspp", "--max-steps", "0"]),
    ("`--val-every 0`", None, ["run", "ablation-aspp", "--val-every", "0"]),
    ("`--lr 0`", None, ["run", "ablation-aspp", "--lr", "0"]),
    ("`--lr nan`", None, ["run", "ablation-aspp", "--lr", "nan"]),
    ("`--eval-output-stride` on a v2 model", None, ["run", "ablation-aspp", "--eval-output-stride", "8"]),
    ("`--backbone-weights` file missing", None, ["run", "ablation-aspp", "--backbone-weights", "vgg16=TMP/vgg16.pth"]),
    ("`--backbone-weights` unknown backbone", None, ["run", "ablation-aspp", "--backbone-weights", "vgg19=TMP/vgg19.pth"]),
    ("`--backbone-weights` a path without its backbone", None,
     ["run", "ablation-aspp", "--backbone-weights", "TMP/vgg16.pth"]),
    ("`--data-seed` with real data", None, ["run", "ablation-aspp", "--data", "voc:TMP", "--data-seed", "1"]),
    ("`--data-seed -1`", None, ["run", "ablation-aspp", "--data-seed", "-1"]),
    ("`--crop-size 16`", None, ["run", "ablation-aspp", "--crop-size", "16"]),
    ("`bench pretrain` unknown backbone", None, ["pretrain", "vgg19", "--scale", "tiny"]),
    ("`bench pretrain --steps 0`", None, ["pretrain", "vgg16", "--scale", "tiny", "--steps", "0"]),
    ("`bench scorecard` results dir missing", None, ["scorecard", "--results-dir", "TMP/no-results"]),
    ("corrupt JSON in results/runs", lambda t: _record(t, "{not json"),
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("foreign JSON in results/runs", lambda t: _record(t, json.dumps({"hello": "world"})),
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("record of another schema version", lambda t: _record(t, json.dumps(
        {"schema": 99, "experiment": "ablation-aspp", "variant": "largefov", "seed": 0, "status": "ok",
         "config": {}, "metrics": {}})),
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("corrupt JSON, `bench table`", lambda t: _record(t, "{not json"),
     ["table", "ablation-aspp", "--results-dir", "TMP/results"]),
    ("`--debug` with a corrupt JSON", lambda t: _record(t, "{not json"),
     ["--debug", "run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("results dir under a file (unwritable)", lambda t: (t / "a-file").write_text(""),
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/a-file/results"]),
    ("`bench table` before any run", None, ["table", "ablation-aspp", "--results-dir", "TMP/results"]),
    ("checkpoint of another variant (`crf-search`)", lambda t: _finished_run(t, "other-variant"),
     ["crf-search", "ablation-aspp", "--variants", "largefov", "--images", "2", "--results-dir", "TMP/results"]),
    ("checkpoint labelled largefov holding aspp-s weights", lambda t: _finished_run(t, "relabelled"),
     ["crf-search", "ablation-aspp", "--variants", "largefov", "--images", "2", "--results-dir", "TMP/results"]),
    ("unreadable checkpoint", lambda t: _finished_run(t, "garbage"),
     ["crf-search", "ablation-aspp", "--variants", "largefov", "--images", "2", "--results-dir", "TMP/results"]),
    ("truncated mid-training (resume) checkpoint", _resume_checkpoint,
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("claim left by a killed process", lambda t: _claim(t, _dead_pid()),
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("run claimed by a live process", lambda t: _claim(t, os.getpid()),
     ["run", "ablation-aspp", *SHORT, "--results-dir", "TMP/results"]),
    ("loss diverges (`--lr 1e30`)", None,
     ["run", "ablation-aspp", *SHORT, "--lr", "1e30", "--results-dir", "TMP/results"]),
]

_NOISE = re.compile(r"(\r|\x1b\[[0-9;]*[A-Za-z])")


def _shown(stderr: str, stdout: str, tmp: str) -> str:
    """The lines a user reads: bench's own stderr lines (not progress bars, not library warnings)."""
    lines = [line.strip() for line in _NOISE.sub("\n", stderr).splitlines()]
    # a message printed after a progress bar without a newline: keep it from where it starts
    lines = [re.sub(r"^.*?((?:bench: |warning: |resuming )(?!.*(?:bench: |warning: |resuming )))", r"\1", l)
             for l in lines]
    ours = [l for l in lines if l.startswith(("bench:", "warning:", "resuming", "Traceback"))
            or re.match(r"^\d+ run\(s\) failed", l)]
    failed = [l for l in lines if l.startswith(("largefov/", "aspp-"))]
    out = [l.strip() for l in stdout.splitlines() if "run(s) done" in l or "claimed by" in l]
    if any(l.startswith("Traceback") for l in lines):
        ours = [f"Traceback (most recent call last): ... ({len(lines)} lines)"] + [l for l in ours if l.startswith("bench:")]
    text = " / ".join(ours + failed + out)
    return text.replace(tmp, "TMP")


def run_case(setup, args: list[str]) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        if setup is not None:
            setup(Path(tmp))
        argv = [a.replace("TMP", tmp) for a in args]
        proc = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True,
                              env=ENV, cwd=tmp, timeout=900)
        return proc.returncode, _shown(proc.stderr, proc.stdout, tmp)


def render(rows: list[tuple[str, str, int, str]]) -> str:
    lines = [
        "# Bad input: what `bench` says",
        "",
        "Generated by `tools/bad_input_table.py`, which runs each command below in a fresh temporary",
        "directory (shown as TMP) and copies what it printed: bench's own stderr lines and, for runs,",
        "the summary line on stdout. Exit codes: 2 bad input (one line, no traceback; `bench --debug`",
        "shows it), 1 a sweep with failed runs (tables still written), 0 done. Nothing recorded is",
        "deleted or overwritten by a failing command.",
        "",
        "Faults while running (a full disk, a checkpoint altered after its record, a SLURM time limit",
        "or preemption) are not commands one can type: README.md's fault table says what each shows,",
        "and tests/test_faults.py provokes each.",
        "",
        "| bad input | command | exit | what it prints |",
        "|---|---|---|---|",
    ]
    for what, command, code, shown in rows:
        cell = shown.replace("|", "\\|") or "(nothing)"
        lines.append(f"| {what} | `{command}` | {code} | {cell} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    rows = []
    for what, setup, args in CASES:
        code, shown = run_case(setup, args)
        command = "bench " + " ".join(args)
        print(f"{code}  {what}: {shown}", flush=True)
        rows.append((what, command, code, shown))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(rows))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
