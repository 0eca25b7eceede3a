"""The HF hub is asked only when it can answer.

Left alone, ``huggingface_hub`` retries an unreachable hub with back-off (five retries, about 20–50 s per file) before
it falls back to its cache. Here every hub load (datasets, pretrained weights, tokenizers) first decides whether it is
offline: ``HF_HUB_OFFLINE`` (or ``HF_DATASETS_OFFLINE`` / ``TRANSFORMERS_OFFLINE``) is set, read at call time and not
only at import, or the hub's host does not accept a connection within 3 s. Offline, the load runs in the libraries'
offline mode: the local HF cache still serves what it holds, and a miss fails at once.
"""
from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from urllib.parse import urlparse

PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_TIMEOUT_S = 3.0


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Offline mode as the user set it, or the hub's host does not answer within 3 s (no network)."""
    from huggingface_hub import constants

    datasets = sys.modules.get("datasets")
    if (_env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")
            or constants.HF_HUB_OFFLINE or (datasets is not None and datasets.config.HF_HUB_OFFLINE)):
        return True
    if any(os.environ.get(v) for v in PROXIES):
        return False  # a proxy may reach what a direct connection cannot
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return True
    return False


@contextmanager
def offline_mode(on: bool):
    """Both libraries read their offline flag at import; set it for this call only (``datasets`` where imported)."""
    from huggingface_hub import constants

    datasets = sys.modules.get("datasets")
    config = datasets.config if datasets is not None else None
    saved = constants.HF_HUB_OFFLINE, config.HF_HUB_OFFLINE if config is not None else None
    if on:
        constants.HF_HUB_OFFLINE = True
        if config is not None:
            config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved[0]
        if config is not None:
            config.HF_HUB_OFFLINE = saved[1]


@contextmanager
def hub_call():
    """Run a hub load in offline mode when the hub cannot answer; → whether it is offline (for the error message)."""
    offline = hub_offline()
    with offline_mode(offline):
        yield offline
