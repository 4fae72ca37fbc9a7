"""torch.utils.data.distributed.DistributedSampler: the same indices as torch's for every
rank, epoch, shuffle and drop_last (cygrad's randperm is torch's)."""

import itertools

import pytest

from cygrad.utils.data import DataLoader, DistributedSampler

CASES = list(itertools.product([1, 2, 10, 17], [1, 3, 4], [True, False], [True, False], [0, 3]))


@pytest.mark.parametrize("n,replicas,shuffle,drop_last,epoch", CASES)
def test_shares_cover_the_dataset_as_torchs(n, replicas, shuffle, drop_last, epoch):
    data = list(range(n))
    shares = []
    for rank in range(replicas):
        s = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=shuffle,
                               seed=5, drop_last=drop_last)
        s.set_epoch(epoch)
        shares.append(list(s))
        assert len(shares[-1]) == len(s)
    merged = [i for share in zip(*shares) for i in share]
    if drop_last:
        assert len(set(merged)) == len(merged) == n // replicas * replicas
    else:
        assert set(merged) == set(data) and len(merged) % replicas == 0
    try:
        from torch.utils.data.distributed import DistributedSampler as Theirs
    except ImportError:
        return
    for rank in range(replicas):
        t = Theirs(data, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=5,
                   drop_last=drop_last)
        t.set_epoch(epoch)
        assert list(t) == shares[rank]


def test_errors_and_a_loader_over_a_share():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval"):
        DistributedSampler(range(5), num_replicas=3, rank=3)
    with pytest.raises(RuntimeError, match="distributed package"):
        DistributedSampler(range(5))  # no process group to ask
    s = DistributedSampler(list(range(8)), num_replicas=2, rank=1, shuffle=False)
    batches = [b.tolist() for b in DataLoader(list(range(8)), batch_size=2, sampler=s)]
    assert batches == [[1, 3], [5, 7]]
