"""Bad conditions a user meets end in one line, `eebench: error: <problem> — <fix>`, exit code 2, and nothing
half-written: a full disk or an unwritable folder, a plugin head that raises, a hub that cannot be reached."""
import errno
import json
import os
import socket
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import TINY_BACKBONE
from test_store_integrity import full_store

import eebench.io as eio
from eebench.cli import main
from eebench.errors import EEBenchError


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("eebench: error: ") and "\n" not in err and " — " in err, err
    return err


def merged_store(tmp_path):
    """A store and an earlier merge result (m.parquet + its m.csv mirror) that a failed merge must leave intact."""
    full_store().to_parquet(tmp_path / "a.parquet")
    assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "out" / "m.parquet")]) == 0
    return {p: p.read_bytes() for p in (tmp_path / "out").iterdir()}


def test_a_full_disk_is_one_line_and_leaves_the_previous_files(tmp_path, monkeypatch, capsys):
    before = merged_store(tmp_path)
    real = pd.DataFrame.to_parquet

    def disk_full(self, path, *args, **kwargs):  # half the file is written, then the disk is full
        real(self, path, *args, **kwargs)
        with open(path, "r+b") as fh:
            fh.truncate(100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "out" / "m.parquet")]) == 2
    err = one_error_line(capsys)
    assert f"cannot write {tmp_path / 'out' / 'm.parquet'} (No space left on device) — free space" in err
    assert {p: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before  # no temp file, nothing changed


def test_a_checkpoint_write_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import torch

    eio.save_torch(tmp_path / "c.pt", {"w": torch.zeros(3)})
    before = (tmp_path / "c.pt").read_bytes()

    class FullDisk:
        """A file that takes 64 bytes, then reports a full disk (what torch.save meets on a full filesystem)."""

        def __init__(self, path, mode):
            self.fh, self.n = open(path, mode), 0

        def write(self, data):
            self.n += len(data)
            if self.n > 64:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.fh.write(data)

        def flush(self):
            self.fh.flush()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(eio, "open", FullDisk, raising=False)  # the module's open(), not the builtin everywhere
    with pytest.raises(EEBenchError) as err:
        eio.save_torch(tmp_path / "c.pt", {"w": torch.ones(1000)})
    assert str(err.value).startswith(f"cannot write {tmp_path / 'c.pt'} (No space left on device)")
    assert (tmp_path / "c.pt").read_bytes() == before and sorted(os.listdir(tmp_path)) == ["c.pt"]


def test_a_read_only_filesystem_is_one_line(tmp_path, monkeypatch, capsys):
    before = merged_store(tmp_path)

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr(eio.tempfile, "mkstemp", read_only)
    assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "out" / "m.parquet")]) == 2
    assert "(Read-only file system) — that filesystem is mounted read-only" in one_error_line(capsys)
    assert {p: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_an_unwritable_results_folder_is_one_line(tmp_path, capsys):
    before = merged_store(tmp_path)
    os.chmod(tmp_path / "out", 0o555)
    try:
        if os.access(tmp_path / "out", os.W_OK):
            pytest.skip("this user writes into read-only folders (root with CAP_DAC_OVERRIDE)")
        assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "out" / "m.parquet")]) == 2
    finally:
        os.chmod(tmp_path / "out", 0o755)
    assert f"cannot write {tmp_path / 'out' / 'm.parquet'} (Permission denied) — give yourself access" in \
        one_error_line(capsys)
    assert {p: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_a_refused_write_outside_the_atomic_writers_is_one_line(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", denied)  # new-head creates its folder itself
    assert main(["new-head", "fresh", "--dir", str(tmp_path / "heads")]) == 2
    assert f"cannot access {tmp_path / 'heads'} (Permission denied) — give yourself access" in one_error_line(capsys)


RAISES = '''
from torch import nn
from eebench.heads import ExitHead, HeadOutput, register_head


@register_head("{name}")
class Raising(ExitHead):
    def __init__(self, layout, num_classes, exit_layer):
        super().__init__(layout, num_classes, exit_layer)
        self.fc = nn.Linear(layout.width, num_classes)
        if {in_init}:
            raise {error}("head weights missing")

    def forward(self, hidden, mask=None):
        if not {in_init}:
            raise {error}("bad shape")
        return HeadOutput(self.fc(hidden[:, 0]))
'''


@pytest.mark.parametrize("where,error", [("__init__", "RuntimeError"), ("forward", "ValueError"),
                                         ("__init__", "TypeError")])  # TypeError: not "bad options for the head"
def test_a_plugin_head_that_raises_is_one_line_naming_head_file_and_exception(tmp_path, capsys, where, error):
    name = f"raising_{where.strip('_')}_{error.lower()}"
    path = tmp_path / f"{name}.py"
    path.write_text(RAISES.format(name=name, in_init=where == "__init__", error=error))
    assert main(["check-head", name, "--plugin", str(path)]) == 2
    err = one_error_line(capsys)
    message = "head weights missing" if where == "__init__" else "bad shape"
    line = 12 if where == "__init__" else 16  # the raise statements' lines in RAISES
    assert f"head {name!r} in plugin file {path} raised {error}: {message} (in {where}, line {line})" in err


def test_a_training_job_whose_plugin_head_raises_is_one_line(tmp_path, capsys):
    from eebench.plugins import file_hash

    path = tmp_path / "raising_in_training.py"
    path.write_text(RAISES.format(name="raising_in_training", in_init=False, error="RuntimeError"))
    job = {"run": "t", "seed": 0, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
           "backbone": TINY_BACKBONE,
           "method": {"name": "m", "exit_layers": [2], "heads": [{"type": "raising_in_training"}],
                      "plugins": [{"path": str(path), "sha256": file_hash(path)}]},
           "stage": {"name": "s", "loss": "normal", "train": "all", "init": None, "epochs": 1, "batch_size": 64,
                     "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0, "loss_params": {}}}
    assert main(["train", "--spec", json.dumps(job), "--out", str(tmp_path / "m.pt"),
                 "--epochs-csv", str(tmp_path / "m.csv")]) == 2
    err = one_error_line(capsys)
    assert f"head 'raising_in_training' in plugin file {path} raised RuntimeError: bad shape (in forward" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raising_in_training.py"]  # no checkpoint, no empty CSV


def test_an_unreachable_hub_fails_at_once_for_weights_and_tokenizers(monkeypatch, tmp_path):
    """No network and no HF_HUB_OFFLINE: the reachability probe switches the load to offline mode, so the hub client
    never sleeps between retries (left alone it retries five times with back-off, 20–50 s per file)."""
    import huggingface_hub.constants as hub_constants
    import huggingface_hub.utils._http as hub_http
    from transformers import BertConfig, BertModel

    from eebench.backbones.hf_bert import HFBertBackbone
    from eebench.backbones.loading import load_hf_model, load_timm_model

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", f"http://127.0.0.1:{closed.getsockname()[1]}")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    sleeps = []

    class Clock:  # the hub client's back-off sleeps are recorded, not slept
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            sleeps.append(seconds)

    monkeypatch.setattr(hub_http, "time", Clock())
    hub_name = SimpleNamespace(tokenizer_source="google-bert/bert-base-uncased")
    loads = {"could not load pretrained weights": lambda: load_hf_model(BertModel, BertConfig(num_hidden_layers=1),
                                                                        "google-bert/bert-base-uncased"),
             "could not load pretrained weights 'timm/": lambda: load_timm_model(
                 "vit_tiny_patch16_224", "timm/vit_tiny_patch16_224.augreg_in21k"),
             "could not load the tokenizer": lambda: HFBertBackbone.tokenizer.func(hub_name)}
    try:
        for what, load in loads.items():
            t0 = time.perf_counter()
            with pytest.raises(EEBenchError) as err:
                load()
            msg = str(err.value)
            assert "\n" not in msg and msg.startswith(what), msg
            assert time.perf_counter() - t0 < 10  # generous: the probe alone may take up to 3 s
    finally:
        closed.close()
    assert sleeps == []  # no retry waited
    assert hub_constants.HF_HUB_OFFLINE is False  # restored after each call
