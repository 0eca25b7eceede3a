"""Where a text run departs from the official codes it reproduces, said in the notes of every table it feeds: the
numbers are only as comparable as the training that made them."""
from __future__ import annotations

from typing import Any, Iterable

DEFAULT_BUCKET = 50  # eebench.data.glue's default


def text_batching_note(config: dict[str, Any]) -> str:
    """Training batches on text: eebench sorts windows of ``dataset.bucket`` batches by length (a CPU run then pays
    for little padding), which changes which samples share a batch; the official codes draw uniform random batches
    padded to max_seq_length. ``bucket: 1`` is that draw (padding to the batch's longest sample changes no model
    output)."""
    bucket = int(config["dataset"].get("bucket", DEFAULT_BUCKET))
    if bucket <= 1:
        return ("Text batches: uniform random training batches (dataset.bucket: 1), as the official codes draw them "
                "(padded to each batch's longest sample, which changes no model output).")
    return (f"Text batches: training batches are length-bucketed (dataset.bucket: {bucket}: each window of {bucket} "
            "batches of a shuffled epoch is sorted by length before it is cut), a departure from the official codes' "
            "uniform random batches padded to max_seq_length; dataset.bucket: 1 draws those.")


def pcee_methods(config: dict[str, Any], methods: Iterable[str]) -> list[str]:
    """The methods among ``methods`` built from the PCEE-BERT recipe itself (not its LGViT port)."""
    entries = config.get("methods") or {}
    return [m for m in methods if ((entries.get(m) or {}).get("recipe", m)) == "pcee"]


def pcee_selection_note(config: dict[str, Any], methods: Iterable[str]) -> str | None:
    """PCEE-BERT's official code keeps the checkpoint with the best dev score (evaluated every 100 steps, best over
    checkpoints and layers, spec baselines §7b); eebench evaluates the exit rule on PABEE's model after its last
    epoch."""
    if not pcee_methods(config, methods):
        return None
    return ("PCEE-BERT: no dev-set checkpoint selection — it runs on PABEE's model as trained (last epoch), while "
            "its official code keeps the checkpoint with the best dev score over checkpoints and layers (a departure; "
            "spec baselines §7b).")


def text_notes(config: dict[str, Any], methods: Iterable[str]) -> list[str]:
    """The departure notes of a text run (none on images)."""
    if config["dataset"]["name"] != "glue":
        return []
    pcee = pcee_selection_note(config, methods)
    return [text_batching_note(config), *([pcee] if pcee else [])]
