"""GenDist against the MATLAB functions KADID's generator calls.

Expected values are derived by hand from MATLAB's documented definitions, or are MATLAB
outputs published by MathWorks and on MATLAB Answers (cited at each test); none of them
comes from our own code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from syndr_lightning.distort import color, ops_cpu, ops_torch

C45 = math.cos(math.radians(45))


# ----------------------------------------------------------------------------- type 3
def _motion_cases() -> list[tuple[float, float, np.ndarray]]:
    """fspecial('motion', len, theta) by hand: tap weight max(0, 1 - distance to the line),
    measured perpendicular inside radius (len-1)/2 of the centre and to the nearer end
    point outside it; normalised to sum 1. Rows top to bottom, angle counter-clockwise."""
    c30, s30 = math.cos(math.radians(30)), 0.5
    # len 3 at 45 deg: half = 1; corner taps (1,1) lie beyond the end point (C45, C45):
    # distance sqrt(2) (1 - C45); side taps (1,0) have radius 1 >= half, so their distance
    # is to the end point too: sqrt((1 - C45)^2 + C45^2).
    corner = 1 - math.sqrt(2) * (1 - C45)
    side = 1 - math.sqrt((1 - C45) ** 2 + C45**2)
    k45 = np.array([[0, side, corner], [side, 1, side], [corner, side, 0]])
    # len 5 at 30 deg: half = 2, 3 x 5 taps (sy = fix(2 sin + 1) = 1, sx = fix(2 cos + 1) = 2).
    # Inside radius 2: (1,0) perp 1/2; (1,1) perp cos - sin; (0,1) perp cos. Tap (2,1) has
    # radius sqrt(5) >= 2: distance to the end point (2 cos, 2 sin). Others >= 1 away.
    end_21 = math.sqrt((1 - 2 * s30) ** 2 + (2 - 2 * c30) ** 2)
    top = [0, 0, 1 - c30, 1 - (c30 - s30), 1 - end_21]
    k30 = np.array([top, [0, 0.5, 1, 0.5, 0], top[::-1]])
    return [
        (2, 0, np.array([[0.25, 0.5, 0.25]])),  # the value quoted in the issue
        (2, 90, np.array([[0.25], [0.5], [0.25]])),
        (3, 0, np.full((1, 3), 1 / 3)),
        (4, 0, np.array([[0.5, 1, 1, 1, 0.5]]) / 4),  # end taps 0.5 px past the end point
        (10, 0, np.array([[0.5] + [1] * 9 + [0.5]]) / 10),
        (10, 180, np.array([[0.5] + [1] * 9 + [0.5]]) / 10),  # angles taken mod 180
        (3, 45, k45 / k45.sum()),
        (3, 135, np.fliplr(k45) / k45.sum()),
        (5, 30, k30 / k30.sum()),
        (5, 150, np.fliplr(k30) / k30.sum()),
        (1, 37, np.ones((1, 1))),
    ]


@pytest.mark.parametrize(("length", "angle", "expected"), _motion_cases())
def test_motion_kernel_is_fspecial_motion(
    length: float, angle: float, expected: np.ndarray
) -> None:
    got = ops_torch.motion_kernel(length, angle).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_motion_kernel_matches_published_matlab_output() -> None:
    # fspecial('motion', 3, 45) as printed by MATLAB (MATLAB Answers 307822)
    matlab = np.array([[0, 0.0754, 0.1883], [0.0754, 0.3215, 0.0754], [0.1883, 0.0754, 0]])
    np.testing.assert_allclose(ops_torch.motion_kernel(3, 45).numpy(), matlab, atol=5e-5)


@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 63.5, 90.0, 121.0, 179.0])
@pytest.mark.parametrize("length", [2, 4, 6, 10])
def test_motion_kernel_sum_symmetry_and_size(length: int, angle: float) -> None:
    k = ops_torch.motion_kernel(length, angle).numpy()
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # point-symmetric
    half = (length - 1) / 2
    phi = math.radians(angle)
    # MATLAB's size: 2 fix(half |cos| + 1) + 1 columns, 2 fix(half sin + 1) + 1 rows
    assert k.shape[1] == 2 * math.floor(half * abs(math.cos(phi)) + 1 - 1e-12) + 1
    assert k.shape[0] == 2 * math.floor(half * math.sin(phi) + 1 - 1e-12) + 1
    # the weights spread along the line like a segment of the full length
    ys, xs = np.mgrid[0 : k.shape[0], 0 : k.shape[1]]
    along = (xs - k.shape[1] // 2) * math.cos(phi) - (ys - k.shape[0] // 2) * math.sin(phi)
    spread = math.sqrt(float((k * along**2).sum()))
    assert spread > 0.6 * length / math.sqrt(12)


def test_motion_blur_uses_the_kernel() -> None:
    x = torch.zeros(1, 3, 15, 15, dtype=torch.float64)
    x[0, :, 7, 7] = 1.0  # an impulse: the output is the (symmetric) kernel itself
    rng = np.random.default_rng(0)
    angle = float(np.random.default_rng(0).uniform(0.0, 180.0))
    out = ops_torch.motion_blur_op(x, 6, [rng])[0, 0].numpy()
    k = ops_torch.motion_kernel(6, angle).numpy()
    kh, kw = k.shape
    np.testing.assert_allclose(out[7 - kh // 2 : 8 + kh // 2, 7 - kw // 2 : 8 + kw // 2], k)
    assert out.sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- type 12
def test_ycbcr2rgb_clips_like_matlab() -> None:
    # ycbcr2rgb on double input and its output, printed by MATLAB (MATLAB Answers 60696)
    ycc = np.array(
        [
            [0.106652770180584, 0.86869470536351, 0.431413827463545],
            [0.774910464711502, 0.259870402850654, 0.26380291652199],
            [0.817303220653433, 0.800068480224308, 0.145538980384717],
        ]
    )
    matlab = np.array(
        [
            [0, 0, 0.790912791776732],
            [0.449127212799794, 1, 0.340880299518819],
            [0.309736381740937, 1, 1],
        ]
    )
    t = torch.from_numpy(ycc.T.copy()).view(1, 3, 3, 1)
    got = color.ycbcr2rgb(t)[0, :, :, 0].numpy().T
    np.testing.assert_allclose(got, matlab, atol=1e-9)
    unclipped = color.ycbcr2rgb(t, clip=False)
    assert unclipped.min() < -0.05 and unclipped.max() > 1.4


def test_color_noise_output_is_clipped_before_the_final_stretch() -> None:
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rngs = [np.random.default_rng(s) for s in (1, 2)]
    y = ops_torch.color_noise_op(x, 0.05, rngs)
    assert y.min() >= 0 and y.max() <= 1
    assert (y == 0).any() and (y == 1).any()  # strong noise: MATLAB's clip is reached


# ----------------------------------------------------------------------------- type 19
def test_keys_weights_are_matlab_cubic() -> None:
    # W(s) = 1.5|s|^3 - 2.5|s|^2 + 1 (|s| <= 1), -0.5|s|^3 + 2.5|s|^2 - 4|s| + 2 (1 < |s| < 2)
    w = ops_torch.keys_weights(torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(w[0], [0, 1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(w[1], [-0.0703125, 0.8671875, 0.2265625, -0.0234375], atol=1e-15)
    np.testing.assert_allclose(w[2], [-0.0625, 0.5625, 0.5625, -0.0625], atol=1e-15)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    np.testing.assert_allclose(ops_torch.keys_weights(t).sum(-1).numpy(), 1.0, atol=1e-14)
    # torch's bicubic is a = -0.75: at t = 0.5 its outer taps are -0.09375
    assert ops_torch.keys_weights(torch.tensor(0.5), -0.75)[0].item() == pytest.approx(-0.09375)


def _gather_cubic(img: np.ndarray, px: np.ndarray, py: np.ndarray, a: float) -> np.ndarray:
    """Straightforward 16-tap cubic convolution with replicate border (per pixel)."""

    def w(s: float) -> float:
        s = abs(s)
        if s <= 1:
            return (a + 2) * s**3 - (a + 3) * s**2 + 1
        return a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a if s < 2 else 0.0

    h, wd = img.shape[-2:]
    out = np.zeros(img.shape[:-2] + px.shape)
    for idx in np.ndindex(px.shape):
        x0, y0 = math.floor(px[idx]), math.floor(py[idx])
        acc = 0.0
        for j in range(y0 - 1, y0 + 3):
            for i in range(x0 - 1, x0 + 3):
                wt = w(px[idx] - i) * w(py[idx] - j)
                acc = acc + wt * img[..., min(max(j, 0), h - 1), min(max(i, 0), wd - 1)]
        out[(..., *idx)] = acc
    return out


def test_cubic_sample_is_keys_a_minus_half() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((2, 7, 9))
    py, px = np.mgrid[0:7, 0:9].astype(np.float64)
    px = px + rng.normal(0, 1.2, px.shape)  # some fall outside: replicate border
    py = py + rng.normal(0, 1.2, py.shape)
    want = _gather_cubic(img, px, py, -0.5)
    got = ops_torch.cubic_sample(
        torch.from_numpy(img)[None], torch.from_numpy(px)[None], torch.from_numpy(py)[None]
    )[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.abs(_gather_cubic(img, px, py, -0.75) - want).max() > 1e-2  # a matters here


# ----------------------------------------------------------------------------- types 4, 8
def test_lab2rgb_out_of_gamut_matches_matlab() -> None:
    # lab2rgb([80 -130 85]) in MATLAB's documentation ("Determine If L*a*b* Value Is in RGB
    # Gamut"): [-0.6209 0.9537 -0.1927] -- linear RGB is not clipped and the sRGB curve
    # is applied with the sign of the value
    lab = torch.tensor([80.0, -130.0, 85.0], dtype=torch.float64).view(1, 3, 1, 1)
    got = color.lab2rgb(lab, clip=False).flatten().numpy()
    np.testing.assert_allclose(got, [-0.6209, 0.9537, -0.1927], atol=1e-4)
    np.testing.assert_allclose(color.lab2rgb(lab).flatten().numpy(), [0, 0.9537, 0], atol=1e-4)
    # Steve Eddins' MathWorks blog (2021-12-29): L 0..100, a = 50 cos, b = 50 sin over a
    # quarter turn, 256 steps; MATLAB prints max 1.1271 and min -0.1144
    theta = torch.linspace(0, math.pi / 2, 256, dtype=torch.float64)
    curve = torch.stack(
        (torch.linspace(0, 100, 256, dtype=torch.float64), 50 * theta.cos(), 50 * theta.sin())
    ).view(1, 3, 1, 256)
    rgb = color.lab2rgb(curve, clip=False)
    assert rgb.max().item() == pytest.approx(1.1271, abs=1e-4)
    assert rgb.min().item() == pytest.approx(-0.1144, abs=1e-4)


def test_lab2rgb_does_not_clamp_negative_z() -> None:
    # b* large enough that f_z < 4/29: the CIE inverse gives a negative Z, which MATLAB
    # keeps (some libraries set Z = 0 here); worked through by hand
    L, a, b = 40.0, 10.0, 140.0
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200
    assert fz < 4 / 29

    def inv(f: float) -> float:
        return f**3 if f > 6 / 29 else 3 * (6 / 29) ** 2 * (f - 4 / 29)

    xyz = np.array([0.95047 * inv(fx), inv(fy), 1.08883 * inv(fz)])
    assert xyz[2] < 0
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    lin = np.linalg.solve(m, xyz)
    lin_clamped = np.linalg.solve(m, xyz * [1, 1, 0])

    def enc(v: np.ndarray) -> np.ndarray:
        u = np.clip(v, 0, 1)
        return np.where(u <= 0.0031308, 12.92 * u, 1.055 * u ** (1 / 2.4) - 0.055)

    lab = torch.tensor([L, a, b], dtype=torch.float64).view(1, 3, 1, 1)
    got = color.lab2rgb(lab).flatten().numpy()
    np.testing.assert_allclose(got, enc(lin), atol=1e-12)
    assert np.abs(enc(lin_clamped) - got).max() > 0.01  # a Z clamp would show


def test_rgb2lab_white_point_matches_matlab() -> None:
    # xyz2lab([0.25 0.40 0.10]) = [69.4695 -48.0439 57.1259] in MATLAB's documentation
    # (D65): our Lab uses the same white point; build RGB whose XYZ is that value
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    lin = np.linalg.solve(m, [0.25, 0.40, 0.10])
    assert lin.min() > 0.0031308 and lin.max() < 1
    rgb = 1.055 * lin ** (1 / 2.4) - 0.055
    got = color.rgb2lab(torch.from_numpy(rgb).view(1, 3, 1, 1)).flatten().numpy()
    np.testing.assert_allclose(got, [69.4695, -48.0439, 57.1259], atol=1e-4)


# ----------------------------------------------------------------------------- type 9
def _cod_and_siz(data: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """Read the SIZ and COD marker segments of a J2K codestream (ISO/IEC 15444-1 A.5, A.6)."""
    assert data[:2] == b"\xff\x4f"  # SOC
    pos, found = 2, {}
    while pos < len(data) and b"\xff\x52" not in found:
        marker, length = data[pos : pos + 2], int.from_bytes(data[pos + 2 : pos + 4], "big")
        found[marker] = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
    siz, cod = found[b"\xff\x51"], found[b"\xff\x52"]
    u32 = lambda o: int.from_bytes(siz[o : o + 4], "big")  # noqa: E731
    return (
        {"w": u32(2), "h": u32(6), "tile_w": u32(18), "tile_h": u32(22)},
        {
            "progression": cod[1],  # 0 = LRCP
            "layers": int.from_bytes(cod[2:4], "big"),
            "mct": cod[4],
            "levels": cod[5],
            "cb_w": 2 ** (cod[6] + 2),
            "cb_h": 2 ** (cod[7] + 2),
            "wavelet": cod[9],  # 0 = 9/7 irreversible, 1 = 5/3 reversible
        },
    )


def test_jpeg2000_codestream_has_matlab_imwrite_defaults() -> None:
    rng = np.random.default_rng(0)
    img = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    siz, cod = _cod_and_siz(ops_cpu.encode_jpeg2000(img, 16))
    assert (siz["w"], siz["h"]) == (128, 96)
    assert siz["tile_w"] >= 128 and siz["tile_h"] >= 96  # one tile (TileSize = image size)
    assert cod == {
        "progression": 0,  # ProgressionOrder 'LRCP'
        "layers": 1,  # QualityLayers 1
        "mct": 1,  # colour transform on RGB
        "levels": 4,  # ReductionLevels 4
        "cb_w": 64,
        "cb_h": 64,
        "wavelet": 0,  # Mode 'lossy': irreversible 9/7
    }
    _, small = _cod_and_siz(ops_cpu.encode_jpeg2000(img[:10, :12].copy(), 16))
    assert small["levels"] == 3  # a 10 px side cannot hold 4 levels


def test_jpeg2000_achieves_the_compression_ratio() -> None:
    y, x = np.mgrid[0:192, 0:256] / 256
    rng = np.random.default_rng(1)
    img = np.stack([np.sin(9 * x + 3 * y), np.cos(7 * y - 4 * x), x * y], -1)
    img = np.clip(0.5 + 0.4 * img + rng.normal(0, 0.05, img.shape), 0, 1)
    img = np.round(img * 255).astype(np.uint8)
    for ratio in (16, 32, 45, 120):
        achieved = img.size / len(ops_cpu.encode_jpeg2000(img, ratio))
        assert achieved == pytest.approx(ratio, rel=0.1)
