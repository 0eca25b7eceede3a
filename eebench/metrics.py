"""Task metrics, from maintained implementations (scikit-learn, scipy), never hand-written formulas.

Every curve, operating point, AUC and table reads one number per prediction set: ``score``. For image data and most
GLUE tasks it is accuracy; CoLA uses Matthews correlation, MRPC and QQP the mean of F1 and accuracy, STS-B the mean
of Pearson and Spearman correlations (the GLUE leaderboard's averaging). ``Metric.parts`` are reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import fail


def _accuracy(pred, gold):
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, pred))


def _f1(pred, gold):
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred))


def _mcc(pred, gold):
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, pred))


def _correlation(value) -> float:
    """scipy gives NaN when one side is constant (an exit that always answers the same); like scikit-learn's MCC,
    count that as no correlation, so operating points and AUCs stay defined."""
    value = float(value)
    return 0.0 if np.isnan(value) else value


def _pearson(pred, gold):
    import warnings

    from scipy.stats import pearsonr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _correlation(pearsonr(pred, gold)[0])


def _spearman(pred, gold):
    import warnings

    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _correlation(spearmanr(pred, gold)[0])


PARTS = {"accuracy": _accuracy, "f1": _f1, "mcc": _mcc, "pearson": _pearson, "spearman": _spearman}


@dataclass(frozen=True)
class Metric:
    """``name`` heads table columns; ``score`` is the mean of ``parts`` (a single part: that part)."""

    name: str
    parts: tuple[str, ...]

    def evaluate(self, prediction, labels) -> dict[str, float]:
        pred, gold = np.asarray(prediction), np.asarray(labels)
        out = {part: PARTS[part](pred, gold) for part in self.parts}
        out["score"] = float(np.mean([out[p] for p in self.parts]))
        return out

    def score(self, prediction, labels) -> float:
        return self.evaluate(prediction, labels)["score"]


METRICS = {
    "accuracy": Metric("accuracy", ("accuracy",)),
    "mcc": Metric("MCC", ("mcc",)),
    "f1_accuracy": Metric("F1/acc.", ("f1", "accuracy")),
    "pearson_spearman": Metric("Pearson/Spearman", ("pearson", "spearman")),
}


def get_metric(name: str | None) -> Metric:
    if name is None:
        return METRICS["accuracy"]
    if name not in METRICS:
        raise fail(f"unknown metric {name!r}", f"use one of: {', '.join(METRICS)}")
    return METRICS[name]
