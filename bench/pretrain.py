"""``bench pretrain BACKBONE --scale tiny``: the tiny scale's ImageNet pretraining of one trunk.

The papers fine-tune ImageNet-pretrained trunks (v1 Sec. 3.1, v2 Sec. 4.1, v3 Sec. 4.1, v3+
Sec. 4); a narrow trunk trained from scratch for a few hundred steps learns whatever the head was
meant to add. So the tiny scale pretrains its trunks the way ImageNet's were: image-level
classification (bench/data/objects.py: 50 classes of object-centred images, its own data seed),
a classifier on top of the trunk, SGD, then the classifier is dropped.

The trunk is built exactly as the tiny DeepLab builds it (width 1/8; VGG-16 with BN, DeepLab's
pooling and conv5 rate 2), and the classifier on top is ImageNet's:
- VGG-16: fc6 as a 7x7 conv over pool5 (ImageNet's fc6 sees pool5's 7x7 map; here pool5 is 8x8 at
  64 px and output stride 8, and fc6 steps by 2), fc7 and fc8 1x1,
  4096 / 8 = 512 channels, scores averaged over positions. DeepLab then decimates fc6 / fc7 into
  its own fc6 / fc7 (bench/models/weights.py, v1 Sec. 3.2), as from ImageNet's.
- ResNet-50/101, Xception-65: output stride 32 (the ImageNet networks'), global average pool, fc.

The file is a state dict in the layout of the library the paper scale's ImageNet weights come
from (torchvision ``features.N`` / ``classifier.0,3,6`` for VGG-16, ``conv1 ... fc`` for ResNet,
timm's keys with ``head.fc`` for Xception-65), so one loader serves both scales. Inputs are
normalised with ImageNet's mean/std, as every network here is fed (no stem adaptation).

Beside the file, a record (JSON): data, protocol, final loss, top-1 accuracy on a held-out split,
time, machine, commit and the file's sha256. bench.trunks reads the records of a versioned set
(``trunks/tiny-v1/``) to name and check the shipped files.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.atomic import atomic_write
from bench.data import objects
from bench.data.transforms import normalize
from bench.errors import BenchError
from bench.models.layers import scaled
from bench.provenance import environment, utc_now
from bench.trunks import BACKBONES, file_sha256

VGG_FC = 4096  # ImageNet VGG-16's fc6 / fc7 channels, scaled by the width


@dataclass(frozen=True)
class PretrainProtocol:
    """The tiny scale's pretraining recipe: one for every trunk."""

    width: float = 0.125            # the tiny DeepLab's
    image_size: int = objects.IMAGE_SIZE
    num_train: int = 20_000         # drawn once, each image seen ~6 times (with flips)
    num_val: int = 2_000
    data_seed: int = objects.DATA_SEED
    steps: int = 2_000
    batch_size: int = 64
    lr: float = 0.1                 # ImageNet's ResNet recipe at batch 256 is 0.1; BN everywhere
    warmup_steps: int = 100         # linear, then cosine to 0
    momentum: float = 0.9
    weight_decay: float = 1e-4      # ImageNet ResNet's
    seed: int = 0
    threads: int = 2                # torch's CPU threads: another count can change the floats


TINY_PRETRAIN = PretrainProtocol()


class TrunkClassifier(nn.Module):
    """A DeepLab trunk with ImageNet's classifier on top (see the module doc)."""

    def __init__(self, backbone: str, width: float, num_classes: int):
        super().__init__()
        self.backbone_name = backbone
        if backbone == "vgg16":
            # each trunk's module imported when built: Xception's pulls in timm, which VGG needs not
            from bench.models.vgg import atrous_vgg16, vgg16_out_channels

            self.trunk = atrous_vgg16(width, batch_norm=True)
            fc = scaled(VGG_FC, width)
            # stride 2: a classifier needs fc6's 7x7 window, not at every one of pool5's positions
            # (4x cheaper; ImageNet's VGG evaluates it once per 224 px crop)
            self.fc6 = nn.Conv2d(vgg16_out_channels(width), fc, 7, stride=2, padding=3)
            self.fc7 = nn.Conv2d(fc, fc, 1)
            self.fc8 = nn.Conv2d(fc, num_classes, 1)
        else:
            if backbone.startswith("resnet"):
                from bench.models.resnet import atrous_resnet  # see above

                self.trunk = atrous_resnet(backbone, width=width, output_stride=32)
            elif backbone == "xception65":
                from bench.models.xception import AlignedXception65  # see above

                self.trunk = AlignedXception65(width=width, output_stride=32)
            else:
                raise BenchError(f"unknown backbone {backbone!r}; valid: {', '.join(BACKBONES)}")
            self.fc = nn.Linear(self.trunk.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk(x)
        if self.backbone_name == "vgg16":
            x = torch.relu(self.fc6(x))
            return self.fc8(torch.relu(self.fc7(x))).mean(dim=(2, 3))
        return self.fc(x.mean(dim=(2, 3)))

    def library_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in torchvision's (VGG-16, ResNet) or timm's (Xception-65) layout."""
        trunk = {k: v.detach().clone() for k, v in self.trunk.state_dict().items()}
        if self.backbone_name == "vgg16":
            state = {f"features.{k}": v for k, v in trunk.items()}
            for index, conv in (("0", self.fc6), ("3", self.fc7), ("6", self.fc8)):
                state[f"classifier.{index}.weight"] = conv.weight.detach().flatten(1).clone()  # Linear's layout
                state[f"classifier.{index}.bias"] = conv.bias.detach().clone()
            return state
        head = "head.fc" if self.backbone_name == "xception65" else "fc"
        return {**trunk, f"{head}.weight": self.fc.weight.detach().clone(), f"{head}.bias": self.fc.bias.detach().clone()}


def state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """torch.save's bytes of ``state``, the same on every save: saved to a file, torch names the
    zip's inner folder after the (temporary) file, so equal tensors would hash differently."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def rebuild_command(backbone: str, out_dir: Path, p: PretrainProtocol) -> str:
    steps = "" if p.steps == TINY_PRETRAIN.steps else f" --steps {p.steps}"
    return f"bench pretrain {backbone} --scale tiny{steps} --out {out_dir}"  # out_dir as given: relative stays


def lr_at(step: int, p: PretrainProtocol) -> float:
    if step < p.warmup_steps:
        return p.lr * (step + 1) / p.warmup_steps
    done = (step - p.warmup_steps) / max(1, p.steps - p.warmup_steps)
    return p.lr * 0.5 * (1.0 + math.cos(math.pi * done))


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 250) -> float:
    """Top-1 accuracy (%) on a held-out split, BN in eval mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            logits = model(normalize(images[i:i + batch]))
            correct += int((logits.argmax(1) == torch.from_numpy(labels[i:i + batch])).sum())
    model.train()
    return 100.0 * correct / max(1, len(labels))


def pretrain(backbone: str, out_dir: str | Path, protocol: PretrainProtocol = TINY_PRETRAIN,
             progress: bool = True) -> dict[str, Any]:
    """Train the trunk, write OUT_DIR/BACKBONE.pt (the library-layout state dict) and
    OUT_DIR/BACKBONE.json (its record); returns the record. Trains on ``protocol.threads`` CPU
    threads (then restores torch's), so a rebuild on the same machine gives the same bytes."""
    if backbone not in BACKBONES:
        raise BenchError(f"unknown backbone {backbone!r}; valid: {', '.join(BACKBONES)}")
    p = protocol
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(p.threads)
    try:
        return _pretrain(backbone, out_dir, p, progress)
    finally:
        torch.set_num_threads(threads)


def _pretrain(backbone: str, out_dir: Path, p: PretrainProtocol, progress: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm  # here: only pretraining draws a bar of its own

    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    started = time.perf_counter()
    train_x, train_y = objects.generate(p.data_seed, "train", p.num_train, p.image_size)
    val_x, val_y = objects.generate(p.data_seed, "val", p.num_val, p.image_size)
    model = TrunkClassifier(backbone, p.width, len(objects.CLASSES))
    decay = [q for q in model.parameters() if q.ndim > 1]
    no_decay = [q for q in model.parameters() if q.ndim <= 1]  # BN and biases, as ImageNet recipes do
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": p.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=p.lr, momentum=p.momentum)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    bar = tqdm(total=p.steps, desc=f"pretrain {backbone}", unit="step", disable=not progress)
    losses: list[float] = []
    curve: list[dict[str, float]] = []
    order = rng.permutation(p.num_train)
    cursor = 0
    for step in range(p.steps):
        if cursor + p.batch_size > p.num_train:
            order, cursor = rng.permutation(p.num_train), 0
        index = np.sort(order[cursor:cursor + p.batch_size])
        cursor += p.batch_size
        x = normalize(train_x[index])
        flip = torch.from_numpy(rng.random(p.batch_size) < 0.5)
        x[flip] = x[flip].flip(-1)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, p)
        loss = loss_fn(model(x), torch.from_numpy(train_y[index]))
        if not torch.isfinite(loss):
            raise BenchError(f"pretraining {backbone} diverged at step {step} (loss {loss.item()}); lower the lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % max(1, p.steps // 5) == 0 or step + 1 == p.steps:
            curve.append({"step": step + 1, "loss": float(np.mean(losses[-50:])),
                          "val_top1": accuracy(model, val_x[:500], val_y[:500])})
            bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}", val_top1=f"{curve[-1]['val_top1']:.1f}")
        bar.update(1)
    bar.close()
    top1 = accuracy(model, val_x, val_y)
    seconds = time.perf_counter() - started
    path = out_dir / f"{backbone}.pt"
    atomic_write(path, lambda tmp: tmp.write_bytes(state_dict_bytes(model.library_state_dict())))
    record = {
        "backbone": backbone, "file": path.name, "sha256": file_sha256(path),
        "params_m": round(sum(q.numel() for q in model.trunk.parameters()) / 1e6, 3),
        "data": {"generator": "bench/data/objects.py", "classes": len(objects.CLASSES), "seed": p.data_seed,
                 "image_size": p.image_size, "num_train": p.num_train, "num_val": p.num_val},
        "protocol": asdict(p), "val_top1": round(top1, 2), "final_loss": round(float(np.mean(losses[-50:])), 4),
        "curve": curve, "seconds": round(seconds, 1), "finished": utc_now(),
        "rebuild": rebuild_command(backbone, out_dir, p),
        **environment(torch.device("cpu")),
    }
    atomic_write(out_dir / f"{backbone}.json",
                 lambda tmp: tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n"))
    return record
