"""Per-sample records of a run's operating points: for every store row (method, seed, policy setting, and each
truncated exit) which test samples it answered correctly and the row whose compute each sample paid. They are
replayed from the run's exit-logit caches by the curves' own code (``curves.sweep_decisions``), so any resample of
the test set gives each point's accuracy, expected MACs and speed-ups exactly: what a paired test over the same test
samples needs (``eebench.leaderboard.paired``), and small enough to commit beside a board's store.

The file is one compressed npz, read with ``allow_pickle=False`` (nothing in it runs as code):

- ``meta``: JSON text — format, run, N, the labels' sha256, the metric, the run's MAC convention, whether the task has
  a correctness (regression has none: STS-B's entries keep their compute rows only), per method its cost count (the
  run's costs JSON, from which every MAC figure is recomputed by ``measure.macs``), its rows' backbone layers, depth
  and exit-layer convention, and each entry's method;
- ``keys``: one text per entry, the store ``KEY`` fields as JSON (``store.key_text``): a store row finds its record;
- ``correct``: ``np.packbits`` of the bool [entries, N] correctness, along the samples;
- ``compute_row``: uint8 [entries, N], the 0-based row up to which the backbone (and the heads on the way) ran;
- ``lengths`` (text only): each sample's token count, for the MACs at its real length.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import fail
from ..io import atomic_path, read_json, writing
from .store import KEY, STATIC, has_static_rows, key_text, metric_of, point_params, static_params

FORMAT = 1
REBUILD = "rebuild the board from its finished run (eebench board build NAME)"


def labels_digest(labels) -> str:
    """sha256 of the test labels (int64 for classes, float64 for regression targets, little-endian): two records
    are paired only when they were measured on the same labelled samples in the same order."""
    a = np.asarray(labels)
    a = a.astype("<f8" if np.issubdtype(a.dtype, np.floating) else "<i8")
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@dataclass(eq=False)
class EntrySamples:
    """One operating point's per-sample record. ``correct`` is None where the task is regression."""

    key: dict[str, Any]
    correct: np.ndarray | None
    compute_row: np.ndarray
    costs: dict[str, Any] = field(repr=False)
    row_layers: list[int]
    num_layers: int
    exit_layer_convention: str
    convention: str
    labels_sha256: str
    lengths: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.compute_row.shape[0])

    @cached_property
    def cum_macs(self) -> dict[str, np.ndarray]:
        """Per convention, the MACs of a sample that stopped at each row (padded length for text: the store's
        ``expected_macs_*``)."""
        from ..measure.macs import CONVENTIONS, cumulative_macs

        return {c: cumulative_macs(self.costs, c).numpy() for c in CONVENTIONS}

    @property
    def plain_macs(self) -> dict[str, float]:
        """Per convention, the plain backbone's MACs per sample (no exit heads): what a MAC speed-up divides."""
        return {c: float(v["backbone"]) for c, v in self.costs["macs"].items()}

    def sample_macs(self, convention: str | None = None, real: bool = False) -> np.ndarray:
        """float64[N]: what each sample cost; ``real`` (text): at its own token count, as ``curves`` charges it."""
        conv = convention or self.convention
        if not real:
            return self.cum_macs[conv][self.compute_row]
        from ..curves import per_sample_macs

        table = per_sample_macs(self.costs, conv, self._lengths()).numpy()
        return table[self.compute_row, np.arange(self.n)]

    def plain_sample_macs(self, convention: str | None = None, real: bool = False) -> np.ndarray:
        """float64[N]: the plain backbone's MACs for each sample (the same for every sample unless ``real``)."""
        conv = convention or self.convention
        if not real:
            return np.full(self.n, self.plain_macs[conv])
        from ..curves import backbone_macs

        return backbone_macs(self.costs, conv, self._lengths()).numpy()

    def _lengths(self):
        import torch

        if self.lengths is None:
            raise fail(f"entry {self.key.get('method')} has no token lengths (not a text run)",
                       "use real=False: MACs at the padded length")
        return torch.from_numpy(np.asarray(self.lengths, dtype=np.int64))

    def accuracy(self) -> float:
        if self.correct is None:
            raise fail(f"entry {self.key.get('method')} ({self.key.get('run')}) has no correctness: a regression task",
                       "compare regression entries by their store metric, not per-sample accuracy")
        return float(self.correct.mean())

    def mac_speedup(self, convention: str | None = None, real: bool = False) -> float:
        """Plain backbone MACs ÷ mean MACs per sample (the store's ``head_aware_speedup_*`` when not ``real``)."""
        return float(self.plain_sample_macs(convention, real).mean() / self.sample_macs(convention, real).mean())

    def executed_layers(self) -> np.ndarray:
        from ..curves import logged_layers

        logged = logged_layers(self.row_layers, self.num_layers, self.exit_layer_convention).numpy()
        return logged[self.compute_row]

    def layer_speedup(self) -> float:
        return float(self.num_layers / self.executed_layers().astype(float).mean())


@dataclass(eq=False)
class Samples:
    """Every entry of one run: ``keys[i]`` (store ``KEY`` JSON) ↔ row i of ``correct`` / ``compute_row``."""

    run: str
    n: int
    labels_sha256: str
    metric: str
    macs_convention: str
    has_correct: bool
    methods: dict[str, dict[str, Any]]
    keys: list[str]
    entry_method: list[str]
    correct: np.ndarray  # bool [E, N]
    compute_row: np.ndarray  # uint8 [E, N]
    lengths: np.ndarray | None = None

    @cached_property
    def _index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def _entry(self, i: int) -> EntrySamples:
        m = self.methods[self.entry_method[i]]
        return EntrySamples(key=json.loads(self.keys[i]), correct=self.correct[i] if self.has_correct else None,
                            compute_row=self.compute_row[i], costs=m["costs"], row_layers=list(m["row_layers"]),
                            num_layers=int(m["num_layers"]), exit_layer_convention=m["exit_layer_convention"],
                            convention=self.macs_convention, labels_sha256=self.labels_sha256, lengths=self.lengths)

    def entry(self, key_row) -> EntrySamples:
        """The record of one store row (a row of the store DataFrame, or a dict of its ``KEY`` fields)."""
        key = key_text(key_row)
        if key not in self._index:
            raise fail(f"run {self.run}: store row {key} has no per-sample record",
                       "the store and samples.npz are from different runs: " + REBUILD)
        return self._entry(self._index[key])

    def entries(self, method: str | None = None, seed: int | None = None,
                static: bool = False) -> list[EntrySamples]:
        """The records of one method (and seed), in the order of its operating curve; ``static``: the truncated-exit
        points instead of the policy's."""
        out = []
        for i, k in enumerate(self.keys):
            key = json.loads(k)
            if (method is None or key["method"] == method) and (seed is None or key["seed"] == int(seed)) and \
                    (key["policy"] == STATIC) == static:
                out.append(self._entry(i))
        return out


def run_samples(plan, root: str | Path = ".") -> Samples:
    """The per-sample records of every store row of a finished run (``root``: the folder holding its results/)."""
    from ..curves import sweep_decisions
    from ..evaluate import load_cache
    from ..measure.macs import cumulative_macs
    from ..plan import costs_path, curve_path

    root, cfg = Path(root), plan.config
    keys, owners, correct, rows = [], [], [], []
    methods: dict[str, dict[str, Any]] = {}
    first: dict[str, Any] = {}
    for method in plan.methods:
        spec = plan.method(method)
        costs = read_json(root / costs_path(plan.run, plan.cost_canonical[method]))
        for seed in plan.seeds:
            cache_file = root / plan.final_logits(method, seed)
            cache = load_cache(cache_file)
            labels = cache["labels"]
            _same_test_set(first, cache, cache_file)
            curve_file = root / curve_path(plan.run, method, seed)
            curve = pd.read_csv(curve_file)
            metric, _ = metric_of(curve)
            first.setdefault("metric", metric)
            methods[method] = {"costs": costs, "row_layers": [int(v) for v in cache["row_layers"]],
                               "num_layers": int(cache["num_layers"]),
                               "exit_layer_convention": spec["policy"].get("exit_layer_convention", "correct")}
            base = {"run": plan.run, "method": method, "backbone": cfg["backbone"]["name"],
                    "dataset": cfg["dataset"]["name"], "seed": int(seed)}
            decisions = [d for _, d in sweep_decisions(cache, spec["policy"])]
            if len(decisions) != len(curve):
                raise fail(f"{curve_file} has {len(curve)} points but the policy's sweep has {len(decisions)}",
                           "the curve is stale: rerun snakemake on this config")
            classes = not labels.is_floating_point()
            cum = cumulative_macs(costs, "paper").numpy()
            for i, (d, params) in enumerate(zip(decisions, point_params(curve))):
                ok = (d.prediction == labels).numpy() if classes else np.zeros(len(labels), bool)
                row = d.compute_index.numpy()
                _agrees(curve_file, curve, i, ok if classes else None, float(cum[row].mean()))
                keys.append(key_text({**base, "policy": curve["policy"].iloc[i], "policy_params": params}))
                owners.append(method)
                correct.append(ok)
                rows.append(row)
            if has_static_rows(spec, metric):
                for k, params in enumerate(static_params(cache["row_layers"])):
                    keys.append(key_text({**base, "policy": STATIC, "policy_params": params}))
                    owners.append(method)
                    correct.append((cache["logits"][k].argmax(-1) == labels).numpy())
                    rows.append(np.full(len(labels), k))
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise fail(f"run {plan.run}: two operating points share the key {dup}", "report this: keys must be unique")
    if max(len(m["row_layers"]) for m in methods.values()) > 256:
        raise fail(f"run {plan.run} has a model with more than 256 rows", "per-sample rows are stored as uint8")
    return Samples(run=plan.run, n=int(first["n"]), labels_sha256=first["sha"], metric=first["metric"],
                   macs_convention=cfg["report"].get("macs_convention", "paper"), has_correct=first["classes"],
                   methods=methods, keys=keys, entry_method=owners, correct=np.stack(correct).astype(bool),
                   compute_row=np.stack(rows).astype(np.uint8), lengths=first.get("lengths"))


def _same_test_set(first: dict, cache: dict, path) -> None:
    """Every cache of a run holds the same test samples in the same order (else nothing pairs)."""
    labels = cache["labels"]
    sha = labels_digest(labels.numpy())
    lengths = cache.get("lengths")
    lengths = None if lengths is None else lengths.numpy().astype(np.int32)
    if "sha" not in first:
        first.update(sha=sha, n=int(labels.numel()), classes=not labels.is_floating_point(), lengths=lengths)
        return
    if sha != first["sha"] or (lengths is None) != (first["lengths"] is None) or \
            (lengths is not None and not np.array_equal(lengths, first["lengths"])):
        raise fail(f"exit-logit cache {path} holds other test samples than the run's first cache",
                   "rerun snakemake on this config: every method is evaluated on one test split")


def _agrees(curve_file, curve: pd.DataFrame, i: int, correct: np.ndarray | None, macs: float) -> None:
    """The replay reproduces the curve's point (its accuracy and padded paper MACs): a cache rewritten after its
    curve is refused instead of paired."""
    checks = [("expected_macs_paper", macs, float(curve["expected_macs_paper"].iloc[i]))]
    if correct is not None:
        checks.append(("accuracy", float(correct.mean()), float(curve["accuracy"].iloc[i])))
    for name, got, want in checks:
        if not np.isclose(got, want, rtol=1e-9, atol=1e-12):
            raise fail(f"{curve_file} point {i}: {name} {want!r} but its logit cache replays to {got!r}",
                       "the curve is stale: rerun snakemake on this config")


def write_samples(s: Samples, path: str | Path) -> None:
    meta = {"format": FORMAT, "run": s.run, "n": s.n, "labels_sha256": s.labels_sha256, "metric": s.metric,
            "macs_convention": s.macs_convention, "has_correct": s.has_correct, "methods": s.methods,
            "entry_method": s.entry_method}
    arrays = {"meta": np.array(json.dumps(meta, sort_keys=True)), "keys": np.array(s.keys, dtype=np.str_),
              "correct": np.packbits(s.correct, axis=1), "compute_row": s.compute_row.astype(np.uint8)}
    if s.lengths is not None:
        arrays["lengths"] = np.asarray(s.lengths, dtype=np.int32)
    with atomic_path(path) as tmp, writing(tmp), open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _pickled(path, err: ValueError) -> bool:
    """numpy's refusal of pickled content: an object array inside the archive, or a whole file that is a pickle
    (protocol 2+ starts with 0x80; numpy calls any file it cannot parse otherwise "pickled" data)."""
    if "Object arrays" in str(err):
        return True
    if "pickle" in str(err).lower():
        with open(path, "rb") as fh:
            return fh.read(1) == b"\x80"
    return False


def _bad(path, problem: str) -> Exception:
    return fail(f"samples file {path}: {problem}", REBUILD)


def read_samples(path: str | Path) -> Samples:
    path = Path(path)
    if not path.is_file():
        raise fail(f"samples file {path} does not exist", REBUILD)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise _bad(path, "not an npz archive (a bare array)")
        with z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        if _pickled(path, err):
            raise fail(f"samples file {path} holds pickled Python objects, which could run code; refused",
                       "use a samples.npz written by eebench (board build)") from err
        raise _bad(path, f"unreadable or corrupt ({type(err).__name__})") from err
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as err:
        raise _bad(path, f"unreadable or corrupt ({type(err).__name__})") from err
    if not {"meta", "keys", "correct", "compute_row"} <= set(arrays):
        raise _bad(path, "not a per-sample record (it lacks meta, keys, correct or compute_row)")
    try:
        meta = json.loads(str(arrays["meta"]))
        n, methods, owners = int(meta["n"]), meta["methods"], list(meta["entry_method"])
        fmt = meta["format"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise _bad(path, f"its meta is not the record's JSON ({type(err).__name__})") from err
    if fmt != FORMAT:
        raise _bad(path, f"format {fmt!r}, this eebench reads format {FORMAT}")
    keys = [str(k) for k in arrays["keys"].reshape(-1)]
    packed, rows = arrays["correct"], arrays["compute_row"]
    e = len(keys)
    if packed.dtype != np.uint8 or packed.shape != (e, (n + 7) // 8):
        raise _bad(path, f"correct has shape {packed.shape} {packed.dtype}, not ({e}, {(n + 7) // 8}) uint8")
    if rows.dtype != np.uint8 or rows.shape != (e, n):
        raise _bad(path, f"compute_row has shape {rows.shape} {rows.dtype}, not ({e}, {n}) uint8")
    if len(owners) != e or any(o not in methods for o in owners):
        raise _bad(path, "its entries' methods do not match its keys")
    if len(set(keys)) != e:
        raise _bad(path, "two entries share a key")
    for i, k in enumerate(keys):
        try:
            parsed = json.loads(k)
        except json.JSONDecodeError as err:
            raise _bad(path, f"key {i} is not JSON") from err
        if not isinstance(parsed, dict) or set(parsed) != set(KEY):
            raise _bad(path, f"key {i} does not name the store's key fields {KEY}")
        if e and rows[i].max(initial=0) >= len(methods[owners[i]]["row_layers"]):
            raise _bad(path, f"entry {i} ({owners[i]}) names a row its model does not have")
    lengths = arrays.get("lengths")
    if lengths is not None and lengths.shape != (n,):
        raise _bad(path, f"lengths has shape {lengths.shape}, not ({n},)")
    correct = np.unpackbits(packed, axis=1, count=n).astype(bool) if e else np.zeros((0, n), bool)
    return Samples(run=str(meta["run"]), n=n, labels_sha256=str(meta["labels_sha256"]), metric=str(meta["metric"]),
                   macs_convention=str(meta["macs_convention"]), has_correct=bool(meta["has_correct"]),
                   methods=methods, keys=keys, entry_method=owners, correct=correct, compute_row=rows,
                   lengths=lengths)
