"""workflow/scripts/latency_gpu.py end to end on a CPU (``--cpu-dry-run``: the graph paths run their eager stand-ins),
so a GPU session spends its time measuring, not debugging the script. Its timings mean nothing here; what is checked
is the plumbing: every path runs, agrees with eager early exit, and counts the segments it spent."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "latency_gpu.py"
TINY_12 = {"name": "vit_tiny_digits", "num_hidden_layers": 12, "hidden_size": 32, "num_attention_heads": 2,
           "intermediate_size": 64}


def test_dry_run_covers_every_path(tmp_path):
    out = tmp_path / "latency.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-dry-run", "--backbone", json.dumps(TINY_12),
                           "--heads", "lgvit", "--classes", "10", "--images", "8", "--passes", "1", "--batches", "8",
                           "--iters", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mixed histogram: best path" in proc.stdout
    res = json.loads(out.read_text())["models"]["lgvit"]
    paths = res["batch1"]["paths"]
    assert set(paths) == {"eager", "graph/sync/host", "graph/sync/device", "graph/overlap/host",
                          "graph/overlap/device", "graph/conditional/device"}
    assert res["batch1"]["skipped"] == {}
    rows = len(res["row_layers"])
    for name, points in paths.items():
        assert len(points) == rows + 1  # each exit forced, the full model, the mixed histogram
        for label, p in points.items():
            assert p["same_exits_as_eager"] == 1.0, (name, label)
            assert sum(p["histogram"]) == 8
    for r in range(rows - 1):  # forced at row r: r+1 segments, one more when the next one is speculated
        label = f"forced row {r} (block {res['row_layers'][r]})"
        assert paths["graph/sync/device"][label]["mean_segments"] == r + 1
        assert paths["graph/conditional/device"][label]["mean_segments"] == r + 1
        assert paths["graph/overlap/device"][label]["mean_segments"] == r + 2
    assert res["mixed_best"]["path"] in paths and res["mixed_best"]["target"] == 0.9


def test_refuses_a_cpu_without_the_dry_run_flag():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--heads", "lgvit"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "no CUDA GPU is visible" in proc.stderr
