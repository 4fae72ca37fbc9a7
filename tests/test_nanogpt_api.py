"""Names nanoGPT's train.py and sample.py use that cygrad lacked (tried 2026-12-04, the two
programs then ran unedited under `python -m cygrad run` with torch's losses and samples):
torch.distributed (imported by every run, used only under torchrun), the dtypes it names in
its table (torch.bfloat16, torch.float16), torch.cuda.amp's deprecation warnings."""

import pickle
import warnings

import pytest

import cygrad
from helpers import run_program

DIST = """
import torch
import torch.distributed as dist
from torch.distributed import init_process_group, destroy_process_group
from torch.nn.parallel import DistributedDataParallel as DDP
print(dist.is_initialized(), dist.is_torchelastic_launched())
for name in ["get_rank", "get_world_size", "barrier", "get_backend"]:
    try:
        getattr(dist, name)()
    except ValueError as e:
        print(name, "ValueError", e)
try:
    dist.all_reduce(torch.ones(1))
except ValueError as e:
    print("all_reduce ValueError", e)
try:
    destroy_process_group()
except AssertionError as e:
    print("destroy AssertionError", e)
# llm.c's train_gpt2.py: imported at the top, used only under torchrun or with --compile
import torch._inductor.config as config
from torch.distributed.optim import ZeroRedundancyOptimizer
print(hasattr(config, "coordinate_descent_tuning"), config.coordinate_descent_tuning,
      config.triton.unique_kernel_names)
config.coordinate_descent_tuning = True
print(config.coordinate_descent_tuning, torch.cuda.max_memory_allocated() // 1024 // 1024)
try:
    ZeroRedundancyOptimizer([torch.zeros(1, requires_grad=True)], torch.optim.AdamW)
except ValueError as e:
    print("ZeroRedundancyOptimizer ValueError", e)
"""


def test_distributed_uninitialised_as_torchs():
    """A one-process program meets torch.distributed as torch's answers it with no group."""
    pytest.importorskip("torch")
    assert run_program(DIST, True) == run_program(DIST, False)


def test_distributed_has_no_process_groups():
    assert cygrad.distributed.is_available() is False
    with pytest.raises(NotImplementedError, match="init_process_group"):
        cygrad.distributed.init_process_group("gloo")
    with pytest.raises(NotImplementedError, match="DistributedDataParallel"):
        cygrad.nn.parallel.DistributedDataParallel(cygrad.nn.Linear(2, 2))


def test_unsupported_dtypes_can_be_named_not_used():
    table = {"float32": cygrad.float32, "bfloat16": cygrad.bfloat16, "float16": cygrad.float16}
    assert table["float32"] is cygrad.float32
    assert cygrad.half is cygrad.float16 and cygrad.cfloat is cygrad.complex64
    assert repr(cygrad.bfloat16) == "cygrad.bfloat16" and cygrad.bfloat16.itemsize == 2
    assert cygrad.float32 != cygrad.float16 and cygrad.float16 != cygrad.float32
    assert cygrad.complex128.is_complex and not cygrad.complex128.is_floating_point
    assert pickle.loads(pickle.dumps(cygrad.bfloat16)) is cygrad.bfloat16
    for make in (lambda: cygrad.zeros(2, dtype=cygrad.float16),
                 lambda: cygrad.ones(2).to(cygrad.bfloat16),
                 lambda: cygrad.ones(2).to("cpu", cygrad.half),
                 lambda: cygrad.tensor([1.0], dtype=cygrad.complex64),
                 lambda: cygrad.nn.Linear(2, 2).to(cygrad.bfloat16),
                 lambda: cygrad.set_default_dtype(cygrad.float16)):
        with pytest.raises(TypeError, match="does not support dtype"):
            make()
    with pytest.raises(AttributeError, match="no attribute 'qint8'"):
        _ = cygrad.qint8


@pytest.mark.parametrize("name", ["GradScaler", "autocast"])
def test_cuda_amp_warns_as_torchs(name):
    torch = pytest.importorskip("torch")
    seen = {}
    for lib in (torch, cygrad):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(lib.cuda.amp, name)(enabled=False)
        seen[lib.__name__] = [str(w.message) for w in caught if w.category is FutureWarning]
    assert seen["cygrad"] == seen["torch"] and len(seen["torch"]) == 1


FINFO = """
import torch
for d in [torch.float16, torch.half, torch.bfloat16, torch.complex64, torch.cdouble,
          torch.float32, torch.float64]:
    f = torch.finfo(d)
    print(f, f.bits, repr(f.eps), repr(f.max), repr(f.min), repr(f.tiny), f.resolution, f.dtype)
"""


def test_finfo_of_every_float_dtype_as_torchs():
    """Models take mask values from torch.finfo(dtype).min, whatever dtype they name: the
    limits (and the printed resolution, 1e-06 for float32) are torch's."""
    pytest.importorskip("torch")
    assert run_program(FINFO, True) == run_program(FINFO, False)
    assert cygrad.finfo(cygrad.bfloat16).max == (2 - 2 ** -7) * 2.0 ** 127
    assert cygrad.finfo(cygrad.float32).resolution == 1e-06
