"""DataLoader(num_workers > 0): workers emulated in the calling process with torch's semantics
(batch i from worker i % n, each worker's random state seeded as torch seeds a worker process,
worker_init_fn and get_worker_info() inside it, persistent workers, an iterable dataset per
worker). The program in _workers_program.py prints every batch (random draws from torch's
generator, Python's random and numpy's in __getitem__) and the main process's next draws:
under torch (real worker processes) and under cygrad the output is the same."""

import pathlib
import random
import subprocess
import sys

import numpy as np
import pytest

import cygrad
from cygrad.utils import data
from cygrad.utils.data.dataloader import _generate_state

PROGRAM = pathlib.Path(__file__).with_name("_workers_program.py")


def run(on_cygrad):
    command = [sys.executable, "-m", "cygrad", "run", str(PROGRAM)] if on_cygrad else \
        [sys.executable, str(PROGRAM)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_the_same_batches_and_draws_as_torchs_worker_processes():
    pytest.importorskip("torch")
    ours, theirs = run(True), run(False)
    assert len(ours) == 25 and ours == theirs


def test_numpy_seed_hash_is_torchs():
    worker = pytest.importorskip("torch.utils.data._utils.worker")
    for base in (0, 1, 2**40 + 7, 2**63 - 1):
        for w in range(4):
            assert _generate_state(base, w) == worker._generate_state(base, w)


class Draws(data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        info = data.get_worker_info()
        return [i, info.id, info.num_workers, cygrad.rand(()).item(), random.random(),
                float(np.random.rand())]


def test_worker_order_states_and_info():
    cygrad.manual_seed(5)
    loader = data.DataLoader(Draws(), batch_size=2, num_workers=3, collate_fn=list)
    batches = list(loader)
    assert [[row[1] for row in b] for b in batches] == [[0, 0], [1, 1], [2, 2]]
    assert all(row[2] == 3 for b in batches for row in b)
    # a worker's draws go on from where its last fetch left them; each worker's differ
    assert len({b[0][3] for b in batches}) == 3 and batches[0][0][3] != batches[0][1][3]
    assert data.get_worker_info() is None  # outside a fetch: the calling process


def test_the_callers_random_states_are_left_as_they_were():
    """A pass draws the base seed from the caller's generator (as torch does), nothing else;
    Python's and numpy's global generators are untouched."""
    cygrad.manual_seed(9)
    random.seed(3)
    np.random.seed(4)
    start, py, npy = cygrad.random.get_rng_state(), random.getstate(), np.random.get_state()[1]
    cygrad.utils.data._random.draw_seed()
    after_seed = np.array(cygrad.random.get_rng_state())
    cygrad.random.set_rng_state(start)
    list(data.DataLoader(Draws(), batch_size=2, num_workers=2, collate_fn=list))
    assert np.array_equal(np.array(cygrad.random.get_rng_state()), after_seed)
    assert random.getstate() == py and np.array_equal(np.random.get_state()[1], npy)


def test_persistent_workers_keep_their_state_and_draw_one_base_seed():
    def init(wid):
        assert data.get_worker_info().id == wid
        calls.append(wid)

    calls = []
    cygrad.manual_seed(1)
    loader = data.DataLoader(Draws(), batch_size=3, num_workers=2, persistent_workers=True,
                             worker_init_fn=init, collate_fn=list)
    first, second = list(loader), list(loader)
    assert calls == [0, 1]  # once a worker
    assert [row[3] for b in first for row in b] != [row[3] for b in second for row in b]
    calls.clear()
    fresh = data.DataLoader(Draws(), batch_size=3, num_workers=2, worker_init_fn=init,
                            collate_fn=list)
    list(fresh), list(fresh)
    assert calls == [0, 1, 0, 1]  # new workers every pass


def test_an_exception_in_a_worker_propagates_and_restores_the_state():
    class Bad(data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            random.random()
            raise KeyError(i)

    random.seed(0)
    before = random.getstate()
    with pytest.raises(KeyError):
        list(data.DataLoader(Bad(), batch_size=2, num_workers=2))
    assert random.getstate() == before and data.get_worker_info() is None


def test_worker_info_is_read_only():
    info = data.WorkerInfo(id=0, num_workers=1, seed=3, dataset=None)
    assert repr(info) == "WorkerInfo(id=0, num_workers=1, seed=3, dataset=None)"
    with pytest.raises(RuntimeError, match="Cannot assign attributes to WorkerInfo"):
        info.id = 1


class Range(data.IterableDataset):
    """torch's documented sharding: worker_init_fn narrows each worker's copy."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        return iter(range(self.start, self.end))


def shard(worker_id):
    info = data.get_worker_info()
    dataset = info.dataset
    per = -(-(dataset.end - dataset.start) // info.num_workers)
    dataset.start, dataset.end = (dataset.start + worker_id * per,
                                  min(dataset.start + (worker_id + 1) * per, dataset.end))


def test_worker_init_fn_configures_each_workers_own_dataset():
    dataset = Range(3, 10)
    got = [int(x) for x in data.DataLoader(dataset, num_workers=2, worker_init_fn=shard,
                                           batch_size=None)]
    assert sorted(got) == list(range(3, 10)) and (dataset.start, dataset.end) == (3, 10)
    torch = pytest.importorskip("torch")

    class TorchRange(torch.utils.data.IterableDataset):
        def __init__(self, start, end):
            self.start, self.end = start, end

        def __iter__(self):
            return iter(range(self.start, self.end))

    def torch_shard(worker_id):
        info = torch.utils.data.get_worker_info()
        per = -(-(info.dataset.end - info.dataset.start) // info.num_workers)
        info.dataset.start, info.dataset.end = (
            info.dataset.start + worker_id * per,
            min(info.dataset.start + (worker_id + 1) * per, info.dataset.end))

    theirs = [int(x) for x in torch.utils.data.DataLoader(
        TorchRange(3, 10), num_workers=2, worker_init_fn=torch_shard, batch_size=None)]
    assert got == theirs


def _warned_worker_counts(lib, cpus):
    """How often, and with which counts, a loader of more workers than `cpus` warns: at
    construction and at each pass that starts workers (a persistent loader's first only)."""
    import warnings

    ds = lib.utils.data.TensorDataset(lib.arange(8.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = lib.utils.data.DataLoader(ds, batch_size=2, num_workers=cpus + 2)
        for _ in range(2):
            list(loader)
        kept = lib.utils.data.DataLoader(ds, batch_size=2, num_workers=cpus + 2,
                                         persistent_workers=True)
        for _ in range(2):
            list(kept)
        list(lib.utils.data.DataLoader(ds, batch_size=2, num_workers=cpus))
    return [str(w.message) for w in caught if "worker processes in total" in str(w.message)]


def test_more_workers_than_cpus_warns_as_torch():
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ours = _warned_worker_counts(cygrad, cpus)
    assert len(ours) == 5 and f"create {cpus + 2} worker processes" in ours[0]
    assert f"suggested max number of worker in current system is {cpus}" in ours[0]
    torch = pytest.importorskip("torch")
    assert ours == _warned_worker_counts(torch, cpus)


@pytest.mark.parametrize("workers", [0, 2])
def test_iterator_classes_have_torchs_names(workers):
    """They show in programs' errors ('_SingleProcessDataLoaderIter' object has no attribute
    'next': an old tutorial's it.next())."""
    import cygrad
    from cygrad.utils.data import DataLoader, TensorDataset

    it = iter(DataLoader(TensorDataset(cygrad.arange(4.0)), batch_size=2, num_workers=workers))
    torch = pytest.importorskip("torch")
    theirs = iter(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(4.0)),
                                              batch_size=2, num_workers=workers))
    assert type(it).__name__ == type(theirs).__name__
    assert [b[0].tolist() for b in it] == [b[0].tolist() for b in theirs]
