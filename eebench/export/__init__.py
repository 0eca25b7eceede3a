"""Export: a trained early-exit model as per-segment ONNX graphs, a JSON of its exits and exit policy, and a runner
that needs only onnxruntime and numpy (``bundle``; the graphs: ``graphs``; the policy as a plain rule: ``rules``;
the runner, shipped into every export folder: ``run_early_exit``)."""
from .bundle import export_checkpoint, export_model  # noqa: F401
