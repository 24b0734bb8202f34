"""The dense CRF's parameters, cross-validated per variant as the papers do (`bench crf-search`):
v1 Sec. 4.1 and v2 Sec. 4.1 search w1, sigma_alpha and sigma_beta on 100 held-out images.

The search runs on the first recorded seed's weights; the best parameters are stored at
ResultsDir.crf_search (RESULTS_DIR/crf/EXPERIMENT/VARIANT.json), every recorded seed's mIoU after
CRF is re-scored with them, and later runs of the variant start from them (``tuned_crf_params``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.atomic import write_json_atomic
from bench.checkpoints import load_checkpoint
from bench.errors import BenchError
from bench.evaluation.crf_search import search_crf
from bench.evaluation.evaluate import evaluate_with_crf
from bench.evaluation.inference import Inference
from bench.provenance import utc_now
from bench.registry import Experiment, experiments
from bench.results import load_records, write_record
from bench.results_dir import ResultsDir
from bench.run import datamodule_of, draw_predictions, eval_model
from bench.run_config import RunConfig
from bench.tables import write_tables


def tuned_crf_params(results: ResultsDir, experiment: str, variant: str) -> dict[str, Any]:
    """The CRF parameters `bench crf-search` chose for a variant, or {} (CRFParams' defaults)."""
    path = results.crf_search(experiment, variant)
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text())["best"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BenchError(f"corrupt CRF search result {path}: {err}; delete it and rerun bench crf-search") from err


def crf_search_experiment(experiment: Experiment, *, results_dir: str | Path | ResultsDir,
                          variants: list[str] | None = None, images: int = 100) -> dict[str, dict]:
    """Per variant: search the CRF on held-out images with the first seed's weights, store the
    best parameters, then re-score mIoU after CRF of every recorded seed with them."""
    results = ResultsDir.of(results_dir)
    if images < 1:
        raise BenchError(f"--images must be at least 1, got {images}")
    if not experiment.crf:
        raise BenchError(f"{experiment.name} does not evaluate the CRF; experiments that do: "
                         + ", ".join(n for n, e in experiments().items() if e.crf))
    records = load_records(results, experiment.name)
    chosen = {}
    for variant in tqdm(experiment.select(variants), desc=f"{experiment.name} crf-search", unit="variant",
                        dynamic_ncols=True):
        found = [r for r in records if r["variant"] == variant.name and r["status"] == "ok"]
        if not found:
            continue
        first = RunConfig.from_dict(found[0]["config"])
        datamodule = datamodule_of(first)
        model = load_checkpoint(results.checkpoint(first.experiment, first.variant, first.seed),
                                first.version, first.knobs, sha256=found[0].get("checkpoint_sha256"))
        best, history = search_crf(model, datamodule.holdout_dataloader(images), num_classes=first.knobs["num_classes"],
                                   image_size=max(datamodule.eval_size()), device=torch.device("cpu"))
        best_dict = asdict(best)
        write_json_atomic(results.crf_search(experiment.name, variant.name),
                          {"best": best_dict, "history": history, "searched_on": f"holdout[:{images}]",
                           "weights": f"seed-{first.seed}", "date": utc_now()})
        for record in found:
            cfg = RunConfig.from_dict(record["config"])
            model = eval_model(cfg, load_checkpoint(results.checkpoint(cfg.experiment, cfg.variant, cfg.seed),
                                                    cfg.version, cfg.knobs, sha256=record.get("checkpoint_sha256")))
            crf = evaluate_with_crf(model, datamodule.val_dataloader(), num_classes=cfg.knobs["num_classes"],
                                    device=torch.device("cpu"), params=best, inference=Inference(**cfg.inference))
            crf.pop("miou")
            record["metrics"].update(crf)
            record["config"]["crf_params"] = best_dict
            write_record(results, record)
            draw_predictions(RunConfig.from_dict(record["config"]), model, datamodule, results, torch.device("cpu"))
        chosen[variant.name] = {"best": best_dict, "history": history}
    if not chosen:
        raise BenchError(f"no finished runs of {experiment.name} under {results.root}; "
                         f"run `bench run {experiment.name}` first")
    write_tables(experiment, results, records=records)  # the records as re-scored above
    return chosen
