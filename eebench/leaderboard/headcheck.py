"""``eebench check-head NAME`` (like ``benchopt test``): a head is built on tiny ViT, DeiT and Swin layouts (and a
text one where a tiny text backbone is registered), and must return logits of the right shape, train for one backward
step, be deterministic under a seed, and have its MACs counted by fvcore."""
from __future__ import annotations

import torch

from ..errors import fail

NUM_CLASSES = 5
BATCH = 3


def tiny_backbones() -> list[str]:
    """One tiny preset per family (vit, deit, swin, and any other family with a 'tiny' preset, e.g. text)."""
    from ..backbones import BACKBONES

    chosen: dict[str, str] = {"vit": "vit_tiny_digits", "deit": "deit_tiny_digits", "swin": "swin_tiny_test"}
    for name in BACKBONES.names():
        fam = BACKBONES.get(name).family
        if "tiny" in name and fam not in chosen:
            chosen[fam] = name
    return list(chosen.values())


def _model(backbone: str, head: str):
    """A tiny random-init model with the head after every block but the last (seeded: built twice, it is identical)."""
    from ..backbones import BACKBONES
    from ..build import build_model

    spec = {"name": backbone, "pretrained": False}
    if backbone in ("vit_tiny_digits", "deit_tiny_digits"):  # narrowed further: seconds, not minutes
        spec.update(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    depth = int(BACKBONES.get(backbone).defaults.get("num_hidden_layers", 12))
    exits = list(range(1, depth))
    torch.manual_seed(0)
    return build_model(spec, {"exit_layers": exits, "heads": [{"type": head}] * len(exits), "lte": False},
                       NUM_CLASSES, attn_implementation="eager")


def _inputs(model, padded: bool = False):
    """A batch for the tiny model: random images, or random token ids; ``padded`` gives the text rows different
    lengths (2, 4, … real tokens, the rest masked), so a head that ignores the padding mask is caught."""
    from ..measure.macs import example_input, is_text

    gen = torch.Generator().manual_seed(1)
    if not is_text(model):
        return torch.randn(BATCH, *example_input(model).shape[1:], generator=gen)
    length = 8
    vocab = int(getattr(model.backbone.model.config, "vocab_size", 1000))
    ids = torch.randint(1000 if vocab > 1000 else 1, vocab, (BATCH, length), generator=gen)
    mask = torch.ones_like(ids)
    if padded:
        for row in range(BATCH):
            mask[row, 2 * (row + 1):] = 0
        ids = ids * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _cases(model) -> list[tuple[str, object]]:
    """(label, inputs): one batch for vision; for text, one without padding and one with a padding mask."""
    x = _inputs(model)
    if not isinstance(x, dict):
        return [("", x)]
    return [(" (no padding)", x), (" (padding mask)", _inputs(model, padded=True))]


def check_head(name: str, log=print) -> None:
    from ..heads import HEADS

    HEADS.get(name)  # unknown name: one line listing the known heads
    for backbone in tiny_backbones():
        model = _model(backbone, name)
        cases = _cases(model)
        for label, x in cases:
            _check_on(name, backbone + label, model, x)
        again = _model(backbone, name)
        x = cases[-1][1]
        runs = []
        for m in (model, again):  # same seed for the weights and for any dropout in the forward pass
            torch.manual_seed(2)
            runs.append(m(x).exit_logits)
        same = all(torch.equal(a, b) for a, b in zip(*runs))
        if not same:
            raise fail(f"head {name!r} on {backbone} is not deterministic under a fixed seed",
                       "draw randomness only from torch's seeded generators")
        from ..measure.macs import cost_summary

        with torch.no_grad():
            costs = cost_summary(model)
        macs = {c: costs["macs"][c]["heads"] for c in costs["macs"]}
        if macs["full"] <= 0:
            raise fail(f"fvcore counts no MACs for head {name!r} on {backbone}",
                       "build the head from nn.Linear/nn.Conv or other fvcore-counted ops")
        log(f"ok {name} on {backbone}: logits {(BATCH, NUM_CLASSES)} at blocks {model.exit_layers}, backward"
            f"{' with and without padding' if len(cases) > 1 else ''}, deterministic, "
            f"head MACs paper {macs['paper']:,.0f} / full {macs['full']:,.0f}")


def _check_on(name: str, where: str, model, x) -> None:
    """Shapes at every exit and one backward step with finite gradients into every head parameter."""
    hidden, ctx = model.backbone.embed(x)
    for layer in range(1, model.backbone.num_layers):
        hidden = model.backbone.block(layer, hidden, ctx)
        if layer in model.exit_layers:
            out = model.heads[model.exit_layers.index(layer)](hidden, ctx.mask)
            logits = getattr(out, "logits", out)
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (BATCH, NUM_CLASSES):
                got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(out).__name__
                raise fail(f"head {name!r} on {where} (after block {layer}) returned logits of shape {got}, "
                           f"expected {(BATCH, NUM_CLASSES)}",
                           "return HeadOutput(logits) with logits of shape [batch, num_classes]")
            if not torch.isfinite(logits).all():
                raise fail(f"head {name!r} on {where} (after block {layer}) returned non-finite logits",
                           "check the head's arithmetic on padded positions (use the mask it is given)")
    model.zero_grad(set_to_none=True)
    out = model(x)
    loss = sum(torch.nn.functional.cross_entropy(l, torch.arange(BATCH) % NUM_CLASSES) for l in out.exit_logits)
    loss.backward()
    grads = [p.grad for p in model.heads.parameters()]
    if not grads or any(g is None for g in grads) or not all(torch.isfinite(g).all() for g in grads):
        raise fail(f"head {name!r} on {where}: one backward step left parameters without a finite gradient",
                   "every head parameter must take part in the logits")
