"""A ``MultiExitModel`` cut into ONNX graphs at its exits, by the same definitions live inference runs
(``inference.rows``): the embedding, one graph per row's blocks (the blocks after the previous exit up to this one;
none where two rows share a block), one per exit head, the final classifier, and optionally the plain model in one
graph (embedding, every block, final classifier: what early exit is timed against).

Graphs take and return ``hidden`` ``[batch, tokens, width]``. Text graphs also take ``attention_mask``
``[batch, tokens]`` (1 = real token) and have a dynamic sequence length; image graphs have a fixed image size. The
batch is dynamic everywhere. The exporter is torch's TorchScript-based one (``dynamo=False``): it needs neither
``onnxscript`` nor a network, and traces the HF blocks at any length (the dynamo exporter needs ``onnxscript``).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..backbones.base import Backbone, Context
from ..errors import fail
from ..inference.rows import row_blocks, row_head, run_blocks
from ..model import MultiExitModel

OPSET = 17  # LayerNormalization is one op from 17 on; every onnxruntime since 1.14 runs it
EXPORTER = "torch.onnx.export, TorchScript-based (dynamo=False)"
TEXT_INPUTS = ("input_ids", "token_type_ids")
IMAGE_INPUT = "pixel_values"


def is_text(backbone: Backbone) -> bool:
    """Text backbones have no patch grid (``TokenLayout``): a padded sequence with a mask."""
    return backbone.layout(1).grid is None


def context(backbone: Backbone, mask: torch.Tensor | None, hidden: torch.Tensor) -> Context:
    """The ``Context`` the backbone's ``embed`` builds, rebuilt from the mask a graph takes as input (BERT: the
    additive attention mask every block reads)."""
    if mask is None:
        return Context()
    if not hasattr(backbone, "block_mask"):
        raise fail(f"the {backbone.family} backbone takes a padding mask but does not say how its blocks read it",
                   "export a BERT-family or an image backbone")
    return Context(mask=mask, block_kwargs={"attention_mask": backbone.block_mask(mask, hidden)})


class _Embed(nn.Module):
    def __init__(self, model: MultiExitModel, text: bool):
        super().__init__()
        self.model, self.text = model, text

    def forward(self, *inputs):
        if self.text:
            return self.model.backbone.embed(dict(zip(TEXT_INPUTS, inputs)))[0]
        return self.model.backbone.embed(inputs[0])[0]


class _Segment(nn.Module):
    def __init__(self, model: MultiExitModel, row: int):
        super().__init__()
        self.model, self.row = model, row

    def forward(self, hidden, mask=None):
        return run_blocks(self.model, self.row, hidden, context(self.model.backbone, mask, hidden))


class _Head(nn.Module):
    def __init__(self, model: MultiExitModel, row: int):
        super().__init__()
        self.model, self.row = model, row

    def forward(self, hidden, mask=None):
        logits, lte = row_head(self.model, self.row, hidden, context(self.model.backbone, mask, hidden))
        return logits if lte is None else (logits, lte)


def _embed_inputs(backbone: Backbone, text: bool, inputs: tuple) -> tuple[torch.Tensor, Context]:
    """The embedding of a graph's raw inputs (text: ids, segment ids, mask, in ``TEXT_INPUTS`` + mask order)."""
    if text:
        ids, types, mask = inputs
        return backbone.embed({"input_ids": ids, "token_type_ids": types, "attention_mask": mask})
    return backbone.embed(inputs[0])


class _Row(nn.Module):
    """Row ``row`` as the onnxruntime runtime runs it, in one graph: its segment (row 0: from the raw inputs, the
    embedding first), then its head (the final classifier for the last row). Outputs: the segment's hidden state
    where a later row reads it (a row with blocks, not the last), then the head's logits (and LTE output)."""

    def __init__(self, model: MultiExitModel, row: int, text: bool):
        super().__init__()
        self.model, self.row, self.text = model, row, text

    def forward(self, *inputs):
        backbone = self.model.backbone
        if self.row == 0:
            hidden, ctx = _embed_inputs(backbone, self.text, inputs)
        else:
            hidden = inputs[0]
            ctx = context(backbone, inputs[1] if self.text else None, hidden)
        out = run_blocks(self.model, self.row, hidden, ctx)
        logits, lte = row_head(self.model, self.row, out, ctx)
        heads = (logits,) if lte is None else (logits, lte)
        return (out, *heads) if _passes_hidden(self.model, self.row) else heads


def _passes_hidden(model: MultiExitModel, row: int) -> bool:
    return row < len(model.row_layers) - 1 and bool(row_blocks(model, row))


class _Plain(nn.Module):
    """The model without exits: embedding, every block, final classifier (the backbone's forward, or the method's
    own final head where it has one)."""

    def __init__(self, model: MultiExitModel, text: bool):
        super().__init__()
        self.model, self.text = model, text

    def forward(self, *inputs):
        hidden, ctx = _embed_inputs(self.model.backbone, self.text, inputs)
        last = len(self.model.row_layers) - 1
        for i in range(1, self.model.backbone.num_layers + 1):
            hidden = self.model.backbone.block(i, hidden, ctx)
        return row_head(self.model, last, hidden, ctx)[0]


def example_input(backbone: Backbone, tokens: int = 8) -> torch.Tensor | dict[str, torch.Tensor]:
    """A batch-1 input to trace with (and to check the graphs on): a fixed random normalised image at the
    backbone's size, or ``tokens`` token ids."""
    if is_text(backbone):
        ids = torch.arange(tokens, dtype=torch.long).unsqueeze(0) + 100
        return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": torch.ones_like(ids)}
    channels = getattr(getattr(getattr(backbone, "model", None), "config", None), "num_channels", None) or 3
    if not backbone.image_size:
        raise fail(f"the {backbone.family} backbone does not say its image size", "export an image backbone that does")
    size = backbone.image_size
    return torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(0))


def as_feeds(backbone: Backbone, inputs) -> dict[str, torch.Tensor]:
    """An input batch as named graph inputs (text: ids, segment ids and mask as int64; images: float32)."""
    if is_text(backbone):
        if not isinstance(inputs, dict) or "input_ids" not in inputs:
            raise fail(f"a text model got input of type {type(inputs).__name__}",
                       "pass {'input_ids': ..., 'attention_mask': ...} (token_type_ids optional)")
        ids = torch.as_tensor(inputs["input_ids"]).long()
        types, mask = inputs.get("token_type_ids"), inputs.get("attention_mask")
        return {"input_ids": ids,
                "token_type_ids": torch.zeros_like(ids) if types is None else torch.as_tensor(types).long(),
                "attention_mask": torch.ones_like(ids) if mask is None else torch.as_tensor(mask).long()}
    return {IMAGE_INPUT: torch.as_tensor(inputs).float()}


@contextmanager
def _eval(model: nn.Module):
    """``torch.onnx.export`` puts the wrapper back into its own mode afterwards, which would switch the model to
    training (dropout on): keep the model in eval mode throughout and restore its mode at the end."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]], opset: int) -> None:
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and tracer warnings
        try:
            torch.onnx.export(module, args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)
        except Exception as err:  # noqa: BLE001 — an op the exporter cannot trace: one line, naming the graph
            raise fail(f"could not export {path.name} ({type(err).__name__}: {str(err).splitlines()[0][:200]})",
                       "export an HF ViT/DeiT or BERT-family model, or report the failing op") from err


def export_graphs(model: MultiExitModel, out_dir: Path, example=None, opset: int = OPSET,
                  plain: bool = False) -> dict[str, Any]:
    """Write the graphs of ``model`` into ``out_dir`` and return what the manifest says about them: the embedding
    file, one entry per row (its blocks, segment file or None, head file, head outputs), the execution order and,
    with ``plain``, the plain model's file."""
    backbone = model.backbone
    text = is_text(backbone)
    feeds = as_feeds(backbone, example_input(backbone) if example is None else example)
    batch, seq = {0: "batch"}, {0: "batch", 1: "tokens"}
    tokens = seq if text else batch
    rows = len(model.row_layers)
    out_dir = Path(out_dir)
    with _eval(model), torch.no_grad():
        if text:
            embed_args = (feeds["input_ids"], feeds["token_type_ids"])
            mask = feeds["attention_mask"]
            extra, extra_names = (mask,), ["attention_mask"]
        else:
            embed_args, mask, extra, extra_names = (feeds[IMAGE_INPUT],), None, (), []
        embed_names = list(TEXT_INPUTS) if text else [IMAGE_INPUT]
        dyn = {name: (seq if text else batch) for name in embed_names}
        _export(_Embed(model, text), embed_args, out_dir / "embed.onnx", embed_names, ["hidden"],
                {**dyn, "hidden": tokens}, opset)
        hidden, ctx = backbone.embed({**feeds} if text else feeds[IMAGE_INPUT])
        entries, order = [], ["embed.onnx"]
        hidden_dyn = {"hidden": tokens, **({"attention_mask": seq} if text else {})}
        for row in range(rows):
            blocks = list(row_blocks(model, row))
            segment = None
            if blocks:
                segment = f"segment_{row}.onnx"
                _export(_Segment(model, row), (hidden, *extra), out_dir / segment, ["hidden", *extra_names],
                        ["hidden_out"], {**hidden_dyn, "hidden_out": tokens}, opset)
                order.append(segment)
                hidden = run_blocks(model, row, hidden, ctx)
            final = row == rows - 1
            head = "final.onnx" if final else f"head_{row}.onnx"
            logits, lte = row_head(model, row, hidden, ctx)
            outputs = ["logits"] if lte is None else ["logits", "lte"]
            _export(_Head(model, row), (hidden, *extra), out_dir / head, ["hidden", *extra_names], outputs,
                    {**hidden_dyn, "logits": batch, **({"lte": batch} if lte is not None else {})}, opset)
            order.append(head)
            entries.append({"row": row, "block": model.row_layers[row], "kind": "final" if final else "exit",
                            "blocks": [blocks[0], blocks[-1]] if blocks else [], "segment": segment, "head": head,
                            "outputs": outputs})
        plain_file = None
        if plain:
            plain_file = "backbone.onnx"
            names = [*embed_names, *extra_names]
            _export(_Plain(model, text), (*embed_args, *extra), out_dir / plain_file, names, ["logits"],
                    {**{n: (seq if text else batch) for n in names}, "logits": batch}, opset)
    return {"embed": "embed.onnx", "rows": entries, "order": order, "backbone": plain_file}


def export_runtime_graphs(model: MultiExitModel, out_dir: Path, example=None, opset: int = OPSET) -> dict[str, Any]:
    """The graphs the onnxruntime runtime (``inference.ort_runtime``) runs: one per row (``_Row``: the segment and its
    head, so a query pays one session run per row it computes, not two or three) and the plain model in one graph.
    Returns, per row, the file, whether it outputs the hidden state and whether it outputs an LTE value, and the
    plain model's file."""
    backbone = model.backbone
    text = is_text(backbone)
    feeds = as_feeds(backbone, example_input(backbone) if example is None else example)
    batch, seq = {0: "batch"}, {0: "batch", 1: "tokens"}
    tokens = seq if text else batch
    raw_names = [*TEXT_INPUTS, "attention_mask"] if text else [IMAGE_INPUT]
    raw_args = tuple(feeds[n] for n in raw_names)
    raw_dyn = {n: (seq if text else batch) for n in raw_names}
    hidden_names = ["hidden", "attention_mask"] if text else ["hidden"]
    hidden_dyn = {"hidden": tokens, **({"attention_mask": seq} if text else {})}
    out_dir = Path(out_dir)
    rows = []
    with _eval(model), torch.no_grad():
        hidden, ctx = _embed_inputs(backbone, text, raw_args)
        for row in range(len(model.row_layers)):
            args = raw_args if row == 0 else (hidden, *((feeds["attention_mask"],) if text else ()))
            names, dyn = (raw_names, raw_dyn) if row == 0 else (hidden_names, hidden_dyn)
            hidden = run_blocks(model, row, hidden, ctx)
            lte = row_head(model, row, hidden, ctx)[1] is not None
            passes = _passes_hidden(model, row)
            outputs = [*(["hidden_out"] if passes else []), "logits", *(["lte"] if lte else [])]
            out_dyn = {**({"hidden_out": tokens} if passes else {}), "logits": batch, **({"lte": batch} if lte else {})}
            name = f"row_{row}.onnx"
            _export(_Row(model, row, text), args, out_dir / name, names, outputs, {**dyn, **out_dyn}, opset)
            rows.append({"file": name, "hidden": passes, "lte": lte})
        _export(_Plain(model, text), raw_args, out_dir / "backbone.onnx", raw_names, ["logits"],
                {**raw_dyn, "logits": batch}, opset)
    return {"text": text, "inputs": raw_names, "rows": rows, "backbone": "backbone.onnx"}
