"""cygrad.compile: a replayed step gives eager's bits, its guards capture again, and what it
cannot replay runs eagerly with a warning (or raises with fullgraph=True)."""

import re
import warnings

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn, optim
from cygrad.compiler import CompileError, CompileWarning
from cygrad.symmetry import SymmetryMonitor

STEPS = 6


@pytest.fixture(autouse=True)
def _no_watchers():
    """Each test starts with no watcher in the thread: a monitor another test left attached
    (and alive) would make every compiled step run eagerly, as it should."""
    from cygrad import _state

    token = _state.swap("watch", None)
    yield
    _state.restore("watch", token)


def _bits(arrays):
    return [(a.shape, a.dtype.str, a.tobytes()) for a in arrays]


def _state(model, opt=None):
    arrays = [t._data for t in model.state_dict().values()]
    if opt is not None:
        for s in opt.state.values():
            arrays += [v._data for v in s.values() if hasattr(v, "_data")]
    return _bits(arrays)


def _run(make, compiled, steps=STEPS, **compile_args):
    """Train a fresh model (make() -> model, opt, step, batches) eagerly or compiled; return
    its final parameters, buffers and optimizer state, the losses, and the step."""
    model, opt, step, batches = make()
    fn = cygrad.compile(step, **compile_args) if compiled else step
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for i in range(steps):
            out = fn(*batches[i % len(batches)])
            losses.append(np.array(out._data if isinstance(out, cygrad.Tensor) else out))
    return _state(model, opt), _bits(losses), fn


def _same_as_eager(make, steps=STEPS):
    eager = _run(make, False, steps)
    compiled = _run(make, True, steps)
    assert compiled[1] == eager[1], "losses differ"
    assert compiled[0] == eager[0], "parameters, buffers or optimizer state differ"
    step = compiled[2]
    assert step.counts["captures"] == 2 and step.counts["replays"] == steps - 2
    return step


# ---------------------------------------------------------------------- models

def tiny_mlp(opt_class=optim.SGD, **opt_args):
    def make():
        cygrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                              nn.Linear(16, 1))
        opt = opt_class(model.parameters(), **(opt_args or {"lr": 0.1}))
        rng = np.random.default_rng(0)
        batches = [(cygrad.tensor(rng.standard_normal((32, 2)).astype(np.float32)),
                    cygrad.tensor(rng.standard_normal((32, 1)).astype(np.float32)))
                   for _ in range(3)]

        def step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return model, opt, step, batches
    return make


def mnist_mlp(targets="tensor"):
    def make():
        cygrad.manual_seed(1)
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                              nn.Linear(16, 10))
        opt = optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(1)
        batches = []
        for _ in range(4):
            x = cygrad.tensor(rng.standard_normal((16, 64)).astype(np.float32))
            t = rng.integers(0, 10, 16)
            batches.append((x, cygrad.tensor(t) if targets == "tensor" else t))

        def step(x, t):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), t)
            loss.backward()
            opt.step()
            return loss
        return model, opt, step, batches
    return make


def conv_net():
    cygrad.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * 6 * 6, 10))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(2)
    batches = [(cygrad.tensor(rng.standard_normal((8, 1, 14, 14)).astype(np.float32)),
                cygrad.tensor(rng.integers(0, 10, 8))) for _ in range(3)]

    def step(x, t):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        return loss
    return model, opt, step, batches


class Block(nn.Module):
    """Token and position embeddings, a causal self-attention layer and a feed-forward layer,
    each behind a LayerNorm, with dropout: a small GPT."""

    def __init__(self, vocab=11, d=16, heads=2, block=8):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block, d)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=0.1, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d),
                                nn.Dropout(0.1))
        self.q = nn.Linear(d, d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", cygrad.triu(cygrad.ones(block, block), 1).bool())

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(cygrad.arange(t))
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=self.mask[:t, :t], need_weights=False)
        x = x + a
        q = self.q(self.ln3(x)).view(x.shape[0], t, 2, -1).transpose(1, 2)
        x = x + F.scaled_dot_product_attention(q, q, q, is_causal=True, dropout_p=0.1) \
            .transpose(1, 2).reshape(x.shape)
        x = x + self.ff(self.ln2(x))
        return self.head(x)


def transformer():
    cygrad.manual_seed(3)
    model = Block()
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(3)
    batches = [(cygrad.tensor(rng.integers(0, 11, (4, 8))),
                cygrad.tensor(rng.integers(0, 11, (4, 8)))) for _ in range(3)]

    def step(idx, targets):
        logits = model(idx)
        loss = F.cross_entropy(logits.view(-1, 11), targets.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return model, opt, step, batches


# ---------------------------------------------------------------------- bitwise equal to eager

def test_tiny_mlp_bitwise(backend):
    _same_as_eager(tiny_mlp())


@pytest.mark.parametrize("targets", ["tensor", "numpy"])
def test_mnist_mlp_adam_bitwise(targets):
    """Class targets change every batch: the integer copy cross_entropy makes of them is
    followed back to the argument."""
    step = _same_as_eager(mnist_mlp(targets))
    assert "derived" in step.plan.source or "d" in step.plan.source


def test_conv_batchnorm_dropout_bitwise():
    _same_as_eager(conv_net)


def test_transformer_bitwise():
    """Embeddings, LayerNorm, attention (MultiheadAttention with a mask, causal
    scaled_dot_product_attention), GELU, dropout masks drawn anew at every replay, AdamW."""
    _same_as_eager(transformer)


@pytest.mark.parametrize("opt_class, args", [
    (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    (optim.RMSprop, {"lr": 1e-2, "centered": True}),
    (optim.Adagrad, {"lr": 0.1}),
    (optim.Adadelta, {}),
    (optim.Adam, {"lr": 1e-2, "amsgrad": True, "weight_decay": 1e-3}),
    (optim.AdamW, {"lr": 1e-2, "maximize": True}),
])
def test_optimizers_bitwise(opt_class, args):
    _same_as_eager(tiny_mlp(opt_class, **args))


@pytest.mark.parametrize("make", [conv_net, transformer])
def test_thread_counts_give_the_same_bits(make):
    cygrad.set_num_threads(1)
    eager = _run(make, False)
    cygrad.set_num_threads(2)
    compiled = _run(make, True)
    assert compiled[:2] == eager[:2]


def test_decorator_forms_and_results():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = cygrad.randn(5, 3)

    @cygrad.compile
    def step(x):
        out = model(x)
        loss = (out * out).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss, "out": out, "n": 5}, model.weight

    @cygrad.compile(fullgraph=True)
    def forward(x):
        return model(x).sum().detach()  # (a result of a graph would run eagerly: below)

    for _ in range(4):
        values, weight = step(x)
        assert weight is model.weight and values["n"] == 5
        expected = model(x)
        assert np.array_equal(forward(x)._data, expected.sum()._data)
    assert step.counts["replays"] == 2 and not values["loss"].requires_grad
    assert values["out"].shape == (5, 2)


def test_a_result_in_a_graph_runs_eagerly():
    """A forward whose result backward goes through later (outside fn): a replay could not
    give it its graph, so fn runs eagerly, said once (fullgraph: CompileError), and the
    gradients are eager ones; torch.compile(module) is such a module, called eagerly."""
    cygrad.manual_seed(0)
    model = nn.Linear(3, 2)
    x = cygrad.randn(4, 3)
    fn = cygrad.compile(lambda x: model(x).relu())
    with pytest.warns(CompileWarning, match="tensor of an autograd graph"):
        outs = [fn(x) for _ in range(4)]
    for out in outs:
        model.zero_grad()
        out.sum().backward()
        assert out.grad_fn.name() == "ReluBackward0" and model.weight.grad is not None
    assert fn.counts["replays"] == 0
    with pytest.raises(cygrad.compiler.CompileError, match="tensor of an autograd graph"):
        cygrad.compile(lambda x: model(x), fullgraph=True)(x)
    compiled = cygrad.compile(model)
    assert compiled._orig_mod is model and compiled.in_features == 3
    assert list(compiled.state_dict()) == ["_orig_mod.weight", "_orig_mod.bias"]
    compiled.eval()
    assert not model.training
    for _ in range(4):
        model.zero_grad()
        compiled(x).sum().backward()
        assert np.array_equal(model.weight.grad.numpy(), np.broadcast_to(x.numpy().sum(0),
                                                                          (2, 3)))
    assert model.compile() is None


def test_inference_under_no_grad():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    step = cygrad.compile(lambda x: model(x).softmax(1))
    x = cygrad.randn(6, 4)
    with cygrad.no_grad():
        outs = [step(x)._data.copy() for _ in range(4)]
    assert all(np.array_equal(o, model(x).softmax(1)._data) for o in outs)
    assert step.counts["replays"] == 2


# ---------------------------------------------------------------------- guards

def test_new_shape_captures_again_and_old_plans_stay():
    model, opt, step, batches = tiny_mlp()()
    fn = cygrad.compile(step)
    small = (batches[0][0][:8], batches[0][1][:8])
    eager_model, eager_opt, eager_step, _ = tiny_mlp()()
    for args in [batches[0]] * 3 + [small] * 3 + [batches[1]] * 2:
        fn(*args)
        eager_step(*args)
    assert _state(model, opt) == _state(eager_model, eager_opt)
    assert fn.counts == {"captures": 4, "replays": 4, "eager": 0}


def test_dtype_and_grad_mode_are_guarded():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 1).double()
    fn = cygrad.compile(lambda x: model(x).sum().detach())
    x64 = cygrad.randn(4, 3, dtype=cygrad.float64)
    for _ in range(3):
        fn(x64)
    with cygrad.no_grad():
        out = fn(x64)
    assert not out.requires_grad and fn.counts["captures"] == 3
    model.float()
    x32 = x64.float()
    assert np.array_equal(fn(x32)._data, model(x32).sum()._data)


def test_eval_mode_and_replaced_parameters_capture_again():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    fn = cygrad.compile(lambda x: model(x).detach())
    x = cygrad.ones(2, 4)
    for _ in range(3):
        fn(x)
    model.eval()
    assert np.array_equal(fn(x)._data, model(x)._data)  # no dropout now
    captures = fn.counts["captures"]
    model[0].weight = nn.Parameter(cygrad.zeros(4, 4))
    assert np.array_equal(fn(x)._data, np.broadcast_to(model[0].bias._data, (2, 4)))
    assert fn.counts["captures"] == captures + 1


def test_parameter_data_replaced_in_place_is_read_live():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 2)
    fn = cygrad.compile(lambda x: model(x).detach())
    x = cygrad.randn(4, 3)
    for _ in range(3):
        fn(x)
    model.weight.data = cygrad.zeros(2, 3)
    assert np.array_equal(fn(x)._data, np.broadcast_to(model.bias._data, (4, 2)))
    with cygrad.no_grad():
        model.bias.fill_(1.0)
    assert np.array_equal(fn(x)._data, np.ones((4, 2), np.float32))
    assert fn.counts["captures"] == 2


def test_live_tensor_guards_other_shape_or_requires_grad_capture_again():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    fn = cygrad.compile(lambda x: model(x).sum().detach())
    x = cygrad.randn(5, 3)
    for _ in range(3):
        fn(x)
    assert fn.counts["captures"] == 2
    model[2].weight.data = cygrad.ones(2, 4)  # same layout: read live, no capture
    assert fn(x).item() == model(x).sum().item()
    assert fn.counts["captures"] == 2
    model[0].weight.requires_grad_(False)  # requires_grad of one live tensor: capture again
    assert fn(x).item() == model(x).sum().item()
    assert fn.counts["captures"] == 3
    model[2].weight.data = cygrad.randn(4, 2).t()  # another layout (strides): again
    assert fn(x).item() == model(x).sum().item()
    assert fn.counts["captures"] == 4


def test_lr_scheduler_outside_the_step():
    def make():
        model, opt, step, batches = tiny_mlp()()
        sched = optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)

        def outer(x, y):
            return step(x, y)
        return model, opt, outer, batches, sched

    results = []
    for compiled in (False, True):
        model, opt, step, batches, sched = make()
        fn = cygrad.compile(step) if compiled else step
        for i in range(8):
            fn(*batches[i % 3])
            sched.step()
        results.append(_state(model, opt))
    assert results[0] == results[1]


def test_gradient_accumulation_and_zero_grad_patterns():
    """No zero_grad in the step (accumulating, zeroed outside every other call), zero_grad
    after the update, and zero_grad(set_to_none=False)."""
    def variant(kind):
        def make():
            model, opt, _, batches = tiny_mlp()()

            def step(x, y):
                if kind == "zero in place":
                    opt.zero_grad(set_to_none=False)
                F.mse_loss(model(x), y).backward()
                opt.step()
                if kind == "zero after":
                    opt.zero_grad()
                return model[0].weight
            return model, opt, step, batches
        return make

    for kind in ("accumulate", "zero after", "zero in place"):
        results = []
        for compiled in (False, True):
            model, opt, step, batches = variant(kind)()
            fn = cygrad.compile(step) if compiled else step
            with warnings.catch_warnings():
                warnings.simplefilter("error", CompileWarning)
                for i in range(8):
                    if kind == "accumulate" and i % 2 == 0:
                        opt.zero_grad()
                    fn(*batches[i % 3])
            grads = [p.grad._data for p in model.parameters() if p.grad is not None]
            results.append((_state(model, opt), _bits(grads)))
        assert results[0] == results[1], kind


def test_tensor_made_from_a_numpy_argument_inside_the_step():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 1)
    def step(x):
        return model(cygrad.tensor(x, dtype=cygrad.float32)).sum().detach()

    fn = cygrad.compile(step)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal((4, 3))  # float64, converted to float32 inside
        assert np.array_equal(fn(x)._data, step(x)._data)
    assert fn.counts["replays"] == 3


# ---------------------------------------------------------------------- what runs eagerly

def _warns(fn, args, calls=3, match=None):
    with pytest.warns(CompileWarning, match=match):
        for _ in range(calls):
            fn(*args)


def test_python_read_of_a_value_runs_eagerly():
    model, opt, step, batches = tiny_mlp()()

    def logged(x, y):
        return step(x, y).item()

    fn = cygrad.compile(logged)
    _warns(fn, batches[0], match=r"item\(\)")
    assert fn.counts == {"captures": 1, "replays": 0, "eager": 2}
    eager_model, eager_opt, eager_step, _ = tiny_mlp()()
    for _ in range(3):
        eager_step(*batches[0])
    assert _state(model, opt) == _state(eager_model, eager_opt)


def test_fullgraph_raises_after_the_eager_call():
    model, opt, step, batches = tiny_mlp()()
    fn = cygrad.compile(lambda x, y: bool(step(x, y) > 1), fullgraph=True)
    before = model[0].weight._data.copy()
    with pytest.raises(CompileError, match=r"bool\(\)"):
        fn(*batches[0])
    assert not np.array_equal(before, model[0].weight._data)  # the step itself ran


def test_a_branch_on_python_state_is_caught_by_the_second_capture():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 1)
    calls = []

    def step(x):
        calls.append(1)
        return (model(x) * 2 if len(calls) % 2 else model(x) * 3).detach()

    fn = cygrad.compile(step)
    _warns(fn, (cygrad.randn(2, 3),), calls=4, match="two calls recorded different steps")
    assert fn.counts == {"captures": 3, "replays": 0, "eager": 1}


def test_in_place_op_in_the_graph_runs_eagerly():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 4)
    fn = cygrad.compile(lambda x: model(x).relu_().sum().backward())
    _warns(fn, (cygrad.randn(2, 3),), match="in-place op")


def test_scheduler_inside_the_step_runs_eagerly():
    model, opt, step, batches = tiny_mlp()()
    sched = optim.lr_scheduler.ExponentialLR(opt, 0.9)

    def with_schedule(x, y):
        loss = step(x, y)
        sched.step()
        return loss

    _warns(cygrad.compile(with_schedule), batches[0], match="options after its step")


def test_graph_built_outside_the_step_runs_eagerly():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 1)
    x = cygrad.randn(2, 3)
    fn = cygrad.compile(lambda loss: loss.backward())
    with pytest.warns(CompileWarning, match="graph built outside"):
        for _ in range(3):
            fn(model(x).sum())


def test_monitor_attached_runs_eagerly_and_records_every_step():
    histories = []
    for compiled in (False, True):
        model, opt, step, batches = tiny_mlp()()
        monitor = SymmetryMonitor(model)
        monitor.attach(opt)
        fn = cygrad.compile(step) if compiled else step
        for i in range(4):
            fn(*batches[i % 3])
        monitor.detach()
        histories.append(([h["layers"]["0"]["effective_width"] for h in monitor.history],
                          _state(model, opt)))
        if compiled:
            assert fn.counts == {"captures": 0, "replays": 0, "eager": 4}
    assert histories[0] == histories[1]


# ---------------------------------------------------------------------- the plan

def test_plan_lists_kernels_with_shapes_and_times():
    model, opt, step, batches = tiny_mlp()()
    fn = cygrad.compile(step)
    assert fn.plan is None
    for _ in range(4):
        fn(*batches[0])
    text = str(fn.plan)
    assert "verified" in text and "gemm(32x2, 16x2)" in text and "bias_activation" in text
    assert "SGD.step()" in text and "sgd_update" in text and "µs" in text
    assert "LinearTanh backward" in text
    assert fn.plan.source.startswith("def replay(")
    fn.reset()
    fn(*batches[0])
    assert fn.counts["captures"] == 3


def test_a_native_plan_times_each_instruction_of_its_program():
    """The native program runs forward and backward in one call: its plan lists, under each
    step, the instructions it runs, each timed in C (the step's time is theirs, not the whole
    program's on its first step)."""
    if "cython" not in cygrad.backend.available():
        pytest.skip("the native tier runs the cython kernels")
    model, opt, step, batches = mnist_mlp("tensor")()
    fn = cygrad.compile(step)
    for _ in range(9):  # timed: the 2nd, 4th and 8th replays
        fn(*batches[0])
    plan = fn.plan
    assert plan.native is not None, plan.native_why
    native = [s for s in plan.steps if s.native]
    assert sum(len(s.native) for s in native) == len(plan.native)
    assert [label.split("(")[0] for s in native for label, _ in s.native] == plan.native.names
    for s in native:
        assert all(t is not None and (t > 0 or label.startswith("‖")) for label, t in s.native)
        assert s.time >= sum(t for _, t in s.native) * (1 - 1e-9)
    assert sum(s.time for s in native) <= min(plan.call_times)
    first = native[0]
    assert first.native[0][0] == "gemm(16x64, 32x64)"
    text = str(plan)
    assert re.search(r"\d+\.\d µs    gemm\(16x64, 32x64\)", text)
    assert re.search(r"\d+\.\d µs    cross_entropy\(16x10, 16\)", text)


def test_kernel_listing_is_the_same_through_c_and_python_profilers(monkeypatch):
    """The capture names each step's kernels through a C profile function (program.pyx
    watch_calls) when the kernels are built, else through sys.setprofile: the same list."""
    from cygrad.compiler import capture

    def kernels():
        model, opt, step, batches = tiny_mlp()()
        fn = cygrad.compile(step)
        for _ in range(3):
            fn(*batches[0])
        return [(s.kind, s.name, s.kernels) for s in fn.plan.steps]

    if capture._watch_calls is None:
        pytest.skip("the kernels (and their C profile function) are not built")
    through_c = kernels()
    monkeypatch.setattr(capture, "_watch_calls", None)
    assert kernels() == through_c
    assert sum(len(k) for _, _, k in through_c) >= 10


def test_repeated_calls_copy_their_kernel_listing(monkeypatch):
    """Two identical blocks: the second block's ops (and backward steps) are called like the
    first's, so their kernels are copied from the first's listing rather than profiled again;
    the listing is the one profiling every call gives."""
    from cygrad.compiler import capture

    def listing():
        cygrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(),
                              nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 1))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()

        fn = cygrad.compile(step)
        for _ in range(3):
            fn(cygrad.randn(5, 4))
        return [(s.kind, s.name, s.shapes, s.kernels) for s in fn.plan.steps]

    copied = []
    start = capture.Recorder._start_listing

    def spy(self, key):
        start(self, key)
        copied.append(self._open[0] == "copy")

    monkeypatch.setattr(capture.Recorder, "_start_listing", spy)
    cached = listing()
    assert sum(copied) >= 4  # LayerNorm, GELU and their backward steps, at least
    monkeypatch.setattr(capture, "_call_key", lambda *args: None)
    assert listing() == cached
    assert any(k for _, name, _, k in cached if "LayerNorm" in name)


def test_watch_calls_reports_the_watched_modules_calls_only():
    program = pytest.importorskip("cygrad._C.program")
    import sys

    from cygrad import backend

    seen = []
    x = np.ones((3, 4), np.float32)
    program.watch_calls(lambda frame: seen.append(frame.f_code.co_name), vars(backend))
    try:
        assert sys.getprofile() is not None
        backend.gemm(x, x, False, True)
        np.add(x, x)
    finally:
        program.watch_calls(None)
    assert sys.getprofile() is None
    assert "gemm" in seen and set(seen) <= set(vars(backend))  # numpy's calls not reported
    with pytest.raises(TypeError, match="module_globals"):
        program.watch_calls(print)


# ---------------------------------------------------------------------- the native tier

@pytest.mark.parametrize("make", [tiny_mlp(), mnist_mlp("tensor"), mnist_mlp("numpy"),
                                  tiny_mlp(optim.SGD, lr=0.1, momentum=0.9)],
                         ids=["tiny", "mnist", "mnist-numpy-targets", "tiny-momentum"])
def test_dense_steps_replay_as_one_program_with_eagers_bits(make):
    if "cython" not in cygrad.backend.available():
        pytest.skip("the native tier runs the cython kernels")
    step = _same_as_eager(make, steps=7)
    plan = step.plan
    assert plan.native is not None, plan.native_why
    names = plan.native.names
    assert names.count("gemm") == 8 and ("mse" in names or "cross_entropy" in names)
    assert "native: forward and backward as one program" in str(plan)
    assert "_PRG.run((" in plan.source
    if isinstance(plan.opts[0], optim.SGD):  # its update a program too
        assert "SGD.step() [native]" in str(plan) and ".run((v" in plan.source


def test_a_layers_two_gradient_products_run_at_once_with_eagers_bits(monkeypatch):
    """At two threads a dense layer's dX = g @ W and dW = g.T @ x (independent, the same
    multiply-adds) run at once, a thread each (native.PAIR_MACS lowered: the test's layers
    are small); the parameters stay bitwise eager's."""
    if "cython" not in cygrad.backend.available():
        pytest.skip("the native tier runs the cython kernels")
    from cygrad.compiler import native
    monkeypatch.setattr(native, "PAIR_MACS", 1)
    cygrad.set_num_threads(2)
    step = _same_as_eager(mnist_mlp("tensor"), steps=7)
    plan = step.plan
    paired = plan.native.paired
    assert sum(paired) == 2  # the two hidden layers' (the first layer has no dX)
    assert all(plan.native.names[i] == plan.native.names[i - 1] == "gemm"
               for i, p in enumerate(paired) if p)
    assert "‖ gemm(" in str(plan)
    cygrad.set_num_threads(1)
    step = _same_as_eager(mnist_mlp("tensor"), steps=4)
    assert not any(step.plan.native.paired)  # one thread: nothing to pair


def test_steps_without_instructions_say_why_and_replay_in_python(backend):
    fn = _run(conv_net, True, steps=4)[2]
    assert fn.plan.native is None
    expected = "Conv2d" if backend == "cython" else "the cython backend is not in use"
    assert expected in fn.plan.native_why and expected in str(fn.plan)


def test_a_held_gradient_or_loss_keeps_its_values_across_native_replays():
    """The program reuses its output arrays only when nothing holds them: a .grad or a loss
    kept from an earlier step never changes under the user."""
    model, opt, step, batches = tiny_mlp()()
    fn = cygrad.compile(step)
    for i in range(3):
        fn(*batches[i % 3])
    assert fn.plan.native is not None
    kept, copies = [], []
    for i in range(4):
        loss = fn(*batches[i % 3])
        grad = model[0].weight.grad
        kept.append((loss, grad))
        copies.append((loss.numpy().copy(), grad.numpy().copy()))
    for (loss, grad), (l0, g0) in zip(kept, copies):
        assert loss.numpy().tobytes() == l0.tobytes() and grad.numpy().tobytes() == g0.tobytes()
    assert len({id(g._data) for _, g in kept}) == 4
    del kept, loss, grad
    fn(*batches[0])
    before = id(model[2].bias.grad._data)
    fn(*batches[1])  # zero_grad dropped the last step's gradient: its array serves again
    assert id(model[2].bias.grad._data) == before


def test_two_backwards_in_one_step_update_with_the_summed_gradient():
    """The second backward adds into .grad: SGD's update reads the sum, not the first
    gradient's array (the native update takes only gradients backward set alone)."""
    def make():
        model, opt, _, batches = tiny_mlp()()

        def step(x, y):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            F.mse_loss(model(x * 2), y).backward()
            opt.step()
            return model[0].weight.grad
        return model, opt, step, batches
    _same_as_eager(make, steps=6)


def test_a_native_replay_checks_the_targets_it_reads():
    model, opt, step, batches = mnist_mlp("numpy")()
    fn = cygrad.compile(step)
    for i in range(3):
        fn(*batches[i])
    assert fn.plan.native is not None
    x, t = batches[0]
    bad = t.copy()
    bad[3] = 10
    with pytest.raises((ValueError, IndexError), match="10"):
        fn(x, bad)


# ---------------------------------------------------------------------- optimizers and buffers

def test_optimizer_hook_added_later_runs_at_every_replay():
    model, opt, step, batches = tiny_mlp()()
    fn = cygrad.compile(step)
    for _ in range(3):
        fn(*batches[0])
    seen = []
    handle = opt.register_step_post_hook(lambda o, args, kwargs: seen.append(1))
    for _ in range(3):
        fn(*batches[0])
    handle.remove()
    assert seen == [1, 1, 1] and fn.counts["replays"] == 4


def test_optimizer_state_reset_and_loaded():
    """Adam's state emptied (a fresh state_dict loaded) between replays: the replay's step
    makes it again, as eager's does."""
    results = []
    for compiled in (False, True):
        model, opt, step, batches = mnist_mlp()()
        fresh = optim.Adam(model.parameters(), lr=1e-2).state_dict()
        fn = cygrad.compile(step) if compiled else step
        for i in range(7):
            if i == 4:
                opt.load_state_dict(fresh)
            fn(*batches[i % 4])
        results.append(_state(model, opt))
    assert results[0] == results[1]


def test_batchnorm_buffers_loaded_or_replaced_between_calls():
    results = []
    for compiled in (False, True):
        model, opt, step, batches = conv_net()
        fn = cygrad.compile(step) if compiled else step
        for i in range(8):
            if i == 4:
                model.load_state_dict({k: v * 0 + 1 for k, v in model.state_dict().items()
                                       if "running" in k}, strict=False)
            if i == 6:
                model[3].running_var.data = cygrad.full((4,), 2.0)
            fn(*batches[i % 3])
        results.append(_state(model, opt))
    assert results[0] == results[1]


def test_keyword_and_number_arguments_are_guarded():
    cygrad.manual_seed(0)
    model = nn.Linear(3, 2)
    fn = cygrad.compile(lambda x, *, scale=1.0: (model(x) * scale).detach())
    x = cygrad.randn(4, 3)
    for scale in (2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 2.0):
        assert np.array_equal(fn(x, scale=scale)._data, (model(x) * scale)._data)
    assert fn.counts == {"captures": 4, "replays": 3, "eager": 0}
    assert np.array_equal(fn(x)._data, model(x)._data)


def test_bench_command_prints_the_table(capsys):
    from cygrad.__main__ import bench_script, main

    if bench_script() is None:
        pytest.skip("no benchmarks/run.py here (an installed cygrad run outside a checkout)")
    assert main(["bench", "--only", "op", "--quick", "--threads", "1", "--reps", "1"]) == 0
    out = capsys.readouterr().out
    assert "| op | 1 |" in out and "## Targets" in out


def test_bench_plot_draws_gflops_against_size_with_the_peak(tmp_path):
    """benchmarks/run.py --plot: the one-thread square gemm rows against size, a line per
    system and the measured peak dashed (drawn from a report, not a measurement)."""
    pytest.importorskip("matplotlib")
    import importlib.util

    from cygrad.__main__ import bench_script

    path = bench_script()
    if path is None:
        pytest.skip("no benchmarks/run.py here (an installed cygrad run outside a checkout)")
    spec = importlib.util.spec_from_file_location("cygrad_bench_plot", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [{"shape": f"{n}x{n}x{n}", "dtype": d, "threads": t, "cygrad": g, "numpy": g * 0.9}
            for d in ("float32", "float64") for t in (1, 2)
            for n, g in ((256, 40.0), (512, 50.0), (1024, 55.0))]
    rows.append({"shape": "fwd X@W 64x784@784x256", "dtype": "float32", "threads": 1,
                 "cygrad": 30.0, "numpy": 20.0})
    report = {"gemm": rows, "peak": {"float32": 96.0, "float64": 48.0}}
    out = tmp_path / "gemm.png"
    assert bench.plot_gemm(report, str(out)) == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = "\n".join(bench.gemm_table(report))
    assert "| 512x512x512 | float32 | 1 | 50.0 | 45.0 |" in figure and "| 0.52 |" in figure
    with pytest.raises(ValueError, match="no one-thread gemm rows"):
        bench.plot_gemm({"gemm": [dict(rows[3])], "peak": {}}, str(out))
    with pytest.raises(SystemExit):  # refused before measuring anything
        bench.main(["--only", "op", "--plot", str(out), "--out", str(tmp_path)])


def _two_groups(compiled):
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    spare = nn.Parameter(cygrad.ones(2))
    opt = optim.SGD([{"params": model[0].parameters()},
                     {"params": list(model[2].parameters()) + [spare], "lr": 0.05}],
                    lr=0.1, momentum=0.5)
    single = optim.Adam(model.parameters(), lr=1e-2)
    x, y = cygrad.randn(5, 3), cygrad.randn(5, 1)

    def step(x, y):
        opt.zero_grad()
        single.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
        single.step()

    fn = cygrad.compile(step) if compiled else step
    for i in range(7):
        if i == 5:
            spare.grad = cygrad.ones(2)
        fn(x, y)
    assert spare.grad is None
    return _state(model, opt) + _bits([spare._data])


def test_two_param_groups_and_a_stale_gradient_outside_the_step():
    """A second param group (the replay calls step()), and a parameter of the optimizer the
    step never uses, given a gradient from outside: eager's step (after zero_grad) leaves it
    alone, and so must the replay's."""
    assert _two_groups(False) == _two_groups(True)


def test_the_captured_steps_arrays_are_freed():
    """A plan keeps the parameters and constants it reads, not the activations of the calls
    that captured it."""
    import gc
    import weakref

    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def step(x):
        hidden = model[1](model[0](x))
        seen.append(weakref.ref(hidden._data))
        opt.zero_grad()
        model[2](hidden).sum().backward()
        opt.step()

    fn = cygrad.compile(step)
    for _ in range(5):
        fn(cygrad.randn(4, 3))
    gc.collect()
    assert len(seen) == 2 and all(r() is None for r in seen)


def test_a_replay_lets_each_ops_saved_arrays_go_after_its_backward():
    """As eager's backward releases what an op saved once its gradient is computed, a replay
    sets each op's state back to its parameters after the op's last backward call (the
    arrays its forward saved are not held until the next call)."""
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()

    fn = cygrad.compile(step)
    for _ in range(4):
        fn(cygrad.randn(4, 3))
    ns = fn.plan.ns
    released = [k[2:] for k in ns if k.startswith("BR")]
    assert len(released) >= 3  # LayerNorm, GELU, pow, mean at least
    for k in released:
        assert ns[f"O{k}"].__dict__ is ns[f"P{k}"], type(ns[f"O{k}"]).__name__


def test_train_mode_set_inside_the_step():
    """model.train() inside the step changes the modules' layout count at every call: the
    plan checks it after its capture, so replays follow."""
    model, opt, step, batches = tiny_mlp()()

    def train_step(x, y):
        model.train()
        return step(x, y)

    fn = cygrad.compile(train_step)
    for _ in range(5):
        fn(*batches[0])
    assert fn.counts == {"captures": 2, "replays": 3, "eager": 0}
    model.eval()
    fn(*batches[0])
    assert fn.counts["captures"] == 3


def test_gradient_zeroed_through_numpy_runs_eagerly():
    """zero_grad written by hand into the arrays (no op sees it): the checking capture
    finds the .grad changed before backward added into it."""
    model, opt, step, batches = tiny_mlp()()

    def zeroed_by_hand(x, y):
        for p in model.parameters():
            if p.grad is not None:
                p.grad._data[...] = 0
        F.mse_loss(model(x), y).backward()
        opt.step()

    _warns(cygrad.compile(zeroed_by_hand), batches[0], calls=4, match="changed in place")


@pytest.mark.parametrize("what", ["parameter", "gradient"])
def test_a_large_array_changed_through_numpy_runs_eagerly(what):
    """Arrays over 64 KiB are kept by the checking capture as a CRC of their bytes, not a
    copy: one element changed outside any op, in a 256 x 128 weight after the update or in its
    gradient before backward adds into it, is still found."""
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 4))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = cygrad.randn(8, 128)
    y = cygrad.randn(8, 4)
    weight = model[0].weight
    assert weight._data.nbytes > 1 << 16

    def nudged(x, y):
        if what == "gradient" and weight.grad is not None:
            weight.grad._data[3, 5] = 0.0  # (gradients accumulate: no zero_grad)
        F.mse_loss(model(x), y).backward()
        opt.step()
        if what == "parameter":
            weight._data[7, 9] += 1.0

    _warns(cygrad.compile(nudged), (x, y), calls=4, match="changed in place")


def test_targets_the_capture_did_not_see_raise_at_replay():
    """cross_entropy chose its fused kernel on the captured targets; a replay given an
    out-of-range target raises before any update (the kernel checks), and the step's eager
    form, step.__wrapped__, still runs."""
    model, opt, step, batches = mnist_mlp()()
    fn = cygrad.compile(step)
    for i in range(3):
        fn(*batches[i])
    x, t = batches[0]
    bad = cygrad.tensor(np.where(np.arange(16) == 3, 12, t._data))
    before = _state(model, opt)
    with pytest.raises((ValueError, IndexError)) as info:
        fn(x, bad)
    assert _state(model, opt) == before
    if hasattr(info.value, "__notes__"):
        assert "cygrad.compile" in info.value.__notes__[0]
    with pytest.raises(IndexError):
        fn.__wrapped__(x, bad)


def test_plans_of_the_same_step_on_other_objects_share_their_code():
    def make(width, seed, deeper=False):
        cygrad.manual_seed(seed)
        layers = [nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 1)]
        model = nn.Sequential(*(layers[:2] + [nn.Linear(width, width), nn.Tanh()] + layers[2:]
                                if deeper else layers))
        opt = optim.SGD(model.parameters(), lr=0.1)
        x, y = cygrad.randn(8, 3), cygrad.randn(8, 1)

        @cygrad.compile
        def step():
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss

        for _ in range(3):
            step()
        return step, model

    cygrad.compiler.clear_code_cache()
    a, model_a = make(4, 0)
    b, model_b = make(4, 1)  # other parameters: the same source
    c, _ = make(5, 0)  # other shapes too (they are guards' constants, not in the text)
    e, _ = make(4, 0, deeper=True)  # another structure: another source
    assert a.plan.source == b.plan.source == c.plan.source != e.plan.source
    assert a.plan.replay.__code__ is b.plan.replay.__code__ is c.plan.replay.__code__
    assert a.plan.replay.__code__ is not e.plan.replay.__code__
    assert not np.array_equal(model_a[0].weight.numpy(), model_b[0].weight.numpy())
    for _ in range(2):  # each replays on its own objects
        before = model_b[0].weight.numpy().copy()
        b()
        assert not np.array_equal(before, model_b[0].weight.numpy())
    cygrad.compiler.clear_code_cache()
    d, _ = make(4, 2)
    assert d.plan.source == a.plan.source and d.plan.replay.__code__ is not a.plan.replay.__code__
