"""Run by test_data_workers.py under torch and under `python -m cygrad run`."""

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info


class Noisy(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        info = get_worker_info()
        wid = -1 if info is None else info.id
        return torch.tensor([float(i), float(wid), torch.rand(()).item(), random.random(),
                             float(np.random.rand())], dtype=torch.float64)


class Stream(IterableDataset):
    def __init__(self, n, shard):
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if self.shard and info is not None:
            return iter(range(info.id, self.n, info.num_workers))
        return iter(range(self.n))


def init(wid):
    info = get_worker_info()
    assert info.id == wid and info.num_workers == 2 and info.seed == torch.initial_seed()
    np.random.seed(100 + wid)


def show(batch):
    return " ".join(f"{v:.12g}" for v in batch.flatten().tolist())


torch.manual_seed(7)
random.seed(1)
np.random.seed(2)
for persistent in (False, True):
    loader = DataLoader(Noisy(), batch_size=3, shuffle=True, num_workers=2,
                        persistent_workers=persistent, worker_init_fn=init)
    for epoch in range(2):
        for b in loader:
            print(persistent, epoch, show(b))
print("main", torch.rand(2).tolist(), random.random(), float(np.random.rand()))
for shard in (False, True):
    for bs, drop in ((2, False), (2, True), (None, False)):
        loader = DataLoader(Stream(5, shard), batch_size=bs, num_workers=2, drop_last=drop)
        out = [b if isinstance(b, int) else b.tolist() for b in loader]
        print("stream", shard, bs, drop, out)
g = torch.Generator().manual_seed(3)
print([b.tolist() for b in DataLoader(list(range(7)), batch_size=2, shuffle=True,
                                      num_workers=3, generator=g)])
print("main", torch.rand(2).tolist(), get_worker_info())
