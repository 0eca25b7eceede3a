"""The GLUE tasks: each one's text columns, labels, metric and split and file names, as the hub and the original GLUE
files name them. A floor below the loader (``glue``) and the smoke fixtures that write tasks in the hub's format
(``fixtures``), which both read it; it needs neither torch nor a data library.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlueTask:
    columns: tuple[str, ...]  # hub column names of the one or two text segments
    labels: tuple[str, ...] | None  # label names in hub order; None = regression (STS-B)
    metric: str
    eval_split: str = "validation"
    tsv_eval: str = "dev"
    tsv_columns: tuple[str, ...] | None = None  # header names in the GLUE tsv files, when they differ from the hub's
    tsv_label: str = "label"
    tsv_positions: tuple[int, ...] | None = None  # CoLA's headerless tsv: column numbers of (text, label)

    @property
    def num_classes(self) -> int:
        return 1 if self.labels is None else len(self.labels)


NLI = ("entailment", "not_entailment")
TASKS = {
    "cola": GlueTask(("sentence",), ("unacceptable", "acceptable"), "mcc", tsv_positions=(3, 1)),
    "sst2": GlueTask(("sentence",), ("negative", "positive"), "accuracy"),
    "mrpc": GlueTask(("sentence1", "sentence2"), ("not_equivalent", "equivalent"), "f1_accuracy",
                     tsv_columns=("#1 String", "#2 String"), tsv_label="Quality"),
    "stsb": GlueTask(("sentence1", "sentence2"), None, "pearson_spearman", tsv_label="score"),
    "qqp": GlueTask(("question1", "question2"), ("not_duplicate", "duplicate"), "f1_accuracy",
                    tsv_label="is_duplicate"),
    "mnli": GlueTask(("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), "accuracy",
                     eval_split="validation_matched", tsv_eval="dev_matched", tsv_columns=("sentence1", "sentence2"),
                     tsv_label="gold_label"),
    "mnli_mm": GlueTask(("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), "accuracy",
                        eval_split="validation_mismatched", tsv_eval="dev_mismatched",
                        tsv_columns=("sentence1", "sentence2"), tsv_label="gold_label"),
    "qnli": GlueTask(("question", "sentence"), NLI, "accuracy"),
    "rte": GlueTask(("sentence1", "sentence2"), NLI, "accuracy"),
    "wnli": GlueTask(("sentence1", "sentence2"), ("not_entailment", "entailment"), "accuracy"),
}
HUB_CONFIG = {"mnli_mm": "mnli"}
