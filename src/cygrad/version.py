"""torch.version: what a program reads to learn the build. cygrad's is CPU only: cuda, hip,
rocm and xpu are None; __version__ is cygrad's own."""

from . import __version__  # noqa: F401 (re-exported)

cuda = None
hip = None
rocm = None
xpu = None
debug = False
git_version = "unknown"
