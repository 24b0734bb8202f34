"""Dense CRF, trimap bands and the CRF search: the papers' claims on small, exact cases."""

import numpy as np
import pytest
import torch

from bench.evaluation.crf import CRFParams, dense_crf, dense_crf_batch
from bench.evaluation.trimap import TrimapMetric, band_mask


def two_region_case(seed=0, size=48):
    """Left half red, right half blue; the network's softmax is blurry across the edge and noisy."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.uint8)
    image[:, : size // 2] = (200, 30, 30)
    image[:, size // 2:] = (30, 30, 200)
    truth = np.zeros((size, size), np.int64)
    truth[:, size // 2:] = 1
    x = np.arange(size) - size / 2 + 0.5
    p1 = 1 / (1 + np.exp(-x / 6.0))[None, :].repeat(size, 0)          # a soft, wide edge
    p1 = np.clip(p1 + rng.normal(0, 0.25, p1.shape), 0.02, 0.98)       # and noise
    probs = np.stack([1 - p1, p1]).astype(np.float32)
    return image, probs, truth


def test_crf_snaps_a_blurry_noisy_prediction_to_the_colour_edge():
    image, probs, truth = two_region_case()
    before = (probs.argmax(0) == truth).mean()
    after = (dense_crf(image, probs, CRFParams(w1=5, sigma_alpha=20, sigma_beta=10)) == truth).mean()
    assert before < 0.95 and after > before and after > 0.99


def test_crf_result_does_not_depend_on_the_worker_count():
    cases = [two_region_case(seed) for seed in range(4)]
    images, probs = [c[0] for c in cases], [c[1] for c in cases]
    one = dense_crf_batch(images, probs, workers=1)
    two = dense_crf_batch(images, probs, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


def test_crf_rejects_a_normalised_float_image_and_mismatched_sizes():
    image, probs, _ = two_region_case()
    with pytest.raises(ValueError, match="uint8"):
        dense_crf(image.astype(np.float32) - 100, probs)
    with pytest.raises(ValueError, match="differ in size"):
        dense_crf(image[:-1], probs)
    with pytest.raises(ValueError, match="sigma_alpha must be positive"):
        CRFParams(sigma_alpha=0)


@pytest.mark.parametrize("width", [1, 3, 10])
def test_trimap_band_of_width_w_around_a_straight_edge_is_2w_plus_2_columns(width):
    mask = torch.zeros(1, 40, 60, dtype=torch.long)
    mask[:, :, 30:] = 5
    band = band_mask(mask, width)[0]
    assert band.any(dim=0).sum() == 2 * width + 2
    assert band[:, 30 - 1 - width].all() and not band[:, 30 - 2 - width].any()


def test_trimap_miou_is_100_for_a_perfect_prediction_and_lower_near_a_shifted_edge():
    mask = torch.zeros(2, 40, 60, dtype=torch.long)
    mask[:, :, 30:] = 3
    mask[:, 10, :] = 255
    perfect, shifted = TrimapMetric(21, widths=(1, 5, 20)), TrimapMetric(21, widths=(1, 5, 20))
    perfect.update(mask.clamp(max=20), mask)
    pred = torch.zeros_like(mask)
    pred[:, :, 32:] = 3  # two columns wrong at the edge
    shifted.update(pred, mask)
    assert perfect.compute() == {1: 100.0, 5: 100.0, 20: 100.0}
    curve = shifted.compute()
    assert curve[1] < curve[5] < curve[20] < 100.0  # errors concentrate in the narrow band
