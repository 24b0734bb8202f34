"""Plots from run records (like report.py, they read records only): where a person would rather look.

- EXPERIMENT.png: mIoU vs fps per variant (mean, with the std over seeds as error bars) - the
  speed/accuracy trade-off at a glance.
- EXPERIMENT-trimap.png: mIoU within a band around object boundaries vs the band's width, before
  (dashed) and after (solid) CRF, mean over seeds - the papers' trimap figure (v1 Fig. 5, v2 Fig. 14).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.results import find_records, read_record  # noqa: E402


def plot_tradeoff(summary: pd.DataFrame, path: Path, *, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for _, row in summary.iterrows():
        std = row.get("miou_std")
        ax.errorbar(row["fps"], row["miou"], yerr=0 if pd.isna(std) else std, fmt="o", capsize=3)
        ax.annotate(str(row["variant"]), (row["fps"], row["miou"]), textcoords="offset points", xytext=(5, 4))
    ax.set_xlabel("fps (network only, batch 1)")
    ax.set_ylabel("val mIoU (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def trimap_curves(results_dir: Path, experiment: str) -> dict[str, dict[str, np.ndarray]]:
    """variant -> {"width_px", "miou" (mean over seeds), "miou_crf"} from the records that have it."""
    curves: dict[str, dict[str, list]] = {}
    for path in find_records(results_dir, experiment):
        record = read_record(path)
        metrics = record["metrics"]
        if record["status"] != "ok" or "trimap" not in metrics:
            continue
        entry = curves.setdefault(record["variant"], {"width_px": metrics["trimap"]["width_px"], "miou": [], "miou_crf": []})
        entry["miou"].append(metrics["trimap"]["miou"])
        entry["miou_crf"].append(metrics["trimap_crf"]["miou"])
    return {v: {"width_px": np.array(c["width_px"]), "miou": np.nanmean(c["miou"], axis=0),
                "miou_crf": np.nanmean(c["miou_crf"], axis=0)} for v, c in curves.items()}


def plot_trimap(results_dir: Path, experiment: str, path: Path, *, title: str) -> Path | None:
    curves = trimap_curves(results_dir, experiment)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (variant, curve) in enumerate(curves.items()):
        colour = f"C{i}"
        ax.plot(curve["width_px"], curve["miou"], "--", color=colour, label=f"{variant}")
        ax.plot(curve["width_px"], curve["miou_crf"], "-", color=colour, label=f"{variant} + CRF")
    ax.set_xlabel("trimap band width (px)")
    ax.set_ylabel("mIoU within the band (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
