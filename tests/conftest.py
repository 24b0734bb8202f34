"""Test-suite settings: `make test` is the fast suite (under 15 minutes on a 2-core CPU); the
slow end-to-end checks it leaves out are marked ``extra`` and run by `make test-extra`.

No test reaches the network: ``no_network`` refuses every connection but loopback's. The
ImageNet-like weight files (random, seeded: what matters is where each tensor lands) are written
once per session at the names torchvision's and timm's caches give them.
"""

import ipaddress
import socket
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def pytest_configure(config):
    config.addinivalue_line("markers", "extra: a slow end-to-end check; `make test-extra` runs it, `make test` does not")


# -- no network ---------------------------------------------------------------------------------

class NetworkBlocked(OSError):
    """What a test gets for a connection off this machine."""


def _is_local_host(host) -> bool:
    if host in (None, "", "localhost", socket.gethostname()):
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    try:
        address = ipaddress.ip_address(host.split("%")[0])  # an IPv6 scope id: fe80::1%lo
    except ValueError:
        return host.endswith(".localhost")
    return address.is_loopback or address.is_unspecified


def _is_local_address(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths, abstract sockets
        return True
    return _is_local_host(address[0])


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Every socket connection off loopback (127.0.0.0/8, ::1, localhost) and every name lookup of
    another host fails at once, so no test downloads anything or waits on a remote server; a local
    HTTP server, W&B's service and gloo's rendezvous keep working. Child processes are not covered:
    a test that runs `bench` in one passes BENCH_OFFLINE=1 where it could download."""
    real = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    real_connect, real_connect_ex, real_getaddrinfo = real

    def connect(self, address):
        if not _is_local_address(address):
            raise NetworkBlocked(f"tests do not reach the network (tests/conftest.py): connect to {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _is_local_address(address):
            raise NetworkBlocked(f"tests do not reach the network (tests/conftest.py): connect to {address}")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local_host(host):
            raise socket.gaierror(socket.EAI_NONAME, f"tests do not reach the network (tests/conftest.py): {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    yield
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = real


# -- ImageNet-like weights in torchvision's and timm's caches -------------------------------------
# The file names are the libraries' (torchvision's Weights URLs, timm's Hugging Face repo), spelled
# here rather than asked of bench.trunks, so a wrong name there fails the tests.

TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "resnet50": "resnet50-0676ba61.pth",
                     "resnet101": "resnet101-63fe2227.pth"}
TIMM_XCEPTION65 = "timm/xception65.tf_in1k"
HF_REVISION = "0123456789abcdef0123456789abcdef01234567"  # any 40-hex commit id


def _weights_cache():
    """tools/weights_cache.py, which make paper-smoke seeds its cache with."""
    sys.path.insert(0, str(TOOLS))
    import weights_cache

    return weights_cache


def _random_state_dict(module):
    """The module's state dict with seeded random values, BN statistics mean 0 and variance 1."""
    return _weights_cache().random_state_dict(module)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def random_state_dict():
    """``f(module)``: its state dict with seeded random values (a module built on the meta device will do)."""
    return _random_state_dict


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub/checkpoints holds random VGG-16 and ResNet-101 ImageNet files under
    torchvision's names (VGG-16 with its fc layers is 528 MB: written once per session)."""
    import torch

    home = tmp_path_factory.mktemp("torch-home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("vgg16", "resnet101"):
        module = _weights_cache().imagenet_module(name)
        torch.save(_random_state_dict(module), checkpoints / TORCHVISION_FILES[name])
    return home


@pytest.fixture(scope="session")
def hf_hub_cache(tmp_path_factory):
    """A Hugging Face hub cache holding a random timm xception65.tf_in1k, laid out as
    ``hf_hub_download`` writes it: blobs/SHA256, snapshots/REVISION/model.safetensors linking to
    the blob, refs/main naming the revision."""
    import hashlib

    import safetensors.torch

    cache = tmp_path_factory.mktemp("hf-hub")
    repo = cache / f"models--{TIMM_XCEPTION65.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HF_REVISION)
    module = _weights_cache().imagenet_module("xception65")
    staged = repo / "staged.safetensors"
    safetensors.torch.save_file(_random_state_dict(module), str(staged))
    blob = repo / "blobs" / hashlib.sha256(staged.read_bytes()).hexdigest()
    staged.rename(blob)
    snapshot = repo / "snapshots" / HF_REVISION
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(blob)
    return cache


@pytest.fixture
def imagenet_caches(torch_home, hf_hub_cache, monkeypatch):
    """torchvision and timm (huggingface_hub) look in the session's caches; nothing else is cached.
    huggingface_hub reads HF_HUB_CACHE once at import, so its constant is set too."""
    from huggingface_hub import constants

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_hub_cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_hub_cache))
    return torch_home, hf_hub_cache
