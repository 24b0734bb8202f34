"""Plots from run records (bench.results.load_records; like report.py, records only): where a person
would rather look.

- EXPERIMENT.png: mIoU vs fps per variant (mean, with the std over seeds as error bars) - the
  speed/accuracy trade-off at a glance.
- EXPERIMENT-trimap.png: mIoU within a band around object boundaries vs the band's width, before
  (dashed) and after (solid) CRF, mean over seeds - the papers' trimap figure (v1 Fig. 5, v2 Fig. 14).
- EXPERIMENT-per-class.png: IoU per class of the best variant (highest mean mIoU), mean over its
  seeds with the std as error bars, before and after CRF where evaluated - which classes it misses.
- EXPERIMENT-curve.png: val mIoU along training per variant (runs with ``bench run --val-every``),
  mean over seeds with the seeds' range shaded - when a knob starts to matter.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402



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


def trimap_curves(records: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """variant -> {"width_px", "miou" (mean over seeds), "miou_crf"} from the records that have it."""
    curves: dict[str, dict[str, list]] = {}
    for record in records:
        metrics = record["metrics"]
        if record["status"] != "ok" or "trimap" not in metrics:
            continue
        entry = curves.setdefault(record["variant"], {"width_px": metrics["trimap"]["width_px"], "miou": [], "miou_crf": []})
        entry["miou"].append(metrics["trimap"]["miou"])
        entry["miou_crf"].append(metrics["trimap_crf"]["miou"])
    return {v: {"width_px": np.array(c["width_px"]), "miou": np.nanmean(c["miou"], axis=0),
                "miou_crf": np.nanmean(c["miou_crf"], axis=0)} for v, c in curves.items()}


def plot_trimap(records: list[dict[str, Any]], path: Path, *, title: str) -> Path | None:
    curves = trimap_curves(records)
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


def learning_curves(records: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """variant -> {"step", "miou" (seeds, points)} from the ok records that have a learning curve;
    per variant the steps most of its seeds share, seeds with other steps left out."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        curve = record["metrics"].get("val_curve")
        if record["status"] == "ok" and curve:
            found.setdefault(record["variant"], []).append(curve)
    curves = {}
    for variant, seeds in found.items():
        steps = Counter(tuple(c["step"]) for c in seeds).most_common(1)[0][0]
        curves[variant] = {"step": np.array(steps),
                           "miou": np.array([c["miou"] for c in seeds if tuple(c["step"]) == steps], dtype=float)}
    return curves


def plot_learning_curves(records: list[dict[str, Any]], path: Path, *, title: str) -> Path | None:
    curves = learning_curves(records)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (variant, curve) in enumerate(curves.items()):
        seeds = curve["miou"]
        ax.plot(curve["step"], seeds.mean(axis=0), "-o", ms=3, color=f"C{i}",
                label=f"{variant} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})")
        if len(seeds) > 1:
            ax.fill_between(curve["step"], seeds.min(axis=0), seeds.max(axis=0), color=f"C{i}", alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel("val mIoU (%)")
    ax.set_title(f"{title}\nmean over seeds, shaded: min-max", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def per_class_iou(records: list[dict[str, Any]], variant: str) -> dict[str, np.ndarray]:
    """{"iou": (seeds, classes) [, "iou_crf": ...]} of a variant's ok records, in percent; NaN
    where a class is absent from both prediction and ground truth."""
    found: dict[str, list] = {"iou": [], "iou_crf": []}
    for record in records:
        metrics = record["metrics"]
        if record["variant"] != variant or record["status"] != "ok" or "per_class_iou" not in metrics:
            continue
        found["iou"].append(metrics["per_class_iou"])
        if metrics.get("per_class_iou_crf") is not None:
            found["iou_crf"].append(metrics["per_class_iou_crf"])
    as_array = {k: np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
                for k, rows in found.items() if rows}
    if "iou_crf" in as_array and len(as_array["iou_crf"]) != len(as_array.get("iou", [])):
        del as_array["iou_crf"]  # CRF on some seeds only: not comparable
    return as_array


def plot_per_class(records: list[dict[str, Any]], summary: pd.DataFrame, path: Path, *,
                   title: str, class_names: list[str] | tuple[str, ...] | None = None) -> Path | None:
    """Bars of per-class IoU of the best variant; class names when given, else class indices."""
    ok = summary[(summary.get("status", "ok") == "ok") & summary["miou"].notna()]
    if ok.empty:
        return None
    best = str(ok.loc[ok["miou"].astype(float).idxmax(), "variant"])
    iou = per_class_iou(records, best)
    if "iou" not in iou:
        return None
    n_classes = iou["iou"].shape[1]
    names = list(class_names) if class_names is not None and len(class_names) == n_classes \
        else [str(c) for c in range(n_classes)]
    series = [("before CRF" if "iou_crf" in iou else None, iou["iou"])]
    if "iou_crf" in iou:
        series.append(("after CRF", iou["iou_crf"]))
    x = np.arange(n_classes)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.38 * n_classes + 1.5), 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class absent in every seed: NaN mean
        for k, (label, values) in enumerate(series):
            mean = np.nanmean(values, axis=0)
            std = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else None
            ax.bar(x + (k - (len(series) - 1) / 2) * width, np.nan_to_num(mean), width, yerr=std,
                   capsize=2, label=label, color=f"C{k}", error_kw={"elinewidth": 0.8})
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    n_seeds = len(iou["iou"])
    ax.set_title(f"{title}\nbest variant: {best} (mean over {n_seeds} seed{'s' if n_seeds != 1 else ''})",
                 fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
