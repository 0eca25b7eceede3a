"""Where a run's results lie under ``results/<run>/``: the names the plan, the DAG and the shares of training jobs
(``shares``) all derive files from, on a floor of their own below them."""
from __future__ import annotations


def train_path(run: str, method: str, seed: int, stage: str) -> str:
    return f"results/{run}/train/{method}/seed{seed}/{stage}.pt"


def logits_path(run: str, method: str, seed: int, stage: str) -> str:
    """The exit-logit cache every training stage writes when it ends (the last stage's is the method's)."""
    return f"results/{run}/logits/{method}/seed{seed}/{stage}.npz"


def costs_path(run: str, method: str) -> str:
    return f"results/{run}/costs/{method}.json"


def curve_path(run: str, method: str, seed: int) -> str:
    return f"results/{run}/curves/{method}/seed{seed}.csv"


def latency_path(run: str) -> str:
    """Table 5's measurements of a run (one job times every method, see ``eebench.measure.wallclock``)."""
    return f"results/{run}/latency.json"


def store_path(run: str, ext: str = "parquet") -> str:
    """The run's results store: every operating point of every method and seed (long format, provenance per row)."""
    return f"results/{run}/store.{ext}"
