"""Fully connected CRF post-processing (v1 Sec. 4, v2 Sec. 3.3) with pydensecrf.

Energy: unary = -log softmax of the network; pairwise = a bilateral kernel
w1 * exp(-|p_i - p_j|^2 / 2 sigma_alpha^2 - |I_i - I_j|^2 / 2 sigma_beta^2) that makes pixels of
similar colour nearby take the same label, plus a smoothness kernel w2 * exp(-|p_i - p_j|^2 /
2 sigma_gamma^2). The papers fix w2 = 3, sigma_gamma = 3 and cross-validate w1, sigma_alpha and
sigma_beta on held-out val images; mean-field inference runs 10 iterations.

pydensecrf traps (pitfalls.md): DenseCRF2D takes (width, height, labels); the unary must be
float32 C-contiguous (C, H*W); the bilateral kernel wants the RAW uint8 RGB image, H x W x 3,
C-contiguous (never the mean-subtracted float image cast to uint8).
Images are processed in a process pool; each image's result depends only on its inputs, so the
output is the same for any worker count.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class CRFParams:
    w1: float = 4.0            # bilateral weight (cross-validated in the papers)
    sigma_alpha: float = 20.0  # bilateral position std, pixels (tiny-scale default; see crf-search)
    sigma_beta: float = 5.0    # bilateral colour std, intensity levels
    w2: float = 3.0            # smoothness weight, fixed in v1/v2
    sigma_gamma: float = 3.0   # smoothness position std, fixed in v1/v2
    iterations: int = 10       # mean-field iterations (v1 Sec. 4.1)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"CRF parameter {name} must be positive, got {value!r}")


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Labels (H, W) after mean-field inference; image uint8 (H, W, 3), probs float (C, H, W)."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 H x W x 3, got {image.dtype} {image.shape}")
    n_labels, height, width = probs.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f"image {image.shape[:2]} and probabilities {probs.shape[1:]} differ in size")
    crf = dcrf.DenseCRF2D(width, height, n_labels)  # width first
    unary = np.ascontiguousarray(unary_from_softmax(probs.astype(np.float32)), dtype=np.float32)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.sigma_gamma, compat=params.w2)
    crf.addPairwiseBilateral(sxy=params.sigma_alpha, srgb=params.sigma_beta,
                             rgbim=np.ascontiguousarray(image), compat=params.w1)
    q = np.array(crf.inference(params.iterations), dtype=np.float32).reshape(n_labels, height, width)
    return q.argmax(axis=0).astype(np.uint8)


def _crf_job(args):
    image, probs, params = args
    return dense_crf(image, probs, params)


# Jobs handed to forked workers by inheritance instead of pickling: the softmax of one 128 px
# image is 1.4 MB (21 classes, float32), so pickling a batch through the pool's pipes cost as much
# as the CRF itself; only the job index goes out and the uint8 labels come back.
_INHERITED: list = []


def _inherited_job(index: int) -> np.ndarray:
    return _crf_job(_INHERITED[index])


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def dense_crf_batch(images: list[np.ndarray], probs: list[np.ndarray], params: CRFParams = CRFParams(),
                    workers: int | None = None) -> list[np.ndarray]:
    """dense_crf over many images, in a process pool of ``workers`` (default: the CPUs we may use)."""
    workers = default_workers() if workers is None else workers
    jobs = [(img, p, params) for img, p in zip(images, probs)]
    if workers <= 1 or len(jobs) <= 1:
        return [_crf_job(job) for job in jobs]
    chunksize = max(1, len(jobs) // (4 * workers))
    if multiprocessing.get_start_method() != "fork":  # spawn/forkserver: workers get pickled jobs
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_crf_job, jobs, chunksize=chunksize))
    _INHERITED[:] = jobs
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_inherited_job, range(len(jobs)), chunksize=chunksize))
    finally:
        _INHERITED.clear()
