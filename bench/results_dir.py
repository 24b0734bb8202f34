"""The results folder: the one owner of its layout. Every path under it is spelled here.

    RESULTS_DIR/
      runs/EXPERIMENT/VARIANT/seed-N.json      one record per finished run (committed)
      EXPERIMENT.csv .md .tex .png             tables and the mIoU-vs-fps plot (committed)
      EXPERIMENT-trimap.png -curve.png -per-class.png
      tables.tex                               one LaTeX document \\input-ing every table
      pictures/EXPERIMENT/VARIANT-seed-N.png   prediction grids (committed)
      crf/EXPERIMENT/VARIANT.json              the CRF parameters bench crf-search chose (committed)
      checkpoints/EXPERIMENT/VARIANT/seed-N.pt trained weights (ignored: bulky)
      resume/EXPERIMENT/VARIANT/seed-N-KEY.ckpt mid-training state, until the record exists (ignored)
      claims/EXPERIMENT/VARIANT/seed-N.claim   which process does which run (ignored)
      claims/EXPERIMENT/tables.claim           the lock of the tables' writer (ignored)
      ranks/EXPERIMENT/VARIANT/seed-N/         a data-parallel run's spec and its ranks' errors (ignored)
      wandb/ lightning/ slurm/EXPERIMENT/      W&B offline runs, Lightning's folder, SLURM jobs (ignored)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError


@dataclass(frozen=True)
class ResultsDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, where: "str | Path | ResultsDir") -> "ResultsDir":
        return where if isinstance(where, ResultsDir) else cls(Path(where))

    # -- what is committed -------------------------------------------------------------------

    def record(self, experiment: str, variant: str, seed: int) -> Path:
        return self.root / "runs" / experiment / variant / f"seed-{seed}.json"

    def record_paths(self, experiment: str | None = None) -> list[Path]:
        """Every record of ``experiment`` (of every experiment when None), sorted by path."""
        return sorted((self.root / "runs").glob(f"{experiment or '*'}/*/seed-*.json"))

    def table(self, experiment: str, suffix: str) -> Path:
        """EXPERIMENT + suffix: ".csv", ".md", ".tex", ".png", "-trimap.png", "-curve.png", ..."""
        return self.root / f"{experiment}{suffix}"

    def document(self) -> Path:
        return self.root / "tables.tex"

    def picture(self, experiment: str, variant: str, seed: int) -> Path:
        return self.root / "pictures" / experiment / f"{variant}-seed-{seed}.png"

    def crf_search(self, experiment: str, variant: str) -> Path:
        return self.root / "crf" / experiment / f"{variant}.json"

    # -- scratch (git-ignored) -------------------------------------------------------------------

    def checkpoint(self, experiment: str, variant: str, seed: int) -> Path:
        return self.root / "checkpoints" / experiment / variant / f"seed-{seed}.pt"

    def resume(self, experiment: str, variant: str, seed: int, key: str) -> Path:
        """``key``: a hash of the run's identity, so a changed config never resumes another's state."""
        return self.root / "resume" / experiment / variant / f"seed-{seed}-{key}.ckpt"

    def claim(self, experiment: str, variant: str, seed: int) -> Path:
        return self.root / "claims" / experiment / variant / f"seed-{seed}.claim"

    def tables_lock(self, experiment: str) -> Path:
        return self.root / "claims" / experiment / "tables.claim"

    def ranks(self, experiment: str, variant: str, seed: int) -> Path:
        """A data-parallel run's scratch folder: its spec and its ranks' errors (bench.launchers)."""
        return self.root / "ranks" / experiment / variant / f"seed-{seed}"

    def rank_error(self, experiment: str, variant: str, seed: int, rank: int) -> Path:
        return self.ranks(experiment, variant, seed) / f"rank-{rank}.error"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    @property
    def lightning(self) -> Path:
        return self.root / "lightning"

    def slurm(self, experiment: str) -> Path:
        return self.root / "slurm" / experiment

    def ensure_writable(self) -> "ResultsDir":
        """The folder exists and this process can write into it, else one BenchError line."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"  # per process: two sweeps may start together
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise BenchError(f"results dir {self.root} is not writable ({err.strerror}); "
                             "pass --results-dir DIR") from err
        return self
