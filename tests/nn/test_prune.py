"""nn.utils.prune against torch's (skipped without it): the masks each method computes (the
random ones from the same seed), iterative pruning through a PruningContainer, global
pruning, remove, the module's parameters, buffers and state_dict keys, forward and
gradients of a pruned layer, and torch's errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.utils.prune as cprune


def _torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch.nn.utils.prune")  # (torch does not import it itself)
    return torch


def _pair(torch, kind="conv", seed=0):
    """A cygrad layer and a torch layer with the same weights."""
    torch.manual_seed(seed)
    if kind == "conv":
        t, c = torch.nn.Conv2d(3, 6, 3), cygrad.nn.Conv2d(3, 6, 3)
    else:
        t, c = torch.nn.Linear(7, 5), cygrad.nn.Linear(7, 5)
    c.weight.data = cygrad.tensor(t.weight.detach().numpy().copy())
    c.bias.data = cygrad.tensor(t.bias.detach().numpy().copy())
    return c, t


def _same_mask(c, t, name="weight"):
    assert np.array_equal(getattr(c, name + "_mask").numpy(),
                          getattr(t, name + "_mask").detach().numpy())


STEPS = [  # (function, args): the same calls on both libraries, one after another
    [("l1_unstructured", ("weight", 0.3))],
    [("l1_unstructured", ("weight", 7))],
    [("ln_structured", ("weight", 0.5), {"n": 2, "dim": 0})],
    [("ln_structured", ("weight", 2), {"n": 1, "dim": 1})],
    [("random_unstructured", ("weight", 0.4))],
    [("random_structured", ("weight", 0.5), {"dim": 1})],
    [("l1_unstructured", ("weight", 0.2)), ("ln_structured", ("weight", 0.5), {"n": 2, "dim": 0}),
     ("l1_unstructured", ("weight", 0.3)), ("random_unstructured", ("bias", 2))],
    [("identity", ("weight",)), ("l1_unstructured", ("bias", 0.5))],
]


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_masks_and_layers_match_torch(steps, kind):
    torch = _torch()
    c, t = _pair(torch, kind)
    torch.manual_seed(5)
    cygrad.manual_seed(5)
    for step in steps:
        name, args = step[0], step[1]
        kwargs = step[2] if len(step) > 2 else {}
        getattr(cprune, name)(c, *args, **kwargs)
        getattr(torch.nn.utils.prune, name)(t, *args, **kwargs)
        _same_mask(c, t, args[0])
    assert sorted(c.state_dict()) == sorted(t.state_dict())
    assert sorted(n for n, _ in c.named_parameters()) == \
        sorted(n for n, _ in t.named_parameters())
    assert cprune.is_pruned(c) and torch.nn.utils.prune.is_pruned(t)
    shape = (2, 3, 8, 8) if kind == "conv" else (4, 7)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    cy, ty = c(cygrad.tensor(x)), t(torch.tensor(x))
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    cy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(c.weight_orig.grad.numpy(), t.weight_orig.grad.numpy(),
                               rtol=1e-5, atol=1e-5)
    for name in {step[1][0] for step in steps}:
        cprune.remove(c, name)
        torch.nn.utils.prune.remove(t, name)
    assert not cprune.is_pruned(c)
    assert sorted(c.state_dict()) == sorted(t.state_dict()) == ["bias", "weight"]
    np.testing.assert_array_equal(c.weight.detach().numpy(), t.weight.detach().numpy())
    assert isinstance(c.weight, cygrad.nn.Parameter)
    np.testing.assert_allclose(c(cygrad.tensor(x)).detach().numpy(),
                               t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_global_and_custom_masks_match_torch():
    """global_unstructured prunes the smallest of all the listed tensors together;
    custom_from_mask takes a given mask; importance scores instead of the weights."""
    torch = _torch()
    (c1, t1), (c2, t2) = _pair(torch, "conv", 1), _pair(torch, "linear", 2)
    cprune.global_unstructured([(c1, "weight"), (c2, "weight")],
                               pruning_method=cprune.L1Unstructured, amount=0.4)
    torch.nn.utils.prune.global_unstructured([(t1, "weight"), (t2, "weight")],
                                             pruning_method=torch.nn.utils.prune.L1Unstructured,
                                             amount=0.4)
    _same_mask(c1, t1)
    _same_mask(c2, t2)
    total = c1.weight_mask.numel() + c2.weight_mask.numel()
    pruned = total - int(c1.weight_mask.sum().item() + c2.weight_mask.sum().item())
    assert pruned == round(0.4 * total)
    mask = (np.arange(5) % 2).astype(np.float32)
    cprune.custom_from_mask(c2, "bias", cygrad.tensor(mask))
    torch.nn.utils.prune.custom_from_mask(t2, "bias", torch.tensor(mask))
    _same_mask(c2, t2, "bias")
    c3, t3 = _pair(torch, "linear", 3)
    scores = np.random.default_rng(4).random((5, 7)).astype(np.float32)
    cprune.l1_unstructured(c3, "weight", 10, importance_scores=cygrad.tensor(scores))
    torch.nn.utils.prune.l1_unstructured(t3, "weight", 10,
                                         importance_scores=torch.tensor(scores))
    _same_mask(c3, t3)
    method = cprune.L1Unstructured(amount=0.5)
    w = cygrad.tensor(np.array([3.0, -1.0, 0.5, 2.0]))
    assert method.prune(w).tolist() == [3.0, 0.0, 0.0, 2.0]


def test_errors_as_torch():
    torch = _torch()
    tp = torch.nn.utils.prune
    for bad, error in (("x", TypeError), (-1, ValueError), (1.5, ValueError)):
        with pytest.raises(error):
            cprune.L1Unstructured(bad)
        with pytest.raises(error):
            tp.L1Unstructured(bad)
    c, t = _pair(torch, "linear")
    with pytest.raises(ValueError, match="smaller than the number"):
        cprune.l1_unstructured(c, "weight", 100)
    with pytest.raises(ValueError, match="smaller than the number"):
        tp.l1_unstructured(t, "weight", 100)
    assert isinstance(c.weight, cygrad.nn.Parameter)  # put back as it was
    with pytest.raises(ValueError, match="multidimensional"):
        cprune.ln_structured(c, "bias", 1, n=2, dim=0)
    with pytest.raises(ValueError, match="has to be pruned"):
        cprune.remove(c, "weight")
    with pytest.raises(TypeError, match="unstructured"):
        cprune.global_unstructured([(c, "weight")], pruning_method=cprune.LnStructured,
                                   amount=1, n=2, dim=0)
