"""DataLoader (torch.utils.data.DataLoader): batches of samples from a dataset, in a
sampler's order, collated into tensors.

    loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
    for xb, yb in loader: ...

Loading runs in the calling process. With num_workers > 0 the workers are emulated there, one
after another, with torch's semantics: batch i is fetched by worker i % num_workers (an
iterable dataset: each worker iterates its own copy, their batches taken in turn), inside the
worker's own random state seeded as torch seeds a worker process (the default generator and
Python's `random` with base_seed + id, numpy's global generator with torch's hash of the
two), worker_init_fn(id) runs in it first and get_worker_info() describes it; persistent
workers keep their state between passes. So random transforms in a dataset draw what torch's
workers draw, and the calling process's generators are left as torch leaves them. What differs:
no parallel loading, and each worker holds a shallow copy of the dataset (torch's hold whole
copies: what a worker_init_fn sets on `get_worker_info().dataset` stays in that worker either
way, but a change made inside an array the dataset holds is seen by every worker here).
pin_memory, pin_memory_device, timeout, prefetch_factor and in_order are accepted and change
nothing. As torch's, each pass (each `iter(loader)`) first draws a base seed from the loader's
generator (or the default one; persistent workers: the first pass only), then the random
sampler draws its own seed: with cygrad.random being torch's generator, a seed gives torch's
batches and leaves the default generator where torch leaves it.
"""

import copy
import math
import os
import random
import threading
import warnings

import numpy as np

from . import _random
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info", "WorkerInfo"]

_in_worker = threading.local()  # the WorkerInfo of the worker being emulated on this thread


def get_worker_info():
    """The WorkerInfo of the DataLoader worker running the caller (a dataset's __getitem__ or
    __iter__, a worker_init_fn), else None (the calling process, as torch's main process)."""
    return getattr(_in_worker, "info", None)


class WorkerInfo:
    """torch.utils.data.WorkerInfo: id, num_workers, seed and dataset of a worker (read-only)."""

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_keys", tuple(kwargs))

    def __setattr__(self, key, val):
        raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")

    def __repr__(self):
        items = ", ".join(f"{k}={getattr(self, k)}" for k in self._keys)
        return f"{type(self).__name__}({items})"


def _generate_state(base_seed, worker_id):
    """The seed torch gives numpy's global generator in a worker (a hash of the base seed and
    the worker id, as torch.utils.data._utils.worker._generate_state)."""
    mask = 0xFFFFFFFF
    hash_a = [0x43B0D7E5]

    def hash_(value):
        value = (value ^ hash_a[0]) & mask
        hash_a[0] = (hash_a[0] * 0x931E8875) & mask
        value = (value * hash_a[0]) & mask
        return (value ^ (value >> 16)) & mask

    def mix(x, y):
        result = (((0xCA01F9DD * x) & mask) - ((0x4973F715 * y) & mask)) & mask
        return (result ^ (result >> 16)) & mask

    pool = [hash_(e) for e in (worker_id, base_seed & mask, base_seed >> 32, 0)]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hash_(pool[i_src]))
    hash_b, state = 0x8B51F9DD, []
    for value in pool:
        value = (value ^ hash_b) & mask
        hash_b = (hash_b * 0x58F38DED) & mask
        value = (value * hash_b) & mask
        state.append((value ^ (value >> 16)) & mask)
    return state


class _Worker:
    """One emulated worker: its WorkerInfo and its random states (cygrad's generator, Python's
    `random`, numpy's global generator), swapped in while it fetches."""

    def __init__(self, loader, worker_id, base_seed):
        seed = base_seed + worker_id
        self.dataset = copy.copy(loader.dataset)  # the worker's own (torch's: a whole copy)
        self.info = WorkerInfo(id=worker_id, num_workers=loader.num_workers, seed=seed,
                               dataset=self.dataset)
        self._states = (_random.new_generator(seed).get_state(), random.Random(seed).getstate(),
                        np.random.RandomState(_generate_state(base_seed, worker_id)).get_state())
        self.dataset_iter, self.ended, self.active = None, False, True
        if loader.worker_init_fn is not None:
            self.run(loader.worker_init_fn, worker_id)

    def run(self, fn, *args):
        """fn(*args) as this worker: its random states and get_worker_info() in effect."""
        g = _random.default()
        outer = (g.get_state(), random.getstate(), np.random.get_state())
        before = getattr(_in_worker, "info", None)
        g.set_state(self._states[0])
        random.setstate(self._states[1])
        np.random.set_state(self._states[2])
        _in_worker.info = self.info
        try:
            return fn(*args)
        finally:
            self._states = (g.get_state(), random.getstate(), np.random.get_state())
            g.set_state(outer[0])
            random.setstate(outer[1])
            np.random.set_state(outer[2])
            _in_worker.info = before


class _InfiniteConstantSampler:
    """The sampler of an iterable dataset: None, forever."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Batches from a dataset (torch's signature; module docstring for what differs)."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing.let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None and num_workers == 0:
            raise ValueError("multiprocessing_context can only be used with multi-process "
                             "loading (num_workers > 0), but got num_workers=0")
        _random.check_generator(generator)
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        self._workers = None  # persistent workers, once made

        if isinstance(dataset, IterableDataset):
            self._iterable = True
            if shuffle not in {False, None}:
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            self._iterable = False
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._length_asked = None  # len() of an iterable dataset, to warn when it overruns
        self._initialized = True
        self._check_worker_number()

    def _check_worker_number(self):
        """torch's warning when more workers are asked for than the process has CPUs (given at
        construction and for each pass that starts workers, as torch's)."""
        if not self.num_workers:
            return
        cpuset_checked = hasattr(os, "sched_getaffinity")
        suggest = len(os.sched_getaffinity(0)) if cpuset_checked else os.cpu_count()
        if suggest is not None and self.num_workers <= suggest:
            return
        if suggest is None:
            told = ("DataLoader is not able to compute a suggested max number of worker in "
                    "current system.")
        else:
            told = (f"Our suggested max number of worker in current system is {suggest}"
                    f"{'' if cpuset_checked else ' (`cpuset` is not taken into account)'}, "
                    "which is smaller than what this DataLoader is going to create.")
        warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in "
                      f"total. {told} Please be aware that excessive worker creation might get "
                      "DataLoader running slow or even freeze, lower the worker number to avoid "
                      "potential slowness/freeze if necessary.", stacklevel=3)

    def __setattr__(self, name, value):
        if getattr(self, "_initialized", False) and name in (
                "batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                "persistent_workers"):
            raise ValueError(f"{name} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers and (not self.persistent_workers or self._workers is None):
            self._check_worker_number()
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        return _MultiProcessingDataLoaderIter(self)

    def _workers_for_pass(self):
        """The workers of a new pass (None without workers): new ones seeded from a base seed
        drawn now, or the persistent ones of the passes before (no draw, as torch)."""
        if self.num_workers == 0 or self._workers is None or not self.persistent_workers:
            base_seed = _random.draw_seed(self.generator)
            if self.num_workers == 0:
                return None
            workers = [_Worker(self, w, base_seed) for w in range(self.num_workers)]
            if self.persistent_workers:
                object.__setattr__(self, "_workers", workers)
            return workers
        return self._workers

    def __len__(self):
        if self._iterable:
            length = len(self.dataset)
            self._length_asked = length
            if self.batch_size is not None:
                length = (length // self.batch_size if self.drop_last
                          else math.ceil(length / self.batch_size))
            return length
        return len(self._index_sampler)


class _BaseDataLoaderIter:
    """One pass over a DataLoader (torch's class names: they show in programs' errors)."""

    def __init__(self, loader):
        if loader.pin_memory:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, "
                          "then device pinned memory won't be used.", stacklevel=3)
        self._loader = loader
        self._dataset = loader.dataset
        self._iterable = loader._iterable
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._collate_fn = loader.collate_fn
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        # torch draws the workers' base seed here, workers or not: the same draws keep the
        # default generator in step with torch's
        self._workers = loader._workers_for_pass()
        self._num_yielded = 0
        self._dataset_iter = iter(self._dataset) if self._iterable and not self._workers \
            else None
        self.ended = False  # the dataset's iterator is exhausted (without workers)
        self._turn = 0  # the worker whose turn it is (an iterable dataset's)
        for worker in self._workers or ():
            worker.active = True
            if self._iterable:  # each worker's own pass over its copy of the dataset
                worker.dataset_iter, worker.ended = worker.run(iter, worker.dataset), False

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._index_sampler)

    def __next__(self):
        index = next(self._sampler_iter)
        if self._workers and self._iterable:
            data = self._fetch_from_workers(index)
        elif self._workers:
            worker = self._workers[self._num_yielded % len(self._workers)]
            data = worker.run(self._fetch, index, worker.dataset)
        else:
            data = self._fetch_iterable(index) if self._iterable else self._fetch(index)
        self._num_yielded += 1
        asked = self._loader._length_asked
        if self._iterable and asked is not None and self._num_yielded > asked:
            warnings.warn(f"Length of IterableDataset {self._dataset} was reported to be "
                          f"{asked}(when accessing len(dataloader)), but {self._num_yielded} "
                          "samples have been fetched. ", stacklevel=2)
        return data

    def _fetch(self, index, dataset=None):
        dataset = self._dataset if dataset is None else dataset
        if not self._auto_collation:
            return self._collate_fn(dataset[index])
        if callable(getattr(dataset, "__getitems__", None)):
            return self._collate_fn(dataset.__getitems__(index))
        return self._collate_fn([dataset[i] for i in index])

    def _fetch_iterable(self, index, worker=None):
        """The next batch of an iterable dataset (from `worker`'s own iterator with workers)."""
        source = worker if worker is not None else self
        dataset_iter = source.dataset_iter if worker is not None else self._dataset_iter
        if source.ended:
            raise StopIteration
        if not self._auto_collation:
            return self._collate_fn(next(dataset_iter))
        data = []
        for _ in index:
            try:
                data.append(next(dataset_iter))
            except StopIteration:
                source.ended = True
                break
        if not data or (self._drop_last and len(data) < len(index)):
            raise StopIteration
        return self._collate_fn(data)

    def _fetch_from_workers(self, index):
        """An iterable dataset's next batch with workers: from each active worker in turn; a
        worker whose copy is exhausted drops out, and the pass ends when none is left."""
        workers = self._workers
        for _ in range(len(workers)):
            worker = workers[self._turn]
            self._turn = (self._turn + 1) % len(workers)
            if not worker.active:
                continue
            try:
                return worker.run(self._fetch_iterable, index, worker)
            except StopIteration:
                worker.active = False
        raise StopIteration


class _SingleProcessDataLoaderIter(_BaseDataLoaderIter):
    """A pass without workers."""


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    """A pass with workers (emulated in this process: see _Worker)."""

