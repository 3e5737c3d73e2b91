"""Reference-feature extraction: frozen encoder, centre crop, one cache file per pool."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from syndr_lightning.models.backbones import TinyCNN
from syndr_lightning.reshape.features import build_encoder, extract_reference_features
from syndr_lightning.utils.errors import ConfigError, InputError


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for k, (h, w) in enumerate([(40, 48), (36, 36), (20, 30)]):
        p = tmp_path / f"ref{k}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save(TinyCNN().state_dict(), weights)
    return tmp_path, paths, str(weights)


def test_extract_and_cache(images, capsys):
    d, paths, weights = images
    cache = d / "cache"
    kw = {
        "encoder": "tiny_cnn",
        "weights": weights,
        "crop_size": 32,
        "batch_size": 2,
        "device": "cpu",
    }
    a = extract_reference_features(paths, cache_dir=cache, **kw)
    assert a.shape == (3, 64) and a.dtype == np.float32 and np.isfinite(a).all()
    # One file for the whole pool (not one per image), and the encoder pass showed its
    # progress on stderr.
    assert len(list(cache.glob("*.npy"))) == 1 and not list(cache.glob("*.tmp"))
    err = capsys.readouterr().err
    assert "DDCUp encoder (3 images)" in err and "3/3" in err
    # The cached pool is reused (nothing recomputed, no progress shown) ...
    f = next(cache.glob("*.npy"))
    stamp = f.stat().st_mtime_ns
    b = extract_reference_features(paths, cache_dir=cache, **kw)
    assert f.stat().st_mtime_ns == stamp and capsys.readouterr().err == ""
    np.testing.assert_array_equal(b, a)
    # ... but an edit keeping its size and mtime is found by its digest and recomputed.
    poisoned = a.copy()
    poisoned[1] = 7.0
    np.save(f, poisoned)
    os.utime(f, ns=(stamp, stamp))
    b = extract_reference_features(paths, cache_dir=cache, **kw, progress=False)
    assert not (b == 7.0).all(axis=1).any()
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # A file without its digest (written by an older version) is recomputed too.
    f.with_name(f.name + ".sha256").unlink()
    np.save(f, poisoned)
    b = extract_reference_features(paths, cache_dir=cache, **kw, progress=False)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # Without a cache the features are recomputed and equal the first run.
    np.testing.assert_allclose(extract_reference_features(paths, **kw), a, rtol=1e-5, atol=1e-6)
    # A modified image gets a new cache entry (size/mtime are in the key).
    Image.fromarray(np.zeros((40, 48, 3), dtype=np.uint8)).save(paths[0])
    os.utime(paths[0], ns=(1, 1))
    c = extract_reference_features(paths, cache_dir=cache, **kw)
    assert len(list(cache.glob("*.npy"))) == 2 and not np.allclose(c[0], a[0])
    np.testing.assert_allclose(c[1:], a[1:], rtol=1e-5, atol=1e-6)


def test_encoder_pass_with_loader_workers_matches(images):
    _, paths, weights = images
    kw = {"encoder": "tiny_cnn", "weights": weights, "crop_size": 32, "batch_size": 2}
    a = extract_reference_features(paths, num_workers=0, progress=False, **kw)
    b = extract_reference_features(paths, num_workers=2, progress=False, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_input(images, tmp_path):
    d = images[0]
    with pytest.raises(InputError, match="not found"):
        extract_reference_features([d / "missing.png"], encoder="tiny_cnn", weights="none")
    with pytest.raises(InputError, match="at least one"):
        extract_reference_features([], encoder="tiny_cnn")
    (d / "bad.png").write_text("no image")
    with pytest.raises(InputError, match="not a readable image"):
        extract_reference_features(
            [d / "bad.png"], encoder="tiny_cnn", weights="none", crop_size=32
        )
    with pytest.raises(ConfigError, match="allowed values"):
        build_encoder("vgg", "none")
    with pytest.raises(ConfigError, match="local weights file"):
        build_encoder("clip_vit_b16", str(tmp_path / "nope.pth"))


# Constants and crops written out here, independently of the package's own.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _centre_crops(paths, crop: int, mean, std, resize: int | None = None) -> torch.Tensor:
    """torchvision's centre crop after its bilinear tensor resize of the short side (to
    ``resize``, and up to ``crop`` when smaller; the training transforms' resampler),
    rounded to uint8, then ``(x - mean) / std``. The image sizes used here make every
    resize and crop offset exact, so no rounding convention differs."""
    from torchvision.transforms.v2 import functional as TF

    out = []
    for p in paths:
        with Image.open(p) as im:
            x = torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1)
        h, w = x.shape[1:]
        short = max(resize or min(h, w), crop)
        if short != min(h, w):
            s = short / min(h, w)
            y = TF.resize(x.float() / 255, [round(h * s), round(w * s)], antialias=s < 1)
            x = y.clamp(0, 1).mul(255).round().to(torch.uint8)
        x = TF.center_crop(x, [crop, crop]).float() / 255
        out.append(TF.normalize(x, list(mean), list(std)))
    return torch.stack(out)


def test_reference_features_are_the_encoder_on_normalised_centre_crops(images):
    """The features equal the same network run here on crops normalised here."""
    _, paths, weights = images
    feats = extract_reference_features(
        paths, encoder="tiny_cnn", weights=weights, crop_size=32, device="cpu"
    )
    net = TinyCNN()
    net.load_state_dict(torch.load(weights, weights_only=True))
    with torch.no_grad():
        expected = net.eval()(_centre_crops(paths, 32, IMAGENET_MEAN, IMAGENET_STD)).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)


def test_clip_encoder_from_local_file(images, tmp_path):
    """CLIP's image tower from a local file sees CLIP-normalised 224 px centre crops."""
    import timm

    _, paths, _ = images
    paths = paths[1:]  # 36x36 and 20x30: exact upscaling to 224 px
    torch.manual_seed(0)
    net = timm.create_model("vit_base_patch16_clip_224", pretrained=False, num_classes=0)
    weights = tmp_path / "clip_vit_b16.pth"
    torch.save({"state_dict": net.state_dict()}, weights)
    feats = extract_reference_features(
        paths, encoder="clip_vit_b16", weights=str(weights), device="cpu"
    )
    assert feats.shape == (2, 768) and np.isfinite(feats).all()
    with torch.no_grad():
        expected = net.eval()(_centre_crops(paths, 224, CLIP_MEAN, CLIP_STD)).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-3, atol=1e-4)


def test_efficientnet_lite0_offline(images):
    _, paths, _ = images
    feats = extract_reference_features(
        paths, encoder="efficientnet_lite0", weights="offline", crop_size=64, device="cpu"
    )
    assert feats.shape == (3, 1280) and np.isfinite(feats).all()
