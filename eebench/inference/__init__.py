"""Live dynamic inference: run a ``MultiExitModel`` exit by exit and stop where the policy says, with the same policy
code as the offline sweeps (``causal``: decisions on a prefix of rows; ``rows``: the model cut at its exits;
``runtime``: what executes those pieces, ``ort_runtime``: on ONNX Runtime; ``rulecheck``: the batch-1 exit check in
numpy; ``live``: batch-1 early return and batched per-sample exits; ``segments``, ``pipeline`` and ``conditional``:
batch-1 early exit as scheduled segments with the exit check on the host or the device; ``graphs``: those segments
as CUDA graphs; ``queries``, ``replay`` and ``latency``: Table 5's protocol)."""
from .causal import RowBuffer, decide_prefix  # noqa: F401
from .live import Probe, batched_exit, early_exit  # noqa: F401
from .rows import RowOutput, run_row  # noqa: F401
from .runtime import RUNTIMES, EagerRuntime, Runtime, build_runtime  # noqa: F401
from . import ort_runtime  # noqa: F401,E402  (registers the "onnxruntime" runtime; onnxruntime loads at prepare)
