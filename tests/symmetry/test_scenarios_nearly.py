"""S11: nearly identical units. Exact: with tied outgoing weights and no perturbation the pair's
distance is exactly 0 at every step (MLP units, conv filters, attention heads, 1 and 2
threads); every perturbation makes the pair distinct at step 0. The growth itself is observed,
not asserted."""

import numpy as np
import pytest
from symmetry_helpers import exact

from cygrad.demos import nearly as S11


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(S11.KINDS))
def test_tied_pair_without_perturbation_stays_at_distance_zero(kind, dtype, threads):
    with exact(threads):
        d = S11.trajectory(S11.KINDS[kind], None, True, 12, dtype, 0)
    assert d == [0.0] * 13


@pytest.mark.parametrize("eps", S11.EPSILONS)
@pytest.mark.parametrize("kind", list(S11.KINDS))
def test_every_perturbation_separates_the_pair_at_step_0(kind, eps):
    with exact(1):
        d = S11.trajectory(S11.KINDS[kind], eps, True, 2, "float32", 0)
    assert d[0] > 0 and all(np.isfinite(d))


def test_one_ulp():
    a = np.array([1.0, -2.0, 0.0], np.float32)
    b = S11.perturb(a, "1 ulp")
    assert b.dtype == np.float32 and all(np.nextafter(a, np.inf) == b)
