"""Checkpoints PyTorch wrote, read by cygrad.load without torch's help (the fgsm tutorial loads
a pretrained model's state dict saved by torch): tensors, parameters, dtypes, views and
containers come back as cygrad's; whole torch objects, missing dtypes and views reaching out of
their storage are refused. Written with torch (skipped without it)."""

import io
import pickle
import zipfile

import numpy as np
import pytest

import cygrad

torch = pytest.importorskip("torch")


def saved(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_a_state_dict_and_friends():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(),
                              torch.nn.Linear(3, 2)).eval()
    x = torch.randn(5, 4)
    checkpoint = {"model": net.state_dict(), "epoch": 7, "loss": 0.25, "names": ["a", "b"],
                  "view": torch.arange(12).reshape(3, 4)[:, 1:3].t(), "flags": torch.tensor([True]),
                  "double": torch.ones(2, dtype=torch.float64), "param": torch.nn.Parameter(
                      torch.zeros(2)), "dtype": torch.float32, "size": torch.Size([2, 3])}
    back = cygrad.load(saved(checkpoint), map_location="cpu", weights_only=True)
    assert back["epoch"] == 7 and back["loss"] == 0.25 and back["names"] == ["a", "b"]
    assert np.array_equal(back["view"].numpy(), checkpoint["view"].numpy())
    assert back["view"].dtype == cygrad.int64 and back["flags"].dtype == cygrad.bool
    assert back["double"].dtype == cygrad.float64
    assert type(back["param"]) is cygrad.nn.Parameter and back["param"].requires_grad
    assert back["dtype"] == cygrad.float32 and back["size"] == (2, 3)
    ours = cygrad.nn.Sequential(cygrad.nn.Linear(4, 3), cygrad.nn.BatchNorm1d(3),
                                cygrad.nn.ReLU(), cygrad.nn.Linear(3, 2)).eval()
    assert list(back["model"]) == list(net.state_dict())
    ours.load_state_dict(back["model"])
    np.testing.assert_allclose(ours(cygrad.tensor(x.numpy())).detach().numpy(),
                               net(x).detach().numpy(), rtol=1e-6, atol=1e-7)


def test_whole_torch_objects_and_missing_dtypes_are_refused():
    with pytest.raises(pickle.UnpicklingError, match="torch.nn.modules.linear.Linear"):
        cygrad.load(saved(torch.nn.Linear(2, 2)), weights_only=False)
    with pytest.raises(pickle.UnpicklingError, match="float16"):
        cygrad.load(saved(torch.ones(2, dtype=torch.float16)))


def test_a_view_past_its_storage_is_refused():
    """A checkpoint edited so that a tensor claims more elements than its storage holds."""
    buf = saved(torch.arange(4.0))
    with zipfile.ZipFile(buf) as z:
        files = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in files if n.endswith("data.pkl"))
    assert b"K\x04\x85" in files[name]  # the size (4,)
    files[name] = files[name].replace(b"K\x04\x85", b"K\x40\x85", 1)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    out.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="reaches past its storage"):
        cygrad.load(out)
