"""torch.testing.assert_close (and the older assert_allclose): actual and expected must agree
in shape and dtype and within rtol * |expected| + atol elementwise, with torch's default
tolerances per dtype (float32: 1.3e-6 and 1e-5; float64: 1e-7 and 1e-7; integers and bool:
equal). Tensors, numpy arrays, numbers and (nested) sequences or mappings of them are compared;
a mismatch raises AssertionError describing it, as torch's."""

import numbers

import numpy as np

from .tensor import Tensor

__all__ = ["assert_close", "assert_allclose"]

_TOLERANCES = {np.dtype(np.float32): (1.3e-6, 1e-5), np.dtype(np.float64): (1e-7, 1e-7)}


def _array(x):
    if isinstance(x, Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, msg=None):
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got "
                         f"no {'rtol' if rtol is None else 'atol'}.")
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or actual.keys() != expected.keys():
            raise AssertionError(msg or "The mappings' keys do not match")
        for k in expected:
            assert_close(actual[k], expected[k], rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    if isinstance(expected, (list, tuple)) and not isinstance(actual, (Tensor, np.ndarray)):
        if len(actual) != len(expected):
            raise AssertionError(msg or f"The length of the sequences mismatch: {len(actual)} "
                                 f"!= {len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    a, e = _array(actual), _array(expected)
    scalars = isinstance(expected, numbers.Number) and isinstance(actual, numbers.Number)
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: {a.shape} "
                             f"!= {e.shape}.")
    if check_dtype and not scalars and a.dtype != e.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {a.dtype} "
                             f"!= {e.dtype}.")
    if rtol is None:
        rtol, atol = _TOLERANCES.get(a.dtype if a.dtype.kind == "f" else e.dtype, (0.0, 0.0))
        if scalars:
            rtol, atol = _TOLERANCES[np.dtype(np.float64)]
    af, ef = a.astype(np.float64), e.astype(np.float64)
    close = np.isclose(af, ef, rtol=rtol, atol=atol, equal_nan=equal_nan)
    close |= (af == ef)  # equal infinities
    if close.all():
        return
    bad = int((~close).sum())
    diff = np.abs(af - ef)
    diff = np.where(close, 0.0, diff)
    worst = np.unravel_index(int(np.nanargmax(np.nan_to_num(diff, nan=np.inf))), diff.shape) \
        if diff.ndim else ()
    rel = diff / np.where(ef == 0, 1.0, np.abs(ef))
    raise AssertionError(msg or (
        f"Tensor-likes are not close!\n\nMismatched elements: {bad} / {close.size} "
        f"({100 * bad / max(close.size, 1):.1f}%)\nGreatest absolute difference: "
        f"{float(np.nanmax(diff))} at index {tuple(int(i) for i in worst)} (up to {atol} "
        f"allowed)\nGreatest relative difference: {float(np.nanmax(rel))} (up to {rtol} "
        "allowed)"))


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg=""):
    """torch's deprecated form: dtypes need not match."""
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=False,
                 msg=msg or None)
