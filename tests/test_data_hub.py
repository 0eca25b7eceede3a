"""A hub dataset that cannot be had offline is one fast, actionable line — never a traceback or 20 s of retries."""
import socket
import time

import datasets  # noqa: F401  (imported here so the timings below measure the load, not the import)
import pytest

from eebench.data import load_dataset
from eebench.errors import EEBenchError


def assert_one_fast_line(spec, limit_s=5.0):  # a retrying hub client takes 20+ s
    t0 = time.perf_counter()
    with pytest.raises(EEBenchError) as err:
        load_dataset(spec)
    elapsed = time.perf_counter() - t0
    msg = str(err.value)
    assert "\n" not in msg and elapsed < limit_s, (elapsed, msg)
    assert f"dataset {spec['name']!r}" in msg and "root:" in msg and "save_to_disk" in msg and "ImageFolder" in msg
    return msg


@pytest.mark.parametrize("name,hub", [("cifar100", "uoft-cs/cifar100"), ("food101", "ethz/food101"),
                                      ("imagenet1k", "ILSVRC/imagenet-1k")])
def test_offline_hub_dataset_is_one_fast_line(monkeypatch, tmp_path, name, hub):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = assert_one_fast_line({"name": name, "cache_dir": str(tmp_path)})
    assert hub in msg and "offline" in msg


def test_unreachable_hub_without_the_offline_flag_fails_fast(monkeypatch, tmp_path):
    """No network and no HF_HUB_OFFLINE: the 3 s reachability probe switches to offline mode instead of retrying."""
    import huggingface_hub.constants as hub_constants

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
    port = closed.getsockname()[1]
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    try:
        msg = assert_one_fast_line({"name": "cifar100", "revision": "abc123", "cache_dir": str(tmp_path)})
    finally:
        closed.close()
    assert "uoft-cs/cifar100 @ abc123" in msg
    assert hub_constants.HF_HUB_OFFLINE is False and datasets.config.HF_HUB_OFFLINE is False  # restored after the call


def test_generic_images_needs_a_root_or_a_hub():
    with pytest.raises(EEBenchError, match="needs root: .* or hub:"):
        load_dataset({"name": "images"})
