"""GenDist output side: generate() (resume, atomicity, manifest, workers), CLI, preview, DnCNN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.distort import derive_seed, distort_image, generate
from syndr_lightning.distort import generator as gen_mod
from syndr_lightning.distort.dncnn import DnCNN, load_dncnn_denoiser
from syndr_lightning.utils.errors import InputError


def _make_refs(folder: Path, n: int = 2, h: int = 32, w: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([x * 255 / w, y * 255 / h, rng.random((h, w)) * 255], -1).astype(np.uint8)
        p = folder / f"I{i:02d}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def test_generate_writes_files_manifest_and_resumes(tmp_path: Path) -> None:
    refs = _make_refs(tmp_path / "refs")
    out = tmp_path / "out"
    df = generate(refs, out, types=[1, 10, 23], levels=[1, 5], seed=3, progress=False)
    assert len(df) == 2 * 3 * 2
    assert list(df.columns) == ["ref", "type", "level", "path", "seed"]
    assert "I00_10_05.png" in _pngs(out) and len(_pngs(out)) == 12
    # bytes equal the single-image API with the derived seed
    img = np.asarray(Image.open(refs[1]).convert("RGB"))
    expect = distort_image(img, 23, 5, derive_seed(3, "I01", 23, 5))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "I01_23_05.png")), expect)
    csv = pd.read_csv(out / "manifest.csv", dtype={"ref": str})
    assert len(csv) == 12 and (csv["path"].str.endswith(".png")).all()
    assert not any(Path(p).is_absolute() for p in csv["path"])
    row = csv[(csv["ref"] == "I01") & (csv["type"] == 23) & (csv["level"] == 5)]
    assert int(row["seed"].iloc[0]) == derive_seed(3, "I01", 23, 5)

    # resume: a finished file is skipped (its mtime is kept), a deleted one is remade
    keep = out / "I00_01_01.png"
    os.utime(keep, (1_000_000, 1_000_000))
    (out / "I01_10_01.png").unlink()
    df2 = generate(refs, out, types=[1, 10, 23], levels=[1, 5], seed=3, progress=True)
    assert keep.stat().st_mtime == 1_000_000
    assert (out / "I01_10_01.png").exists() and len(df2) == 12

    # a later request for more types keeps the earlier manifest rows
    generate(refs, out, types=[17], levels=[3], seed=3, progress=False)
    assert len(pd.read_csv(out / "manifest.csv")) == 14

    # mixing seeds in one folder is refused
    with pytest.raises(InputError, match="seed"):
        generate(refs, out, types=[1], levels=[1], seed=4, progress=False)


def test_generate_never_leaves_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _make_refs(tmp_path / "refs", n=1)
    out = tmp_path / "out"
    real = gen_mod._distort_image
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_mod, "_distort_image", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate(refs, out, types=[1, 17], levels=[1, 3], seed=0, progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["I00_01_01.png", "I00_01_03.png", "manifest.csv"]  # no temp files
    assert len(pd.read_csv(out / "manifest.csv")) == 2  # written on interrupt
    monkeypatch.setattr(gen_mod, "_distort_image", real)
    generate(refs, out, types=[1, 17], levels=[1, 3], seed=0, progress=False)
    assert len(_pngs(out)) == 4 and len(pd.read_csv(out / "manifest.csv")) == 4


def test_generate_with_workers_and_batched_device_match(tmp_path: Path) -> None:
    refs = _make_refs(tmp_path / "refs", n=3)
    a, b = tmp_path / "a", tmp_path / "b"
    types, levels = [3, 9, 21], [1, 5]
    generate(refs, a, types=types, levels=levels, seed=1, workers=1, progress=False)
    # explicit device: torch types batched in this process, the rest inline
    generate(
        refs,
        b,
        types=types,
        levels=levels,
        seed=1,
        workers=0,
        progress=False,
        device="cpu",
        batch_size=2,
    )
    assert _pngs(a) == _pngs(b) and len(_pngs(a)) == 18
    for name in _pngs(a):
        x = np.asarray(Image.open(a / name)).astype(int)
        y = np.asarray(Image.open(b / name)).astype(int)
        assert np.abs(x - y).max() <= 1, name
    # an unreadable reference fails in a worker and reaches the caller as InputError
    bad = tmp_path / "refs" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot decode reference image"):
        generate([*refs, bad], a, types=[9], levels=[1], seed=1, workers=1, progress=False)


def test_generate_bad_inputs(tmp_path: Path) -> None:
    refs = _make_refs(tmp_path / "refs", n=1)
    with pytest.raises(InputError, match="not found"):
        generate([tmp_path / "missing.png"], tmp_path / "o", types=[1], levels=[1], progress=False)
    with pytest.raises(InputError, match=r"1\.\.25"):
        generate(refs, tmp_path / "o", types=[0], levels=[1], progress=False)
    dup = tmp_path / "other" / "I00.png"
    dup.parent.mkdir()
    dup.write_bytes(refs[0].read_bytes())
    with pytest.raises(InputError, match="share the id"):
        generate([refs[0], dup], tmp_path / "o", types=[1], levels=[1], progress=False)
    with pytest.raises(InputError, match="existing file"):
        generate(refs, refs[0], types=[1], levels=[1], progress=False)
    with pytest.raises(InputError, match="device"):
        generate(refs, tmp_path / "o", types=[1], levels=[1], progress=False, device="nonsense")
    with pytest.raises(InputError, match="workers"):
        generate(refs, tmp_path / "o", types=[1], levels=[1], progress=False, workers=-1)
    bad = tmp_path / "bad" / "x.png"
    bad.parent.mkdir()
    bad.write_text("not an image")
    with pytest.raises(InputError, match="cannot decode reference image"):
        generate([bad], tmp_path / "o2", types=[1], levels=[1], progress=False)


def test_cli_generate_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_refs(tmp_path / "refs", n=1)
    out = tmp_path / "out"
    rc = syndr_main(
        [
            "distort",
            "--refs",
            str(tmp_path / "refs"),
            "--out",
            str(out),
            "--types",
            "1,18",
            "--levels",
            "1,3,5",
            "--no-progress",
        ]
    )
    assert rc == 0 and len(_pngs(out)) == 6
    rc = syndr_main(
        ["distort", "--refs", str(tmp_path / "nope"), "--out", str(out), "--no-progress"]
    )
    err = capsys.readouterr().err.strip()
    # A missing input folder is bad input (1); a wrong option value is usage (2).
    assert rc == 1 and err.startswith("syndr distort: error:") and "\n" not in err
    rc = syndr_main(
        ["distort", "--refs", str(tmp_path / "refs"), "--out", str(out), "--types", "30"]
    )
    assert rc == 2 and "1..25" in capsys.readouterr().err


def test_cli_preview_renders(tmp_path: Path) -> None:
    ref = _make_refs(tmp_path / "refs", n=1, h=24, w=32)[0]
    sheet = tmp_path / "sheet.png"
    rc = syndr_main(
        [
            "distort",
            "--preview",
            str(sheet),
            "--refs",
            str(ref),
            "--types",
            "1,23",
            "--levels",
            "1,5",
        ]
    )
    assert rc == 0
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 200
        assert len(np.unique(np.asarray(im.convert("L")))) > 50  # images, not a blank page


def test_dncnn_checkpoint_is_used(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DnCNN(depth=3, features=8)
    ckpt = tmp_path / "dncnn.pt"
    torch.save(model.state_dict(), ckpt)
    den = load_dncnn_denoiser(ckpt)
    noisy = np.random.default_rng(0).random((12, 16, 3))
    with torch.no_grad():
        expect = model.eval()(torch.from_numpy(noisy.transpose(2, 0, 1)).float().unsqueeze(1))
    np.testing.assert_allclose(den(noisy), expect.squeeze(1).permute(1, 2, 0).numpy(), atol=1e-6)
    img = (np.random.default_rng(1).random((24, 32, 3)) * 255).astype(np.uint8)
    a = distort_image(img, 15, 2, seed=3, denoiser=ckpt)
    b = distort_image(img, 15, 2, seed=3)
    assert a.shape == img.shape and not np.array_equal(a, b)
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(InputError, match="DnCNN"):
        distort_image(img, 15, 2, seed=3, denoiser=bad)


def test_png_encoder_round_trips(tmp_path: Path) -> None:
    from syndr_lightning.distort.png import encode_png_rgb

    rng = np.random.default_rng(0)
    for shape in ((1, 1, 3), (7, 5, 3), (33, 64, 3)):
        img = (rng.random(shape) * 256).astype(np.uint8)
        p = tmp_path / "x.png"
        p.write_bytes(encode_png_rgb(img))
        with Image.open(p) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(im), img)
    with pytest.raises(InputError, match="uint8"):
        encode_png_rgb(np.zeros((4, 4), dtype=np.uint8))


def test_cli_process_starts_light_and_matches_in_process(tmp_path: Path) -> None:
    # the command as users run it: a fresh interpreter, default settings plus 2 workers;
    # without a GPU driver it forks its workers and never imports torch for these types
    refs = _make_refs(tmp_path / "refs", n=2)
    out, inproc = tmp_path / "cli", tmp_path / "inproc"
    types, levels = [1, 3, 10, 17, 18, 25], [1, 5]
    code = (
        "import sys\n"
        "from syndr_lightning.distort.generator import _gpu_possible\n"
        "gpu = _gpu_possible()\n"
        "from syndr_lightning.cli import main\n"
        f"rc = main(['distort', '--refs', {str(tmp_path / 'refs')!r}, '--out', {str(out)!r}, "
        "'--types', '1,3,10,17,18,25', '--levels', '1,5', '--workers', '2', '--no-progress'])\n"
        "print(rc, 'torch' in sys.modules, gpu)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    rc, torch_loaded, gpu = proc.stdout.split()[-3:]
    assert rc == "0", proc.stderr[-2000:]
    assert torch_loaded == gpu  # torch only where a GPU may be used
    generate(refs, inproc, types=types, levels=levels, seed=0, workers=0, progress=False)
    assert _pngs(out) == _pngs(inproc) and len(_pngs(out)) == 24
    for name in _pngs(out):
        x = np.asarray(Image.open(out / name)).astype(int)
        y = np.asarray(Image.open(inproc / name)).astype(int)
        assert np.abs(x - y).max() <= 1, name
