"""S9: attention heads written as in Karpathy's GPT lecture (a list of Head modules and a
projection). Tied heads stay tied bitwise at any batch size and thread count, under SGD and
Adam; dropout on the attention weights splits them at step 1 (the autopsy names Dropout);
random initialisation ties no two heads; the grouping recognises such a layer."""

import numpy as np
import pytest

import cygrad
from cygrad.demos import heads as S9
from cygrad.symmetry import effective_width, head_modules, tied_groups, watched_layers

needs_cython = pytest.mark.skipif("cython" not in cygrad.backend.available(),
                                  reason="the cython backend is not built")


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


def test_groups_recognise_hand_written_heads(dtype):
    model = S9.make(4, dtype)
    assert head_modules(model.sa) == ["heads.0", "heads.1", "heads.2", "heads.3"]
    assert head_modules(model.sa.heads[0] if hasattr(model.sa.heads, "__getitem__")
                        else list(model.sa.heads)[0]) is None
    assert tied_groups(model.sa) == [[0, 1, 2, 3]] and effective_width(model.sa) == 1
    assert [name for name, _ in watched_layers(model)] == ["sa", "lm_head"]
    w = model.sa.proj.weight.numpy()
    w[3, 2 * S9.HEAD_SIZE] = np.nextafter(w[3, 2 * S9.HEAD_SIZE], np.inf)
    assert tied_groups(model.sa) == [[0, 1, 3], [2]]
    random = S9.make(4, dtype, tied=False)
    assert tied_groups(random.sa) == [[0], [1], [2], [3]] and effective_width(random.sa) == 4


def test_a_value_weight_alone_unties_a_head(dtype):
    model = S9.make(3, dtype)
    list(model.sa.heads)[1].value.weight.numpy()[0, 0] += 1
    assert tied_groups(model.sa) == [[0, 2], [1]]


def head_params(model):
    return [[getattr(h, n).weight.numpy().copy() for n in ("key", "query", "value")]
            for h in model.sa.heads]


@needs_cython
@pytest.mark.parametrize("batch,threads,adam", [(1, 1, False), (8, 1, False), (8, 2, False),
                                                 (5, 2, True)])
def test_tied_heads_stay_tied_bitwise(dtype, batch, threads, adam):
    model = S9.make(4, dtype)
    monitor = S9.train(model, 12, batch=batch, threads=threads, adam=adam)
    assert monitor.widths("sa") == [1] * 13 and monitor.splits == []
    params = head_params(model)
    for other in params[1:]:
        for a, b in zip(params[0], other):
            assert np.array_equal(a, b)
    w = model.sa.proj.weight.numpy()
    blocks = [w[:, h * S9.HEAD_SIZE:(h + 1) * S9.HEAD_SIZE] for h in range(4)]
    assert all(np.array_equal(blocks[0], b) for b in blocks[1:])
    x, _ = next(S9.batches(3, 7))
    assert S9.heads_equal(model, x)
    # the model did learn: the heads are tied, not frozen
    assert not np.array_equal(params[0][0], head_params(S9.make(4, dtype))[0][0])


@needs_cython
def test_heads_are_tied_whatever_the_thread_count(dtype):
    """The same run on 1 and 2 threads gives the same bits (the exactness contract)."""
    runs = []
    for threads in (1, 2):
        model = S9.make(3, dtype)
        S9.train(model, 5, batch=8, threads=threads)
        runs.append([p.numpy().copy() for p in model.parameters()])
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


@needs_cython
def test_attention_dropout_splits_tied_heads_at_step_1(dtype):
    monitor = S9.train(S9.make(4, dtype, dropout=0.2), 3, batch=8)
    first = [s for s in monitor.splits if s["layer"] == "sa"][0]
    assert first["step"] == 1 and first["op"] == "Dropout" and first["phase"] == "forward"
    assert first["cause"] == "dropout was active"
    assert "(Dropout): heads " in first["autopsy"]
    assert monitor.widths("sa")[1] > 1


def test_random_init_never_ties_heads(dtype):
    monitor = S9.train(S9.make(4, dtype, tied=False), 5, batch=4)
    assert monitor.widths("sa") == [4] * 6


def test_numpy_backend_reports_what_happened():
    """Whether OpenBLAS rounds tied heads apart is machine-dependent: any split comes with an
    autopsy naming an op."""
    monitor = S9.train(S9.make(4, "float32"), 6, batch=8, on="numpy")
    for s in monitor.splits:
        assert s["autopsy"].startswith(f"step {s['step']}, ") and s["op"]
