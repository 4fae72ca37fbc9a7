"""cygrad.accelerator, nn.parallel.data_parallel and serialization's safe-globals API answer as
torch's do on a machine without an accelerator (pytorch/examples' programs ask them first)."""

import pytest

import cygrad
import cygrad.nn as nn
from cygrad import accelerator

RAISING = ["current_device_index", "synchronize", "current_stream", "empty_cache",
           "empty_host_cache", "get_memory_info", "memory_allocated", "max_memory_allocated",
           "memory_reserved", "max_memory_reserved", "memory_stats", "reset_peak_memory_stats",
           "reset_accumulated_memory_stats", "get_device_capability"]


def test_the_examples_device_choice_takes_the_cpu_path():
    """pytorch/examples: `use_accel = ... and torch.accelerator.is_available()`."""
    assert accelerator.is_available() is False
    assert accelerator.current_accelerator() is None
    assert accelerator.current_accelerator(check_available=True) is None
    assert accelerator.device_count() == 0
    device = accelerator.current_accelerator() if accelerator.is_available() \
        else cygrad.device("cpu")
    assert cygrad.ones(2).to(device).device == cygrad.device("cpu")


@pytest.mark.parametrize("name", RAISING)
def test_what_needs_a_device_raises(name):
    with pytest.raises(RuntimeError, match="none is available"):
        getattr(accelerator, name)()


def test_device_indices():
    with pytest.raises(RuntimeError, match="none is available"):
        accelerator.set_device_index(0)
    with pytest.raises(RuntimeError, match="none is available"):
        with accelerator.device_index(0):
            pass
    ran = []
    with accelerator.device_index(None):
        ran.append(1)
    assert ran == [1]
    with pytest.warns(FutureWarning), pytest.raises(RuntimeError):
        accelerator.current_device_idx()


def test_data_parallel_needs_a_device():
    with pytest.raises(RuntimeError, match="device type"):
        nn.parallel.data_parallel(nn.Linear(2, 2), cygrad.ones(1, 2), [0, 1])


def test_safe_globals(tmp_path):
    from cygrad import serialization

    class Config:
        pass

    before = serialization.get_safe_globals()
    with serialization.safe_globals([Config]):
        assert serialization.get_safe_globals() == before + [Config]
    assert serialization.get_safe_globals() == before
    serialization.add_safe_globals([Config])
    assert Config in serialization.get_safe_globals()
    serialization.clear_safe_globals()
    assert serialization.get_safe_globals() == []
    path = tmp_path / "m.pt"
    cygrad.save(nn.Linear(2, 3).state_dict(), path)
    assert serialization.get_unsafe_globals_in_checkpoint(path) == []
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        serialization.get_unsafe_globals_in_checkpoint(tmp_path / "bad.pt")


def test_as_torch():
    """The same answers as torch's own (skipped without torch)."""
    torch = pytest.importorskip("torch")
    assert accelerator.is_available() == torch.accelerator.is_available()
    if torch.accelerator.is_available():
        pytest.skip("this torch has an accelerator")
    assert torch.accelerator.current_accelerator() is None
    assert accelerator.device_count() == torch.accelerator.device_count()
    for name in RAISING:
        with pytest.raises(RuntimeError) as theirs:
            getattr(torch.accelerator, name)()
        with pytest.raises(RuntimeError) as ours:
            getattr(accelerator, name)()
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.parallel.data_parallel(torch.nn.Linear(2, 2), torch.ones(1, 2), [0, 1])
    with pytest.raises(RuntimeError) as ours:
        nn.parallel.data_parallel(nn.Linear(2, 2), cygrad.ones(1, 2), [0, 1])
    assert str(ours.value) == str(theirs.value)


def test_cuda_module_answers_as_torch_without_cuda():
    """A CPU-only torch: synchronize / current_device / get_device_name raise AssertionError
    (llm.c's and nanoGPT's CUDA-only lines fail the same way), the memory counters are 0."""
    import collections

    import cygrad

    for name in ("synchronize", "current_device", "get_device_name"):
        with pytest.raises(AssertionError, match="not compiled with CUDA"):
            getattr(cygrad.cuda, name)()
    for name in ("memory_allocated", "max_memory_allocated", "memory_reserved",
                 "max_memory_reserved"):
        assert getattr(cygrad.cuda, name)() == 0
    assert cygrad.cuda.memory_stats() == collections.OrderedDict()
    with pytest.raises(AttributeError):
        cygrad.cuda.reset_peak_memory_stats()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        for name in ("synchronize", "current_device", "get_device_name"):
            with pytest.raises(AssertionError):
                getattr(torch.cuda, name)()
        assert torch.cuda.max_memory_allocated() == cygrad.cuda.max_memory_allocated()
