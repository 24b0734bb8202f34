"""Test-time strategies of v3 Table 6: multi-scale inputs, left-right flips, another output stride."""

import json

import pytest
import torch

from bench.evaluation.inference import Inference, at_output_stride, predict_probs
from bench.models import build_model
from test_cli import bench


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("v2", head="largefov", width=0.0625).eval()


def test_the_plain_strategy_is_the_softmax_of_one_forward(model):
    x = torch.randn(2, 3, 49, 63)
    with torch.no_grad():
        assert torch.allclose(predict_probs(model, x), model(x).softmax(1), atol=1e-6)


def test_flip_averages_the_mirrored_prediction_mirrored_back(model):
    x = torch.randn(1, 3, 49, 63)
    with torch.no_grad():
        expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1).flip(-1)) / 2
        assert torch.allclose(predict_probs(model, x, Inference(flip=True)), expected, atol=1e-6)


def test_multi_scale_probabilities_are_at_the_input_size_and_sum_to_one(model):
    x = torch.randn(2, 3, 49, 63)
    with torch.no_grad():
        probs = predict_probs(model, x, Inference(scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip=True))
    assert probs.shape == (2, 21, 49, 63)
    assert torch.allclose(probs.sum(1), torch.ones(2, 49, 63), atol=1e-5)


def test_the_same_weights_evaluate_at_output_stride_8_after_training_at_16():
    trained = build_model("v3", backbone="resnet50", output_stride=16, width=0.0625).eval()
    rebuilt = at_output_stride(trained, lambda s: build_model("v3", backbone="resnet50", output_stride=s,
                                                              width=0.0625), 8)
    assert rebuilt.output_stride == 8
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), rebuilt.state_dict().values()))
    x = torch.randn(1, 3, 64, 64)
    assert rebuilt.backbone(x).shape[-1] == 2 * trained.backbone(x).shape[-1]


@pytest.mark.parametrize("bad", [dict(scales=()), dict(scales=(0.0,)), dict(output_stride=4), dict(flip="yes")])
def test_bad_strategies_raise_valueerror(bad):
    with pytest.raises(ValueError):
        Inference(**bad)


def test_run_records_the_strategy_and_refuses_an_eval_stride_for_vgg(tmp_path):
    proc = bench("run", "ablation-aspp", "--variants", "largefov", "--eval-output-stride", "8",
                 "--results-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "knob 'output_stride' is not valid for v2" in proc.stderr, proc.stderr
    proc = bench("run", "ablation-aspp", "--variants", "largefov", "--max-steps", "2", "--seeds", "1",
                 "--eval-scales", "0.5,1", "--eval-flip", "--wandb", "disabled", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "runs" / "ablation-aspp" / "largefov" / "seed-0.json").read_text())
    assert record["config"]["inference"] == {"scales": [0.5, 1.0], "flip": True, "output_stride": None}
    assert 0 <= record["metrics"]["miou"] <= 100 and 0 <= record["metrics"]["miou_crf"] <= 100
