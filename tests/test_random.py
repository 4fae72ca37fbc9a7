"""cygrad.random: PyTorch's CPU random streams bit for bit, and the generator's own contract
(seeding, state round trips, threads, statistics, bad input)."""

import threading
import warnings
from fractions import Fraction

import numpy as np
import pytest

import cygrad
from cygrad import _rng_math
from cygrad import random as R

SEEDS = [0, 1, 42, 2147483647, 2**40 + 3, -7]
SIZES = [1, 5, 15, 16, 17, 31, 33, 100, 1000, 70001]
FLOATS = [np.float32, np.float64]


def bits(a):
    """An array's bytes, so that equality means the same bits (signed zeros and NaNs included)."""
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


def assert_same_bits(theirs, ours):
    theirs = theirs.numpy() if hasattr(theirs, "numpy") else np.asarray(theirs)
    assert theirs.shape == ours.shape and theirs.dtype == ours.dtype
    assert np.array_equal(bits(theirs), bits(ours)), (
        f"{np.sum(theirs != ours)} of {theirs.size} differ")


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def seeded(torch, seed):
    torch.manual_seed(seed)
    R.manual_seed(seed)


def tdtype(torch, dtype):
    return {np.float32: torch.float32, np.float64: torch.float64, np.int64: torch.int64,
            np.int32: torch.int32, np.int16: torch.int16, np.int8: torch.int8,
            np.uint8: torch.uint8, np.bool_: torch.bool}[np.dtype(dtype).type]


# ---------------------------------------------------------------------- against PyTorch

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_uniform_matches_torch(torch, seed, dtype):
    seeded(torch, seed)
    td = tdtype(torch, dtype)
    for n in SIZES:
        assert_same_bits(torch.rand(n, dtype=td), R.uniform_(np.empty(n, dtype)))
        for low, high in [(-0.3, 0.7), (-1 / 3, 1 / 3), (2.0, 5.5), (-1e-3, 7.77777)]:
            assert_same_bits(torch.empty(n, dtype=td).uniform_(low, high),
                             R.uniform_(np.empty(n, dtype), low, high))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_normal_matches_torch(torch, seed, dtype):
    seeded(torch, seed)
    td = tdtype(torch, dtype)
    for n in SIZES:  # below, at and above 16, partial last blocks, several chunks
        assert_same_bits(torch.randn(n, dtype=td), R.normal_(np.empty(n, dtype)))
        assert_same_bits(torch.empty(n, dtype=td).normal_(0.5, 2.0),
                         R.normal_(np.empty(n, dtype), 0.5, 2.0))
        assert_same_bits(torch.get_rng_state(), R.get_rng_state())  # incl. the cached sample


@pytest.mark.parametrize("dtype", FLOATS)
def test_normal_cached_sample_carries_across_calls_and_shapes(torch, dtype):
    seeded(torch, 3)
    td = tdtype(torch, dtype)
    for shape, mean, std in [((3,), 0.1, 0.7), ((1,), -1.0, 2.5), ((5, 3), 0.0, 1.0),
                             ((2, 2), 3.0, 0.001), ((7,), 0.3, 0.3), ((20,), 0.0, 1.0),
                             ((1,), 0, 1)]:
        assert_same_bits(torch.empty(shape, dtype=td).normal_(mean, std),
                         R.normal_(np.empty(shape, dtype), mean, std))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("fn", ["uniform", "normal", "exponential", "bernoulli", "random"])
def test_non_contiguous_arrays_fill_in_memory_order(torch, dtype, fn):
    """A transposed or sliced tensor is filled in its memory order (torch's TensorIterator)."""
    seeded(torch, 11)
    td = tdtype(torch, dtype)
    views = [(lambda t: t.t(), lambda a: a.T, (6, 8)),
             (lambda t: t[:, ::2], lambda a: a[:, ::2], (6, 10)),
             (lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), (3, 4, 5)),
             (lambda t: t[1:, 2], lambda a: a[1:, 2], (5, 4))]
    fill_t = {"uniform": lambda t: t.uniform_(-1, 2), "normal": lambda t: t.normal_(0.5, 3),
              "exponential": lambda t: t.exponential_(2.0),
              "bernoulli": lambda t: t.bernoulli_(0.3), "random": lambda t: t.random_(0, 1000)}[fn]
    fill_r = {"uniform": lambda a: R.uniform_(a, -1, 2), "normal": lambda a: R.normal_(a, 0.5, 3),
              "exponential": lambda a: R.exponential_(a, 2.0),
              "bernoulli": lambda a: R.bernoulli_(a, 0.3),
              "random": lambda a: R.random_(a, 0, 1000)}[fn]
    for view_t, view_r, shape in views:
        t, a = view_t(torch.zeros(shape, dtype=td)), view_r(np.zeros(shape, dtype))
        fill_t(t)
        fill_r(a)
        assert_same_bits(t.contiguous(), np.ascontiguousarray(a))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


def test_float32_normal_matches_torch_over_many_draws(torch):
    """The AVX2 Box-Muller path: two million draws, max difference 0 ulps."""
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        pytest.skip("torch's float32 normal kernel is the AVX2 one only on AVX2 machines")
    seeded(torch, 20240501)
    theirs, ours = torch.randn(2_000_000).numpy(), R.normal_(np.empty(2_000_000, np.float32))
    ulps = np.abs(theirs.view(np.int32).astype(np.int64) - ours.view(np.int32).astype(np.int64))
    assert ulps.max() == 0


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("dtype", FLOATS)
def test_exponential_matches_torch(torch, seed, dtype):
    seeded(torch, seed)
    for lambd in (1.0, 2.5, 0.3):
        for n in (1, 17, 1000):
            assert_same_bits(torch.empty(n, dtype=tdtype(torch, dtype)).exponential_(lambd),
                             R.exponential_(np.empty(n, dtype), lambd))


INT_DTYPES = [np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.float32, np.float64]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_random_matches_torch(torch, dtype):
    td = tdtype(torch, dtype)
    for seed in SEEDS[:3]:
        seeded(torch, seed)
        assert_same_bits(torch.empty(13, dtype=td).random_(), R.random_(np.empty(13, dtype)))
        assert_same_bits(torch.empty(13, dtype=td).random_(2), R.random_(np.empty(13, dtype),
                                                                          None, 2))
        assert_same_bits(torch.empty(13, dtype=td).random_(0, None),
                         R.random_(np.empty(13, dtype), 0, None))
        if dtype != np.uint8 and dtype != np.bool_:
            assert_same_bits(torch.empty(13, dtype=td).random_(-5, 7),
                             R.random_(np.empty(13, dtype), -5, 7))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


@pytest.mark.parametrize("low, high", [(0, 10), (-3, 50), (0, 2**24), (0, 2**28 - 1), (0, 2**28),
                                       (5, 5 + 2**28), (-2**27, 2**27), (0, 2**33),
                                       (-2**62, 2**62)])
@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.float32, np.int32])
def test_randint_matches_torch(torch, low, high, dtype):
    """Ranges of 2**28 and more draw 64 bits per value (torch's public builds)."""
    if dtype == np.int32 and not -2**31 <= low < high <= 2**31:
        pytest.skip("outside int32")
    seeded(torch, 5)
    with warnings.catch_warnings():  # float32 warns outside [-2**24, 2**24], torch too
        warnings.simplefilter("ignore")
        theirs = torch.randint(low, high, (7, 9), dtype=tdtype(torch, dtype))
        ours = R.randint(low, high, (7, 9), dtype)
    assert_same_bits(theirs, ours)
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


def test_random_full_int64_range_and_seed_draw_match_torch(torch):
    seeded(torch, 9)
    assert_same_bits(torch.empty(5, dtype=torch.int64).random_(-2**63, None),
                     R.random_(np.empty(5, np.int64), -2**63, None))
    for _ in range(3):  # what torch's DataLoader and RandomSampler draw as seeds
        assert int(torch.empty((), dtype=torch.int64).random_().item()) == R.draw_seed()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32, np.float64, np.int16])
def test_randperm_matches_torch(torch, dtype):
    for seed in SEEDS[:3]:
        seeded(torch, seed)
        for n in (0, 1, 2, 10, 1000, 30001):
            if np.dtype(dtype).kind == "i" and n - 1 > np.iinfo(dtype).max:
                continue
            assert_same_bits(torch.randperm(n, dtype=tdtype(torch, dtype)), R.randperm(n, dtype))
            assert_same_bits(torch.get_rng_state(), R.get_rng_state())  # n = 0, 1: no draw
        assert_same_bits(torch.get_rng_state(), R.get_rng_state())


def test_bernoulli_matches_torch(torch):
    p_gen = torch.Generator().manual_seed(99)
    for seed in SEEDS[:3]:
        seeded(torch, seed)
        for p in (0.0, 0.1, 0.5, 1.0):
            for dtype in (np.float32, np.float64, np.int64, np.bool_):
                assert_same_bits(torch.empty(50, dtype=tdtype(torch, dtype)).bernoulli_(p),
                                 R.bernoulli_(np.empty(50, dtype), p))
        for dtype in FLOATS:
            P = torch.rand(4, 9, dtype=tdtype(torch, dtype), generator=p_gen)
            assert_same_bits(torch.bernoulli(P), R.bernoulli(P.numpy()))
            assert_same_bits(torch.empty(4, 9, dtype=torch.float64).bernoulli_(P[0]),
                             R.bernoulli_(np.empty((4, 9)), P[0].numpy()))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("num_samples, replacement", [(1, False), (1, True), (4, False),
                                                      (11, False), (30, True), (3, True)])
def test_multinomial_matches_torch(torch, dtype, num_samples, replacement):
    p_gen = torch.Generator().manual_seed(98)
    for seed in SEEDS[:3]:
        seeded(torch, seed)
        P = torch.rand(5, 11, dtype=tdtype(torch, dtype), generator=p_gen)
        P[1, 3] = 0
        assert_same_bits(torch.multinomial(P, num_samples, replacement),
                         R.multinomial(P.numpy(), num_samples, replacement))
        assert_same_bits(torch.multinomial(P[0], num_samples, replacement),
                         R.multinomial(P[0].numpy(), num_samples, replacement))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


def test_explicit_generators_match_torch_makemore_style(torch):
    """Karpathy's makemore opening moves, on a Generator of their own."""
    g = torch.Generator().manual_seed(2147483647)
    G = R.Generator().manual_seed(2147483647)
    for shape in [(27, 10), (30, 200), (200,), (200, 27), (27,)]:
        assert_same_bits(torch.randn(shape, generator=g),
                         R.normal_(np.empty(shape, np.float32), generator=G))
    assert_same_bits(torch.randint(0, 228146, (32,), generator=g),
                     R.randint(0, 228146, (32,), generator=G))
    probs = torch.softmax(torch.randn(27, generator=g), 0)
    R.normal_(np.empty(27, np.float32), generator=G)
    for _ in range(20):
        assert_same_bits(torch.multinomial(probs, 1, replacement=True, generator=g),
                         R.multinomial(probs.numpy(), 1, True, generator=G))
    assert_same_bits(g.get_state(), G.get_state())
    assert g.initial_seed() == G.initial_seed()


def test_state_bytes_are_torchs_and_load_both_ways(torch):
    torch.manual_seed(7)
    torch.randn(3)  # leaves a cached normal sample in the state
    R.set_rng_state(torch.get_rng_state().numpy())
    assert_same_bits(torch.randn(5, dtype=torch.float64), R.normal_(np.empty(5)))
    R.uniform_(np.empty(1000, np.float32))
    torch.set_rng_state(torch.from_numpy(R.get_rng_state()))
    assert_same_bits(torch.rand(10), R.uniform_(np.empty(10, np.float32)))
    assert R.initial_seed() == torch.initial_seed() == 7
    # a fresh seed, and exactly 624 draws (a full mt19937 block): torch's bytes as well
    for draws in (0, 624, 625):
        seeded(torch, 123)
        torch.rand(draws)
        R.uniform_(np.empty(draws, np.float32))
        assert_same_bits(torch.get_rng_state(), R.get_rng_state())


# ---------------------------------------------------------------------- the generator itself

def test_mt19937_reference_output():
    """Matsumoto & Nishimura's mt19937 with seed 5489: the 10000th output is 4123659995."""
    g = R.Generator().manual_seed(5489)
    assert int(g._random(10000)[-1]) == 4123659995


def test_uniforms_are_the_documented_bits():
    g = R.Generator().manual_seed(4)
    raw = R.Generator().manual_seed(4)._random(6)
    expected32 = (raw[:3] & 0xFFFFFF).astype(np.float64) * 2.0**-24
    assert np.array_equal(R.uniform_(np.empty(3, np.float32), generator=g), expected32)
    r64 = (int(raw[3]) << 32) | int(raw[4])
    assert R.uniform_(np.empty(1), generator=g)[0] == float(r64 & (2**53 - 1)) * 2.0**-53


def test_seeding_rules():
    g = R.Generator()
    assert g.initial_seed() == 67280421310721 and g.device == "cpu"
    assert g.manual_seed(-5) is g and g.initial_seed() == 2**64 - 5
    assert g.manual_seed(2**64 - 1).initial_seed() == 2**64 - 1
    assert g.manual_seed(np.int64(7)).initial_seed() == 7
    assert g.manual_seed(True).initial_seed() == 1
    for bad in (2**64, -2**63 - 1):
        with pytest.raises(ValueError, match="Overflow"):
            g.manual_seed(bad)
    with pytest.raises(RuntimeError, match="cpu"):
        R.Generator("cuda")
    # seeds equal mod 2**32 give one stream (init_genrand takes 32 bits), but keep their seed
    a = R.uniform_(np.empty(8), generator=R.Generator().manual_seed(5))
    b = R.uniform_(np.empty(8), generator=R.Generator().manual_seed(5 + 2**32))
    assert np.array_equal(a, b)
    s = g.seed()
    assert g.initial_seed() == s and 0 <= s < 2**64


def test_same_seed_same_bits_other_seed_other_bits():
    def draws(seed):
        g = R.Generator().manual_seed(seed)
        return [R.normal_(np.empty((33, 3), np.float32), generator=g), R.randperm(50, generator=g),
                R.uniform_(np.empty(7), -2, 2, generator=g), R.multinomial(
                    np.ones(9), 3, generator=g)]
    for x, y in zip(draws(3), draws(3), strict=True):
        assert np.array_equal(bits(x), bits(y))
    assert not np.array_equal(draws(3)[0], draws(4)[0])


def test_get_state_set_state_round_trip_with_cached_normal():
    g = R.Generator().manual_seed(8)
    R.normal_(np.empty(3), generator=g)  # odd count: a cached sample is pending
    state = g.get_state()
    assert state.dtype == np.uint8 and state.shape == (5056,)
    first = R.normal_(np.empty(9), generator=g), R.uniform_(np.empty(700, np.float32), generator=g)
    assert g.set_state(state) is g
    again = R.normal_(np.empty(9), generator=g), R.uniform_(np.empty(700, np.float32), generator=g)
    for x, y in zip(first, again, strict=True):
        assert np.array_equal(bits(x), bits(y))
    assert np.array_equal(R.Generator().set_state(state).get_state(), state)


def test_copies_and_pickles_carry_the_stream():
    import copy
    import pickle
    g = R.Generator().manual_seed(12)
    R.normal_(np.empty(1), generator=g)
    for twin in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert np.array_equal(twin.get_state(), g.get_state())
        assert np.array_equal(R.normal_(np.empty(5), generator=twin),
                              R.normal_(np.empty(5), generator=copy.deepcopy(g)))


def test_set_state_rejects_bad_states():
    g = R.Generator()
    with pytest.raises(RuntimeError, match="5056"):
        g.set_state(np.zeros(10, np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        g.set_state(np.zeros(5056, np.float32))
    with pytest.raises(RuntimeError, match="Invalid mt19937 state"):
        g.set_state(np.zeros(5056, np.uint8))


def test_fork_rng_restores_the_stream():
    R.manual_seed(21)
    with R.fork_rng():
        inside = R.uniform_(np.empty(5))
    assert np.array_equal(R.uniform_(np.empty(5)), inside)


def test_cygrad_manual_seed_is_the_default_generator():
    assert cygrad.manual_seed(3) is R.default_generator is R.generator()
    assert R.initial_seed() == 3


# ---------------------------------------------------------------------- threads

def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", fn()))
    t.start()
    t.join()
    return out["v"]


def test_a_thread_seeding_gets_its_own_stream_and_leaves_the_default_alone():
    R.manual_seed(1)
    expected_default = R.uniform_(np.empty(6), generator=R.Generator().manual_seed(1))

    def worker():
        R.manual_seed(1)
        assert R.generator() is not R.default_generator
        return R.uniform_(np.empty(6))

    assert np.array_equal(_in_thread(worker), expected_default)   # its own copy of seed 1
    assert np.array_equal(R.uniform_(np.empty(6)), expected_default)  # default: not advanced
    assert _in_thread(R.generator) is R.default_generator  # a new thread starts on the default


def test_threads_with_their_own_seeds_do_not_disturb_each_other():
    results, barrier = {}, threading.Barrier(4)

    def worker(k):
        R.manual_seed(100 + k % 2)
        barrier.wait()
        results[k] = [R.normal_(np.empty(40, np.float32)) for _ in range(50)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        g = R.Generator().manual_seed(100 + k % 2)
        expected = [R.normal_(np.empty(40, np.float32), generator=g) for _ in range(50)]
        assert all(np.array_equal(x, y) for x, y in zip(results[k], expected, strict=True))


def test_concurrent_draws_on_the_shared_default_never_corrupt_it():
    """Each draw is atomic: the batches four threads take are the batches one thread takes,
    in some interleaving."""
    R.manual_seed(77)
    batches, barrier = [], threading.Barrier(4)

    def worker():
        barrier.wait()
        for _ in range(200):
            batches.append(R.random_(np.empty(64, np.int64)).tobytes())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    g = R.Generator().manual_seed(77)
    sequential = [R.random_(np.empty(64, np.int64), generator=g).tobytes() for _ in range(800)]
    assert sorted(batches) == sorted(sequential)
    assert np.array_equal(R.get_rng_state(), g.get_state())


# ---------------------------------------------------------------------- statistics

def test_moments_and_ranges():
    g = R.Generator().manual_seed(0)
    for dtype in FLOATS:
        u = R.uniform_(np.empty(200_000, dtype), -2.0, 3.0, generator=g)
        assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.02
        assert abs(u.std() - 5 / np.sqrt(12)) < 0.01
        z = R.normal_(np.empty(200_000, dtype), 1.0, 0.5, generator=g)
        assert abs(z.mean() - 1.0) < 0.005 and abs(z.std() - 0.5) < 0.005
        small = np.concatenate([R.normal_(np.empty(7, dtype), generator=g) for _ in range(20000)])
        assert abs(small.mean()) < 0.02 and abs(small.std() - 1) < 0.02
        e = R.exponential_(np.empty(200_000, dtype), 4.0, generator=g)
        assert e.min() >= 0 and abs(e.mean() - 0.25) < 0.005
    b = R.bernoulli_(np.empty(100_000), 0.3, generator=g)
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < 0.01
    k = R.randint(-3, 4, (70_000,), generator=g)
    assert k.min() == -3 and k.max() == 3 and np.all(np.abs(np.bincount(k + 3) - 10_000) < 500)
    p = np.array([0.1, 0.0, 0.6, 0.3])
    counts = np.bincount(R.multinomial(p, 50_000, True, generator=g), minlength=4) / 50_000
    assert counts[1] == 0 and np.allclose(counts, p, atol=0.01)
    firsts = [R.multinomial(p, 3, generator=g) for _ in range(3000)]
    assert all(len(set(f)) == 3 and 1 not in f for f in firsts)
    first = np.bincount([f[0] for f in firsts], minlength=4) / 3000
    assert np.allclose(first, p, atol=0.03)
    for n in (0, 1, 7, 1000):
        assert np.array_equal(np.sort(R.randperm(n, generator=g)), np.arange(n))


def test_dtypes_of_results():
    assert R.randint(0, 5, (3,)).dtype == np.int64
    assert R.randint(0, 5, (3,), np.float32).dtype == np.float32
    assert R.randperm(4).dtype == np.int64 and R.randperm(4, np.float64).dtype == np.float64
    assert R.multinomial(np.ones(3, np.float32), 2).dtype == np.int64
    assert R.bernoulli(np.full(3, 0.5, np.float32)).dtype == np.float32
    assert R.multinomial(np.ones((2, 3)), 2).shape == (2, 2)
    assert R.multinomial(np.ones(3), 1).shape == (1,)
    assert isinstance(R.draw_seed(), int) and 0 <= R.draw_seed() < 2**63


# ---------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, error, match", [
    (lambda: R.uniform_(np.empty(3), 2, 1), RuntimeError, "from=2.0 > to=1.0"),
    (lambda: R.uniform_(np.empty(3, np.float32), -1e39, 0), RuntimeError, "out of bounds"),
    (lambda: R.uniform_(np.empty(3, np.int64)), NotImplementedError, "int64"),
    (lambda: R.normal_(np.empty(3), 0, -1), RuntimeError, "std >= 0.0"),
    (lambda: R.exponential_(np.empty(3), 0), RuntimeError, "lambda > 0.0"),
    (lambda: R.exponential_(np.empty(3, np.int64)), RuntimeError, "floating point"),
    (lambda: R.bernoulli_(np.empty(3), 1.5), RuntimeError, r"\[0, 1\]"),
    (lambda: R.bernoulli(np.array([0.5, 1.5])), RuntimeError, r"\[0, 1\]"),
    (lambda: R.randint(5, 3, (2,)), RuntimeError, "from=5 >= to=3"),
    (lambda: R.random_(np.empty(3, np.int32), 0, 2**33), RuntimeError, "to - 1 is out of bounds"),
    (lambda: R.random_(np.empty(3, np.uint8), -1, 5), RuntimeError, "from is out of bounds"),
    (lambda: R.randperm(-1), RuntimeError, "negative"),
    (lambda: R.randperm(2**24 + 2, np.float32), RuntimeError, r"2\^24\+1"),
    (lambda: R.randperm(300, np.int8), RuntimeError, "overflow"),
    (lambda: R.multinomial(np.array([0.5, -1.0]), 1), RuntimeError, "element < 0"),
    (lambda: R.multinomial(np.array([0.5, -1.0]), 2, True), RuntimeError, "entry < 0"),
    (lambda: R.multinomial(np.array([np.inf, 1.0]), 2, True), RuntimeError, "infinity or NaN"),
    (lambda: R.multinomial(np.zeros(2), 1), RuntimeError, "sum of probabilities"),
    (lambda: R.multinomial(np.zeros((2, 2)), 2, True), RuntimeError, "sum of probabilities"),
    (lambda: R.multinomial(np.ones(2), 3), RuntimeError, "without replacement"),
    (lambda: R.multinomial(np.array([1, 2]), 1), RuntimeError, "floating-point"),
    (lambda: R.multinomial(np.array(1.0), 1), RuntimeError, "1 or 2 dim"),
    (lambda: R.multinomial(np.ones(3), 0), RuntimeError, "n_sample <= 0"),
    (lambda: R.uniform_(np.empty(3), generator=np.random.default_rng()), TypeError, "Generator"),
])
def test_bad_input_raises_torchs_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bad_input_matches_torchs_error_types(torch):
    cases = [(lambda: torch.empty(3).uniform_(2, 1), lambda: R.uniform_(np.empty(3), 2, 1)),
             (lambda: torch.randint(5, 3, (2,)), lambda: R.randint(5, 3, (2,))),
             (lambda: torch.multinomial(torch.ones(2), 3), lambda: R.multinomial(np.ones(2), 3)),
             (lambda: torch.randperm(-1), lambda: R.randperm(-1)),
             (lambda: torch.empty(3).bernoulli_(1.5), lambda: R.bernoulli_(np.empty(3), 1.5))]
    for theirs, ours in cases:
        with pytest.raises(Exception) as t_err:
            theirs()
        with pytest.raises(Exception) as r_err:
            ours()
        assert type(t_err.value) is type(r_err.value)


# ---------------------------------------------------------------------- the exact arithmetic

def _round_to(x, dtype):
    """x (a Fraction) correctly rounded to dtype (ties to even)."""
    info = np.finfo(dtype)
    lo = dtype(float(x))  # within a few ulps; walk to the two neighbours of x
    while Fraction(float(lo)) > x:
        lo = np.nextafter(lo, dtype(-np.inf))
    while Fraction(float(np.nextafter(lo, dtype(np.inf)))) <= x:
        lo = np.nextafter(lo, dtype(np.inf))
    hi = np.nextafter(lo, dtype(np.inf))
    d_lo, d_hi = x - Fraction(float(lo)), Fraction(float(hi)) - x
    if d_lo < d_hi or (d_lo == d_hi and (int(lo.view(f"u{info.bits // 8}")) & 1) == 0):
        return lo
    return hi


@pytest.mark.parametrize("dtype, fma", [(np.float32, _rng_math.fma32),
                                        (np.float64, _rng_math.fma64)])
def test_fma_emulation_rounds_once(dtype, fma):
    rng = np.random.default_rng(0)
    n = 3000
    a = (rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    c = (rng.standard_normal(n) * np.exp(rng.uniform(-40, 20, n))).astype(dtype)
    c[:500] = -(a[:500] * b[:500])               # cancellation: the result is the product's error
    # exact float32 midpoints: a*b + c lands halfway between two float32s
    if dtype == np.float32:
        a[500:600], b[500:600] = np.float32(1 + 2**-12), np.float32(1 + 2**-12)
        c[500:600] = np.float32(2**-25) * rng.choice([-1, 1], 100)
    out = fma(a, b, c)
    exact = [_round_to(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)), dtype)
             for x, y, z in zip(a, b, c)]
    assert np.array_equal(bits(out), bits(np.array(exact, dtype)))


def test_avx2_box_muller_is_accurate():
    """Independently of torch: the float32 kernel is float64 Box-Muller on the same uniforms up
    to float32 rounding (of the angle, mostly: |error| <= 2**-19 with radii up to ~6)."""
    u = R.uniform_(np.empty((4096, 16), np.float32), generator=R.Generator().manual_seed(1))
    ours = _rng_math.box_muller16_avx2(u, 0.0, 1.0).astype(np.float64)
    ref = _rng_math.box_muller16_f64(u.astype(np.float64), 0.0, 1.0)
    assert np.max(np.abs(ours - ref)) < 2.0**-19


# ---------------------------------------------------------------------- users of the stream

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_dropout_matches_torch(torch, dtype, p):
    """torch's CPU dropout: x * (bernoulli_(1 - p) / (1 - p)), the mask in x's memory order."""
    from cygrad.nn import functional as F
    x = np.random.default_rng(0).standard_normal((7, 13)).astype(dtype)
    for view in (lambda a: a, lambda a: a.T):
        seeded(torch, 3)
        xt, xc = view(torch.tensor(x)).requires_grad_(), cygrad.tensor(view(x), requires_grad=True)
        theirs, ours = torch.nn.functional.dropout(xt, p), F.dropout(xc, p)
        assert_same_bits(theirs.detach(), ours.numpy())
        theirs.sum().backward()
        ours.sum().backward()
        grad = xc.grad.numpy() if hasattr(xc.grad, "numpy") else xc.grad  # Tensor or array
        assert_same_bits(xt.grad, np.ascontiguousarray(grad))
    assert_same_bits(torch.get_rng_state(), R.get_rng_state())


def _program(T):
    """A makemore-style run written against torch's API, for torch and for cygrad."""
    g = T.Generator().manual_seed(2147483647)
    out = [T.randn((27, 10), generator=g), T.randn((30, 200), generator=g) * (5 / 3) / 30**0.5,
           T.randint(0, 1000, (32,), generator=g)]
    p = T.rand(27, generator=g)
    out += [T.multinomial(p / p.sum(), num_samples=5, replacement=True, generator=g),
            T.multinomial(p, 1, generator=g)]
    T.manual_seed(1337)
    e, f = T.empty(5, 7).uniform_(-1, 1), T.empty(6).normal_(2, 3)
    h = T.empty(8, dtype=T.int64).random_(0, 100)
    out += [T.rand(3, 4), T.randn(2, 20, dtype=T.float64), T.randint(10, (5,)),
            T.randint(3, 9, size=(4,)), T.randperm(10), e, f, h,
            T.empty(9).bernoulli_(0.3), T.empty(4).exponential_(), T.empty(6).random_(),
            T.empty(6, dtype=T.int32).random_(7), T.rand_like(e), T.randn_like(f),
            T.randint_like(h, 5), T.randint_like(h, 2, 5), T.normal(0.0, 1.0, size=(4,)),
            T.normal(T.zeros(5), 2.0), T.normal(1.0, T.ones(3) * 0.5),
            T.normal(T.zeros(2, 3), T.ones(2, 3)), T.bernoulli(T.full((6,), 0.4)),
            T.full((6,), 0.4).bernoulli(0.9), T.ones(3, 5).multinomial(2),
            T.empty(4, 3).t().normal_(), T.get_rng_state()]
    return out


def test_torch_programs_draw_torchs_tensors(torch):
    """The tensor-level API (cygrad.ops.random_ops): the same program, the same bits."""
    for theirs, ours in zip(_program(torch), _program(cygrad), strict=True):
        assert_same_bits(theirs.contiguous(), np.ascontiguousarray(ours.numpy()))
    assert cygrad.initial_seed() == torch.initial_seed() == 1337


def test_tensor_level_api_shapes_dtypes_and_autograd():
    cygrad.manual_seed(0)
    assert cygrad.rand(2, 3).shape == (2, 3) and cygrad.randn((4,)).dtype == cygrad.float32
    assert cygrad.randint(5, (3,)).dtype == cygrad.int64 and cygrad.randperm(4).shape == (4,)
    assert cygrad.rand(2, dtype=cygrad.float64).dtype == cygrad.float64
    mean = cygrad.zeros(3, requires_grad=True)
    std = cygrad.ones(3, requires_grad=True)
    sample = cygrad.normal(mean, std)
    sample.sum().backward()
    assert np.array_equal(mean.grad.numpy(), np.ones(3))
    assert np.array_equal(std.grad.numpy(), ((sample - mean) / std).detach().numpy())
    w = cygrad.empty(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.uniform_()
    with cygrad.no_grad():
        assert w.uniform_() is w
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        cygrad.normal(cygrad.zeros(2), -cygrad.ones(2))
    with pytest.raises(TypeError):
        cygrad.randint(5)
    state = cygrad.get_rng_state()
    x = cygrad.rand(5)
    cygrad.set_rng_state(state)
    assert np.array_equal(cygrad.rand(5).numpy(), x.numpy())
