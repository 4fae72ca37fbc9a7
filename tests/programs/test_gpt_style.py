"""A small GPT in the style of Karpathy's GPT lecture (token and position embeddings, blocks of
causal multi-head self-attention and a ReLU feed-forward with pre-LayerNorm residuals, a final
LayerNorm and a linear head, cross-entropy on (B*T, C) logits), built by one function for both
cygrad and PyTorch. With torch's weights copied across, cygrad's float64 loss and every
gradient match torch's to ~1e-10, a few AdamW steps track torch's, and the float32 model trains
as torch's does."""

import numpy as np
import pytest

import cygrad

torch = pytest.importorskip("torch")

VOCAB, N_EMBD, N_HEAD, N_LAYER, BLOCK = 13, 16, 4, 2, 8


def build(lib, dropout=0.0):
    """The lecture's model written against `lib` (cygrad or torch): the same code for both.
    Heads are registered with add_module (the lecture uses ModuleList)."""
    nn, F = lib.nn, lib.nn.functional

    class Head(nn.Module):
        def __init__(self, head_size):
            super().__init__()
            self.key = nn.Linear(N_EMBD, head_size, bias=False)
            self.query = nn.Linear(N_EMBD, head_size, bias=False)
            self.value = nn.Linear(N_EMBD, head_size, bias=False)
            self.register_buffer("tril", lib.tril(lib.ones(BLOCK, BLOCK)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            _, T, _ = x.shape
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            wei = self.dropout(F.softmax(wei, dim=-1))
            return wei @ self.value(x)

    class MultiHeadAttention(nn.Module):
        def __init__(self, num_heads, head_size):
            super().__init__()
            self.num_heads = num_heads
            for i in range(num_heads):
                self.add_module(f"head{i}", Head(head_size))
            self.proj = nn.Linear(head_size * num_heads, N_EMBD)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            heads = [getattr(self, f"head{i}")(x) for i in range(self.num_heads)]
            return self.dropout(self.proj(lib.cat(heads, dim=-1)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.sa = MultiHeadAttention(N_HEAD, N_EMBD // N_HEAD)
            self.ffwd = nn.Sequential(nn.Linear(N_EMBD, 4 * N_EMBD), nn.ReLU(),
                                      nn.Linear(4 * N_EMBD, N_EMBD), nn.Dropout(dropout))
            self.ln1, self.ln2 = nn.LayerNorm(N_EMBD), nn.LayerNorm(N_EMBD)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding_table = nn.Embedding(VOCAB, N_EMBD)
            self.position_embedding_table = nn.Embedding(BLOCK, N_EMBD)
            self.blocks = nn.Sequential(*[Block() for _ in range(N_LAYER)])
            self.ln_f = nn.LayerNorm(N_EMBD)
            self.lm_head = nn.Linear(N_EMBD, VOCAB)

        def forward(self, idx, targets):
            B, T = idx.shape
            x = self.token_embedding_table(idx) + self.position_embedding_table(lib.arange(T))
            logits = self.lm_head(self.ln_f(self.blocks(x)))
            return F.cross_entropy(logits.view(B * T, VOCAB), targets.view(B * T))

    return GPT()


def _pair(dtype):
    """The cygrad and torch models in `dtype`, cygrad's parameters set to torch's values."""
    torch.manual_seed(0)
    cygrad.manual_seed(0)
    old_c, old_t = cygrad.get_default_dtype(), torch.get_default_dtype()
    cygrad.set_default_dtype(getattr(cygrad, dtype))
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        cm, tm = build(cygrad), build(torch)
    finally:
        cygrad.set_default_dtype(old_c)
        torch.set_default_dtype(old_t)
    cp, tp = dict(cm.named_parameters()), dict(tm.named_parameters())
    assert list(cp) == list(tp)
    with cygrad.no_grad():
        for name, p in cp.items():
            assert tuple(p.shape) == tuple(tp[name].shape), name
            p.copy_(cygrad.tensor(tp[name].detach().numpy()))
    return cm, tm


def _batch(rng, batch=3):
    idx = rng.integers(0, VOCAB, (batch, BLOCK + 1))
    return np.ascontiguousarray(idx[:, :-1]), np.ascontiguousarray(idx[:, 1:])


def _losses(cm, tm, x, y):
    lc = cm(cygrad.tensor(x), cygrad.tensor(y))
    lt = tm(torch.from_numpy(x), torch.from_numpy(y))
    return lc, lt


def test_gpt_forward_loss_and_gradients_match_torch_float64():
    cm, tm = _pair("float64")
    x, y = _batch(np.random.default_rng(1))
    lc, lt = _losses(cm, tm, x, y)
    assert lc.dtype == cygrad.float64
    assert abs(lc.item() - lt.item()) < 1e-12
    lc.backward()
    lt.backward()
    for (name, p), (_, q) in zip(cm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_gpt_adamw_steps_track_torch_float64():
    cm, tm = _pair("float64")
    oc = cygrad.optim.AdamW(cm.parameters(), lr=1e-2)
    ot = torch.optim.AdamW(tm.parameters(), lr=1e-2)
    rng = np.random.default_rng(2)
    for _ in range(4):
        x, y = _batch(rng)
        lc, lt = _losses(cm, tm, x, y)
        assert abs(lc.item() - lt.item()) < 1e-9
        oc.zero_grad()
        ot.zero_grad()
        lc.backward()
        lt.backward()
        oc.step()
        ot.step()
    for (name, p), (_, q) in zip(cm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


def test_gpt_float32_training_lands_on_torchs_loss():
    """Memorising a fixed batch in float32: cygrad's loss falls as torch's does."""
    cm, tm = _pair("float32")
    oc = cygrad.optim.AdamW(cm.parameters(), lr=3e-3)
    ot = torch.optim.AdamW(tm.parameters(), lr=3e-3)
    x, y = _batch(np.random.default_rng(3), batch=4)
    for _ in range(30):
        lc, lt = _losses(cm, tm, x, y)
        for opt, loss in ((oc, lc), (ot, lt)):
            opt.zero_grad()
            loss.backward()
            opt.step()
    lc, lt = _losses(cm, tm, x, y)
    assert lc.dtype == cygrad.float32
    assert lc.item() < 0.8 * np.log(VOCAB)  # it learned
    assert abs(lc.item() - lt.item()) < 1e-3 * lt.item()


def test_gpt_step_is_bitwise_the_same_on_1_and_2_threads():
    """The loss and every gradient of the model have the same bits at 1 and 2 threads."""
    results = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        try:
            cm, _ = _pair("float32")
            x, y = _batch(np.random.default_rng(4), batch=2)
            loss = cm(cygrad.tensor(x), cygrad.tensor(y))
            loss.backward()
            results.append([loss.numpy().copy()]
                           + [p.grad.numpy().copy() for p in cm.parameters()])
        finally:
            cygrad.set_num_threads(1)
    for a, b in zip(*results):
        assert np.array_equal(a, b)
