"""Where a run's trunk (backbone) weights come from: each scale names its own source per backbone.

At ``--scale paper`` every backbone starts from its ImageNet weights, as in the papers (v1 and v2
fine-tune ImageNet-pretrained VGG-16 and ResNet-101, v3 ResNet-50/101, v3+ ResNet-101 and the
aligned Xception-65, each pretrained on ImageNet-1k). The tiny scale's narrow networks have no
ImageNet weights; ``bench pretrain`` (bench/pretrain.py) pretrains them on synthetic object
classification, and the repo ships the files as a versioned set (``trunks/tiny-v1/``, a
``ShippedTrunk`` each, named by its record's sha256): ``--backbone-weights tiny-v1``. Until the
tiny scale's tables are rerun from them (issue 17), its default is still from scratch, which is
what the committed tiny records are.

Files are fetched only by the libraries' own download and cache code, so a torch hub or Hugging
Face cache the user already has is reused and nothing is downloaded twice:
- torchvision: the Weights enum's URL, downloaded by ``torch.hub.download_url_to_file`` (what
  ``load_state_dict_from_url`` does) into ``torch.hub.get_dir()/checkpoints/FILENAME``, read by
  ``Weights.get_state_dict`` (``load_state_dict_from_url``, which does not download a cached file);
- timm: the Hugging Face repo ``timm/MODEL``, downloaded by ``hf_hub_download`` into the HF cache
  (``HF_HUB_CACHE``, ``HF_HOME``), read as timm reads it (safetensors first).
Without network a missing file is one BenchError line before anything trains: it names the file,
the exact place to put it, where it comes from and the alternatives. "No network" is decided
fast: ``BENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` (HF only) say so; otherwise a TCP connection to
the download host (5 s at most; skipped behind a proxy) must open before the library tries, so an
unreachable host fails at once instead of through the libraries' retries and their missing timeouts.

``--backbone-weights SPEC`` (``parse_spec``): absent - each scale's default source; ``none`` -
every backbone from scratch; ``tiny-v1`` - a shipped set; ``vgg16=PATH,resnet101=none`` - these backbones from these state dict
files (or from scratch), the others from the scale's default. Backbones: vgg16, resnet50,
resnet101, xception65.

A run's ``RunConfig.backbone_weights`` (``resolve``) is ``{"backbone", "name", "sha256", "path"}``
or None (from scratch): the name and sha256 say which weights; the path is where this machine
found the file (not part of the run's identity). At run time ``state_dict_of`` reads the file
through the library again and checks that its sha256 is still the config's.

Input normalisation (``input_norm_of``): our data pipeline normalises every input with ImageNet's
mean/std, as torchvision's weights expect; timm's ``xception65.tf_in1k`` expects mean = std = 0.5
(its pretrained config), so its ``input_norm`` is passed to ``load_backbone_weights``, which adapts
the stem. A user's file (LocalFile) is taken to follow its backbone's ImageNet source (xception65:
timm's 0.5 / 0.5; vgg16, resnet: ImageNet's), unless ``bench pretrain`` wrote it (its record
``BACKBONE.json`` lies beside it): those, like the shipped sets, were trained on our inputs.

To make a shipped set a scale's default, map the scale to it in ``SCALE_SOURCES``
(``"tiny": shipped(TINY_TRUNKS)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from bench.errors import BenchError, one_line

BACKBONES = ("vgg16", "resnet50", "resnet101", "xception65")  # build_model's backbone knob
OFFLINE_ENV = "BENCH_OFFLINE"  # 1: never try to download; a missing file is an error at once
PROBE_TIMEOUT_S = 5            # to open a TCP connection to the download host
READ_TIMEOUT_S = 60            # torch.hub's download has no timeout of its own: a stalled read ends here
ALTERNATIVES = ("or give --backbone-weights {backbone}=PATH (a state dict file) or --backbone-weights none "
                "(from scratch)")


@dataclass(frozen=True)
class TorchvisionImageNet:
    """torchvision's ImageNet weights, named by their Weights enum member."""

    weights: str  # "VGG16_Weights.IMAGENET1K_V1"
    input_norm = None  # torchvision's ImageNet weights expect ImageNet's mean/std, as our data pipeline gives

    @property
    def name(self) -> str:
        return f"torchvision {self.weights}"

    @property
    def url(self) -> str:
        import torchvision.models  # here: torchvision takes a second to import

        enum, member = self.weights.split(".")
        return getattr(torchvision.models, enum)[member].url

    def cache_path(self) -> Path:
        """Where torchvision keeps (and looks for) the file: read at each call, so TORCH_HOME counts."""
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(self.url).path)

    def locate(self) -> Path | None:
        path = self.cache_path()
        return path if path.is_file() else None

    def fetch(self, backbone: str) -> Path:
        path = self.locate()
        if path is not None:
            return path
        cache, url = self.cache_path(), self.url
        why = self.offline()
        if why is None:
            # torch.hub's own download (a temporary file, moved into place when complete), with the
            # hash prefix of the file name checked, as load_state_dict_from_url does
            match = torch.hub.HASH_REGEX.search(cache.name)
            print(f"downloading {self.name} from {url} to {cache}", file=sys.stderr)
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                with _read_timeout(READ_TIMEOUT_S):
                    torch.hub.download_url_to_file(url, str(cache), match.group(1) if match else None)
                return cache
            except (OSError, RuntimeError) as err:  # URLError, timeouts, a full disk; a wrong hash
                why = one_line(err)
        raise self.missing(backbone, why)

    def offline(self) -> str | None:
        """Why the file cannot be downloaded now, or None."""
        return _offline(self.url)

    def missing(self, backbone: str, why: str) -> BenchError:
        cache = self.cache_path()
        return BenchError(f"{backbone} starts from {self.name}: {cache.name} is not in the torch hub cache and "
                          f"cannot be downloaded ({why}); put {self.url} at {cache}, "
                          + ALTERNATIVES.format(backbone=backbone))

    def read(self, path: Path) -> dict[str, torch.Tensor]:
        """torchvision's own loading: with the file cached (``path`` is that file) it downloads nothing."""
        import torchvision.models

        enum, member = self.weights.split(".")
        return getattr(torchvision.models, enum)[member].get_state_dict(map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class TimmImageNet:
    """timm's ImageNet weights, from its Hugging Face repo ``timm/MODEL``."""

    model: str  # "xception65.tf_in1k"
    files: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")  # timm prefers safetensors

    @property
    def name(self) -> str:
        return f"timm {self.model}"

    @property
    def repo(self) -> str:
        return f"timm/{self.model}"

    @property
    def input_norm(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per RGB channel the weights were trained with, for pixels in [0, 1]: timm's
        pretrained config of the model (xception65.tf_in1k: 0.5 and 0.5, TF's Inception preprocessing)."""
        from timm.models import get_pretrained_cfg  # here: timm takes seconds to import

        cfg = get_pretrained_cfg(self.model)
        return tuple(cfg.mean), tuple(cfg.std)

    @property
    def url(self) -> str:
        from huggingface_hub import constants

        return f"{constants.ENDPOINT}/{self.repo}"

    def cache_path(self) -> Path:
        """The repo's folder in the HF cache (what ``hf download`` writes: refs/main naming a
        snapshot, snapshots/REVISION/model.safetensors)."""
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE) / f"models--{self.repo.replace('/', '--')}"

    def locate(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache  # reads the cache only, never the network

        for filename in self.files:
            path = try_to_load_from_cache(self.repo, filename)
            if isinstance(path, str):
                return Path(path)
        return None

    def fetch(self, backbone: str) -> Path:
        path = self.locate()
        if path is not None:
            return path
        from huggingface_hub import hf_hub_download

        why = self.offline()
        if why is None:
            try:
                return Path(hf_hub_download(self.repo, self.files[0]))
            except Exception as err:  # huggingface_hub's HTTP, cache and repository errors
                why = one_line(err)
        raise self.missing(backbone, why)

    def offline(self) -> str | None:
        """Why the file cannot be downloaded now, or None."""
        from huggingface_hub import constants

        return "HF_HUB_OFFLINE=1" if constants.HF_HUB_OFFLINE else _offline(constants.ENDPOINT)

    def missing(self, backbone: str, why: str) -> BenchError:
        return BenchError(f"{backbone} starts from {self.name}: {self.files[0]} of {self.url} is not in the "
                          f"Hugging Face cache and cannot be downloaded ({why}); put it at "
                          f"{self.cache_path()}/snapshots/REVISION/{self.files[0]} with refs/main holding REVISION "
                          f"(`hf download {self.repo} {self.files[0]}` writes that layout; copy the folder), "
                          + ALTERNATIVES.format(backbone=backbone))

    def read(self, path: Path) -> dict[str, torch.Tensor]:
        """As timm's ``load_state_dict_from_hf`` reads the file it downloaded."""
        return read_state_dict_file(path)


@dataclass(frozen=True)
class LocalFile:
    """A state dict file on this machine (``--backbone-weights BACKBONE=PATH``); with ``sha256``,
    only that file (a trunk shipped in the repo)."""

    path: Path
    sha256: str | None = None

    @property
    def name(self) -> str:
        return f"file {self.path.name}"

    @property
    def url(self) -> str:
        return str(self.path)

    def cache_path(self) -> Path:
        return self.path

    def locate(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def offline(self) -> str | None:
        """A file is not downloaded: it is here or it is not."""
        return None if self.path.is_file() else "no such file"

    def missing(self, backbone: str, why: str) -> BenchError:
        return BenchError(f"--backbone-weights {backbone}={self.path}: {why}")

    def fetch(self, backbone: str) -> Path:
        if not self.path.is_file():
            raise self.missing(backbone, "no such file")
        if self.sha256 is not None and file_sha256(self.path) != self.sha256:
            raise BenchError(f"{self.path} is not the {backbone} trunk it should be (sha256 "
                             f"{file_sha256(self.path)[:12]}..., expected {self.sha256[:12]}...); restore it "
                             "(git checkout) or " + ALTERNATIVES.format(backbone=backbone))
        return self.path

    def read(self, path: Path) -> dict[str, torch.Tensor]:
        return read_state_dict_file(path)  # a Hugging Face cache file reached by its path is safetensors


@dataclass(frozen=True)
class ShippedTrunk:
    """A trunk pretrained by ``bench pretrain`` and shipped in the repo: ``trunks/SET/BACKBONE.pt``,
    with its record ``BACKBONE.json`` (data, steps, accuracy, commit, sha256)."""

    set_name: str  # "tiny-v1": a new pretraining is a new set, so records never name changed bytes
    backbone: str
    input_norm = None  # pretrained on inputs normalised as ours (ImageNet's mean/std)

    @property
    def name(self) -> str:
        return f"deeplab-bench {self.set_name}/{self.backbone}"

    @property
    def path(self) -> Path:
        return TRUNKS_DIR / self.set_name / f"{self.backbone}.pt"

    @property
    def url(self) -> str:
        return f"bench pretrain {self.backbone} --scale tiny --out {TRUNKS_DIR / self.set_name}"

    def record(self) -> dict[str, Any]:
        return trunk_record(self.path, rebuild=self.url)

    def cache_path(self) -> Path:
        return self.path

    def locate(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def offline(self) -> str | None:
        return None if self.path.is_file() else "not in this checkout"

    def missing(self, backbone: str, why: str) -> BenchError:
        return BenchError(f"{backbone} starts from {self.name}: {self.path} is missing ({why}); restore it "
                          f"(git checkout), rebuild it ({self.url}), " + ALTERNATIVES.format(backbone=backbone))

    def fetch(self, backbone: str) -> Path:
        if not self.path.is_file():
            raise self.missing(backbone, "no such file")
        return LocalFile(self.path, self.record()["sha256"]).fetch(backbone)  # the bytes its record names

    def read(self, path: Path) -> dict[str, torch.Tensor]:
        return read_state_dict_file(path)


def trunk_record(path: Path, rebuild: str = "bench pretrain") -> dict[str, Any]:
    """The record ``bench pretrain`` wrote beside the trunk file ``path`` (BACKBONE.json); BenchError
    when it is missing, corrupt or names no sha256."""
    record_path = path.with_suffix(".json")
    try:
        record = json.loads(record_path.read_text())
        record["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:  # missing, corrupt, not a record
        raise BenchError(f"{record_path}: not a readable trunk record ({one_line(err)}); restore it (git checkout) "
                         f"or rebuild the trunk ({rebuild})") from None
    return record


def shipped(set_name: str) -> dict[str, ShippedTrunk]:
    """The shipped set's trunk per backbone, every backbone: one whose file is missing stops the
    run in one line when it is fetched, rather than training from scratch under the set's name."""
    return {b: ShippedTrunk(set_name, b) for b in BACKBONES}


def read_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict file: safetensors (the Hugging Face cache's format, read as timm reads it) or torch.save."""
    if path.suffix == ".safetensors":
        import safetensors.torch

        return safetensors.torch.load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


Source = TorchvisionImageNet | TimmImageNet | LocalFile | ShippedTrunk
TRUNKS_DIR = Path(__file__).resolve().parents[1] / "trunks"  # the shipped trunks (bench pretrain)
TINY_TRUNKS = "tiny-v1"  # the tiny scale's pretrained set: --backbone-weights tiny-v1
SHIPPED_SETS = (TINY_TRUNKS,)

# IMAGENET1K_V1: the papers fine-tune the original Caffe ImageNet models (VGG-16, ResNet), trained
# with the classic recipe; V1 is torchvision's training with that simple recipe ("reproduce closely
# the results of the paper"), V2 (ResNet) a 2021 recipe - long training, heavy augmentation, about +4.5
# top-1 - that none of the papers had. VGG16's IMAGENET1K_FEATURES (the SSD port of the Caffe
# weights) has no classifier values, and v1 initialises fc6/fc7 from the classifier.
IMAGENET = {
    "vgg16": TorchvisionImageNet("VGG16_Weights.IMAGENET1K_V1"),  # no BN: the paper scale's VGG
    "resnet50": TorchvisionImageNet("ResNet50_Weights.IMAGENET1K_V1"),
    "resnet101": TorchvisionImageNet("ResNet101_Weights.IMAGENET1K_V1"),
    # the aligned Xception-65 of v3+ (Sec. 3.2) with TensorFlow's ImageNet weights ported to timm;
    # its keys are our AlignedXception65's (xception65.ra3_in1k is timm's own later training)
    "xception65": TimmImageNet("xception65.tf_in1k"),
}
# each scale's trunk weights per backbone; a backbone it does not name trains from scratch
SCALE_SOURCES: dict[str, dict[str, Source]] = {"tiny": {}, "paper": IMAGENET}
KNOWN = {source.name: source for sources in (*SCALE_SOURCES.values(), *map(shipped, SHIPPED_SETS))
         for source in sources.values()}


@dataclass(frozen=True)
class WeightsSpec:
    """``--backbone-weights`` parsed: per-backbone overrides of the scale's sources."""

    overrides: dict[str, Source | None]  # backbone -> its source; None: from scratch
    scratch: bool = False                # `none`: every backbone from scratch

    def source(self, scale: str, backbone: str) -> Source | None:
        if self.scratch:
            return None
        if backbone in self.overrides:
            return self.overrides[backbone]
        return SCALE_SOURCES.get(scale, {}).get(backbone)


def parse_spec(spec: str | WeightsSpec | None) -> WeightsSpec:
    """``None`` (the scales' defaults), ``none``, or ``BACKBONE=PATH|none[,BACKBONE=PATH|none...]``;
    BenchError naming what is wrong and what is valid. Paths are checked to exist."""
    if isinstance(spec, WeightsSpec):
        return spec
    if spec is None:
        return WeightsSpec({})
    if spec.strip().lower() == "none":
        return WeightsSpec({}, scratch=True)
    if spec.strip() in SHIPPED_SETS:
        return WeightsSpec(dict(shipped(spec.strip())))
    valid = (f"valid: BACKBONE=PATH or BACKBONE=none, comma-separated, with BACKBONE one of {', '.join(BACKBONES)}; "
             f"or none (every backbone from scratch); or a shipped set ({', '.join(SHIPPED_SETS)}); absent: the scale's "
             "default (paper: ImageNet)")
    overrides: dict[str, Source | None] = {}
    for item in spec.split(","):
        backbone, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not backbone or not value:
            where = "" if item == spec else f": {item.strip()!r}"
            raise BenchError(f"--backbone-weights {spec!r}{where} is not BACKBONE=PATH; {valid}")
        if backbone not in BACKBONES:
            raise BenchError(f"--backbone-weights: unknown backbone {backbone!r}; {valid}")
        if backbone in overrides:
            raise BenchError(f"--backbone-weights: {backbone} is given twice; {valid}")
        if value.lower() == "none":
            overrides[backbone] = None
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            raise BenchError(f"--backbone-weights {backbone}={value}: no such file")
        overrides[backbone] = LocalFile(path.resolve())
    return WeightsSpec(overrides)


def backbone_of(version: str, knobs: dict[str, Any]) -> str:
    """The run's backbone, its version's default included (v1: vgg16, v3: resnet101)."""
    from bench.models.config import make_config  # here: bench.models imports timm, which a plan to show need not

    return make_config(version, knobs).backbone


def source_for(scale: str, version: str, knobs: dict[str, Any],
               spec: str | WeightsSpec | None = None) -> Source | None:
    """Where the run's trunk weights would come from; None: from scratch. Reads no weights."""
    return parse_spec(spec).source(scale, backbone_of(version, knobs))


def resolve(scale: str, version: str, knobs: dict[str, Any], spec: str | WeightsSpec | None = None,
            fetch: bool = True) -> dict[str, Any] | None:
    """RunConfig.backbone_weights of a run: the file fetched (downloaded through the library where
    it is missing; BenchError where it cannot be) and hashed. ``fetch=False`` downloads nothing:
    a missing file gives sha256 and path None (such a config is for showing, not for running)."""
    backbone = backbone_of(version, knobs)
    source = parse_spec(spec).source(scale, backbone)
    if source is None:
        return None
    path = source.fetch(backbone) if fetch else source.locate()
    return {"backbone": backbone, "name": source.name, "sha256": file_sha256(path) if path else None,
            "path": str(path) if path else None}


def source_of(weights: dict[str, Any]) -> Source:
    """The source a resolved ``backbone_weights`` came from: a scale's by its name, else its file."""
    known = KNOWN.get(weights["name"])
    if known is not None and not isinstance(known, LocalFile):
        return known  # read where this machine's library keeps it (a SLURM node's own cache)
    if weights.get("path"):
        return LocalFile(Path(weights["path"]))
    raise BenchError(f"backbone weights {weights['name']!r}: unknown source and no file")


def input_norm_of(weights: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) the run's trunk weights expect inputs normalised with, for ``load_backbone_weights``;
    None: ImageNet's, as our data pipeline gives. A file of the user's (LocalFile) is taken to follow
    its backbone's ImageNet source (an xception65 file timm's 0.5 / 0.5, a vgg16 or resnet file
    ours), unless bench pretrain wrote it: trained on our inputs, like the shipped sets."""
    source = source_of(weights)  # a shipped set's name: its ShippedTrunk, whose input_norm is ours (None)
    if isinstance(source, LocalFile):
        if _pretrained_here(source.path, weights.get("sha256")):  # trained on our inputs
            return None
        source = IMAGENET[weights["backbone"]]
    return source.input_norm


def _pretrained_here(path: Path, sha256: str | None) -> bool:
    """Whether ``bench pretrain`` wrote the file: its record lies beside it and names its sha256."""
    try:
        return sha256 is not None and trunk_record(path)["sha256"] == sha256
    except BenchError:  # no record beside it: a file from elsewhere
        return False


def state_dict_of(weights: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The trunk's state dict, read through its library, after checking the file is still the one
    the run's config names (sha256)."""
    source = source_of(weights)
    planned = weights.get("path")
    if (source.locate() is None and planned and Path(planned).is_file()
            and file_sha256(planned) == weights.get("sha256")):
        source = LocalFile(Path(planned))  # a node whose own cache is elsewhere: the planned file, same bytes
    path = source.fetch(weights["backbone"])
    sha256 = file_sha256(path)
    if sha256 != weights.get("sha256"):
        raise BenchError(f"{weights['name']} at {path} has sha256 {sha256[:12]}..., not the "
                         f"{str(weights.get('sha256'))[:12]}... the run was planned with; the file changed: "
                         "rerun the command to plan with the file as it is")
    return source.read(path)


def describe(cfg) -> str:
    """What a run (a RunConfig from plan_runs) starts from, in words, without reading any weights:
    "from scratch", or the weights' name and where the file is or will be downloaded from."""
    weights = cfg.backbone_weights
    if weights is None:
        return "from scratch"
    if weights.get("path"):
        return f"{weights['name']} ({weights['path']})"
    source = source_of(weights)
    return f"{weights['name']} (not cached: {source.url} -> {source.cache_path()})"


def check_obtainable(cfg) -> None:
    """For a plan (nothing downloaded): BenchError, the same one line a run would give, when the
    run's weights are neither on this machine nor downloadable now."""
    weights = cfg.backbone_weights
    if weights is None or is_cached(cfg):
        return
    source = source_of(weights)
    why = source.offline()
    if why is not None:
        raise source.missing(weights["backbone"], why)


def is_cached(cfg) -> bool:
    """True when the run needs nothing downloaded: from scratch, or its weights' file is on this machine."""
    weights = cfg.backbone_weights
    return weights is None or source_of(weights).locate() is not None


def file_sha256(path: str | os.PathLike) -> str:
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline(url: str) -> str | None:
    """Why nothing can be downloaded from ``url`` now, or None when its host answers (or a proxy
    is in the way, which only the library can try)."""
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        return f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]}"
    parts = urlparse(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxies = urllib.request.getproxies()
    if parts.scheme in proxies and not urllib.request.proxy_bypass(host):
        return None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"no network: {host} unreachable: {one_line(err)}"
    return None


@contextlib.contextmanager
def _read_timeout(seconds: float):
    """socket's default timeout for the duration (torch.hub opens its URL without one)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
