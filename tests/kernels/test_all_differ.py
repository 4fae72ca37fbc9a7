"""backend.all_differ, the symmetry monitor's check that the units of every layer still all
differ: the compiled kernel (csrc/symmetry.pyx) and its numpy twin answer alike, on values that
repeat, +0.0 and -0.0, NaN, infinities, float32 and float64 together, strided views."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend
from cygrad.backend import numpy_backend

try:
    from cygrad._C.symmetry import all_differ as compiled
except ImportError:  # a partial build
    compiled = None

IMPLS = [numpy_backend.all_differ] + ([compiled] if compiled is not None else [])


@pytest.fixture(params=IMPLS, ids=lambda f: f.__module__)
def all_differ(request):
    return request.param


def test_distinct_and_repeated_values(all_differ):
    a = np.arange(10.0)
    assert all_differ([a]) is True
    assert all_differ([a[:5], a[5:]]) is True
    assert all_differ([a, a[3:4]]) is False  # a value in two arrays
    assert all_differ([np.array([1.0, 2.0, 1.0], np.float32)]) is False


def test_signed_zeros_are_one_value_and_nan_decides_nothing(all_differ):
    assert all_differ([np.array([0.0, -0.0])]) is False
    assert all_differ([np.array([-0.0, 1.0, 2.0], np.float32)]) is True
    assert all_differ([np.array([np.nan, 1.0])]) is False
    assert all_differ([np.array([1.0], np.float32), np.array([np.nan])]) is False
    assert all_differ([np.array([np.inf, -np.inf, 0.0])]) is True
    assert all_differ([np.array([np.inf, np.inf])]) is False


def test_no_values(all_differ):
    assert all_differ([]) is True
    assert all_differ([np.zeros(0), np.zeros(0, np.float32)]) is True
    assert all_differ([np.zeros(1)]) is True


def test_strided_columns_and_mixed_dtypes(all_differ):
    w = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal(30)
    assert all_differ([w[:, 0], w[:, 3], b[::2]]) is True
    w[17, 3] = w[4, 0]
    assert all_differ([w[:, 0], w[:, 3]]) is False
    b[6] = np.float64(w[9, 0])  # a float32 value, exactly, as a float64
    assert all_differ([w[:, 0], b[::2]]) is False
    assert all_differ([w[::-1, 0]]) is True  # a negative stride


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0 ** -149, np.inf,
                                          -np.inf, np.nan, 3.0, 1e30]), max_size=12),
                max_size=4),
       st.lists(st.booleans(), min_size=4, max_size=4))
def test_the_kernel_agrees_with_the_twin(lists, float32):
    columns = [np.array(values, np.float32 if f else np.float64)
               for values, f in zip(lists, float32)]
    values = [v for c in columns for v in c.astype(np.float64).tolist()]
    expected = not any(v != v for v in values) and len(set(values)) == len(values)
    assert numpy_backend.all_differ(columns) is expected
    assert backend.all_differ(columns) is expected
    with backend.using("numpy"):  # a comparison, not arithmetic: the same call on either
        assert backend.all_differ(columns) is expected
    if compiled is not None:
        assert compiled(columns) is expected


def test_many_values():
    rng = np.random.default_rng(2)
    a = rng.permutation(200_000).astype(np.float64)
    assert backend.all_differ([a[:1000], a[1000:]]) is True
    a[123_456] = a[7]
    assert backend.all_differ([a]) is False


@pytest.mark.skipif(compiled is None, reason="a partial build without csrc/symmetry.pyx")
def test_the_kernel_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="1-d"):
        compiled([np.zeros((2, 2))])
    with pytest.raises(TypeError):
        compiled([np.arange(3)])
    with pytest.raises(TypeError):
        compiled([np.zeros(3).astype(">f8")])
    with pytest.raises(TypeError):
        compiled([[1.0, 2.0]])
    # the backend sends what the kernel refuses to the twin, and refuses non-float input
    assert backend.compiled_all_differ is compiled
    assert backend.all_differ([np.arange(3.0).astype(">f8")]) is True
    assert backend.all_differ([np.array([1.0, 1.0], np.float16)]) is False
    with pytest.raises(TypeError, match="1-d float"):
        backend.all_differ([np.arange(3)])
