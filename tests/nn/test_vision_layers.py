"""nn.functional's pixel_shuffle, pixel_unshuffle, interpolate (nearest, nearest-exact, linear,
bilinear, bicubic, trilinear, area; antialias), adaptive_avg_pool3d, unfold, fold and the vision
modules (PixelShuffle, Upsample..., AdaptiveAvgPool3d, the padding layers, Fold, Unfold) against
PyTorch (values, dtypes, shapes, gradients, exception types; tests/ops/torchdiff.py),
gradchecked in float64; an image alone gives the same bits as inside its batch.
"""

import pathlib
import sys

import numpy as np
import pytest

import cygrad
from cygrad import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "ops"))
from torchdiff import diff, need_torch  # noqa: E402

F64, F32 = np.float64, np.float32


def values(shape, dtype=F64, seed=0, scale=2.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------------- pixel shuffle

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,r", [((2, 8, 3, 4), 2), ((2, 18, 2, 3), 3), ((8, 3, 2), 2),
                                     ((2, 2, 4, 3, 5), 1), ((3, 2, 9, 2, 2), 3)])
def test_pixel_shuffle(dtype, shape, r):
    x = values(shape, dtype)
    y = diff(lambda m, t: m.nn.functional.pixel_shuffle(t, r), x, gradcheck=dtype == F64)
    diff(lambda m, t: m.nn.functional.pixel_unshuffle(t, r), y.detach().numpy(),
         gradcheck=dtype == F64)


@pytest.mark.parametrize("name,shape,r", [
    ("pixel_shuffle", (2, 7, 3, 3), 2), ("pixel_shuffle", (2, 8, 3), 2),
    ("pixel_shuffle", (2, 8, 3, 3), 0), ("pixel_shuffle", (8, 3), 2),
    ("pixel_unshuffle", (2, 3, 4, 5), 2), ("pixel_unshuffle", (2, 3, 5, 4), 2),
    ("pixel_unshuffle", (2, 3, 4, 4), 0), ("pixel_unshuffle", (4, 4), 2)])
def test_pixel_shuffle_errors(name, shape, r):
    diff(lambda m, t: getattr(m.nn.functional, name)(t, r), values(shape))


def test_pixel_shuffle_integers():
    x = np.arange(2 * 8 * 2 * 3).reshape(2, 8, 2, 3)
    diff(lambda m, t: m.nn.functional.pixel_shuffle(t, 2), x)
    diff(lambda m, t: m.nn.functional.pixel_unshuffle(t, 2), x)


# ---------------------------------------------------------------------- interpolate

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None),
                                        ("linear", False), ("linear", True)])
def test_interpolate_1d_sizes(dtype, mode, align):
    """Every output length 1..13 from every input length 1..7 (torch's index and weight
    formulas, its float32 arithmetic for float32 inputs)."""
    torch = need_torch()
    for n in range(1, 8):
        x = values((2, 3, n), dtype, n)
        for out in range(1, 14):
            t = torch.nn.functional.interpolate(torch.from_numpy(x), size=out, mode=mode,
                                                align_corners=align)
            c = cygrad.nn.functional.interpolate(cygrad.from_numpy(x), size=out, mode=mode,
                                                 align_corners=align)
            assert c.dtype == cygrad.from_numpy(x).dtype and tuple(c.shape) == tuple(t.shape)
            np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=0, atol=1e-6 if dtype == F32
                                       else 1e-14, err_msg=f"{n} -> {out}")


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None),
                                        ("linear", False), ("linear", True)])
@pytest.mark.parametrize("scale", [0.3, 0.5, 0.7, 1.0, 1.3, 2.0, 2.1, 2.5, 3.0, 1 / 3, 10 / 7])
@pytest.mark.parametrize("recompute", [None, True])
def test_interpolate_1d_scales(dtype, mode, align, scale, recompute):
    for n in (2, 5, 7, 9, 12):
        out = int(n * scale)
        # torch's nearest backward kernel maps output i to input i (out == n) or i >> 1
        # (out == 2n) whatever the scale, while its forward uses the scale: where the two
        # differ, torch's gradient is not its forward's; cygrad's is (gradchecked)
        inconsistent = (mode == "nearest" and recompute is None and out in (n, 2 * n)
                        and out != n * scale)
        diff(lambda m, t: m.nn.functional.interpolate(
            t, scale_factor=scale, mode=mode, align_corners=align,
            recompute_scale_factor=recompute), values((2, 3, n), dtype, n),
            grad=not inconsistent, gradcheck=dtype == F64 and (n == 5 or inconsistent))


def test_nearest_gradient_is_the_forwards_where_torchs_is_not():
    """torch.nn.functional.interpolate(x of length 2, scale_factor=1.3) takes x[0] twice, but
    torch's gradient is g itself (its backward kernel's shortcut for equal sizes); cygrad's
    gradient adds both outputs' gradients into x[0]."""
    t = cygrad.tensor([1.0, 2.0], requires_grad=True)
    y = cygrad.nn.functional.interpolate(t.reshape(1, 1, 2), scale_factor=1.3)
    assert y.detach().numpy().tolist() == [[[1.0, 1.0]]]
    y.backward(cygrad.tensor([[[10.0, 1.0]]]))
    assert t.grad.numpy().tolist() == [11.0, 0.0]


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None),
                                        ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("size,scale", [((3, 4), None), ((10, 14), None), ((7, 9), None),
                                        ((5, 7), None), (8, None), (None, 2), (None, (1.5, 0.6)),
                                        (None, (0.5, 3.0))])
def test_interpolate_2d(dtype, mode, align, size, scale):
    x = values((2, 3, 5, 7), dtype)
    diff(lambda m, t: m.nn.functional.interpolate(t, size, scale, mode, align), x,
         gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size,scale", [((3, 4), None), ((10, 14), None), ((5, 7), None),
                                        ((1, 9), None), (None, 2), (None, (1.5, 0.6)),
                                        (None, (0.5, 3.0))])
def test_interpolate_bicubic(dtype, align, size, scale):
    """torch's cubic convolution (A = -0.75) with the border repeated: shapes, values within
    rounding, gradients (gradcheck in float64), from upsampling and downsampling."""
    x = values((2, 3, 5, 7), dtype)
    diff(lambda m, t: m.nn.functional.interpolate(t, size, scale, "bicubic", align), x,
         gradcheck=dtype == F64)


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("shape,size", [((1, 2, 1, 1), (3, 2)), ((1, 1, 4, 1), (1, 3)),
                                        ((2, 1, 3, 5), (3, 5))])
def test_interpolate_bicubic_edges(shape, size, align):
    """One-pixel inputs and outputs, and a size kept (the identity)."""
    diff(lambda m, t: m.nn.functional.interpolate(t, size, None, "bicubic", align),
         values(shape), gradcheck=True)


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 3, 4, 5)])
def test_interpolate_bicubic_needs_4d(shape):
    """torch's NotImplementedError naming the modes, for 3-D and 5-D input."""
    diff(lambda m, t: m.nn.functional.interpolate(t, 4, None, "bicubic"), values(shape))


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("size,scale", [((3, 7, 11), None), (None, (1.5, 0.7, 2.0)),
                                        (None, 2), (4, None)])
def test_interpolate_3d(dtype, mode, size, scale):
    x = values((2, 2, 4, 5, 6), dtype)
    diff(lambda m, t: m.nn.functional.interpolate(t, size, scale, mode), x,
         gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size,scale", [((3, 7, 11), None), (None, (1.5, 0.7, 2.0)),
                                        (None, 2), (4, None), ((4, 5, 6), None)])
def test_interpolate_trilinear(dtype, align, size, scale):
    x = values((2, 2, 4, 5, 6), dtype)
    diff(lambda m, t: m.nn.functional.interpolate(t, size, scale, "trilinear", align), x,
         gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,size,scale", [
    ((2, 3, 7), 3, None), ((2, 3, 7), 10, None), ((2, 3, 7), None, 0.5),
    ((2, 3, 5, 7), (2, 3), None), ((2, 3, 5, 7), (8, 9), None), ((2, 3, 5, 7), None, (0.6, 1.5)),
    ((3, 6, 6), None, 2)])
def test_interpolate_area(dtype, shape, size, scale):
    x = values(shape, dtype)
    diff(lambda m, t: m.nn.functional.interpolate(t, size, scale, "area"), x,
         gradcheck=dtype == F64)


def test_interpolate_uint8_nearest():
    x = np.random.default_rng(0).integers(0, 255, (2, 3, 4, 5)).astype(np.uint8)
    diff(lambda m, t: m.nn.functional.interpolate(t, scale_factor=1.7), x)
    diff(lambda m, t: m.nn.functional.interpolate(t.long(), scale_factor=1.7), x)  # raises


@pytest.mark.parametrize("shape,kwargs", [
    ((2, 3, 5), {"size": 4, "scale_factor": 2}), ((2, 3, 5), {}),
    ((2, 3, 5), {"size": (4, 4)}), ((2, 3, 5), {"scale_factor": (2, 2)}),
    ((2, 3, 5), {"size": 4, "recompute_scale_factor": True}),
    ((2, 3, 5), {"size": 4, "align_corners": True}),
    ((2, 3, 5), {"size": 4, "mode": "nearest-exact", "align_corners": False}),
    ((2, 3, 5), {"size": 0}), ((2, 3, 5), {"scale_factor": 0.1}),
    ((2, 3, 5), {"scale_factor": -1.0}), ((2, 3, 5), {"size": (2.5,)}),
    ((2, 3, 5), {"size": 4, "mode": "bilinear"}), ((2, 3, 5, 5), {"size": 4, "mode": "linear"}),
    ((2, 3, 5, 5), {"size": 4, "mode": "trilinear"}), ((2, 3, 5), {"size": 4, "mode": "foo"}),
    ((2, 3, 5), {"size": 4, "mode": "area", "align_corners": False}),
    ((2, 3, 5), {"size": 4, "mode": "bilinear", "antialias": True}),
    ((2, 5), {"size": 4}), ((1, 2, 3, 4, 5, 6), {"size": 4}), ((2, 0, 4), {"size": 3}),
    ((2, 3, 0), {"size": 3}), ((0, 3, 4), {"size": 3}), ((0, 3, 4, 2), {"scale_factor": 2})])
def test_interpolate_errors(shape, kwargs):
    diff(lambda m, t: m.nn.functional.interpolate(t, **kwargs), values(shape))


def test_interpolate_scale_factor_tensor_is_a_type_error():
    x = values((1, 2, 4, 4))
    diff(lambda m, t: m.nn.functional.interpolate(t, scale_factor=m.tensor(2.0)), x)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,size", [((2, 3, 5, 6, 7), (2, None, 3)), ((3, 5, 6, 7), 3),
                                        ((2, 3, 5, 6, 7), (5, 6, 7)), ((1, 2, 4, 4, 4), 1),
                                        ((2, 3, 5, 6, 7), (7, 9, 2))])
def test_adaptive_avg_pool3d_and_area_on_volumes(dtype, shape, size):
    """F.adaptive_avg_pool3d, nn.AdaptiveAvgPool3d and interpolate(mode='area') on 5-D input:
    torch's windows (floor to ceil), values to rounding, gradients, gradcheck."""
    x = values(shape, dtype, 4)
    diff(lambda m, t: m.nn.functional.adaptive_avg_pool3d(t, size), x, gradcheck=dtype == F64)
    diff(lambda m, t: m.nn.AdaptiveAvgPool3d(size)(t), x)
    if len(shape) == 5 and None not in (size if isinstance(size, tuple) else ()):
        diff(lambda m, t: m.nn.functional.interpolate(t, size, mode="area"), x)
    assert repr(cygrad.nn.AdaptiveAvgPool3d(size)) == f"AdaptiveAvgPool3d(output_size={size})"


def test_adaptive_avg_pool3d_errors():
    diff(lambda m, t: m.nn.functional.adaptive_avg_pool3d(t, 2), values((3, 5, 6)))
    diff(lambda m, t: m.nn.functional.adaptive_avg_pool3d(t, 2), values((2, 0, 5, 6, 7)))


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size,scale,align", [((3, 4), None, False), ((2, 3), None, True),
                                              ((10, 14), None, False), (None, (0.4, 0.3), False),
                                              ((1, 1), None, False), ((9, 5), None, True)])
def test_interpolate_antialias(dtype, mode, size, scale, align):
    """antialias=True: torch's filters widened by the downsampling scale (the triangle,
    Keys' cubic with a = -0.5), normalised per output; values, gradients, gradcheck."""
    x = values((2, 3, 11, 13), dtype, 3)
    diff(lambda m, t: m.nn.functional.interpolate(t, size, scale, mode, align, antialias=True),
         x, gradcheck=dtype == F64)


def test_interpolate_antialias_needs_4d_and_an_interpolating_mode():
    diff(lambda m, t: m.nn.functional.interpolate(t, 3, mode="bilinear", antialias=True),
         values((2, 3, 5)))
    diff(lambda m, t: m.nn.functional.interpolate(t, 3, mode="nearest", antialias=True),
         values((2, 3, 5, 5)))


def test_interpolate_deprecated_aliases():
    x = values((2, 3, 4, 5))
    with pytest.warns(UserWarning, match="upsample_nearest` is deprecated"):
        cygrad.nn.functional.upsample_nearest(cygrad.tensor(x), scale_factor=2)


# ---------------------------------------------------------------------- unfold / fold

@pytest.mark.filterwarnings("ignore::UserWarning")
def test_interpolate_deprecated_aliases_match_torch():
    x = values((2, 3, 4, 5))
    diff(lambda m, t: m.nn.functional.upsample(t, scale_factor=1.5, mode="bilinear"), x)
    diff(lambda m, t: m.nn.functional.upsample_nearest(t, size=(7, 3)), x)
    diff(lambda m, t: m.nn.functional.upsample_bilinear(t, scale_factor=2), x)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape,k,d,p,s", [
    ((2, 3, 6, 5), 2, 1, 0, 1), ((2, 3, 6, 5), (2, 3), (1, 2), 1, (2, 1)),
    ((1, 2, 7, 7), 3, 2, (2, 1), 2), ((3, 5, 4), (1, 2), 1, 0, 1), ((2, 1, 3, 3), 3, 1, 1, 3)])
def test_unfold_fold(dtype, shape, k, d, p, s):
    x = values(shape, dtype)
    y = diff(lambda m, t: m.nn.functional.unfold(t, k, d, p, s), x, gradcheck=dtype == F64)
    diff(lambda m, t: m.nn.functional.fold(t, shape[-2:], k, d, p, s), y.detach().numpy(),
         gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int64])
def test_unfold_fold_other_dtypes(dtype):
    x = (np.random.default_rng(0).integers(0, 3, (2, 3, 4, 5)) == 1).astype(dtype)
    diff(lambda m, t: m.nn.functional.unfold(t, 2, padding=1), x)
    diff(lambda m, t: m.nn.functional.fold(m.nn.functional.unfold(t, 2, padding=1), (4, 5), 2,
                                           padding=1), x)


@pytest.mark.parametrize("shape,args,kwargs", [
    ((2, 3, 4), (5,), {}), ((3, 4), (2,), {}), ((1, 2, 3, 4), (0,), {}),
    ((1, 2, 3, 4), (2,), {"padding": -1}), ((1, 2, 3, 4), (2,), {"stride": 0}),
    ((1, 2, 3, 4), (2,), {"dilation": 0}), ((1, 2, 3, 4, 5), (2,), {})])
def test_unfold_errors(shape, args, kwargs):
    diff(lambda m, t: m.nn.functional.unfold(t, *args, **kwargs), values(shape))


@pytest.mark.parametrize("shape,args", [
    ((1, 7, 6), ((3, 4), 2)), ((1, 8, 5), ((3, 4), 2)), ((1, 1, 8, 6), ((3, 4), 2)),
    ((8,), ((3, 4), 2)), ((1, 8, 6), ((3, 4), 0)), ((1, 8, 6), ((0, 4), 2))])
def test_fold_errors(shape, args):
    diff(lambda m, t: m.nn.functional.fold(t, *args), values(shape))


# ---------------------------------------------------------------------- modules

MODULES = [
    ("PixelShuffle", (2,), (2, 8, 3, 4)), ("PixelUnshuffle", (2,), (2, 2, 4, 6)),
    ("Upsample", ((5, 9),), (2, 3, 4, 6)),
    ("Upsample", (None, 1.5, "bilinear"), (2, 3, 4, 6)),
    ("Upsample", (None, (2, 1.5), "bilinear", True), (2, 3, 4, 6)),
    ("Upsample", (None, 2.5, "linear", False, True), (2, 3, 5)),
    ("Upsample", (7, None, "nearest-exact"), (2, 3, 4, 5, 6)),
    ("UpsamplingNearest2d", (None, 3), (2, 3, 4, 5)),
    ("UpsamplingNearest2d", ((3, 7),), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", (None, 2), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", ((3, 7),), (3, 4, 5, 2)),
    ("ZeroPad1d", (2,), (2, 3, 4)), ("ZeroPad1d", ((3, -1),), (3, 4)),
    ("ZeroPad2d", ((1, 0, 2, 3),), (2, 3, 4, 5)), ("ZeroPad3d", (1,), (2, 2, 3, 4)),
    ("ConstantPad1d", (2, 3.5), (2, 3, 4)), ("ConstantPad2d", ((1, 2, 0, 1), -1.0), (3, 4, 5)),
    ("ConstantPad3d", ((1, 0, 2, 1, 0, 1), 2.0), (2, 1, 3, 4, 5)),
    ("ReflectionPad1d", (2,), (2, 3, 4)), ("ReflectionPad1d", ((3, 1),), (3, 4)),
    ("ReflectionPad2d", ((1, 2, 3, 0),), (2, 3, 4, 5)), ("ReflectionPad3d", (1,), (1, 2, 3, 3, 4)),
    ("ReplicationPad1d", ((4, 1),), (2, 3, 4)), ("ReplicationPad2d", (2,), (3, 4, 5)),
    ("ReplicationPad3d", ((1, 2, 0, 1, 2, 0),), (2, 3, 4, 5)),
    ("CircularPad1d", ((2, 3),), (2, 3, 4)), ("CircularPad2d", (1,), (2, 3, 4, 5)),
    ("CircularPad3d", ((1, 0, 2, 1, 0, 1),), (1, 2, 3, 4, 5)),
    ("Unfold", ((2, 3), 1, 1, (1, 2)), (2, 3, 4, 5)),
    ("Fold", ((4, 5), 2), (2, 12, 12)), ("Fold", ((5, 6), (2, 3), 1, 1, 2), (2, 18, 12)),
]


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("name,args,shape", MODULES)
def test_modules_match_torch(dtype, name, args, shape):
    torch = need_torch()
    tm, cm = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    assert repr(cm) == repr(tm)
    assert list(cm.state_dict()) == list(tm.state_dict()) == []
    diff(lambda m, t: getattr(m.nn, name)(*args)(t), values(shape, dtype),
         gradcheck=dtype == F64)


@pytest.mark.parametrize("name,args,shape", [
    ("ReflectionPad1d", (4,), (2, 3, 4)), ("ReflectionPad2d", (1,), (3,)),
    ("CircularPad1d", (1,), (2, 3, 4, 5)), ("CircularPad2d", (1,), (4, 5)),
    ("CircularPad1d", (5,), (2, 3, 4)), ("ConstantPad2d", ((1, 2, 3), 1.0), (3, 4)),
    ("Upsample", (), (2, 3, 4)), ("Upsample", (3, None, "bicubic"), (2, 3)),
    ("PixelShuffle", (3,), (2, 8, 3, 3)), ("Unfold", (7,), (2, 3, 4, 5)),
    ("Fold", ((4, 5), 2), (2, 11, 12))])
def test_module_errors(name, args, shape):
    diff(lambda m, t: getattr(m.nn, name)(*args)(t), values(shape))


def test_modules_in_a_sequential():
    """A small decoder: conv, pixel shuffle, upsample, reflection pad, conv (torch's weights)."""
    torch = need_torch()
    x = values((2, 3, 4, 5))

    def build(m):
        m.manual_seed(0)
        return m.nn.Sequential(m.nn.Conv2d(3, 8, 3, padding=1), m.nn.PixelShuffle(2),
                               m.nn.Upsample(scale_factor=1.5, mode="bilinear"),
                               m.nn.ReflectionPad2d(1), m.nn.Conv2d(2, 1, 3)).double()

    tm, cm = build(torch), build(cygrad)
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    ty, cy = tm(tx), cm(cx)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    ty.sum().backward()
    cy.sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (n, p), (_, q) in zip(cm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=n)


# ---------------------------------------------------------------------- batch invariance

LAYERS = [
    lambda F: (lambda t: F.pixel_shuffle(t, 2)),
    lambda F: (lambda t: F.pixel_unshuffle(t, 2)),
    lambda F: (lambda t: F.interpolate(t, scale_factor=1.7)),
    lambda F: (lambda t: F.interpolate(t, size=(5, 9), mode="nearest-exact")),
    lambda F: (lambda t: F.interpolate(t, scale_factor=(1.3, 2.2), mode="bilinear")),
    lambda F: (lambda t: F.interpolate(t, size=(7, 3), mode="bilinear", align_corners=True)),
    lambda F: (lambda t: F.interpolate(t, scale_factor=(1.3, 0.6), mode="bicubic")),
    lambda F: (lambda t: F.interpolate(t, size=(9, 11), mode="bicubic", align_corners=True)),
    lambda F: (lambda t: F.interpolate(t, size=(2, 3), mode="bilinear", antialias=True)),
    lambda F: (lambda t: F.adaptive_avg_pool3d(t.unsqueeze(1), (2, 3, 4))),
    lambda F: (lambda t: F.interpolate(t, scale_factor=0.6, mode="bicubic", antialias=True)),
    lambda F: (lambda t: F.unfold(t, (3, 2), padding=1, stride=(1, 2))),
    lambda F: (lambda t: F.fold(F.unfold(t, 3, padding=1), (4, 6), 3, padding=1)),
    lambda F: (lambda t: F.pad(t, (1, 2, 2, 1), mode="reflect")),
]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_an_image_alone_gives_its_bits_in_the_batch(dtype, layer):
    fn = LAYERS[layer](cygrad.nn.functional)
    x = values((5, 4, 4, 6), dtype, 7)
    t = cygrad.tensor(x, requires_grad=True)
    y = fn(t)
    g = values(tuple(y.shape), dtype, 8)
    y.backward(cygrad.tensor(g))
    for i in (0, 3):
        ti = cygrad.tensor(x[i:i + 1], requires_grad=True)
        yi = fn(ti)
        yi.backward(cygrad.tensor(g[i:i + 1]))
        assert np.array_equal(yi.detach().numpy()[0], y.detach().numpy()[i])
        assert np.array_equal(ti.grad.numpy()[0], t.grad.numpy()[i])
