"""S9. Attention heads.

A small causal self-attention language model written as in Karpathy's GPT lecture: a `Head`
(Linear key, query and value without bias; q @ k.T scaled by C**-0.5; the causal mask through
masked_fill with a lower-triangular matrix; softmax; dropout on the attention weights; @ v),
`MultiHeadAttention` (a list of Heads, their outputs concatenated, a Linear projection), a
token table and a linear read-out. Two heads are tied when their key, query and value weights
and their blocks of the projection's columns are equal (symmetry.groups recognises such a
layer). Tied heads get identical attention weights, outputs, gradients and updates: the layer
acts as one head, whatever the batch size or thread count. Dropout on the attention weights
draws a different mask for each head; random initialisation ties no two heads; a BLAS backend
may round tied heads apart, and the monitor's autopsy names the op where that began.
"""

import numpy as np

from .. import backend, cat, get_num_threads, nn, ones, optim, set_num_threads, tensor, tril
from ..nn import functional as F
from ..random import manual_seed
from ..symmetry import SymmetryMonitor
from . import Result, every, table

TEXT = ("to be or not to be that is the question whether tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune or to take arms against a sea of troubles ")
N_EMBD, HEAD_SIZE, BLOCK = 16, 4, 8


class Head(nn.Module):
    """One head of causal self-attention (the lecture's Head)."""

    def __init__(self, n_embd, head_size, block_size, dropout, dtype):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False, dtype=dtype)
        self.query = nn.Linear(n_embd, head_size, bias=False, dtype=dtype)
        self.value = nn.Linear(n_embd, head_size, bias=False, dtype=dtype)
        self.tril = tril(ones(block_size, block_size))  # a constant, not a parameter
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)
        q = self.query(x)
        wei = q @ k.transpose(-2, -1) * C ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)
        return wei @ v


class HeadList(nn.Module):
    """Holds modules under "0", "1", ... (nn.ModuleList where cygrad has it)."""

    def __init__(self, modules):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __iter__(self):
        return iter(self._modules.values())


def module_list(modules):
    return nn.ModuleList(modules) if hasattr(nn, "ModuleList") else HeadList(modules)


class MultiHeadAttention(nn.Module):
    """Heads side by side, their outputs concatenated and projected (the lecture's)."""

    def __init__(self, num_heads, head_size, n_embd, block_size, dropout, dtype):
        super().__init__()
        self.heads = module_list([Head(n_embd, head_size, block_size, dropout, dtype)
                                  for _ in range(num_heads)])
        self.proj = nn.Linear(head_size * num_heads, n_embd, dtype=dtype)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class TinyGPT(nn.Module):
    """Token table (a parameter indexed by the tokens) plus a position table, one multi-head
    attention layer, a linear read-out to the vocabulary."""

    def __init__(self, vocab, num_heads, dropout=0.0, dtype="float32"):
        super().__init__()
        self.tok = nn.Parameter(np.random.default_rng(0).standard_normal((vocab, N_EMBD))
                                .astype(dtype))
        self.pos = nn.Parameter(np.random.default_rng(1).standard_normal((BLOCK, N_EMBD))
                                .astype(dtype))
        self.sa = MultiHeadAttention(num_heads, HEAD_SIZE, N_EMBD, BLOCK, dropout, dtype)
        self.lm_head = nn.Linear(N_EMBD, vocab, dtype=dtype)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok[idx] + self.pos[:T]
        return self.lm_head(self.sa(x))


def tie_heads(model):
    """Copy head 0's key, query and value weights into every head, and the projection's
    block of columns for head 0 into every head's block: all heads tied."""
    heads = list(model.sa.heads)
    w = model.sa.proj.weight.numpy()
    for h in heads[1:]:
        for name in ("key", "query", "value"):
            getattr(h, name).weight.numpy()[...] = getattr(heads[0], name).weight.numpy()
    for h in range(1, len(heads)):
        w[:, h * HEAD_SIZE:(h + 1) * HEAD_SIZE] = w[:, :HEAD_SIZE]
    return model


def batches(batch, seed):
    """Endless (inputs, targets) of `batch` windows of the text: next-character prediction."""
    chars = sorted(set(TEXT))
    data = np.array([chars.index(c) for c in TEXT], np.int64)
    rng = np.random.default_rng(seed)
    while True:
        starts = rng.integers(0, len(data) - BLOCK - 1, batch)
        x = np.stack([data[s:s + BLOCK] for s in starts])
        y = np.stack([data[s + 1:s + BLOCK + 1] for s in starts])
        yield tensor(x), tensor(y.reshape(-1))


VOCAB = len(set(TEXT))


def make(num_heads, dtype, tied=True, dropout=0.0, seed=0):
    manual_seed(seed)
    model = TinyGPT(VOCAB, num_heads, dropout, dtype)
    return tie_heads(model) if tied else model


def train(model, steps, batch=8, on="cython", threads=None, adam=False, seed=0):
    """Train on next-character prediction; returns the monitor (watching the model)."""
    previous = get_num_threads()
    with backend.using(on):
        if threads is not None:
            set_num_threads(threads)
        try:
            monitor = SymmetryMonitor(model)
            params = model.parameters()
            opt = optim.Adam(params, lr=1e-2) if adam else optim.SGD(params, lr=0.1)
            monitor.attach(opt)
            data = batches(batch, seed)
            for _ in range(steps):
                x, y = next(data)
                logits = model(x)
                loss = F.cross_entropy(logits.view(-1, VOCAB), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            set_num_threads(previous)
            monitor.detach()
    return monitor


def heads_equal(model, x):
    """Are the heads' outputs (and attention weights, which they are made of) bitwise equal on
    input x, and their parameters?"""
    emb = model.tok[x] + model.pos[:x.shape[1]]
    outs = [h(emb).numpy() for h in model.sa.heads]
    return all(np.array_equal(outs[0], o) for o in outs[1:])


def split_lines(monitor, limit=4):
    lines = [f"  step {s['step']}: heads {s['units']} split into {len(s['into'])} groups: "
             f"{s['cause']}\n    {s['autopsy']}" for s in monitor.splits if s["layer"] == "sa"]
    more = [f"  ... and {len(lines) - limit} more"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more) or "  none"


def run(options):
    dtype = options.dtype
    heads = 4 if options.width is None else options.width
    steps = 20 if options.steps is None else options.steps
    if heads < 2:
        raise ValueError(f"the heads demo needs at least 2 heads (--width), got {heads}")
    result = Result("S9", "Attention heads",
                    f"in a causal self-attention model with {heads} heads of size {HEAD_SIZE} "
                    "(Karpathy's Head / MultiHeadAttention), heads initialised to the same "
                    "values stay tied, bitwise, at any batch size and thread count: the layer "
                    "acts as one head. Dropout on the attention weights splits them at step 1; "
                    "random initialisation never ties them; a BLAS backend may round them "
                    "apart, and the autopsy names the op where that began.")
    configs = [("SGD", 1, 1, False), ("SGD", 8, 1, False), ("SGD", 8, 2, False),
               ("Adam", 5, 2, True)]
    tied_runs = []
    for name, batch, threads, adam in configs:
        model = make(heads, dtype)
        monitor = train(model, steps, batch=batch, threads=threads, adam=adam)
        x, _ = next(batches(3, 99))
        tied_runs.append((name, batch, threads, monitor, heads_equal(model, x)))
    numpy_model = make(heads, dtype)
    numpy_run = train(numpy_model, steps, batch=8, on="numpy")
    dropout_run = train(make(heads, dtype, dropout=0.2), steps, batch=8)
    random_run = train(make(heads, dtype, tied=False), steps, batch=8, on=options.backend)

    rows = []
    for s in sorted(set(every(steps)) | set(range(min(steps, 3) + 1))):
        rows.append([s] + [m.widths("sa")[s] for *_, m, _ in tied_runs]
                    + [numpy_run.widths("sa")[s], dropout_run.widths("sa")[s],
                       random_run.widths("sa")[s]])
    header = ["step"] + [f"{n} b{b} t{t}" for n, b, t, *_ in tied_runs] + [
        "numpy b8", "dropout 0.2", f"random init ({options.backend})"]
    result.add(f"Effective width of the attention layer (distinct heads out of {heads}) over "
               f"{steps} steps of next-character prediction, {dtype}; columns: optimiser, "
               "batch size b, threads t (cython unless named):", table(header, rows))

    for name, batch, threads, monitor, equal in tied_runs:
        held = all(w == 1 for w in monitor.widths("sa")) and not monitor.splits and equal
        result.verdict(f"{name}, batch {batch}, {threads} thread(s): all {heads} heads tied at "
                       f"every step, head outputs equal after training", held,
                       "" if held else f"widths {monitor.widths('sa')}")
    result.add("numpy backend (OpenBLAS), splits seen by the monitor:", split_lines(numpy_run))
    result.add("Dropout 0.2 on the attention weights, splits seen by the monitor:",
               split_lines(dropout_run))
    first = next((s for s in dropout_run.splits if s["layer"] == "sa"), None)
    if steps:
        result.verdict("dropout: tied heads split at step 1, the autopsy naming the Dropout op",
                       first is not None and first["step"] == 1 and first["op"] == "Dropout",
                       "no split" if first is None else first["autopsy"])
    result.verdict(f"random init: all {heads} heads distinct at every step",
                   all(w == heads for w in random_run.widths("sa")))
    split = next((s for s in numpy_run.splits if s["layer"] == "sa"), None)
    result.add("Finding (numpy):", "  heads stayed tied for every step on numpy too"
               if split is None else f"  heads first split at step {split['step']}: "
               f"{split['autopsy']}")
    if options.plot:
        result.figures += plot(options.plot, steps, tied_runs, numpy_run, dropout_run,
                               random_run)
    return result


def plot(folder, steps, tied_runs, numpy_run, dropout_run, random_run):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    import os

    os.makedirs(f"{folder}/heads", exist_ok=True)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    x = range(steps + 1)
    ax.step(x, tied_runs[1][3].widths("sa"), where="post", label="tied (cython)")
    ax.step(x, numpy_run.widths("sa"), where="post", label="tied (numpy)", linestyle="--")
    ax.step(x, dropout_run.widths("sa"), where="post", label="tied + attention dropout")
    ax.step(x, random_run.widths("sa"), where="post", label="random init", linestyle=":")
    ax.set(xlabel="step", ylabel="distinct heads", title="S9: effective number of heads")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = os.path.join(folder, "heads", "heads.png")
    fig.savefig(path, dpi=100)
    return [path]
