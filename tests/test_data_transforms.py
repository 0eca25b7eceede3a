"""The paper's transforms (spec methods §2.5) at the backbone's size and normalisation, and augmentation that depends
only on the run's generator (exact resume, same batches whatever num_workers)."""
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from eebench.data import load_dataset
from eebench.data.transforms import eval_transform, train_transform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RGB = (51, 102, 204)


@pytest.mark.parametrize("make", [train_transform, eval_transform])
def test_constant_image_maps_to_v_minus_mean_over_std(make):
    torch.manual_seed(0)
    x = make(16, MEAN, STD)(Image.new("RGB", (40, 24), RGB))  # non-square: resize + crop must still give 16x16
    assert x.shape == (3, 16, 16)
    for c in range(3):
        assert torch.allclose(x[c], torch.full((16, 16), (RGB[c] / 255 - MEAN[c]) / STD[c]), atol=1e-5)


def test_eval_resizes_the_shorter_side_then_centre_crops():
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 10))  # left third white: outside the centre crop
    x = eval_transform(10, (0, 0, 0), (1, 1, 1))(img)
    assert x.shape == (3, 10, 10) and x.max().item() == 0.0


def test_train_crops_vary_and_flip():
    img = Image.new("RGB", (32, 32))
    img.paste((255, 0, 0), (0, 0, 16, 32))  # left half red
    t = train_transform(8, (0, 0, 0), (1, 1, 1))
    torch.manual_seed(1)
    outs = [t(img) for _ in range(20)]
    assert len({o[0].sum().item() for o in outs}) > 5  # random scale/ratio/position
    assert any(o[0, :, 0].mean() < o[0, :, -1].mean() for o in outs)  # some flipped: red on the right


def folder(tmp_path, n=6):
    for label, name in enumerate(["a", "b"]):
        for split in ("train", "test"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (16, 16), (40 * i, 100 * label, 7 * i)).save(tmp_path / split / name / f"{i}.png")
    return tmp_path


def epoch(src, backbone, seed):
    return [b for b in src.train_batches(backbone, 5, torch.Generator().manual_seed(seed))]


def test_augmentation_depends_only_on_the_generator(tmp_path):
    root = folder(tmp_path)
    bb = SimpleNamespace(image_size=8, mean=(0.5,) * 3, std=(0.5,) * 3)
    src = load_dataset({"name": "images", "root": str(root)})
    rng = torch.get_rng_state()
    first, again = epoch(src, bb, 3), epoch(src, bb, 3)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left alone
    for (x1, y1), (x2, y2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other = epoch(src, bb, 4)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))
    workers = load_dataset({"name": "images", "root": str(root), "num_workers": 1})
    for (x1, y1), (x2, y2) in zip(first, epoch(workers, bb, 3)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_grey_backbone_gets_one_channel_and_eval_is_deterministic(tmp_path):
    src = load_dataset({"name": "images", "root": str(folder(tmp_path, n=2))})
    grey = SimpleNamespace(image_size=4, mean=(0.5,), std=(0.25,))
    a = torch.cat([x for x, _ in src.eval_batches(grey, 3)])
    b = torch.cat([x for x, _ in src.eval_batches(grey, 4)])
    assert a.shape == (4, 1, 4, 4) and torch.equal(a, b)
