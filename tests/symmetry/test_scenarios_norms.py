"""S10: tied channels stay tied behind LayerNorm and BatchNorm (statistics over every channel
or sample), tied embedding dimensions stay tied and unused tokens' rows are not updated, a
residual block keeps tied units tied: bitwise, at 1 and 2 threads, in both dtypes; and the
check can fail (the control with unequal outgoing columns comes apart at step 1)."""

import numpy as np
import pytest
from symmetry_helpers import exact

from cygrad import nn, tensor
from cygrad.demos import norms as S10


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


def data(dtype):
    rng = np.random.default_rng(0)
    return tensor(rng.standard_normal((16, 4)).astype(dtype)), tensor(rng.integers(0, 2, 16))


def tied_model(make, dtype):
    model = make()
    if isinstance(model, S10.Normed):
        S10.randomise_norm(model, np.random.default_rng(1))
    S10.tie(model.tied_arrays())
    return model


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("adam", [False, True])
@pytest.mark.parametrize("kind", ["LayerNorm", "BatchNorm1d", "residual"])
def test_tied_channels_stay_tied(dtype, threads, adam, kind):
    width = 7
    make = (lambda: S10.Residual(width, dtype)) if kind == "residual" else \
        (lambda: S10.Normed(kind, width, dtype))
    model = tied_model(make, dtype)
    x, y = data(dtype)
    with exact(threads):
        checks = S10.train(model, x, y, 25, adam)
    assert checks == [True] * 26
    # not frozen: the tied weights did move
    assert not np.array_equal(model.fc1.weight.numpy(), tied_model(make, dtype).fc1.weight
                              .numpy())


def test_the_check_can_fail(dtype):
    model = tied_model(lambda: S10.Normed("LayerNorm", 6, dtype), dtype)
    model.fc2.weight.numpy()[0, S10.J] *= 1.01
    x, y = data(dtype)
    with exact(1):
        checks = S10.train(model, x, y, 1, False, arrays=model.tied_arrays()[:4])
    assert checks == [True, False]


@pytest.mark.parametrize("threads", [1, 2])
def test_tied_embedding_dimensions_and_unused_rows(dtype, threads):
    vocab = 10
    model = S10.Embedded(vocab, 5, dtype)
    S10.tie(model.tied_arrays())
    tokens = np.array([0, 2, 3, 2, 5, 0, 3, 3, 2, 5, 0])
    before = model.emb.weight.numpy().copy()
    with exact(threads):
        checks = S10.train(model, tensor(tokens[:-1]), tensor(tokens[1:]), 20, False)
    assert checks == [True] * 21
    after = model.emb.weight.numpy()
    for t in range(vocab):
        assert np.array_equal(before[t], after[t]) == (t not in tokens[:-1])


@pytest.mark.skipif(not hasattr(nn, "LayerNorm"), reason="nn.LayerNorm not in this cygrad")
def test_uses_nn_layers_where_cygrad_has_them():
    assert S10.Normed("LayerNorm", 5, "float32").native
