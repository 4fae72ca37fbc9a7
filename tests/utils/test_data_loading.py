"""cygrad.utils.data against torch.utils.data: datasets, samplers, collation, the DataLoader's
batches and errors, and (once cygrad.random is torch's generator) torch's shuffling order."""

import collections
import warnings

import numpy as np
import pytest

import cygrad
from cygrad.utils import data
from cygrad.utils.data import _random

torch_rng = pytest.mark.skipif(not _random._TORCH_LIKE,
                               reason="cygrad.random is not torch's generator yet")


def arrays(n=10):
    X = np.arange(3 * n, dtype=np.float32).reshape(n, 3)
    y = np.arange(n) % 4
    return X, y


def values(x):
    """A batch's content as plain Python data, for comparing cygrad's and torch's."""
    if isinstance(x, cygrad.Tensor):
        return ("tensor", str(x.dtype).replace("cygrad.", ""), x.numpy().tolist())
    if hasattr(x, "detach"):  # a torch tensor
        return ("tensor", str(x.dtype).replace("torch.", ""), x.detach().numpy().tolist())
    if isinstance(x, (np.ndarray, np.generic)):  # integers while cygrad tensors hold floats
        return ("tensor", str(x.dtype), x.tolist())
    if isinstance(x, dict):
        return {k: values(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(values(v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(values(v) for v in x)
    return x


# ---------------------------------------------------------------------- datasets

def test_tensor_dataset():
    X, y = arrays()
    ds = data.TensorDataset(cygrad.tensor(X), y)
    assert len(ds) == 10
    x3, y3 = ds[3]
    assert x3.numpy().tolist() == [9.0, 10.0, 11.0] and y3 == 3
    with pytest.raises(AssertionError, match="Size mismatch"):
        data.TensorDataset(cygrad.tensor(X), y[:5])


def test_subset_concat_and_chain():
    X, y = arrays()
    ds = data.TensorDataset(cygrad.tensor(X), y)
    sub = data.Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][1] == 3 and [s[1] for s in sub.__getitems__([1, 0])] == [2, 3]
    both = ds + sub
    assert isinstance(both, data.ConcatDataset) and len(both) == 12
    assert both[10][1] == 3 and both[-1][1] == 2 and both.cumulative_sizes == [10, 12]
    with pytest.raises(ValueError, match="absolute value"):
        both[-13]

    class Count(data.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    chain = Count(2) + Count(3)
    assert isinstance(chain, data.ChainDataset) and list(chain) == [0, 1, 0, 1, 2]
    assert len(chain) == 5
    with pytest.raises(AssertionError, match="does not support IterableDataset"):
        data.ConcatDataset([ds, Count(2)])


@pytest.mark.parametrize("lengths, sizes", [([3, 7], [3, 7]), ([0.3, 0.7], [3, 7]),
                                            ([1 / 3, 1 / 3, 1 / 3], [4, 3, 3]),
                                            ([0.25, 0.25, 0.5], [3, 2, 5])])
def test_random_split_sizes_and_disjointness(lengths, sizes):
    parts = data.random_split(range(10), lengths)
    assert [len(p) for p in parts] == sizes
    assert sorted(i for p in parts for i in p) == list(range(10))


def test_random_split_errors_and_warnings():
    with pytest.raises(ValueError, match="Sum of input lengths"):
        data.random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        data.random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match=r"Length of split at index [12] is 0"):
        data.random_split(range(2), [0.9, 0.05, 0.05])


def test_same_seed_same_order():
    cygrad.manual_seed(3)
    first = [b.tolist() for b in data.DataLoader(np.arange(20), batch_size=6, shuffle=True)]
    cygrad.manual_seed(3)
    again = [b.tolist() for b in data.DataLoader(np.arange(20), batch_size=6, shuffle=True)]
    assert first == again and sorted(sum(first, [])) == list(range(20))


# ---------------------------------------------------------------------- samplers

def test_sequential_and_batch_samplers():
    assert list(data.SequentialSampler(range(4))) == [0, 1, 2, 3]
    batches = data.BatchSampler(data.SequentialSampler(range(10)), 3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(batches) == 4
    batches = data.BatchSampler(range(10), 3, drop_last=True)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and len(batches) == 3


def test_random_sampler_counts():
    s = data.RandomSampler(range(7))
    assert sorted(s) == list(range(7)) and len(s) == 7
    s = data.RandomSampler(range(7), num_samples=17)
    drawn = list(s)
    assert len(drawn) == 17 == len(s) and all(drawn.count(i) in (2, 3) for i in range(7))
    s = data.RandomSampler(range(5), replacement=True, num_samples=70)
    drawn = list(s)
    assert len(drawn) == 70 and set(drawn) <= set(range(5))
    assert sorted(data.SubsetRandomSampler([5, 9, 11])) == [5, 9, 11]


@pytest.mark.parametrize("make, error, match", [
    (lambda: data.RandomSampler(range(3), replacement=1), TypeError,
     "replacement should be a boolean value"),
    (lambda: data.RandomSampler(range(3), num_samples=0), ValueError,
     "num_samples should be a positive integer value, but got num_samples=0"),
    (lambda: data.RandomSampler([]), ValueError, "num_samples should be a positive integer"),
    (lambda: data.BatchSampler(range(3), 0, False), ValueError,
     "batch_size should be a positive integer value, but got batch_size=0"),
    (lambda: data.BatchSampler(range(3), 2, 1), ValueError,
     "drop_last should be a boolean value"),
    (lambda: data.RandomSampler(range(3), generator=object()), TypeError, "generator"),
])
def test_sampler_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---------------------------------------------------------------------- collation

Point = collections.namedtuple("Point", "x y")

SAMPLES = {
    "floats": [1.0, 2.5, -3.0],
    "ints": [3, 4, 5],
    "bools": [True, False],
    "strings": ["a", "b"],
    "arrays": [np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)],
    "int-arrays": [np.array([1, 2]), np.array([3, 4])],
    "numpy-scalars": [np.float32(1.5), np.float32(2.0)],
    "numpy-ints": [np.int64(3), np.int64(4)],
    "dicts": [{"x": np.ones(2, np.float32), "label": 1, "name": "a"},
              {"x": np.zeros(2, np.float32), "label": 0, "name": "b"}],
    "tuples": [(np.ones(3), 1.0), (np.zeros(3), 2.0)],
    "lists": [[1.0, np.float32(2)], [3.0, np.float32(4)]],
    "namedtuples": [Point(1.0, np.ones(2)), Point(2.0, np.zeros(2))],
    "nested": [{"a": [(1, "x"), {"b": np.float64(2)}]}, {"a": [(3, "y"), {"b": np.float64(4)}]}],
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_default_collate_matches_torch(name):
    pytest.importorskip("torch")
    from torch.utils.data import default_collate

    batch = SAMPLES[name]
    ours, theirs = data.default_collate(batch), default_collate(batch)
    assert type(ours) is type(theirs) or isinstance(ours, (cygrad.Tensor, np.ndarray))
    assert values(ours) == values(theirs)


def test_collate_stacks_tensors_and_refuses_the_unknown():
    batch = [cygrad.tensor(np.full((2,), i, np.float32)) for i in range(3)]
    out = data.default_collate(batch)
    assert isinstance(out, cygrad.Tensor) and out.shape == (3, 2) and out.dtype == np.float32
    with pytest.raises(TypeError, match="batch must contain tensors"):
        data.default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="equal size"):
        data.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="batch must contain"):
        data.default_collate([np.array(["a"]), np.array(["b"])])


def test_default_convert_matches_torch():
    pytest.importorskip("torch")
    from torch.utils.data import default_convert

    sample = {"x": np.ones(2, np.float32), "t": (np.zeros(1), 3), "s": "name"}
    assert values(data.default_convert(sample)) == values(default_convert(sample))


def test_custom_collate_map():
    def ints_as_strings(batch, *, collate_fn_map):
        return ",".join(map(str, batch))

    registry = {**data.collate.__globals__["default_collate_fn_map"], int: ints_as_strings}
    assert data.collate([(1, 2.0), (3, 4.0)], collate_fn_map=registry)[0] == "1,3"


# ---------------------------------------------------------------------- DataLoader

LOADERS = [
    {"batch_size": 4},
    {"batch_size": 4, "drop_last": True},
    {"batch_size": 10},
    {"batch_size": 3, "sampler": [9, 0, 4, 4, 1]},
    {"batch_size": None},
    {"batch_sampler": [[1, 2], [5], [0, 9, 3]]},
    {"batch_size": 2, "collate_fn": lambda b: [s[1] for s in b]},
]


@pytest.mark.parametrize("kwargs", LOADERS)
def test_batches_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    X, y = arrays()
    ours = data.DataLoader(data.TensorDataset(cygrad.tensor(X), y), **kwargs)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y)), **kwargs)
    assert len(ours) == len(theirs)
    got, want = [values(b) for b in ours], [values(b) for b in theirs]
    assert got == want


def test_iterable_dataset_batches_match_torch():
    torch = pytest.importorskip("torch")

    def make(base):
        class Stream(base):
            def __iter__(self):
                return iter([float(i) for i in range(7)])

            def __len__(self):
                return 7
        return Stream()

    for kwargs in ({"batch_size": 3}, {"batch_size": 3, "drop_last": True},
                   {"batch_size": None}):
        ours = data.DataLoader(make(data.IterableDataset), **kwargs)
        theirs = torch.utils.data.DataLoader(make(torch.utils.data.IterableDataset), **kwargs)
        assert len(ours) == len(theirs)
        assert [values(b) for b in ours] == [values(b) for b in theirs]


def test_iterable_dataset_overrunning_its_length_warns():
    class Liar(data.IterableDataset):
        def __iter__(self):
            return iter(range(5))

        def __len__(self):
            return 2

    loader = data.DataLoader(Liar(), batch_size=None)
    assert len(loader) == 2
    with pytest.warns(UserWarning, match="was reported to be 2"):
        assert len(list(loader)) == 5


def test_epochs_reshuffle_and_cover_everything():
    loader = data.DataLoader(np.arange(30), batch_size=7, shuffle=True)
    epochs = [np.concatenate(list(loader)).tolist() for _ in range(3)]
    assert all(sorted(e) == list(range(30)) for e in epochs)
    assert epochs[0] != epochs[1]


@pytest.mark.parametrize("make, error, match", [
    (lambda d: data.DataLoader(d, num_workers=-1), ValueError, "non-negative"),
    (lambda d: data.DataLoader(d, timeout=-1), ValueError, "timeout"),
    (lambda d: data.DataLoader(d, prefetch_factor=2), ValueError, "prefetch_factor"),
    (lambda d: data.DataLoader(d, persistent_workers=True), ValueError, "persistent_workers"),
    (lambda d: data.DataLoader(d, shuffle=True, sampler=[0, 1]), ValueError,
     "sampler option is mutually exclusive with shuffle"),
    (lambda d: data.DataLoader(d, batch_size=2, batch_sampler=[[0]]), ValueError,
     "batch_sampler option is mutually exclusive"),
    (lambda d: data.DataLoader(d, batch_size=None, drop_last=True), ValueError,
     "batch_size=None option disables auto-batching"),
    (lambda d: data.DataLoader(d, batch_size=0), ValueError, "batch_size should be a positive"),
])
def test_loader_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(np.arange(5))


def test_iterable_dataset_refuses_shuffle_and_samplers():
    class Stream(data.IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        data.DataLoader(Stream(), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler"):
        data.DataLoader(Stream(), sampler=[0])


def test_loader_attributes_are_frozen_and_pin_memory_is_a_no_op():
    loader = data.DataLoader(np.arange(4), batch_size=2, pin_memory=True)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3
    with pytest.warns(UserWarning, match="pin_memory"):
        batches = [b.tolist() for b in loader]
    assert batches == [[0, 1], [2, 3]] and data.get_worker_info() is None


# ---------------------------------------------------------------------- torch's random order

@torch_rng
@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_shuffled_batches_are_torchs_for_the_same_seed(seed):
    torch = pytest.importorskip("torch")
    cygrad.manual_seed(seed)
    torch.manual_seed(seed)
    ours = data.DataLoader(np.arange(50), batch_size=8, shuffle=True)
    theirs = torch.utils.data.DataLoader(torch.arange(50), batch_size=8, shuffle=True)
    for _ in range(3):  # epochs: each draws a base seed and a sampler seed, as torch's
        assert [b.tolist() for b in ours] == [b.tolist() for b in theirs]
    # the default generator is left where torch's is
    assert _random.draw_seed() == int(torch.empty((), dtype=torch.int64).random_().item())


@torch_rng
def test_generator_argument_gives_torchs_order():
    torch = pytest.importorskip("torch")
    ours = data.DataLoader(np.arange(40), batch_size=5, shuffle=True,
                           generator=_random.new_generator(99))
    theirs = torch.utils.data.DataLoader(torch.arange(40), batch_size=5, shuffle=True,
                                         generator=torch.Generator().manual_seed(99))
    for _ in range(2):
        assert [b.tolist() for b in ours] == [b.tolist() for b in theirs]


@torch_rng
def test_random_sampler_with_replacement_and_random_split_are_torchs():
    torch = pytest.importorskip("torch")
    ours = list(data.RandomSampler(range(9), replacement=True, num_samples=75,
                                   generator=_random.new_generator(4)))
    theirs = list(torch.utils.data.RandomSampler(range(9), replacement=True, num_samples=75,
                                                 generator=torch.Generator().manual_seed(4)))
    assert ours == theirs
    cygrad.manual_seed(1)
    torch.manual_seed(1)
    mine = [list(s.indices) for s in data.random_split(range(23), [0.5, 0.3, 0.2])]
    torchs = [list(s.indices) for s in torch.utils.data.random_split(range(23), [0.5, 0.3, 0.2])]
    assert mine == torchs


def test_no_warnings_in_plain_use():
    X, y = arrays()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in data.DataLoader(data.TensorDataset(cygrad.tensor(X), y), batch_size=3,
                                 shuffle=True):
            pass
