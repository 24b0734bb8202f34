"""Local reliability of `bench run`: killed sweeps resume, concurrent sweeps share the work, runs
are deterministic, a diverging run is recorded as failed, and bad input is one clear line.

The subprocess tests run the real command on tiny settings (a few steps, 8 validation images);
on a busy 2-core machine each takes 10-60 s, mostly process start-up and evaluation.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench import claims
from bench.results_dir import ResultsDir
from bench.errors import BenchError
from bench.results import read_record

ENV = {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
# --smoke: 8 validation images and 2 fps iterations; the training steps are given by each test
FAST = ["--smoke", "--wandb", "disabled"]


def bench_cmd(*args):
    return [sys.executable, "-m", "bench", *args]


def bench(*args, cwd=None):
    return subprocess.run(bench_cmd(*args), capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600)


def start(*args, log: Path):
    """A `bench` subprocess in its own process group (so a kill takes its CRF workers too)."""
    out = open(log, "w")
    return subprocess.Popen(bench_cmd(*args), stdout=out, stderr=subprocess.STDOUT, env=ENV,
                            start_new_session=True)


def kill_when(proc, condition, timeout=300.0):
    """SIGKILL the process group as soon as ``condition()`` holds; fail if the run ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting to kill"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def parent_identity() -> dict:
    """A claim holder that is alive: this test process's parent."""
    return {**claims.my_identity(), "pid": os.getppid(), "proc_start": claims._proc_start(os.getppid())}


def dead_identity() -> dict:
    """A claim holder that is gone: a process that has exited."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return {**claims.my_identity(), "pid": dead.pid, "proc_start": "1"}


def records(results: Path) -> dict[str, dict]:
    return {str(p.relative_to(results / "runs")): read_record(p) for p in sorted((results / "runs").rglob("*.json"))}


def leftovers(results: Path, folder: str) -> list[Path]:
    return [p for p in (results / folder).rglob("*") if p.is_file()] if (results / folder).exists() else []


# ------------------------------------------------------------------ resume after SIGKILL


def test_killed_sweep_resumes_and_does_not_redo_finished_runs(tmp_path):
    results = tmp_path / "results"
    args = ["run", "ablation-aspp", "--max-steps", "30", "--seeds", "2", "--variants", "largefov",
            *FAST, "--results-dir", str(results)]
    first = results / "runs" / "ablation-aspp" / "largefov" / "seed-0.json"
    proc = start(*args, log=tmp_path / "first.log")
    kill_when(proc, first.exists)
    recorded = first.read_text()

    again = bench(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 run(s) done, 1 already recorded" in again.stdout
    found = records(results)
    assert sorted(found) == ["ablation-aspp/largefov/seed-0.json", "ablation-aspp/largefov/seed-1.json"]
    assert all(r["status"] == "ok" and r["config"]["protocol"]["max_steps"] == 30 for r in found.values())
    assert first.read_text() == recorded  # the finished run was not redone
    assert leftovers(results, "claims") == [] and leftovers(results, "resume") == []
    assert (results / "ablation-aspp.csv").exists()


def test_a_sweep_clears_what_a_run_killed_after_its_record_left_behind(tmp_path):
    """The kill above can land between a run's record and its clean-up (seen on a slow machine):
    the rerun skips that run, so it removes the run's resume checkpoint and its dead claim."""
    from bench.registry import get_experiment
    from bench.resume import resume_path
    from bench.runner import plan_runs, run_experiment

    experiment = get_experiment("ablation-dilation")
    sweep = dict(results_dir=tmp_path, variants=["r12"], seeds=1, smoke=True, wandb_mode="disabled",
                 accelerator="cpu")
    assert run_experiment(experiment, **sweep).ran == 1
    [cfg] = plan_runs(experiment, scale="tiny", data="synthetic", seeds=1, variants=["r12"],
                      max_steps=None, results_dir=tmp_path, smoke=True)
    claim = ResultsDir(tmp_path).claim(cfg.experiment, cfg.variant, cfg.seed)
    claim.parent.mkdir(parents=True, exist_ok=True)
    claim.write_text(json.dumps(dead_identity()))
    resume = resume_path(tmp_path, cfg.run_key())
    resume.parent.mkdir(parents=True, exist_ok=True)
    resume.write_bytes(b"a checkpoint written before the record")

    again = run_experiment(experiment, **sweep)
    assert (again.ran, again.skipped) == (0, 1)
    assert not claim.exists() and not resume.exists()

    live = parent_identity()
    claim.write_text(json.dumps(live))  # a live process's claim is never removed
    run_experiment(experiment, **sweep)
    assert json.loads(claim.read_text()) == live


def test_a_learning_curve_survives_a_kill_mid_training(tmp_path):
    """The curve's points before the kill travel in the mid-training checkpoint, so the resumed
    run's record has the whole curve, equal to an uninterrupted run's."""
    args = ["run", "ablation-dilation", "--max-steps", "8", "--seeds", "1", "--variants", "r1",
            "--val-every", "2", *FAST]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = start(*args, "--results-dir", str(killed), log=tmp_path / "killed.log")
    kill_when(proc, lambda: any(p.stat().st_size > 0 for p in (killed / "resume").rglob("*.ckpt"))
              and "Validation" in (tmp_path / "killed.log").read_text())
    resumed = bench(*args, "--results-dir", str(killed))
    assert resumed.returncode == 0 and "resuming ablation-dilation/r1 seed 0 from step" in resumed.stderr
    assert bench(*args, "--results-dir", str(whole)).returncode == 0
    curves = [read_record(d / "runs" / "ablation-dilation" / "r1" / "seed-0.json")["metrics"]["val_curve"]
              for d in (killed, whole)]
    assert curves[0]["step"] == [2, 4, 6, 8] and curves[0] == curves[1]


def test_a_run_killed_mid_training_resumes_from_its_checkpoint_with_the_same_result(tmp_path):
    """Killed after a periodic checkpoint, the rerun goes on from that step (not step 0), and the
    result is bit-identical to an uninterrupted run: weights, BN statistics, optimizer, schedule
    and the data order (replayed) all continue where they were."""
    args = ["run", "ablation-aspp", "--max-steps", "8", "--seeds", "1", "--variants", "largefov", *FAST]
    killed = tmp_path / "killed"
    proc = start(*args, "--results-dir", str(killed), log=tmp_path / "killed.log")
    kill_when(proc, lambda: any((killed / "resume").rglob("*.ckpt")))
    [ckpt] = list((killed / "resume").rglob("*.ckpt"))
    assert ckpt.name.startswith("seed-0-")  # keyed by seed and config hash

    resumed = bench(*args, "--results-dir", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming ablation-aspp/largefov seed 0 from step" in resumed.stderr
    record = read_record(killed / "runs" / "ablation-aspp" / "largefov" / "seed-0.json")
    step = record["env"]["resumed_from_step"]
    assert 0 < step < 8 and f"from step {step}" in resumed.stderr
    assert record["env"]["resumes"] == 1 and record["env"]["train_seconds_lost"] >= 0.0
    assert not ckpt.exists() and not ckpt.with_name(ckpt.name + ".alive").exists()
    assert leftovers(killed, "claims") == []

    whole = tmp_path / "whole"
    plain = bench(*args, "--results-dir", str(whole))
    assert plain.returncode == 0, plain.stderr[-3000:]
    reference = read_record(whole / "runs" / "ablation-aspp" / "largefov" / "seed-0.json")
    assert reference["env"]["resumed_from_step"] == 0 and reference["env"]["resumes"] == 0
    assert record["metrics"]["miou"] == reference["metrics"]["miou"]
    assert record["metrics"]["per_class_iou"] == reference["metrics"]["per_class_iou"]
    w1 = torch.load(killed / "checkpoints" / "ablation-aspp" / "largefov" / "seed-0.pt", weights_only=True)
    w2 = torch.load(whole / "checkpoints" / "ablation-aspp" / "largefov" / "seed-0.pt", weights_only=True)
    assert all(torch.equal(w1["state_dict"][k], w2["state_dict"][k]) for k in w2["state_dict"])


# ------------------------------------------------------------------ two sweeps at once


def test_two_sweeps_on_one_results_dir_share_the_runs(tmp_path):
    results = tmp_path / "results"
    args = ["run", "ablation-aspp", "--variants", "largefov,aspp-s", "--seeds", "1", "--max-steps", "5",
            *FAST, "--results-dir", str(results)]
    procs = [start(*args, log=tmp_path / f"sweep{i}.log") for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, (tmp_path / "sweep0.log").read_text()[-3000:]
    logs = [(tmp_path / f"sweep{i}.log").read_text() for i in range(2)]
    done = [int(log.split(" run(s) done")[0].rsplit("\n", 1)[-1]) for log in logs]
    assert sum(done) == 2, logs  # each run trained by exactly one process
    found = records(results)
    assert sorted(found) == ["ablation-aspp/aspp-s/seed-0.json", "ablation-aspp/largefov/seed-0.json"]
    assert all(r["status"] == "ok" for r in found.values())
    assert leftovers(results, "claims") == [] and leftovers(results, "resume") == []
    assert not list(results.rglob("*.tmp"))
    assert (results / "ablation-aspp.csv").exists()


def test_a_live_claim_is_respected_and_a_dead_ones_taken_over(tmp_path):
    path = ResultsDir(tmp_path).claim("ablation-aspp", "largefov", 0)
    path.parent.mkdir(parents=True)
    parent = parent_identity()
    path.write_text(json.dumps(parent))
    claim, holder = claims.acquire(path)
    assert claim is None and holder["pid"] == os.getppid()
    assert claims.held_by_other(path) == parent
    assert "delete it if that process is gone" in claims.describe(holder, path)

    path.write_text(json.dumps(dead_identity()))
    claim, holder = claims.acquire(path)
    assert claim is not None and holder is None
    assert json.loads(path.read_text())["pid"] == os.getpid()
    path.write_text(json.dumps(parent))  # not ours any more: release leaves it alone
    claim.release()
    assert path.exists()


def test_a_claim_with_a_reused_pid_is_stale(tmp_path):
    me = claims.my_identity()
    assert not claims.is_stale(me)
    assert claims.is_stale({**me, "proc_start": "0"})  # same pid, another process start time
    assert not claims.is_stale({**me, "pid": 1, "host": "another-host"})  # cannot tell: trusted


# ------------------------------------------------------------------ determinism


def test_the_same_command_and_seed_give_bit_identical_miou_on_the_cpu(tmp_path):
    miou = []
    for name in ("a", "b"):
        proc = bench("run", "ablation-aspp", "--variants", "largefov", "--seeds", "1", "--max-steps", "2",
                     "--accelerator", "cpu", *FAST, "--results-dir", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr[-3000:]
        record = read_record(tmp_path / name / "runs" / "ablation-aspp" / "largefov" / "seed-0.json")
        miou.append((record["metrics"]["miou"], record["metrics"]["per_class_iou"], record["metrics"]["miou_crf"]))
        env = record["env"]
        assert {"git_commit", "git_dirty", "versions", "device", "host", "started", "ended"} <= set(env)
        assert record["config"]["seed"] == record["seed"] == 0 and record["config"]["knobs"] == record["knobs"]
    assert miou[0] == miou[1]


# ------------------------------------------------------------------ failure isolation


def test_a_diverging_run_is_recorded_as_failed_and_the_sweep_exits_1(tmp_path):
    results = tmp_path / "results"
    proc = bench("run", "ablation-aspp", "--variants", "largefov,aspp-s", "--seeds", "1", "--max-steps", "3",
                 "--lr", "1e30", *FAST, "--results-dir", str(results))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 run(s) failed:" in proc.stderr
    assert "loss is nan at step" in proc.stderr
    for variant in ("largefov", "aspp-s"):  # the sweep went on after the first failure
        record = read_record(results / "runs" / "ablation-aspp" / variant / "seed-0.json")
        assert record["status"] == "failed" and "loss is nan at step" in record["error"]
        assert record["config"]["protocol"]["lr"] == 1e30
        assert {"git_commit", "versions", "device", "host", "started", "ended"} <= set(record["env"])
    table = (results / "ablation-aspp.md").read_text()
    assert table.count("failed") >= 2
    assert leftovers(results, "claims") == [] and leftovers(results, "resume") == []


@pytest.mark.parametrize("lr", ["0", "-0.1", "nan"])
def test_a_bad_learning_rate_is_one_line(lr, tmp_path):
    proc = bench("run", "ablation-aspp", f"--lr={lr}", "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"bench: error: --lr must be a positive number, got {float(lr)}"]


# ------------------------------------------------------------------ bad input


def test_a_corrupt_record_stops_the_sweep_with_one_line_and_is_kept(tmp_path):
    results = tmp_path / "results"
    path = results / "runs" / "ablation-aspp" / "largefov" / "seed-0.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    proc = bench("run", "ablation-aspp", "--variants", "largefov", "--seeds", "1", "--max-steps", "1",
                 *FAST, "--results-dir", str(results))
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert str(path) in line and "corrupt run record" in line
    assert path.read_text() == "{not json"
    debug = bench("--debug", "run", "ablation-aspp", "--variants", "largefov", "--seeds", "1",
                  *FAST, "--results-dir", str(results))
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_an_unwritable_results_dir_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = bench("run", "ablation-aspp", "--variants", "largefov", "--seeds", "1", "--max-steps", "1",
                 *FAST, "--results-dir", str(blocker / "results"))
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "is not writable" in line and str(blocker / "results") in line


def test_a_checkpoint_of_another_variant_is_one_line(tmp_path):
    from bench.checkpoints import load_checkpoint, save_checkpoint
    from bench.models import build_model

    small = {"head": "largefov", "width": 0.125, "num_classes": 21}
    other = {**small, "head": "aspp-s"}
    path = tmp_path / "seed-0.pt"
    save_checkpoint(path, build_model("v2", **other), "v2", other)
    with pytest.raises(BenchError, match="is of v2") as err:
        load_checkpoint(path, "v2", small)
    assert "\n" not in str(err.value)
    # the label says largefov but the weights are aspp-s's: mismatched keys, one line
    torch.save({"version": "v2", "knobs": small, "state_dict": build_model("v2", **other).state_dict()}, path)
    with pytest.raises(BenchError, match="does not fit") as err:
        load_checkpoint(path, "v2", small)
    assert "\n" not in str(err.value)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="unreadable checkpoint"):
        load_checkpoint(path, "v2", small)


def test_an_unusable_resume_checkpoint_is_set_aside_and_training_starts_at_step_0(tmp_path, capsys):
    from bench.models import build_model
    from bench.resume import ResumePoint, usable_checkpoint

    config = {"experiment": "ablation-aspp", "variant": "largefov", "seed": 0}
    model = build_model("v2", head="largefov", width=0.125)
    path = tmp_path / "seed-0-abc.ckpt"
    path.write_bytes(b"truncated")
    assert usable_checkpoint(path, config, model) == ResumePoint()
    assert not path.exists() and path.with_name(path.name + ".unusable").read_bytes() == b"truncated"
    torch.save({"bench": {"config": {**config, "variant": "aspp-s"}}, "state_dict": {}, "global_step": 3}, path)
    assert usable_checkpoint(path, config, model) == ResumePoint()
    torch.save({"bench": {"config": config}, "state_dict": {"x": torch.zeros(1)}, "global_step": 3}, path)
    assert usable_checkpoint(path, config, model) == ResumePoint()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all("training from step 0" in line for line in lines)
    assert "does not load" in lines[0] and "another run config" in lines[1] and "other parameters" in lines[2]
    torch.save({"bench": {"config": config}, "state_dict": model.state_dict(), "global_step": 3}, path)
    # a checkpoint written before resume counts were recorded: the first resume, nothing known lost
    assert usable_checkpoint(path, config, model) == ResumePoint(path, 3, resumes=1, lost_seconds=0.0)
    saved_at = 1000.0  # a later checkpoint, written by that resumed attempt: its counts win
    torch.save({"bench": {"config": config, "resumes": 2, "lost_seconds": 5.0, "saved_at": saved_at},
                "state_dict": model.state_dict(), "global_step": 3}, path)
    alive = path.with_name(path.name + ".alive")
    alive.touch()
    os.utime(alive, (saved_at + 12.5, saved_at + 12.5))  # the killed attempt trained 12.5 s past it
    point = usable_checkpoint(path, config, model)
    assert (point.path, point.step, point.resumes, point.lost_seconds) == (path, 3, 3, pytest.approx(17.5, abs=1e-3))
    # that resumed attempt is killed 4 s into training, before its own first checkpoint
    since = json.loads(path.with_name(path.name + ".resumed").read_text())["since"]
    os.utime(alive, (since + 4.0, since + 4.0))
    point = usable_checkpoint(path, config, model)
    assert (point.resumes, point.lost_seconds) == (4, pytest.approx(21.5, abs=1e-3))


def test_the_replayed_loader_continues_the_same_batches_across_epochs():
    from torch.utils.data import DataLoader, Dataset

    from bench.resume import ReplayedLoader

    class Noisy(Dataset):  # draws from the global RNG per item, like the training flips
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.tensor([i, float(torch.rand(()) < 0.5)])

    def loader():
        torch.manual_seed(0)
        return DataLoader(Noisy(), batch_size=3, shuffle=True, drop_last=True,
                          generator=torch.Generator().manual_seed(7))

    def batches(source, epochs):
        return [b for _ in range(epochs) for b in source]

    whole = batches(loader(), 3)  # 3 batches per epoch, 9 in all
    for steps in (1, 3, 4, 8):
        replayed = ReplayedLoader(loader(), steps)
        iter(replayed)  # Lightning's iterability check: must not consume anything
        rest = [b for b in replayed] + batches(replayed, 3)
        assert all(torch.equal(a, b) for a, b in zip(whole[steps:], rest))


def test_docs_bad_input_lists_every_case_the_tool_runs():
    """docs/bad-input.md is generated by tools/bad_input_table.py; regenerate it when a case is added."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("bad_input_table", root / "tools" / "bad_input_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = [line for line in (root / "docs" / "bad-input.md").read_text().splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0][2:] for row in rows[1:]] == [what for what, _, _ in tool.CASES]
    codes = {row.split(" | ")[0][2:]: row.split(" | ")[2] for row in rows[1:]}
    assert codes["corrupt JSON in results/runs"] == "2" and codes["loss diverges (`--lr 1e30`)"] == "1"
