"""Which BLAS kernel numpy runs here. A test that asserts where numpy's BLAS rounds tied units
apart holds for the kernels it was measured with only: another kernel (another CPU type's
OpenBLAS core, MKL, Accelerate) computes other output positions with other operation sequences.
Such a test carries `measured_on(...)` and skips elsewhere, naming both."""

import pytest

from cygrad._config import blas


def here():
    """(library, kernel) of numpy's BLAS in this process, e.g. ("openblas", "Haswell")."""
    info = blas()
    return info["name"], info["core"]


def measured_on(*kernels, library="openblas"):
    """Run the test only where numpy's BLAS is `library` with one of these kernels."""
    name, core = here()
    return pytest.mark.skipif(
        name != library or core not in kernels,
        reason=f"asserts where {library} with kernel {' or '.join(kernels)} splits tied units; "
               f"numpy's BLAS here is {name} with kernel "
               f"{core or 'unknown (pip install threadpoolctl)'}")
