"""Per-component params and MACs, counted with fvcore in two conventions.

``paper``: Linear + Conv MACs only — the convention behind the LGViT paper's tables (16.93 G for the 198-token
ViT-B/16, spec methods §4.3). ``full``: everything fvcore counts (attention matmuls, norms) with eager attention, so
fused attention kernels are not silently skipped. fvcore reports one fused multiply-add as one "flop", i.e. MACs.
The whole model is traced once at batch 1 and the counts are split by submodule, so each block and each head is
charged what it really costs at its real input shape.

Text MACs depend on the sequence length L. Every component of a BERT-family model costs c0 + c1·L + c2·L² (linear
layers and norms per token, attention matmuls per token pair), so the model is traced at three lengths, each
component's polynomial is solved exactly and checked against a fourth trace, and stored as ``macs_poly``: curves
charge every sample its own (unpadded) length from it. A head that keeps every s-th token (GLH's global branch:
⌈(L − 1)/s⌉ tokens) is a quadratic on each residue class of L mod s only, not one quadratic for all L: a fit on even
lengths over-counts odd ones. So the fit is made per residue class of L modulo the model's period P (the heads'
``length_period``, 1 without such a head), and ``macs_poly[convention]`` holds one ``[c0, c1, c2]`` per class
r = L mod P. ``macs`` holds the papers' fixed-length convention: every sample padded to ``seq_length`` (128).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from ..model import MultiExitModel, count_params

TEXT_FIT_LENGTHS = (8, 16, 32)
TEXT_CHECK_LENGTH = 24

CONVENTIONS = {"paper": ("linear", "conv"), "full": None}  # None = every counted operator


class _AllRows(nn.Module):
    def __init__(self, model: MultiExitModel):
        super().__init__()
        self.m = model

    def forward(self, *x):  # text arrives as (input_ids, attention_mask, token_type_ids): the tracer takes tensors
        inputs = x[0] if len(x) == 1 else dict(zip(("input_ids", "attention_mask", "token_type_ids"), x))
        out = self.m(inputs)  # the LTE outputs are returned too, or the tracer would drop the module as dead code
        return out.stacked() if out.lte_outputs is None else (out.stacked(), out.lte_outputs)


def is_text(model: MultiExitModel) -> bool:
    return model.backbone.layout(1).grid is None


def example_input(model: MultiExitModel, length: int = 128) -> Any:
    """One sample: an all-zero image at the backbone's size, or a ``length``-token text without padding."""
    bb = model.backbone
    if is_text(model):
        ids = torch.full((1, length), 100, dtype=torch.long)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    channels = getattr(bb, "num_channels", None) or bb.model.config.num_channels  # timm models have no HF config
    return torch.zeros(1, channels, bb.image_size, bb.image_size)


def component_costs(model: MultiExitModel, inputs: Any | None = None) -> dict[str, Any]:
    """{component: {params, macs: {convention: MACs}}} for embed, block1…blockL, head1…headM, final."""
    from fvcore.nn import FlopCountAnalysis

    model = model.eval()
    inputs = example_input(model) if inputs is None else inputs
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        args = tuple(inputs.values()) if isinstance(inputs, dict) else (inputs,)
        fa = FlopCountAnalysis(_AllRows(model), args)
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        per_module = fa.by_module_and_operator()

    modules = dict(model.named_modules())
    groups = {name: [f"m.backbone.{n}" for n in names] for name, names in model.backbone.component_modules().items()}
    groups.update({f"head{i + 1}": [f"m.heads.{i}"] for i in range(len(model.heads))})
    if model.final_head is not None:  # a method's own final classifier (COST-EFF) in place of the backbone's
        groups["final"] = ["m.final_head"]
    if model.lte is not None:
        groups["lte"] = ["m.lte", *(f"m.lte_by_width.{w}" for w in model.lte_by_width)]
    out: dict[str, Any] = {}
    for comp, names in groups.items():
        ops: dict[str, int] = {}
        params = 0
        for n in names:
            for op, v in per_module.get(n, {}).items():
                ops[op] = ops.get(op, 0) + int(v)
            # a component may also name a bare parameter (timm keeps CLS token and position table outside modules)
            params += count_params(modules[n[2:]]) if n[2:] in modules else model.get_parameter(n[2:]).numel()
        out[comp] = {"params": params, "ops": ops,
                     "macs": {conv: sum(v for op, v in ops.items() if keep is None or op in keep)
                              for conv, keep in CONVENTIONS.items()}}
    if model.lte is not None:  # one LTE per exit width (Swin): each exit is charged its own module's MACs
        widths = [model.backbone.layout(p).width for p in model.exit_layers]
        name = {w: "m.lte" if w == model.lte.in_features else f"m.lte_by_width.{w}" for w in widths}
        out["lte"]["per_exit_macs"] = {
            conv: [sum(v for op, v in per_module.get(name[w], {}).items() if keep is None or op in keep)
                   / widths.count(w) for w in widths] for conv, keep in CONVENTIONS.items()}
    return out


def length_period(model: MultiExitModel) -> int:
    """The period P in L of a text model's MACs: the least common multiple of its heads' ``length_period``."""
    return math.lcm(1, *(int(getattr(h, "length_period", 1)) for h in model.heads))


def fit_lengths(period: int, residue: int) -> list[int]:
    """The three fit lengths and the check length of residue class ``residue`` (mod ``period``): the base lengths
    moved up into the class. The base lengths are ≥ 8 apart, scaled by ⌈P/8⌉ so that the moved ones stay distinct;
    with P = 1 they are the base lengths themselves."""
    scale = -(-period // 8)
    return [n * scale + (residue - n * scale) % period for n in (*TEXT_FIT_LENGTHS, TEXT_CHECK_LENGTH)]


def _quadratic(points: list[tuple[int, int]], comp: str) -> list[float]:
    """Exact c0 + c1·L + c2·L² through the first three (L, MACs) points, checked against the fourth."""
    from fractions import Fraction

    (a, fa), (b, fb), (c, fc) = [(n, Fraction(v)) for n, v in points[:3]]
    c2 = ((fc - fa) / (c - a) - (fb - fa) / (b - a)) / (c - b)  # divided differences
    c1 = (fb - fa) / (b - a) - c2 * (a + b)
    c0 = fa - c1 * a - c2 * a * a
    check, value = points[3]
    if c0 + c1 * check + c2 * check * check != value:
        raise RuntimeError(f"MACs of {comp} are not quadratic in the sequence length")
    return [float(c0), float(c1), float(c2)]


def text_component_costs(model: MultiExitModel, seq_length: int) -> dict[str, Any]:
    """``component_costs`` of a text model: exact per-component MAC polynomials in L (one per residue class of L
    modulo :func:`length_period`), evaluated at ``seq_length``."""
    period = length_period(model)
    classes = [fit_lengths(period, r) for r in range(period)]
    counts = {n: component_costs(model, example_input(model, n)) for lengths in classes for n in lengths}
    out = counts[classes[0][0]]
    for comp, entry in out.items():
        entry["macs_poly"] = {}
        for conv in CONVENTIONS:
            polys = [_quadratic([(n, counts[n][comp]["macs"][conv]) for n in lengths], comp) for lengths in classes]
            entry["macs_poly"][conv] = polys
            entry["macs"][conv] = poly_macs(polys[seq_length % period], seq_length)
        entry["ops"] = {}  # per-operator counts hold at one length only
    return out


def poly_macs(coef, length):
    """c0 + c1·L + c2·L² for a number or a tensor of lengths."""
    return coef[0] + coef[1] * length + coef[2] * length * length


def class_polys(poly: list) -> list[list[float]]:
    """``macs_poly[convention]`` as one ``[c0, c1, c2]`` per residue class; a costs file written before the
    per-class fit holds one bare triple (one class)."""
    return [list(poly)] if poly and not isinstance(poly[0], (list, tuple)) else [list(p) for p in poly]


def text_period(summary: dict[str, Any]) -> int:
    """The residue classes a text cost summary was fitted on (1 for a file written before the per-class fit)."""
    return int(summary.get("macs_config", {}).get("sequence", {}).get("length_period", 1))


def cost_summary(model: MultiExitModel, inputs: Any | None = None, seq_length: int = 128) -> dict[str, Any]:
    text = is_text(model) and inputs is None
    comps = text_component_costs(model, seq_length) if text else component_costs(model, inputs)
    total = count_params(model)
    listed = sum(c["params"] for c in comps.values())
    backbone_names = ["embed", *[f"block{i}" for i in range(1, model.backbone.num_layers + 1)], "final"]
    heads = [f"head{i + 1}" for i in range(len(model.heads))] + (["lte"] if "lte" in comps else [])
    return {
        "components": comps,
        "row_layers": model.row_layers,
        "params": {"total": total, "backbone": total - sum(comps[h]["params"] for h in heads),
                   "heads": sum(comps[h]["params"] for h in heads), "unused": total - listed},
        "macs": {conv: {"backbone": sum(comps[c]["macs"][conv] for c in backbone_names),
                        "heads": sum(comps[h]["macs"][conv] for h in heads)} for conv in CONVENTIONS},
        "macs_config": {"counter": "fvcore", "attention": "eager", "batch": 1, "dtype": "float32", "device": "cpu",
                        "input_shape": (list(example_input(model).shape) if inputs is None and not text else None),
                        "conventions": {"paper": "linear+conv only", "full": "all fvcore-counted ops"},
                        **({"sequence": {"padded_length": seq_length, "length_period": length_period(model),
                                         "fit_lengths": [fit_lengths(length_period(model), r)[:3]
                                                         for r in range(length_period(model))],
                                         "per_sample": "macs_poly[r]: c0 + c1*L + c2*L^2 at each sample's real "
                                                       "length L, r = L mod length_period",
                                         "flops": "2 x MACs (full convention: attention included)"}}
                           if text else {})},
    }


def cumulative_macs(summary: dict[str, Any], convention: str, term: int | None = None,
                    residue: int = 0) -> torch.Tensor:
    """MACs of a sample whose computation stopped at row r, for every row r (heads of all rows ≤ r are charged, and
    the shared learning-to-exit module once per exit evaluated). ``term`` k (text): the same sum of the components'
    L^k coefficients of residue class ``residue`` instead, so a sample of length L ≡ residue (mod the summary's
    period) costs Σ_k term_k·L^k."""
    comps = summary["components"]
    if term is not None:
        comps = {name: {"macs": {convention: class_polys(c["macs_poly"][convention])[residue][term]}}
                 for name, c in comps.items()}
    rows = summary["row_layers"]
    num_layers = rows[-1]
    lte = [0.0] * (len(rows) - 1)
    if "lte" in comps:
        lte = comps["lte"].get("per_exit_macs", {}).get(convention) or \
            [comps["lte"]["macs"][convention] / (len(rows) - 1)] * (len(rows) - 1)
    block = [comps[f"block{i}"]["macs"][convention] for i in range(1, num_layers + 1)]
    costs = []
    for r, layer in enumerate(rows):
        c = comps["embed"]["macs"][convention] + sum(block[:layer])
        evaluated = min(r + 1, len(rows) - 1)
        c += sum(comps[f"head{j + 1}"]["macs"][convention] + lte[j] for j in range(evaluated))
        if r == len(rows) - 1:
            c += comps["final"]["macs"][convention]
        costs.append(c)
    return torch.tensor(costs, dtype=torch.float64)
