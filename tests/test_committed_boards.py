"""The reference boards as committed (leaderboards/): every registered board is built and loads through the API,
stays a few MB with no checkpoint in it, carries its provenance, and its per-sample records reproduce its store
rows; the committed site lists every board and every entry in headless Chromium without a console error. A change
that breaks reading the shipped evidence fails here, not in a user's `compare`."""
import re
from pathlib import Path

import pytest
import yaml
from conftest import headless_dom

REPO = Path(__file__).resolve().parents[1]
NAMES = list(yaml.safe_load((REPO / "leaderboards" / "boards.yaml").read_text()))


@pytest.mark.parametrize("name", NAMES)
def test_a_committed_board_loads_with_its_provenance_and_stays_small(name):
    from eebench.leaderboard.boards import load_board

    board = load_board(name)
    files = [p for p in board.root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    assert not [p.name for p in files if p.suffix in (".pt", ".pth", ".pkl", ".parquet", ".pdf", ".tex")]
    prov = board.provenance
    assert prov["git_commit"] and prov["libraries"]["torch"] and prov["cpu"]["model"] and prov["wall_time"]["jobs_s"]
    for run in board.cells:
        store = board.store(run)
        assert len(store) and set(board.entries(run)["method"]) == set(store["method"])
        for f in ("leaderboard.md", "table1.md", "pareto.png", "samples.npz"):
            assert (board.cells[run] / f).is_file(), (run, f)


@pytest.mark.parametrize("name", NAMES)
def test_a_committed_boards_sample_records_reproduce_its_store(name):
    from eebench.leaderboard.boards import load_board

    board = load_board(name)
    checked = 0
    for run in board.cells:
        store, samples = board.store(run), board.samples(run)
        for _, row in store.iterrows():
            e = samples.entry(row)
            assert e.layer_speedup() == pytest.approx(row["layer_speedup"], rel=1e-9)
            assert e.mac_speedup() == pytest.approx(row["head_aware_speedup_paper"], rel=1e-9)
            if row["metric"] == "accuracy":
                assert e.accuracy() == pytest.approx(row["metric_value"], abs=1e-9)
            checked += 1
    assert checked


def test_the_committed_site_lists_every_board_and_entry_in_headless_chromium(tmp_path):
    from eebench.leaderboard.boards import load_board

    page = REPO / "leaderboards" / "index.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text
    boards = [load_board(n) for n in NAMES]
    for b in boards:
        assert f'id="board-{b.name}"' in text, b.name
    dom, console = headless_dom(page, tmp_path / "profile")
    assert not console
    status = re.search(r'<div id="js-status" data-tables="(\d+)" data-rows="(\d+)" data-errors="([^"]*)"', dom)
    runs = sum(len(b.cells) for b in boards)
    rows = sum(len(b.entries(r)) for b in boards for r in b.cells)
    assert status and (int(status.group(1)), int(status.group(2)), status.group(3)) == (runs, rows, "[]")
