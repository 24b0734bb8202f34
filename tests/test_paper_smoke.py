"""The paper scale end to end on this CPU (make paper-smoke, tools/paper_smoke.py), one case in the
suite: VOC archives of full-size images served on 127.0.0.1, `bench data prepare voc` and
`bench data check` on them, a seeded ImageNet weights cache, then `bench run ablation-aspp
--scale paper --data voc:ROOT --smoke` at the real width and crop, with the CRF, a record that
names its ImageNet weights, and the tables. The other experiments run in `make paper-smoke`."""

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("paper_smoke", ROOT / "tools" / "paper_smoke.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_smoke"] = module
    spec.loader.exec_module(module)
    return module


def test_ablation_aspp_runs_at_the_paper_scale_on_a_prepared_voc_tree(tmp_path, monkeypatch, capsys):
    for name in ("TORCH_HOME", "HF_HUB_CACHE", "BENCH_OFFLINE"):
        monkeypatch.delenv(name, raising=False)  # the tool sets them; monkeypatch restores them after
    tool = load_tool()
    code = tool.main(["--experiments", "ablation-aspp", "--variants", "aspp-l", "--work", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    record = json.loads((tmp_path / "results" / "runs" / "ablation-aspp" / "aspp-l" / "seed-0.json").read_text())
    config = record["config"]
    assert config["scale"] == "paper" and config["knobs"]["width"] == 1.0
    assert config["protocol"]["crop_size"] == 321 and config["protocol"]["batch_size"] == 2
    assert config["backbone_weights"]["name"] == "torchvision VGG16_Weights.IMAGENET1K_V1"
    assert len(config["backbone_weights"]["sha256"]) == 64
    assert record["metrics"]["miou_crf"] is not None
    assert "aspp-l" in (tmp_path / "results" / "ablation-aspp.md").read_text()
