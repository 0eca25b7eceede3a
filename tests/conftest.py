import os
import re

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub


@pytest.fixture(autouse=True)
def _one_thread():
    """2-core CI machines: torch's thread pool only adds contention in tiny tests."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY_BACKBONE = {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                 "intermediate_size": 64}


def cli_costs(directory, backbone: str, method: str) -> dict:
    """Run `eebench costs ... --json` at 100 classes and return the cost summary it wrote."""
    from eebench.cli import main
    from eebench.io import read_json

    path = directory / f"{backbone}-{method}.json"
    assert main(["costs", "--backbone", backbone, "--method", method, "--num-classes", "100",
                 "--json", str(path)]) == 0
    return read_json(path)


@pytest.fixture
def tiny_backbone():
    return dict(TINY_BACKBONE)


def train_killed_and_resumed(spec, directory, monkeypatch, after_kill=lambda path: None, logits=False):
    """Train ``spec`` once uninterrupted (``full.pt``) and once killed during its third epoch, then resumed
    (``killed.pt``; ``after_kill(path)`` runs in between) → the two checkpoints, for the test to compare.
    ``logits``: the uninterrupted run also writes its exit-logit cache (``full.npz``). Works inside each rank of a
    distributed job too (every rank is killed at the same point)."""
    import eebench.training.loop as loop
    from eebench.io import load_torch

    loop.train_stage(spec, directory / "full.pt", progress=False, logits_out=directory / "full.npz" if logits else None)
    real_batches, calls = loop.batches, {"n": 0}

    def killed_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the job is killed during its third epoch
        return real_batches(*args, **kwargs)

    monkeypatch.setattr(loop, "batches", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        loop.train_stage(spec, directory / "killed.pt", progress=False)
    after_kill(directory / "killed.pt")
    monkeypatch.setattr(loop, "batches", real_batches)
    loop.train_stage(spec, directory / "killed.pt", progress=False)
    return load_torch(directory / "full.pt"), load_torch(directory / "killed.pt")


def job_counts(log: str) -> dict[str, int]:
    """Snakemake's "Job stats" table (jobs per rule) from a run's output."""
    block = log.split("Job stats:")[1].split("total")[0] if "Job stats:" in log else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def one_line(fn, *args, **kw) -> str:
    """The error ``fn`` raises, asserted to be one line with its fix (``problem — fix``)."""
    from eebench.errors import EEBenchError

    with pytest.raises(EEBenchError) as err:
        fn(*args, **kw)
    msg = str(err.value)
    assert "\n" not in msg and " — " in msg, msg
    return msg


def headless_dom(page, profile_dir) -> tuple[str, list[str]]:
    """``page`` (a local HTML file) rendered by headless Chromium: its DOM after the scripts ran, and the console
    lines it logged. The calling test is skipped where no Chromium is installed."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
