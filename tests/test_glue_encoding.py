"""GLUE tsv reading: MRPC's byte-order mark, and one-line errors for undecodable, unscored or empty files."""
import pytest

from eebench.data.digits import load_digits
from eebench.data.glue import TASKS, read_tsv
from eebench.errors import EEBenchError

MRPC_HEAD = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


def test_mrpc_bom_header_is_read(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_bytes(("\ufeff" + MRPC_HEAD + "1\t1\t2\tA cat.\tA cat sat.\n").encode("utf-8"))
    split = read_tsv(p, TASKS["mrpc"], "mrpc")
    assert len(split.texts) == 1 and split.labels.tolist() == [1]


@pytest.mark.parametrize("data, words", [
    (MRPC_HEAD.encode() + b"1\t1\t2\tA \xff cat.\tB\n", "not UTF-8"),
    (b"", "is empty"),
])
def test_bad_tsv_is_one_line(tmp_path, data, words):
    p = tmp_path / "dev.tsv"
    p.write_bytes(data)
    with pytest.raises(EEBenchError) as e:
        read_tsv(p, TASKS["mrpc"], "mrpc")
    msg = str(e.value)
    assert words in msg and str(p) in msg and " — " in msg and "\n" not in msg


def test_stsb_na_score_is_one_line(tmp_path):
    p = tmp_path / "dev.tsv"
    cols = TASKS["stsb"].tsv_columns or TASKS["stsb"].columns
    head = "\t".join([*cols, TASKS["stsb"].tsv_label])
    p.write_text(head + "\n" + "\t".join(["a", "b", "n/a"]) + "\n", encoding="utf-8")
    with pytest.raises(EEBenchError, match="n/a"):
        read_tsv(p, TASKS["stsb"], "stsb")


def test_test_fraction_zero_is_one_line():
    with pytest.raises(EEBenchError, match="test_fraction"):
        load_digits(test_fraction=0)


def test_test_fraction_zero_is_a_schema_error():
    from eebench.plan import validate_config

    with pytest.raises(EEBenchError, match="test_fraction"):
        validate_config({"run": "t", "methods": {"backbone": {}}, "dataset": {"name": "digits", "test_fraction": 0}})
