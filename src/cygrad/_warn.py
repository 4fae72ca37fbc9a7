"""warn(): a warning attributed to the program's line that called into cygrad (the first frame
outside the package), however many of cygrad's own frames lie between: as torch's warnings
from its C++ kernels point at the Python line that called them."""

import sys
import warnings


def warn(message, category=UserWarning):
    level, frame = 2, sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "cygrad" and not name.startswith("cygrad."):
            break
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
