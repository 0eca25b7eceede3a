"""A board built from a real (tiny) run: a digits run of three methods through the Snakemake DAG, then `eebench board
build` into a temporary folder. The board holds the contract's files and provenance; its per-sample records
reproduce every store row; the API loads it; an unfinished run or a corrupt record is refused in one line; the site
over it loads in headless Chromium without console errors, lists every entry and sorts on a click."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import headless_dom, one_line
import yaml

from eebench.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")

CONFIG = {
    "run": "tb", "seeds": [0],
    "dataset": {"name": "digits", "test_fraction": 0.2, "split_seed": 0},
    "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                 "intermediate_size": 64},
    "training": {"epochs": 2, "batch_size": 64, "lr": 3e-3, "warmup_ratio": 0.1, "threads": 1},
    "methods": {"backbone": {}, "sdn": {}, "pabee": {}},
    "leaderboard": {"bootstrap": 20},
    "latency": {"passes": 1, "limit": 8, "threads": [1]},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("board_run")
    (work / "tb.yaml").write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                           "--configfile", "tb.yaml"], cwd=work, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = work / "boards" / "tb"
    assert main(["board", "build", "tb", "--configfile", str(work / "tb.yaml"), "--results-root", str(work),
                 "--out", str(out)]) == 0
    return {"work": work, "board": out}


def test_the_board_holds_the_contract_files(built):
    board = built["board"]
    meta = json.loads((board / "board.json").read_text())
    assert meta["name"] == "tb" and meta["cells"] == {"tb": "tb"} and meta["config"]["run"] == "tb"
    assert (board / "config.yaml").read_bytes() == (built["work"] / "tb.yaml").read_bytes()
    assert meta["config_sha256"] == hashlib.sha256((built["work"] / "tb.yaml").read_bytes()).hexdigest()
    cell = board / "tb"
    for f in ["store.csv", "samples.npz", "entries.csv", "leaderboard.md", "leaderboard.csv", "leaderboard.html",
              "table1.md", "table1.csv", "table5.md", "table5.csv", "fig1_tradeoff.png", "pareto.png"]:
        assert (cell / f).is_file(), f
    files = [p.name for p in board.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pdf", ".tex", ".pt", ".parquet"))], files
    assert not [p for p in board.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    # full provenance: the commit and libraries the run ran with, CPU and flags, precision, wall time
    prov = meta["provenance"]
    assert prov["git_commit"] and prov["libraries"]["torch"] and prov["libraries"]["eebench"]
    assert prov["cpu"]["model"] and set(prov["cpu"]["flags"]) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert prov["precision"]["effective dtype (store)"] == "fp32" and prov["threads"] == 1
    wall = prov["wall_time"]
    # three training stages (backbone, SDN, PABEE) with their epoch seconds; every Snakemake job of the run
    assert wall["stages"] == 3 and 0 < wall["train_epochs_s"] <= wall["train_jobs_s"]
    assert {"train", "costs", "curves", "latency", "store", "leaderboard", "report"} <= set(wall["jobs_s"]["per_rule"])
    assert "job-seconds" in wall["counted"]
    total = sum(p.stat().st_size for p in board.rglob("*") if p.is_file())
    assert total < 1_000_000, total  # a tiny board is well under a MB


def test_every_store_row_is_reproduced_by_its_sample_record(built):
    from eebench.leaderboard.boards import load_board

    board = load_board(built["board"])
    store, samples = board.store("tb"), board.samples("tb")
    assert len(samples.keys) == len(store) and samples.n == 360  # 20 % of the 1,797 digits
    for _, row in store.iterrows():
        e = samples.entry(row)
        assert e.accuracy() == pytest.approx(row["metric_value"], abs=1e-12)
        assert e.mac_speedup() == pytest.approx(row["head_aware_speedup_paper"], rel=1e-12)
        assert e.mac_speedup("full") == pytest.approx(row["head_aware_speedup_full"], rel=1e-12)
        assert e.layer_speedup() == pytest.approx(row["layer_speedup"], rel=1e-12)
        assert e.sample_macs().mean() == pytest.approx(row["expected_macs_paper"], rel=1e-12)
    # the paired test between two of its methods, and of a method against itself
    from eebench.leaderboard.paired import paired_area

    res = paired_area(samples.entries("pabee", 0), samples.entries("sdn", 0), 1.0, 3.0, n_boot=100, seed=0)
    assert res["ci_low"] <= res["ci_high"] and res == paired_area(samples.entries("pabee", 0),
                                                                   samples.entries("sdn", 0), 1.0, 3.0, n_boot=100)
    same = paired_area(samples.entries("sdn", 0), samples.entries("sdn", 0), 1.0, 3.0, n_boot=100)
    assert same["diff"] == same["ci_low"] == same["ci_high"] == 0.0 and not same["significant"]



def test_the_api_loads_a_board_folder(built):
    from eebench.leaderboard.boards import load_board

    board = load_board(str(built["board"]))
    assert board.name == "tb" and board.root == built["board"] and board.config["methods"].keys() >= {"sdn"}
    assert board.config_file.endswith("tb.yaml") and board.cells == {"tb": built["board"] / "tb"}
    assert len(board.store()) == len(board.store("tb"))
    entries = board.entries("tb").set_index("method")
    assert list(entries.index) == list(board.config["methods"]) and entries.loc["backbone", "layer_speedup_mean"] == 1
    assert "has no run" in one_line(board.store, "nope")
    assert "not a registered name" in one_line(load_board, str(built["work"] / "missing"))


def test_a_corrupt_sample_record_in_a_board_is_refused_in_one_line(built, tmp_path):
    from eebench.leaderboard.boards import load_board

    copy = tmp_path / "tb"
    shutil.copytree(built["board"], copy)
    (copy / "tb" / "samples.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert "unreadable or corrupt" in one_line(load_board(copy).samples, "tb")


def test_an_unfinished_run_is_refused_in_one_line_naming_the_file_and_the_fix(built, tmp_path, capsys):
    work = tmp_path / "run"
    for d in ("results", "reports"):
        shutil.copytree(built["work"] / d, work / d)
    shutil.copy(built["work"] / "tb.yaml", work / "tb.yaml")
    (work / "results" / "tb" / "curves" / "sdn" / "seed0.csv").unlink()
    args = ["board", "build", "tb", "--configfile", str(work / "tb.yaml"), "--results-root", str(work),
            "--out", str(tmp_path / "board")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("eebench: error: run tb is not finished: ")
    assert "curves/sdn/seed0.csv is missing" in err and f"snakemake --cores all --configfile {work / 'tb.yaml'}" in err
    assert not (tmp_path / "board").exists()
    # a method added to the config after its run: its files are missing, the same refusal
    cfg = {**CONFIG, "methods": {**CONFIG["methods"], "deebert": {}}}
    (work / "more.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["board", "build", "tb", "--configfile", str(work / "more.yaml"), "--results-root",
                 str(built["work"]), "--out", str(tmp_path / "board")]) == 2
    assert "is missing" in capsys.readouterr().err


def test_the_site_loads_in_headless_chromium_lists_every_entry_and_sorts(built, tmp_path):
    from eebench.leaderboard.boards import load_board
    from eebench.leaderboard.site import write_site

    board = load_board(built["board"])
    page = write_site(built["board"].parent / "index.html", [board])
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # offline: nothing to fetch
    assert page.stat().st_size < 100_000
    # the page as shipped, plus a script that clicks the area column's header twice and records the row order
    probe = page.with_name("probe.html")
    probe.write_text(text.replace("</body>", """<script>
(function(){var t=document.getElementById('t-tb-tb'),th=t.tHead.rows[0].cells[2];
function order(){return Array.prototype.map.call(t.tBodies[0].rows,
  function(r){return r.getAttribute('data-method');}).join(',');}
th.click();var asc=order();th.click();var desc=order();
var d=document.createElement('div');d.id='sort-probe';d.setAttribute('data-asc',asc);d.setAttribute('data-desc',desc);
document.body.appendChild(d);})();
</script></body>"""))
    dom, console = {}, {}
    for name, path in (("page", page), ("probe", probe)):
        dom[name], console[name] = headless_dom(path, tmp_path / ("profile-" + name))
    assert not console["page"] and not console["probe"], console
    entries = board.entries("tb")
    status = re.search(r'<div id="js-status" data-tables="(\d+)" data-rows="(\d+)" data-errors="([^"]*)"', dom["page"])
    assert status and status.group(1) == "1" and int(status.group(2)) == len(entries) and status.group(3) == "[]"
    for method in entries["method"]:
        assert f'<tr data-method="{method}">' in dom["page"]
    assert 'src="tb/tb/pareto.png"' in dom["page"] and "Protocol" in dom["page"] and "Provenance" in dom["page"]
    probe_div = re.search(r'<div id="sort-probe" data-asc="([^"]*)" data-desc="([^"]*)"', dom["probe"])
    assert probe_div, dom["probe"][-2000:]
    # the area column: the methods with exits by their area, up then down; the backbone (no area) last both times
    ranked = entries[entries["has_exits"]].sort_values("area_mean")["method"].tolist()
    assert probe_div.group(1).split(",") == ranked + ["backbone"]
    assert probe_div.group(2).split(",") == ranked[::-1] + ["backbone"]
