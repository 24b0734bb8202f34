"""Random "ImageNet" trunk files where torchvision's and timm's caches keep the real ones.

For checks that must run the paper scale's loading path without a download (make paper-smoke):
each backbone's file is written at the path bench.trunks' source gives (torch hub's
checkpoints/FILENAME for torchvision, the Hugging Face hub layout refs/main -> snapshots/REV/ for
timm), with seeded random tensors of the real architecture's shapes. Set TORCH_HOME and
HF_HUB_CACHE before importing this module (huggingface_hub reads its cache path once, at import).
"""

from __future__ import annotations

from pathlib import Path

import torch

HF_REVISION = "0" * 40  # any 40-hex commit id names the snapshot


def random_state_dict(module: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """The module's state dict with seeded random values (a module on the meta device will do).
    BN statistics are ImageNet-like enough to normalise: mean 0, variance 1 (a random variance can
    be negative, and v2's frozen BN trains with these statistics)."""
    generator = torch.Generator().manual_seed(seed)

    def value(key: str, like: torch.Tensor) -> torch.Tensor:
        if key.endswith("running_var"):
            return torch.ones(like.shape)
        if key.endswith("running_mean") or not like.is_floating_point():
            return torch.zeros(like.shape, dtype=like.dtype)
        return torch.randn(like.shape, generator=generator) * 0.01

    return {k: value(k, v) for k, v in module.state_dict().items()}


def imagenet_module(backbone: str) -> torch.nn.Module:
    """The library's own ImageNet architecture of a backbone, on the meta device (no memory)."""
    import timm
    import torchvision

    with torch.device("meta"):
        if backbone == "xception65":
            return timm.create_model("xception65", pretrained=False)
        return getattr(torchvision.models, backbone)(weights=None)


def seed_imagenet_cache(backbones: list[str]) -> dict[str, Path]:
    """Write each backbone's random ImageNet file into its library's cache; backbone -> the file."""
    from bench.trunks import IMAGENET, TimmImageNet

    written = {}
    for backbone in backbones:
        source = IMAGENET[backbone]
        state = random_state_dict(imagenet_module(backbone))
        if isinstance(source, TimmImageNet):
            import safetensors.torch

            repo = source.cache_path()
            snapshot = repo / "snapshots" / HF_REVISION
            snapshot.mkdir(parents=True, exist_ok=True)
            (repo / "refs").mkdir(exist_ok=True)
            (repo / "refs" / "main").write_text(HF_REVISION)
            path = snapshot / source.files[0]
            safetensors.torch.save_file(state, str(path))
        else:
            path = source.cache_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, path)
        written[backbone] = path
    return written
