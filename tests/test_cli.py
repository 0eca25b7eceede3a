"""CLI and config: listings, and bad input ending in one line with exit code 2."""
import pytest
import torch

from eebench.backbones import build_backbone
from eebench.cli import main
from eebench.errors import EEBenchError
from eebench.heads import ExitHead, HeadOutput, register_head
from eebench.model import MultiExitModel
from eebench.plan import Plan, load_config


@pytest.mark.parametrize("what, expected", [("heads", ["gah", "lph", "mlp"]), ("policies", ["lgvit_confidence"]),
                                            ("methods", ["backbone", "lgvit", "mlp_normal"]),
                                            ("backbones", ["deit_b", "vit_b16", "vit_lgvit_v0"]),
                                            ("datasets", ["digits"]), ("runtimes", ["eager"])])
def test_list(what, expected, capsys):
    assert main(["list", what]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert set(expected) <= set(names)


def test_list_shows_every_registry_of_the_package(capsys):
    """A registry's "unknown …" error tells the user to run `eebench list KIND` with the registry's kind; the stage
    runners and shape hooks were not listable, so their hint ended in argparse's "invalid choice". Every
    ``Registry("KIND")`` in the package's source is listed here with exactly its registered names."""
    import ast
    from pathlib import Path

    import eebench
    from eebench.cli.listing import registries

    root = Path(eebench.__file__).parent
    kinds = {node.args[0].value for path in root.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Registry" and node.args}
    assert {"heads", "runtimes", "stage_runners", "shape_hooks"} <= kinds  # the scan sees the registries
    for kind in sorted(kinds):
        assert main(["list", kind]) == 0, kind
        names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
        assert names == registries()[kind].names(), kind
    assert main(["list", "stage_runners"]) == 0 and capsys.readouterr().out.startswith("slenderise ")
    assert main(["list", "shape_hooks"]) == 0 and capsys.readouterr().out.startswith("slender_shape ")


def one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eebench: error:") and "\n" not in err
    return err


def test_unknown_names(capsys):
    assert "unknown method 'nope'" in one_line_error(capsys, ["costs", "--backbone", "vit_tiny_digits", "--method",
                                                              "nope", "--num-classes", "10"])
    assert "unknown backbone 'nope'" in one_line_error(capsys, ["costs", "--backbone", "nope", "--method", "lgvit",
                                                                "--num-classes", "10"])


def test_bad_json_in_an_argument_is_one_line(capsys):
    """`costs --slender` reads its JSON while the arguments are parsed; bad text there was a traceback, not a line."""
    err = one_line_error(capsys, ["costs", "--backbone", "vit_tiny_digits", "--method", "costeff", "--num-classes",
                                  "2", "--slender", "{bad"])
    assert "argument is not valid JSON" in err and "pass a JSON object" in err


def test_missing_and_bad_configs(tmp_path, capsys):
    assert "does not exist" in one_line_error(capsys, ["plan", "--configfile", str(tmp_path / "none.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: x\ndataset: {name: digits}\nbackbone: {name: vit_tiny_digits}\nmethods: {lgvit: {}}\n"
                   "training: {epochs: -1}\n")
    assert "config error at training/epochs" in one_line_error(capsys, ["plan", "--configfile", str(bad)])
    bad.write_text("run: [\n")
    assert "not valid YAML" in one_line_error(capsys, ["plan", "--configfile", str(bad)])
    bad.write_text("run: x\ndataset: {name: digits}\nbackbone: {name: vit_tiny_digits}\n"
                   "methods: {lgvit: {stages: {stage9: {epochs: 1}}}}\n")
    assert "unknown stage(s) ['stage9']" in one_line_error(capsys, ["plan", "--configfile", str(bad)])


def test_offline_hub_weights_fail_with_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EEBenchError, match="could not load pretrained weights .*backbone.pretrained: false"):
        build_backbone("deit_b", 10)
    with pytest.raises(EEBenchError, match="folder './nowhere' does not exist"):
        build_backbone("vit_tiny_digits", 10, pretrained="./nowhere")


def test_local_pretrained_folder_loads(tmp_path):
    source = build_backbone("vit_tiny_digits", 10, pretrained=False, hidden_size=16, num_attention_heads=2)
    source.model.save_pretrained(tmp_path / "w")
    loaded = build_backbone("vit_tiny_digits", 10, pretrained=str(tmp_path / "w"))
    for (k, a), b in zip(source.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k


@register_head("test_wrong_shape")
class WrongShape(ExitHead):
    def forward(self, hidden, mask=None):
        return HeadOutput(hidden[:, 0])  # [B, width] instead of [B, classes]


def test_head_with_wrong_output_shape_is_named():
    bb = build_backbone("vit_tiny_digits", 10, pretrained=False, hidden_size=16, num_attention_heads=2)
    model = MultiExitModel(bb, [3], [{"type": "test_wrong_shape"}], 10)
    with pytest.raises(EEBenchError, match=r"head after block 3 returned shape \(2, 16\).*\[batch, 10\]"):
        model(torch.randn(2, 1, 8, 8))


def test_default_config_plan():
    plan = Plan(load_config("config/default.yaml"))
    assert plan.method("lgvit")["exit_layers"] == [2, 3, 4, 5]
    assert [h["type"] for h in plan.method("lgvit")["heads"]] == ["lph", "lph", "gah", "gah"]
    assert plan.init_stage("lgvit", "stage2") == ("lgvit", "stage1") and plan.last_stage("lgvit") == "stage2"
    assert plan.method("sdn")["exit_layers"] == [1, 2, 3, 4, 5]
    assert plan.method("deebert")["exit_layers"] == [1, 2, 3, 4, 5, 6]  # off-ramp L included
    assert plan.init_stage("deebert", "offramps") == ("backbone", "finetune")  # stage 1 shared with the backbone row
    assert list(plan.methods) == ["backbone", "sdn", "pabee", "pcee", "berxit", "vit_ee", "deebert", "lgvit",
                                  "eeformer"]
    assert plan.method("eeformer")["reconstructed"] and plan.init_stage("eeformer", "stage3") == ("eeformer", "stage2")
    assert len(plan.seeds) >= 2


def test_shared_stage_pulls_in_its_method(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run: x\ndataset: {name: digits}\nbackbone: {name: vit_tiny_digits}\nmethods: {deebert: {}}\n")
    plan = Plan(load_config(cfg))
    assert list(plan.methods) == ["deebert"] and "backbone" in plan.all_methods


def test_smoke_runs_the_repository_snakefile(monkeypatch, capsys):
    """`eebench smoke` finds the Snakefile from its own module's place in the package, so a move of the module must
    move the path with it: the command it starts names the repository's Snakefile, which exists."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    started = []
    monkeypatch.setattr("subprocess.call", lambda cmd: started.append(cmd) or 0)
    assert main(["smoke", "--cores", "1", str(repo / "config" / "tiny.yaml"), "-n"]) == 0
    cmd = started[0]
    assert cmd[1:5] == ["-m", "snakemake", "-s", str(repo / "Snakefile")] and Path(cmd[4]).is_file()
    assert cmd[-4:] == ["smoke=true", "--cores", "1", "-n"] and "running: " in capsys.readouterr().out
    # smoke's options after the config are smoke's, not passed on a second time; words after -- are Snakemake's
    started.clear()
    assert main(["smoke", str(repo / "config" / "tiny.yaml"), "-n", "--cores", "1", "-d", "w", "--", "--cores"]) == 0
    cmd = started[0]
    assert cmd.count("--cores") == 2 and cmd[-7:] == ["smoke=true", "--cores", "1", "-d", "w", "-n", "--cores"]
