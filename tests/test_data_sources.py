"""Local image datasets: ImageFolder, zips in the cifar10 layout, save_to_disk folders and parquet files; split choice;
errors a user can act on. Every fixture is a handful of tiny images written to tmp_path."""
import zipfile
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from eebench.data import load_dataset
from eebench.data.images import choose_splits
from eebench.errors import EEBenchError

BACKBONE = SimpleNamespace(image_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
CLASSES = ["cat", "airplane"]  # written unsorted: labels must follow the sorted names (ImageFolder's convention)


def colour(label: int, i: int):
    return (40 * label + 10, 5 * i, 200)


def write_tree(root, split, per_class, suffix=".png", size=12):
    for label, name in enumerate(sorted(CLASSES)):
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (size, size), colour(label, i)).save(root / split / name / f"{i}{suffix}")


def all_labels(batches):
    return torch.cat([y for _, y in batches]).tolist()


def test_image_folder(tmp_path):
    write_tree(tmp_path, "train", 3)
    write_tree(tmp_path, "test", 2, suffix=".jpg")
    src = load_dataset({"name": "images", "root": str(tmp_path)})
    assert (src.num_classes, src.train_size, src.class_names) == (2, 6, ["airplane", "cat"])
    assert "ImageFolder" in src.description and "6 train / 4 test" in src.description
    x, y = next(iter(src.eval_batches(BACKBONE, 16)))
    assert x.shape == (4, 3, 8, 8) and y.tolist() == [0, 0, 1, 1]
    # the evaluation order is the file order; the pixels are the ones written (PNG is lossless, JPEG nearly)
    assert x[2, 0].mean().item() == pytest.approx((50 / 255 - 0.5) / 0.5, abs=0.03)
    train_labels = all_labels(src.train_batches(BACKBONE, 4, torch.Generator().manual_seed(0)))
    assert sorted(train_labels) == [0, 0, 0, 1, 1, 1]


def test_zip_in_the_cifar10_layout(tmp_path):
    src_dir = tmp_path / "tree"
    write_tree(src_dir, "train", 3, suffix=".jpg")
    write_tree(src_dir, "test", 1, suffix=".jpg")
    root = tmp_path / "cifar10"
    root.mkdir()
    for split, name in (("train", "train_3_per_class.zip"), ("test", "test_1_per_class.zip")):
        with zipfile.ZipFile(root / name, "w", zipfile.ZIP_STORED) as z:
            for f in sorted((src_dir / split).rglob("*.jpg")):
                z.write(f, f.relative_to(src_dir).as_posix())  # train/<class>/<n>.jpg, as in shared/data
    src = load_dataset({"name": "cifar10", "root": str(root)})
    assert (src.num_classes, src.train_size, src.class_names) == (2, 6, ["airplane", "cat"])
    assert "zip files" in src.description
    assert all_labels(src.eval_batches(BACKBONE, 8)) == [0, 1]
    x, _ = next(iter(src.train_batches(BACKBONE, 6, torch.Generator().manual_seed(0))))
    assert x.shape == (6, 3, 8, 8)


def hf_splits(split_names, n=4):
    """A DatasetDict the way `datasets` builds one: an Image() feature and a ClassLabel."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as HFImage

    features = Features({"image": HFImage(), "label": ClassLabel(names=["a", "b", "c"])})
    return DatasetDict({split: Dataset.from_dict({"image": [Image.new("RGB", (10, 14), (20 * k, 30 * i, 0))
                                                            for i in range(n)],
                                                  "label": [i % 3 for i in range(n)]}, features=features)
                        for k, split in enumerate(split_names)})


def test_save_to_disk_folder_picks_validation(tmp_path):
    hf_splits(["train", "validation"]).save_to_disk(str(tmp_path / "saved"))
    src = load_dataset({"name": "food101", "root": str(tmp_path / "saved")})
    assert (src.num_classes, src.train_size, src.class_names) == (3, 4, ["a", "b", "c"])
    assert "save_to_disk" in src.description and "validation" in src.description
    x, y = next(iter(src.eval_batches(BACKBONE, 8)))
    assert x.shape == (4, 3, 8, 8) and y.tolist() == [0, 1, 2, 0]


def test_parquet_files_per_split(tmp_path):
    dd = hf_splits(["train", "test"])
    (tmp_path / "pq").mkdir()
    dd["train"].to_parquet(str(tmp_path / "pq" / "train-00000-of-00001.parquet"))
    dd["test"].to_parquet(str(tmp_path / "pq" / "test.parquet"))
    src = load_dataset({"name": "cifar100", "root": str(tmp_path / "pq"), "cache_dir": str(tmp_path / "cache"),
                        "label_column": "label", "image_column": "image"})
    assert (src.num_classes, src.train_size) == (3, 4)
    assert "parquet" in src.description and "4 test" in src.description
    assert all_labels(src.eval_batches(BACKBONE, 3)) == [0, 1, 2, 0]


def test_unlabelled_eval_split_and_unknown_column_are_clear_errors(tmp_path):
    from datasets import Dataset, DatasetDict

    img = [Image.new("RGB", (8, 8))] * 2
    DatasetDict({"train": Dataset.from_dict({"img": img, "fine_label": [0, 1]}),
                 "test": Dataset.from_dict({"img": img, "fine_label": [-1, -1]})}).save_to_disk(str(tmp_path / "s"))
    with pytest.raises(EEBenchError, match=r"split 'test' .* labels outside 0\.\.1 .* eval_split"):
        load_dataset({"name": "imagenet1k", "root": str(tmp_path / "s")})
    with pytest.raises(EEBenchError, match=r"no label column 'label' \(columns: img, fine_label\)"):
        load_dataset({"name": "imagenet1k", "root": str(tmp_path / "s"), "label_column": "label"})


def test_split_choice():
    assert choose_splits(["train", "validation"], "train", None, "x") == ("train", "validation")
    assert choose_splits(["train", "test"], "train", None, "x") == ("train", "test")
    assert choose_splits(["test", "valid", "train"], "train", None, "x") == ("train", "valid")
    # ImageNet-1K on the hub has an unlabelled test split: validation wins, as in the official code
    assert choose_splits(["train", "test", "validation"], "train", None, "x") == ("train", "validation")
    assert choose_splits(["train", "test", "validation"], "train", "test", "x") == ("train", "test")
    with pytest.raises(EEBenchError, match="no evaluation split .* set eval_split"):
        choose_splits(["train", "extra"], "train", None, "x")
    with pytest.raises(EEBenchError, match="no split 'training'"):
        choose_splits(["train", "test"], "training", None, "x")


def test_missing_or_unrecognised_root_is_one_clear_error(tmp_path):
    with pytest.raises(EEBenchError, match=r"dataset 'cifar10': root .*nowhere does not exist — point root: at") as e:
        load_dataset({"name": "cifar10", "root": str(tmp_path / "nowhere")})
    assert "\n" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EEBenchError, match="holds no dataset in a known layout"):
        load_dataset({"name": "cifar10", "root": str(tmp_path / "empty")})
    with pytest.raises(EEBenchError, match="bad option for dataset 'cifar10'"):
        load_dataset({"name": "cifar10", "rot": str(tmp_path)})


def test_digits_keeps_its_in_memory_path_and_rejects_a_wrong_backbone():
    src = load_dataset({"name": "digits"})
    tiny = SimpleNamespace(image_size=8, mean=(0.5,), std=(0.5,))
    x, y = next(iter(src.train_batches(tiny, 32, torch.Generator().manual_seed(0))))
    assert x.shape == (32, 1, 8, 8) and src.train_size == 1437
    with pytest.raises(EEBenchError, match="1-channel 8x8 images but the backbone takes 3-channel 224x224"):
        next(iter(src.eval_batches(SimpleNamespace(image_size=224, mean=(0.5,) * 3, std=(0.5,) * 3), 8)))
