"""What pytorch/tutorials' programs met that cygrad lacked (2026-12-04): torch's top-level
in-place functions (torch.sin_), torch.functional, the order of a scalar-left product's
inputs in the graph, node hooks and Module.register_backward_hook, torch.return_types'
printing, type names. Each against torch where it is installed."""

import pickle
import warnings

import numpy as np
import pytest

import cygrad
import cygrad.nn as nn
from helpers import compiled_mse_step, run_program

try:
    import torch
except ImportError:  # the comparisons skip
    torch = None

need_torch = pytest.mark.skipif(torch is None, reason="needs torch")


def _input(name):
    """Values in every function's domain (acosh: > 1; the rest: inside (-1, 1))."""
    x = np.linspace(0.1, 0.9, 7)
    return x + 1.5 if name in ("acosh_", "arccosh_") else x


@pytest.mark.parametrize("name", cygrad._INPLACE_METHODS)
def test_top_level_inplace_function_is_the_method_in_place(name):
    args = {"clamp_": (0.2, 0.5), "clip_": (0.2, 0.5), "clamp_max_": (0.5,),
            "clamp_min_": (0.3,), "fill_": (2.0,), "gcd_": (None,), "lcm_": (None,),
            "ldexp_": (cygrad.tensor([2.0]),), "xlogy_": (3.0,),
            "index_put_": ((cygrad.tensor([0, 2]),),
                           cygrad.tensor([5.0, 6.0], dtype=cygrad.float64))}.get(name, ())
    dtype = cygrad.int64 if name in ("gcd_", "lcm_") else cygrad.float64
    x = cygrad.tensor(np.arange(2, 9) if dtype is cygrad.int64 else _input(name), dtype=dtype)
    if args == (None,):
        args = (cygrad.tensor(np.arange(4, 11)),)
    y = x.clone()
    out = getattr(cygrad, name)(x, *args)
    assert out is x  # in place, returning its input
    expected = getattr(y.clone(), name)(*args)
    assert x.numpy().tobytes() == expected.numpy().tobytes()
    if torch is not None and name not in ("detach_",):
        t = torch.tensor(y.numpy())
        targs = [torch.tensor(a.numpy()) if isinstance(a, cygrad.Tensor) else
                 tuple(torch.tensor(i.numpy()) for i in a) if isinstance(a, tuple) else a
                 for a in args]
        np.testing.assert_allclose(getattr(torch, name)(t, *targs).numpy(), x.numpy(),
                                   rtol=1e-12, atol=0)


def test_selu_and_rrelu_inplace_at_top_level():
    x = cygrad.tensor([-1.0, 0.5])
    assert cygrad.selu_(x) is x
    np.testing.assert_allclose(x.numpy(), cygrad.nn.functional.selu(cygrad.tensor([-1.0, 0.5]))
                               .numpy())


FUNCTIONAL = """
import torch
import torch.functional as F
a = torch.arange(6.).reshape(2, 3)
print(F.einsum('ij->j', a), [t.tolist() for t in F.split(a, 1, 1)])
print(F.norm(a), F.tensordot(a, a.t(), 1).tolist(), F.cartesian_prod(torch.tensor([1, 2]),
      torch.tensor([3])).tolist(), F.unique(torch.tensor([3, 1, 3])).tolist())
"""


def test_torch_functional_imports_as_torchs():
    ours = run_program(FUNCTIONAL, True)
    if torch is not None:
        assert ours == run_program(FUNCTIONAL, False)
    import cygrad.functional as F

    with pytest.raises(AttributeError, match="does not implement torch.functional.stft"):
        _ = F.stft


GRAPH = """
import torch
b = torch.tensor([0.5, 1.0], requires_grad=True).sin()
for e in (2 * b, 2 + b, b * 2, b + 2, 2.5 * b, b + b, b * b, 2 - b, b ** 2, 2 ** b, 3 / b,
          b.pow(3), b.masked_fill(b > 0.6, 0.0)):
    print(e.grad_fn.name(), [(None if f is None else f.name(), i)
                             for f, i in e.grad_fn.next_functions], e.tolist())
"""


def test_a_number_on_the_left_of_a_sum_or_product_comes_second_in_the_graph():
    """torch's __radd__ / __rmul__ are __add__ / __mul__: 2 * b is mul(b, 2), so a program
    walking grad_fn.next_functions finds b's node first (the same values either way); 3 / b is
    b.reciprocal() * 3; a node torch gives a number as an argument has no edge for it."""
    ours = run_program(GRAPH, True)
    assert ours[0].startswith("MulBackward0 [('SinBackward0', 0), (None, 0)]")
    assert ours[1].startswith("AddBackward0 [('SinBackward0', 0), (None, 0)]")
    if torch is not None:
        theirs = run_program(GRAPH, False)
        for a, b in zip(ours, theirs):  # names exactly, values to rounding (sin's last bit)
            assert a.split("] ")[0] == b.split("] ")[0]
            np.testing.assert_allclose(eval(a.split("] ")[1]), eval(b.split("] ")[1]), rtol=1e-6)


def _node_hooks_case(lib):
    y = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    z = (y * 3).exp()
    seen = []
    z.grad_fn.register_prehook(lambda go: (go[0] * 2,))
    z.grad_fn.register_hook(lambda gi, go: seen.append((gi[0].numpy().copy(),
                                                         go[0].numpy().copy())))
    removed = z.grad_fn.register_hook(lambda gi, go: seen.append("removed hook ran"))
    removed.remove()
    z.grad_fn.next_functions[0][0].register_hook(lambda gi, go: (gi[0] * 0 + 1, None))
    z.sum().backward()
    return seen, y.grad.numpy()


def test_node_hooks_see_and_replace_gradients_as_torchs():
    seen, grad = _node_hooks_case(cygrad)
    assert len(seen) == 1
    gi, go = seen[0]
    np.testing.assert_array_equal(go, [2.0, 2.0])  # the pre-hook doubled grad_output
    np.testing.assert_allclose(gi, 2 * np.exp(3 * np.array([1.0, 2.0])), rtol=1e-15)
    np.testing.assert_array_equal(grad, [1.0, 1.0])  # the Mul node's hook replaced its input's
    if torch is not None:
        t_seen, t_grad = _node_hooks_case(torch)
        np.testing.assert_array_equal(t_seen[0][1], go)
        np.testing.assert_allclose(t_seen[0][0], gi, rtol=1e-15)
        np.testing.assert_array_equal(t_grad, grad)


def _legacy_case(lib):
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(2, 3, 3).double()
    x = lib.randn(2, 2, 6, 6, dtype=lib.float64, requires_grad=True)
    got = []
    handle = conv.register_backward_hook(
        lambda m, gi, go: got.append((type(m).__name__, [None if g is None else g.numpy().copy()
                                                         for g in gi],
                                      [g.numpy().copy() for g in go])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lib.relu(conv(x * 2)).sum().backward()
    handle.remove()
    conv(x).sum().backward()  # removed: it does not run again
    return got, [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def test_register_backward_hook_is_torchs_deprecated_node_hook():
    got, warned = _legacy_case(cygrad)
    assert len(got) == 1
    name, gi, go = got[0]
    assert name == "Conv2d" and [g.shape for g in gi] == [(2, 2, 6, 6), (3, 2, 3, 3), (3,)]
    assert [g.shape for g in go] == [(2, 3, 4, 4)]
    assert len(warned) == 1 and "multiple autograd Nodes" in warned[0]
    m = nn.Linear(2, 2)
    m.register_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full"):
        m.register_full_backward_hook(lambda *a: None)
    if torch is not None:
        t_got, t_warned = _legacy_case(torch)
        assert t_warned == warned
        for a, b in zip(gi + go, t_got[0][1] + t_got[0][2]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_return_types_print_and_pickle_as_torchs():
    x = cygrad.tensor([[1.0, 3.0], [2.0, 0.0]])
    r = x.max(1)
    assert type(r) is cygrad.return_types.max
    text = repr(r)
    assert text.startswith("cygrad.return_types.max(\nvalues=tensor([3., 2.]),\nindices=")
    back = pickle.loads(pickle.dumps(r))
    assert type(back) is type(r) and back.indices.tolist() == [1, 0]
    if torch is not None:
        tx = torch.tensor(x.numpy())
        for ours, theirs in ((r, tx.max(1)), (x.sort(), tx.sort()), (x.topk(1), tx.topk(1)),
                             (cygrad.linalg.qr(x), torch.linalg.qr(tx))):
            assert [line.split("=")[0] for line in repr(ours).splitlines()] == \
                [line.split("=")[0].replace("torch.", "cygrad.")
                 for line in repr(theirs).splitlines()]


def test_type_names_and_the_grad_setters_message():
    assert repr(cygrad.Tensor) == "<class 'cygrad.Tensor'>"
    assert repr(type(cygrad.ones(1))) == "<class 'cygrad.Tensor'>"
    assert repr(nn.Parameter) == "<class 'cygrad.nn.Parameter'>"
    p = nn.Parameter(cygrad.ones(2))
    assert type(pickle.loads(pickle.dumps(p))) is nn.Parameter
    x = cygrad.ones(2, requires_grad=True)
    with pytest.raises(TypeError) as info:
        x.grad = 1.5
    if torch is not None:
        with pytest.raises(TypeError) as theirs:
            torch.ones(2, requires_grad=True).grad = 1.5
        assert str(info.value) == str(theirs.value)
    assert "of type float" in str(info.value)


VERSION = """
import torch, torch.version, torch.multiprocessing as mp
print(torch.version.cuda, torch.version.hip, torch.version.debug, torch.cuda.is_available())
mp.set_sharing_strategy('file_system')
print(mp.get_sharing_strategy(), sorted(mp.get_all_sharing_strategies()), mp.cpu_count() > 0)
from torch.utils.data.distributed import DistributedSampler
print(list(DistributedSampler(list(range(5)), num_replicas=2, rank=0, seed=1)))
import re
print(re.sub("0x[0-9a-f]+", "ADDRESS", repr(torch.manual_seed(42))))
"""


def test_version_multiprocessing_and_distributed_sampler_modules_as_torchs():
    ours = run_program(VERSION, True)
    assert ours[0] == "None None False False"
    if torch is not None:
        assert ours == run_program(VERSION, False)
    import cygrad.multiprocessing as mp

    with pytest.raises(NotImplementedError, match="torch.multiprocessing.spawn"):
        mp.spawn(print)
    with pytest.raises(AssertionError, match="not a sharing strategy"):
        mp.set_sharing_strategy("shared")
    # pytorch/examples' mnist_hogwild: model.share_memory() says what is missing (it read as
    # an AttributeError of the program's own Net)
    with pytest.raises(NotImplementedError, match="nn.Module.share_memory: its tensors"):
        cygrad.nn.Linear(2, 2).share_memory()
    with pytest.raises(NotImplementedError, match="Tensor.share_memory_"):
        cygrad.ones(2).share_memory_()
    assert not cygrad.ones(2).is_shared()


def test_a_number_over_a_tensor_is_torchs_reciprocal_times_the_number():
    """torch's __rtruediv__ rounds twice (1 / x, then times 3): its bits, not 3 / x's (which
    differ in the last place for ~30% of values)."""
    x = np.random.default_rng(0).uniform(0.1, 5, 4000)
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        ours = (3 / cygrad.tensor(xs)).numpy()
        np.testing.assert_array_equal(ours, (np.asarray(1, dtype) / xs) * np.asarray(3, dtype))
        if torch is not None:
            np.testing.assert_array_equal(ours, (3 / torch.tensor(xs)).numpy())
    t = cygrad.tensor([0.5, 2.0], dtype=cygrad.float64, requires_grad=True)
    (3 / t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), -3 / np.array([0.5, 2.0]) ** 2, rtol=1e-15)


SILENT = """
import warnings
import numpy as np
import torch
x = torch.tensor([1000.0, -1000.0, 0.0, -1.0])
with warnings.catch_warnings(record=True) as caught:
    print(x * 1e308 * 10, x / 0, (x * 0).log() * 0)  # the number overflows float32, then more
    print(len(caught))
    np.float32(3e38) * np.float32(10)  # the program's own numpy: its warnings as ever
    print([w.category.__name__ for w in caught])
"""


def test_inf_and_nan_arithmetic_is_silent_as_torchs_and_numpys_own_warnings_stay():
    """numpy's floating-point warnings raised inside cygrad are filtered (by module) at
    import: a program sees none, as under torch (one that turns every warning into an error
    puts its filter first and would see them); its own numpy code still warns."""
    ours = run_program(SILENT, True)
    assert ours[1:] == ["0", "['RuntimeWarning']"]
    if torch is not None:
        assert ours == run_program(SILENT, False)


def test_apply_and_map_run_python_on_each_element_in_place():
    for lib in [cygrad] + ([torch] if torch is not None else []):
        x = lib.tensor([1.0, 2.0, 3.0])
        assert x.apply_(lambda v: v * 2) is x and x.tolist() == [2.0, 4.0, 6.0]
        y = lib.tensor([1, 2])
        assert y.apply_(lambda v: v + 0.7).tolist() == [1, 2]  # the dtype's cast truncates
        z = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        z.map_(lib.tensor([10.0, 20.0]), lambda a, b: a + b)
        assert z.tolist() == [[11.0, 22.0], [13.0, 24.0]]
        v = lib.zeros(2, 3)
        v[0].apply_(lambda e: 5)  # a view: its base changes
        assert v.tolist() == [[5.0] * 3, [0.0] * 3]
        with pytest.raises(RuntimeError, match=r"Can't call apply_\(\) on Variable that"):
            lib.ones(2, requires_grad=True).apply_(lambda e: e)
        with pytest.raises(TypeError, match="must be real number, not str"):
            lib.ones(2).apply_(lambda e: "a")
        with pytest.raises(RuntimeError, match="expanded size"):
            lib.ones(2).map_(lib.ones(3), lambda a, b: a)


def test_a_deprecation_warning_points_at_the_programs_line():
    """torch.cross without dim warns as torch's, at the caller's line (cygrad's frames
    between, its dim-alias wrapper among them, are skipped)."""
    v1, v2 = cygrad.tensor([1.0, 0, 0]), cygrad.tensor([0.0, 1, 0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = __import__("inspect").currentframe().f_lineno + 1
        cygrad.cross(v2, v1)
        v2.cross(v1)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, line), (__file__, line + 1)]
    assert "Using torch.cross without specifying the dim arg is deprecated" in \
        str(caught[0].message)


def test_a_compiled_step_with_a_node_hook_runs_eagerly_and_calls_it():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    calls = []
    model[0].register_backward_hook(lambda m, gi, go: calls.append(len(gi)))
    opt = cygrad.optim.SGD(model.parameters(), lr=0.1)
    x, y = cygrad.randn(5, 3), cygrad.randn(5, 1)
    step = compiled_mse_step(model, opt, x, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):
            step()
    assert len(calls) == 4  # every call ran the hook: none was replayed without it
    assert any("grad_fn hook" in str(w.message) for w in caught)


def test_a_legacy_hook_on_a_module_returning_no_tensor_is_a_clear_error():
    class Named(nn.Module):
        def forward(self, x):
            return "done"

    m = Named()
    m.register_backward_hook(lambda *a: None)
    with pytest.raises(TypeError, match="the output holds no tensor to hook"):
        m(cygrad.ones(2, requires_grad=True))
