"""Where a run's trunk weights come from (bench.trunks): at the paper scale every backbone starts
from ImageNet, read offline through torchvision's and timm's own caches; the tiny scale trains from
scratch; --backbone-weights overrides per backbone; whatever is missing or does not fit is one line
before anything trains.

The cached files are random (tests/conftest.py writes them once per session under the libraries'
own names); no test here reaches the network (conftest's no_network).
"""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from bench import reuse, trunks
from bench.errors import BenchError
from bench.models import build_model, load_backbone_weights
from bench.registry import get_experiment
from bench.runner import is_finished, plan_runs, run_experiment

PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# -- which weights each scale starts from ------------------------------------------------------

@pytest.mark.parametrize("version,knobs,name", [
    ("v1", {}, "torchvision VGG16_Weights.IMAGENET1K_V1"),
    ("v2", {"backbone": "resnet101"}, "torchvision ResNet101_Weights.IMAGENET1K_V1"),
    ("v3", {"backbone": "resnet50"}, "torchvision ResNet50_Weights.IMAGENET1K_V1"),
    ("v3+", {"backbone": "xception65"}, "timm xception65.tf_in1k"),
])
def test_the_paper_scale_starts_every_backbone_from_imagenet_and_tiny_from_scratch(version, knobs, name):
    assert trunks.source_for("paper", version, knobs).name == name
    assert trunks.source_for("tiny", version, knobs) is None
    assert trunks.resolve("tiny", version, knobs) is None  # the committed tiny records stay as they are
    assert trunks.source_for("paper", version, knobs, "none") is None


def test_the_weights_live_where_torchvision_and_timm_keep_them(imagenet_caches):
    torch_home, hf_cache = imagenet_caches
    vgg = trunks.IMAGENET["vgg16"]
    assert vgg.url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert vgg.cache_path() == torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert trunks.IMAGENET["resnet101"].cache_path().name == "resnet101-63fe2227.pth"
    assert trunks.IMAGENET["resnet50"].cache_path().name == "resnet50-0676ba61.pth"
    xception = trunks.IMAGENET["xception65"]
    assert xception.url == "https://huggingface.co/timm/xception65.tf_in1k"
    assert xception.cache_path() == hf_cache / "models--timm--xception65.tf_in1k"


def test_resolving_weights_does_not_import_lightning():
    code = ("import sys\nfrom bench import trunks\ntrunks.source_for('paper', 'v1', {})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


# -- --backbone-weights ------------------------------------------------------------------------

def test_a_spec_names_files_per_backbone_and_the_others_keep_the_scales_weights(tmp_path):
    custom = tmp_path / "vgg16-custom.pth"
    torch.save({}, custom)
    spec = trunks.parse_spec(f"vgg16={custom}, resnet101=none")
    assert spec.source("paper", "vgg16") == trunks.LocalFile(custom.resolve())
    assert spec.source("tiny", "vgg16").name == "file vgg16-custom.pth"
    assert spec.source("paper", "resnet101") is None  # from scratch, on purpose
    assert spec.source("paper", "xception65").name == "timm xception65.tf_in1k"
    assert trunks.parse_spec("none").source("paper", "vgg16") is None
    weights = trunks.resolve("paper", "v1", {}, spec)
    assert weights == {"backbone": "vgg16", "name": "file vgg16-custom.pth", "sha256": sha256(custom),
                       "path": str(custom.resolve())}


@pytest.mark.parametrize("spec,message", [
    ("vgg19=w.pth", "unknown backbone 'vgg19'; valid: BACKBONE=PATH or BACKBONE=none, comma-separated, "
                    "with BACKBONE one of vgg16, resnet50, resnet101, xception65"),
    ("w.pth", "--backbone-weights 'w.pth' is not BACKBONE=PATH"),
    ("vgg16=", "'vgg16=' is not BACKBONE=PATH"),
    ("vgg16=none,resnet50", "--backbone-weights 'vgg16=none,resnet50': 'resnet50' is not BACKBONE=PATH"),
    ("=w.pth", "is not BACKBONE=PATH"),
    ("", "is not BACKBONE=PATH"),
    ("vgg16=none,vgg16=none", "vgg16 is given twice"),
    ("vgg16=/nonexistent/vgg16.pth", "--backbone-weights vgg16=/nonexistent/vgg16.pth: no such file"),
])
def test_a_bad_spec_is_one_line_naming_what_is_valid(spec, message):
    with pytest.raises(BenchError) as err:
        trunks.parse_spec(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- ImageNet weights read offline through the libraries' caches ------------------------------

@pytest.mark.parametrize("version,knobs,file,tensor", [
    ("v1", {}, "vgg16-397923af.pth", ("backbone.28.weight", "features.28.weight")),
    ("v3", {"backbone": "resnet101"}, "resnet101-63fe2227.pth",
     ("backbone.layer4.2.conv3.weight", "layer4.2.conv3.weight")),
])
def test_torchvision_imagenet_weights_load_offline_from_the_torch_hub_cache(imagenet_caches, version, knobs,
                                                                            file, tensor):
    path = imagenet_caches[0] / "hub" / "checkpoints" / file
    weights = trunks.resolve("paper", version, knobs)
    assert weights == {"backbone": knobs.get("backbone", "vgg16"),
                       "name": trunks.source_for("paper", version, knobs).name,
                       "sha256": sha256(path), "path": str(path)}
    model = build_model(version, **knobs)
    load_backbone_weights(model, trunks.state_dict_of(weights))
    ours, theirs = tensor
    assert torch.equal(model.state_dict()[ours], torch.load(path, weights_only=True)[theirs])


def test_timm_xception65_loads_offline_from_the_hugging_face_cache(imagenet_caches, monkeypatch):
    import timm
    from huggingface_hub import constants

    weights = trunks.resolve("paper", "v3+", {"backbone": "xception65"})
    assert weights["name"] == "timm xception65.tf_in1k"
    assert weights["path"].endswith("models--timm--xception65.tf_in1k/snapshots/"
                                    "0123456789abcdef0123456789abcdef01234567/model.safetensors")
    assert weights["sha256"] == sha256(weights["path"])
    model = build_model("v3+", backbone="xception65")
    report = load_backbone_weights(model, trunks.state_dict_of(weights))
    assert len(report.loaded) == len(model.backbone.state_dict())  # every tensor of our aligned Xception-65
    assert set(report.unused) == {"head.fc.weight", "head.fc.bias"}
    # timm itself finds the same file in this cache (offline: it asks the hub nothing)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    reference = timm.create_model("xception65.tf_in1k", pretrained=True).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.backbone.state_dict().items())


def test_xception65_weights_and_files_expect_0_5_normalised_inputs_and_torchvisions_ours(tmp_path):
    """Our pipeline normalises with ImageNet's mean/std (what torchvision's weights expect); timm's
    xception65.tf_in1k, and a user's xception65 file, expect mean = std = 0.5: their stem is adapted."""
    tf = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert trunks.input_norm_of(trunks.resolve("paper", "v3+", {"backbone": "xception65"}, fetch=False)) == tf
    assert trunks.input_norm_of(trunks.resolve("paper", "v1", {}, fetch=False)) is None
    assert trunks.input_norm_of(trunks.resolve("paper", "v3", {"backbone": "resnet50"}, fetch=False)) is None
    custom = tmp_path / "trunk.pth"
    torch.save({}, custom)
    assert trunks.input_norm_of(trunks.resolve("paper", "v3+", {"backbone": "xception65"},
                                               f"xception65={custom}")) == tf
    assert trunks.input_norm_of(trunks.resolve("paper", "v1", {}, f"vgg16={custom}")) is None


def test_a_file_changed_since_the_plan_is_refused(tmp_path):
    path = tmp_path / "vgg16-custom.pth"
    torch.save({"a": torch.zeros(1)}, path)
    weights = trunks.resolve("paper", "v1", {}, f"vgg16={path}")
    torch.save({"a": torch.ones(1)}, path)
    with pytest.raises(BenchError, match="the file changed"):
        trunks.state_dict_of(weights)


# -- a paper-scale plan: every run names its weights, nothing trains ---------------------------

def test_a_paper_scale_plan_names_each_runs_imagenet_weights(imagenet_caches, tmp_path):
    torch_home, hf_cache = imagenet_caches
    configs = plan_runs(get_experiment("versions"), scale="paper", data="synthetic", seeds=1, variants=None,
                        max_steps=None, results_dir=tmp_path / "results")
    names = {cfg.variant: cfg.backbone_weights["name"] for cfg in configs}
    assert names == {"v1-largefov": "torchvision VGG16_Weights.IMAGENET1K_V1",
                     "v2-aspp-l": "torchvision VGG16_Weights.IMAGENET1K_V1",
                     "v3": "torchvision ResNet101_Weights.IMAGENET1K_V1",
                     "v3plus": "torchvision ResNet101_Weights.IMAGENET1K_V1"}
    vgg = torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert configs[0].backbone_weights == {"backbone": "vgg16", "name": "torchvision VGG16_Weights.IMAGENET1K_V1",
                                           "sha256": sha256(vgg), "path": str(vgg)}
    assert trunks.describe(configs[0]) == f"torchvision VGG16_Weights.IMAGENET1K_V1 ({vgg})"
    assert all(trunks.is_cached(cfg) for cfg in configs)
    assert not (tmp_path / "results" / "runs").exists()

    # the weights are named by name and sha256: another machine's path is the same run
    moved = replace(configs[0], backbone_weights={**configs[0].backbone_weights, "path": "/elsewhere/vgg16.pth"})
    record = {"status": "ok", "config": moved.to_dict()}
    assert is_finished(record, configs[0])
    assert reuse.training_identity(moved) == reuse.training_identity(configs[0])
    other = replace(configs[0], backbone_weights={**configs[0].backbone_weights, "sha256": "0" * 64})
    assert not is_finished({"status": "ok", "config": other.to_dict()}, configs[0])
    assert reuse.training_identity(other) != reuse.training_identity(configs[0])

    [x65] = plan_runs(get_experiment("ablation-decoder"), scale="paper", data="synthetic", seeds=1,
                      variants=["x65-decoder"], max_steps=None, results_dir=tmp_path / "results")
    assert x65.backbone_weights["name"] == "timm xception65.tf_in1k"


def test_a_plan_to_show_downloads_nothing_and_says_where_the_weights_would_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    [cfg] = plan_runs(get_experiment("ablation-aspp"), scale="paper", data="synthetic", seeds=1,
                      variants=["largefov"], max_steps=None, results_dir=tmp_path / "results", fetch_weights=False)
    assert cfg.backbone_weights == {"backbone": "vgg16", "name": "torchvision VGG16_Weights.IMAGENET1K_V1",
                                    "sha256": None, "path": None}
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert trunks.describe(cfg) == ("torchvision VGG16_Weights.IMAGENET1K_V1 (not cached: "
                                    f"https://download.pytorch.org/models/vgg16-397923af.pth -> {cache})")
    assert not trunks.is_cached(cfg)
    assert not cache.exists()


# -- no cache, no network: one line before anything trains -------------------------------------

@pytest.mark.parametrize("offline", [None, "1"])
def test_without_cache_or_network_the_weights_are_one_line_naming_the_file_and_where_to_put_it(
        tmp_path, monkeypatch, offline):
    from huggingface_hub import constants

    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    if offline is None:  # the download is tried: conftest's no_network refuses it at once
        monkeypatch.delenv("BENCH_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    else:
        monkeypatch.setenv("BENCH_OFFLINE", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))

    with pytest.raises(BenchError) as err:
        trunks.resolve("paper", "v1", {})
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    message = str(err.value)
    assert f"put https://download.pytorch.org/models/vgg16-397923af.pth at {cache}" in message
    assert "--backbone-weights vgg16=PATH" in message and "--backbone-weights none" in message
    assert ("BENCH_OFFLINE=1" if offline else "tests do not reach the network") in message
    assert "\n" not in message and not cache.exists()

    with pytest.raises(BenchError) as err:
        trunks.resolve("paper", "v3+", {"backbone": "xception65"})
    message = str(err.value)
    assert "model.safetensors of https://huggingface.co/timm/xception65.tf_in1k" in message
    assert f"{tmp_path / 'hf' / 'models--timm--xception65.tf_in1k'}/snapshots/REVISION/model.safetensors" in message
    assert "--backbone-weights xception65=PATH" in message and "\n" not in message


def cli(*args, cwd, env=None):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_a_paper_scale_run_without_the_weights_exits_2_with_one_line_and_trains_nothing(tmp_path):
    proc = cli("run", "ablation-aspp", "--scale", "paper", "--smoke", "--results-dir", str(tmp_path / "results"),
               cwd=tmp_path, env={"BENCH_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch"),
                                  "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = proc.stderr.strip().splitlines()
    assert "vgg16-397923af.pth" in line and str(tmp_path / "torch" / "hub" / "checkpoints") in line
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in line
    assert not (tmp_path / "results" / "runs").exists() and not (tmp_path / "results" / "checkpoints").exists()


def test_weights_of_another_backbone_stop_the_sweep_before_anything_trains_and_keep_the_records(
        imagenet_caches, random_state_dict, tmp_path):
    import torchvision

    with torch.device("meta"):
        resnet50 = torchvision.models.resnet50(weights=None)
    wrong = tmp_path / "resnet50-imagenet.pth"
    torch.save(random_state_dict(resnet50), wrong)
    results = tmp_path / "results"
    earlier = results / "runs" / "ablation-image-pooling" / "aspp" / "seed-0.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text(json.dumps({"status": "ok", "note": "recorded earlier"}))
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}

    with pytest.raises(BenchError) as err:
        run_experiment(get_experiment("ablation-image-pooling"), results_dir=results, scale="paper", seeds=1,
                       wandb_mode="disabled", backbone_weights=f"resnet101={wrong}")
    message = str(err.value)
    assert message.startswith("resnet101 weights file resnet50-imagenet.pth: ")
    assert "(resnet50 vs resnet101?)" in message and "\n" not in message
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before
