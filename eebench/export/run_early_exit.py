#!/usr/bin/env python3
"""Early-exit inference on an exported eebench model, with onnxruntime and numpy only.

The folder holds ``early_exit.json`` (exits, graph order, exit policy, input preprocessing) and ONNX graphs: the
embedding, the blocks between consecutive exits, each exit head and the final classifier. One input runs graph by
graph; after each row's head the exit check decides, in numpy, whether to answer there or run on.

    python run_early_exit.py --image x.npy            # [C, H, W] or [1, C, H, W], already normalised
    python run_early_exit.py --image x.npy --raw      # values in [0, 1]: the folder's mean/std are applied
    python run_early_exit.py --ids 101,7592,102       # token ids from the tokenizer named in early_exit.json
    python run_early_exit.py --npz x.npz              # input_ids (token_type_ids, attention_mask), or pixel_values
    python run_early_exit.py ... --plain              # the model without exits (every block, final classifier)

Prints one JSON object: the row that answered and its block, the deepest row computed, the prediction and the
returned output. From Python: ``ExportedModel(folder).early_exit(inputs)``.

The exit check reproduces eebench's policies (``eebench/policies``), which are vectorised over a
``[rows, batch, classes]`` logit tensor: each picks the first tested row whose rule fires, and the rule at a row reads
that row and the rows before it only, so a row-by-row check with a running state decides the same.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

MANIFEST = "early_exit.json"
FORMAT = "eebench-early-exit-onnx"
F32 = np.float32


# ------------------------------------------------------------------------------------------------------------------
# exit checks (numpy, one sample)
# ------------------------------------------------------------------------------------------------------------------

def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(F32)
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())


def softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(F32)
    e = np.exp(x - x.max())
    return e / e.sum()


def entropy(x: np.ndarray) -> F32:
    """Softmax entropy in nats, in the log-softmax form eebench uses."""
    logp = log_softmax(x)
    return F32(-(np.exp(logp) * logp).sum())


def max_prob(x: np.ndarray) -> F32:
    return F32(softmax(x).max())


class ExitCheck:
    """The exit rule of one policy at one operating point, fed row by row (``observe``) for one sample.

    ``rule`` (``early_exit.json`` → ``policy.rule``) is what eebench resolved from the policy and the model's rows:
    the rule kind, how many rows are tested (``tested``: rows 0..tested-1; the others never answer early) and the
    per-row thresholds. Kinds:

    * ``entropy_below``: entropy < threshold (DeeBERT, BERxiT, COST-EFF, LGViT entropy);
    * ``confidence_above``: max softmax probability > threshold (LGViT confidence; ViT-EE, EEformer);
    * ``confidence_at_least``: max softmax probability >= threshold (SDN), with its fallback;
    * ``lte``: BERxiT's learning-to-exit output u < threshold, or 1 − u > threshold;
    * ``agreement_run``: patience on consecutive identical predictions (PABEE; LGViT patience with ``offset`` 1);
    * ``entropy_run``: patience on consecutive confident rows (PCEE-BERT, LGViT's PCEE port).
    """

    KINDS = ("entropy_below", "confidence_above", "confidence_at_least", "lte", "agreement_run", "entropy_run")

    def __init__(self, rule: dict, rows: int):
        if rule.get("kind") not in self.KINDS:
            raise ValueError(f"unknown exit rule {rule.get('kind')!r}; this runner knows {', '.join(self.KINDS)}")
        self.rule, self.rows = rule, rows
        self.kind = rule["kind"]
        self.tested = int(rule["tested"])
        self.thresholds = np.asarray(rule.get("thresholds", []), dtype=F32)
        self.threshold = F32(rule["threshold"]) if "threshold" in rule else None
        self.patience = int(rule.get("patience", 0))
        self.offset = int(rule.get("offset", 0))
        self.regression = bool(rule.get("regression", False))
        self.tolerance = F32(rule["tolerance"]) if rule.get("tolerance") is not None else None
        # patience 0 runs the whole model (PABEE, PCEE-BERT); LGViT's ports keep the counter test as it is
        self.never = bool(self.kind in ("agreement_run", "entropy_run") and self.patience == 0
                          and rule.get("zero_runs_full"))
        self.reset()

    def reset(self) -> None:
        self.logits: list[np.ndarray] = []
        self.run = 0
        self.counters: list[int] = []
        self.fired: int | None = None

    def observe(self, row: int, logits: np.ndarray, lte: float | None = None) -> bool:
        """Row ``row``'s logits ``[classes]`` (and LTE output) are in; True when the sample's answer is settled."""
        logits = np.asarray(logits, dtype=F32).reshape(-1)
        self.logits.append(logits)
        fires = self._fires(row, logits, lte)
        if fires and self.fired is None:
            self.fired = row
        return self.fired is not None or row == self.rows - 1

    def _fires(self, row: int, logits: np.ndarray, lte) -> bool:
        kind, tested = self.kind, row < self.tested
        if kind == "entropy_below":
            return tested and bool(entropy(logits) < self.thresholds[row])
        if kind == "confidence_above":
            return tested and bool(max_prob(logits) > self.thresholds[row])
        if kind == "confidence_at_least":
            return tested and bool(max_prob(logits) >= self.thresholds[row])
        if kind == "lte":
            if not tested:
                return False
            u = F32(lte)
            if self.rule["semantics"] == "error_below":
                return bool(u < self.thresholds[row])
            return bool(F32(1) - u > self.thresholds[row])
        if kind == "agreement_run":
            agree = False
            if row > 0:
                prev = self.logits[row - 1]
                if self.regression:
                    agree = bool(abs(logits[0] - prev[0]) < self.tolerance)
                else:
                    agree = int(logits.argmax()) == int(prev.argmax())
            self.run = (self.run + 1) * agree
            return tested and not self.never and self.run + self.offset == self.patience
        # entropy_run
        h = entropy(logits)
        if self.rule.get("normalized"):
            h = F32(h / F32(math.log(logits.shape[0])))
        self.run = (self.run + 1) * bool(h < self.threshold)
        self.counters.append(self.run)
        return tested and not self.never and self.run == self.patience

    def answer(self) -> dict:
        """The decision once settled: the row that answers, the deepest row computed, the output and prediction."""
        last = self.rows - 1
        early = self.fired is not None
        exit_row = self.fired if early else last
        compute = exit_row
        if self.kind == "confidence_at_least" and not early:
            compute = last
            if self.rule.get("fallback") == "most_confident":
                conf = np.array([max_prob(x) for x in self.logits], dtype=F32)
                exit_row = int(np.flatnonzero(conf == conf.max())[0])
        output = self.logits[exit_row]
        ensemble = int(self.rule.get("ensemble", 0))
        if self.kind == "entropy_run" and ensemble and not self.never:
            start = max(exit_row - self.counters[exit_row], 0) if ensemble == 1 else 0
            output = np.mean([softmax(x) for x in self.logits[start:exit_row + 1]], axis=0, dtype=F32).astype(F32)
        prediction = float(output[0]) if self.regression else int(output.argmax())
        return {"exit_index": int(exit_row), "compute_index": int(compute), "prediction": prediction,
                "output": output.astype(F32), "is_early": early if self.kind == "confidence_at_least" else None}


# ------------------------------------------------------------------------------------------------------------------
# the graphs
# ------------------------------------------------------------------------------------------------------------------

class ExportedModel:
    """The exported graphs as onnxruntime sessions (``threads`` intra-op threads, every graph optimisation)."""

    def __init__(self, folder: str | Path, threads: int = 1, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        import onnxruntime as ort

        self.folder = Path(folder)
        self.meta = json.loads((self.folder / MANIFEST).read_text())
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{self.folder / MANIFEST} is not an eebench early-exit export")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.threads = int(threads)
        self.version = ort.__version__

        def session(name):
            if name is None:
                return None
            sess = ort.InferenceSession(str(self.folder / name), sess_options=opts, providers=list(providers))
            return sess, {i.name for i in sess.get_inputs()}, [o.name for o in sess.get_outputs()]

        self.text = self.meta["inputs"]["modality"] == "text"
        self.rows = self.meta["rows"]
        self._embed = session(self.meta["embed"])
        self._segments = [session(r["segment"]) for r in self.rows]
        self._heads = [session(r["head"]) for r in self.rows]
        self._plain = session(self.meta.get("backbone"))
        self.checks: dict[str, ExitCheck] = {}

    # --- inputs ------------------------------------------------------------------------------------------------
    def feeds(self, inputs) -> dict[str, np.ndarray]:
        """A batch as the graphs' named inputs: text → int64 ``input_ids``, ``token_type_ids``, ``attention_mask``
        (zeros / ones where missing); images → float32 ``pixel_values``."""
        if self.text:
            ids = np.asarray(inputs["input_ids"], dtype=np.int64)
            ids = ids[None] if ids.ndim == 1 else ids
            out = {"input_ids": ids}
            for name, fill in (("token_type_ids", 0), ("attention_mask", 1)):
                value = inputs.get(name)
                out[name] = (np.full_like(ids, fill) if value is None
                             else np.asarray(value, dtype=np.int64).reshape(ids.shape))
            return out
        x = inputs["pixel_values"] if isinstance(inputs, dict) else inputs
        x = np.asarray(x, dtype=F32)
        return {"pixel_values": x[None] if x.ndim == 3 else x}

    @staticmethod
    def _run(session, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        sess, names, _ = session
        return sess.run(None, {k: v for k, v in feeds.items() if k in names})

    # --- the pieces ---------------------------------------------------------------------------------------------
    def embed(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self._run(self._embed, feeds)[0]

    def segment(self, row: int, hidden: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Row ``row``'s blocks (the ones after the previous exit up to this row's); none → ``hidden`` itself."""
        seg = self._segments[row]
        if seg is None:
            return hidden
        return self._run(seg, {"hidden": hidden, "attention_mask": mask})[0]

    def head(self, row: int, hidden: np.ndarray, mask: np.ndarray | None = None):
        """Row ``row``'s logits ``[batch, classes]`` and LTE output ``[batch]`` (None without one); the last row is
        the final classifier."""
        out = self._run(self._heads[row], {"hidden": hidden, "attention_mask": mask})
        return out[0], (out[1] if len(out) > 1 else None)

    def final(self, hidden: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return self.head(len(self.rows) - 1, hidden, mask)[0]

    def plain(self, inputs) -> np.ndarray:
        """The model without exits in one graph (exported with ``--plain``)."""
        return self.plain_feeds(self.feeds(inputs))

    def plain_feeds(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._plain is None:
            raise ValueError("this export has no plain-model graph (export it with --plain)")
        return self._run(self._plain, feeds)[0]

    # --- early exit ---------------------------------------------------------------------------------------------
    def check(self, rule: dict | None = None) -> ExitCheck:
        """The exit check of ``rule`` (default: the exported policy's), made once per rule."""
        rule = self.meta["policy"]["rule"] if rule is None else rule
        key = json.dumps(rule, sort_keys=True)
        if key not in self.checks:
            self.checks[key] = ExitCheck(rule, len(self.rows))
        return self.checks[key]

    def early_exit(self, inputs, rule: dict | ExitCheck | None = None) -> dict:
        """One sample, row by row until the exit check settles; ``rule`` defaults to the exported policy's."""
        return self.early_exit_feeds(self.feeds(inputs), rule if isinstance(rule, ExitCheck) else self.check(rule))

    def early_exit_feeds(self, feeds: dict[str, np.ndarray], check: ExitCheck) -> dict:
        """``early_exit`` on inputs already in graph form (``feeds``), with a ready exit check."""
        if next(iter(feeds.values())).shape[0] != 1:
            raise ValueError("early exit runs one sample at a time (batch 1)")
        check.reset()
        mask = feeds.get("attention_mask")
        hidden = self.embed(feeds)
        for row in range(len(self.rows)):
            hidden = self.segment(row, hidden, mask)
            logits, lte = self.head(row, hidden, mask)
            if check.observe(row, logits[0], None if lte is None else lte[0]):
                answer = check.answer()
                answer["exit_layer"] = self.rows[answer["exit_index"]]["block"]
                answer["rows_computed"] = row + 1
                return answer
        raise RuntimeError("the exit check left the sample unsettled after the last row")  # pragma: no cover


# ------------------------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------------------------

def _read_input(args, meta: dict):
    if args.npz:
        with np.load(args.npz, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if args.ids:
        if meta["inputs"]["modality"] != "text":
            raise SystemExit("error: --ids is for a text model; this one takes images (--image)")
        return {"input_ids": np.array([int(t) for t in args.ids.split(",")], dtype=np.int64)}
    if args.image:
        if meta["inputs"]["modality"] != "image":
            raise SystemExit("error: --image is for an image model; this one takes token ids (--ids or --npz)")
        x = np.load(args.image, allow_pickle=False).astype(F32)
        if args.raw:
            spec = meta["inputs"]
            shape = (-1, 1, 1)
            x = (x - np.asarray(spec["mean"], F32).reshape(shape)) / np.asarray(spec["std"], F32).reshape(shape)
        return x
    raise SystemExit("error: give one input: --image FILE.npy, --ids 101,2023,102 or --npz FILE.npz")


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=str(here), help="the export folder (default: this script's)")
    p.add_argument("--image", help="a .npy image, [C, H, W] or [1, C, H, W]")
    p.add_argument("--raw", action="store_true", help="--image holds values in [0, 1]: normalise with mean/std")
    p.add_argument("--ids", help="comma-separated token ids (text models)")
    p.add_argument("--npz", help="a .npz with the graph inputs (input_ids …, or pixel_values)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--plain", action="store_true", help="run the model without exits instead")
    p.add_argument("--check-standalone", action="store_true",
                   help="fail (exit 3) if torch or eebench got imported: the folder runs on onnxruntime and numpy")
    args = p.parse_args(argv)
    model = ExportedModel(args.folder, threads=args.threads)
    inputs = _read_input(args, model.meta)
    if args.plain:
        logits = model.plain(inputs)[0]
        result = {"prediction": int(logits.argmax()), "output": logits.tolist(), "model": "plain"}
    else:
        answer = model.early_exit(inputs)
        result = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in answer.items()}
        result["policy"] = model.meta["policy"]["name"]
    print(json.dumps(result))
    if args.check_standalone:
        loaded = sorted(m for m in ("torch", "eebench", "transformers") if m in sys.modules)
        if loaded:
            print(f"error: imported {', '.join(loaded)}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
