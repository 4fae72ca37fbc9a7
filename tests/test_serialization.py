"""cygrad.save / load: bitwise round trips, exact paths, refusal of pickles and corrupt files."""

import io
import json
import math
import zipfile

import numpy as np
import pytest

import cygrad
from cygrad.serialization import load, save


def same(a, b):
    """Equal type, dtype, shape and bytes (NaN payloads and -0.0 included)."""
    return (type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
            and a.tobytes() == b.tobytes())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nested_round_trip_is_bitwise(tmp_path, dtype):
    rng = np.random.default_rng(0)
    special = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, 5e-324], dtype=np.float64)
    special = np.concatenate([special.astype(dtype), np.frombuffer(
        np.array([0x7FC00001], dtype=np.uint32).tobytes() if dtype == np.float32
        else np.array([0x7FF8000000000001], dtype=np.uint64).tobytes(), dtype=dtype)])
    obj = {
        "model": {"w": rng.standard_normal((3, 4)).astype(dtype), "b": special,
                  "fortran": np.asfortranarray(rng.standard_normal((2, 3)).astype(dtype)),
                  "strided": rng.standard_normal(10).astype(dtype)[::3]},
        "optimizer": {"state": {0: {"step": 7, "exp_avg": np.zeros((3, 4), dtype)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "epoch": 3, "loss": 0.1 + 0.2, "tag": "résumé ✓", "done": False, "none": None,
        "empty": np.zeros((0, 3), dtype), "zero_d": np.array(2.5, dtype),
        "ints": np.arange(5, dtype=np.int64), "mask": np.array([True, False]),
        "words": np.array(["a", "bc"]), "scalar": dtype(1.25), "flag": np.bool_(True),
        "mixed": [1, (2.5, "x"), [], ()], "1": "string key", 1: "int key",
    }
    save(obj, tmp_path / "ckpt.npz")
    back = load(tmp_path / "ckpt.npz")
    assert back.keys() == obj.keys()
    for name, array in obj["model"].items():
        assert same(back["model"][name], array), name
    assert same(back["optimizer"]["state"][0]["exp_avg"], obj["optimizer"]["state"][0]["exp_avg"])
    assert back["optimizer"]["param_groups"] == obj["optimizer"]["param_groups"]
    assert isinstance(back["optimizer"]["param_groups"][0]["betas"], tuple)
    assert back["optimizer"]["state"][0]["step"] == 7
    for key in ("epoch", "loss", "tag", "done", "none", "mixed", "1", 1):
        assert back[key] == obj[key] and type(back[key]) is type(obj[key])
    assert back["mixed"][1] == (2.5, "x") and back["mixed"][3] == ()
    for key in ("empty", "zero_d", "ints", "mask", "words"):
        assert same(back[key], obj[key]), key
    assert type(back["scalar"]) is dtype and back["scalar"] == 1.25
    assert type(back["flag"]) is np.bool_


def test_python_floats_round_trip_exactly(tmp_path):
    values = [0.1, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 2**-40 / 3]
    save({"v": values, "nan": math.nan, "big": 2**80}, tmp_path / "f.npz")
    back = load(tmp_path / "f.npz")
    assert [v.hex() for v in back["v"]] == [v.hex() for v in values]
    assert math.isnan(back["nan"]) and back["big"] == 2**80


def test_tensors_come_back_as_tensors(tmp_path):
    """As torch's: a Tensor loads as a Tensor (a leaf that required grad still does), a
    Parameter as a Parameter, an array as an array; the file stays plain .npz data."""
    t = cygrad.tensor([[1.0, 2.0]], requires_grad=True)
    p = cygrad.nn.Parameter(cygrad.zeros(3))
    save({"t": t, "list": [t.detach()], "p": p, "a": np.ones(2)}, tmp_path / "t.npz")
    back = load(tmp_path / "t.npz")
    assert type(back["t"]) is cygrad.Tensor and back["t"].requires_grad
    assert same(back["t"].numpy(), t.detach().numpy())
    assert type(back["list"][0]) is cygrad.Tensor and not back["list"][0].requires_grad
    assert type(back["p"]) is cygrad.nn.Parameter and back["p"].requires_grad
    assert type(back["a"]) is np.ndarray
    with np.load(tmp_path / "t.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__cygrad__", "a0", "a1", "a2", "a3"]


def test_version_1_files_still_load(tmp_path):
    """Files written before Tensors had their own node: their arrays come back as arrays."""
    import json

    header = {"format": "cygrad-checkpoint", "version": 1, "root": {"array": "a0"}}
    np.savez(tmp_path / "v1.npz", __cygrad__=np.frombuffer(json.dumps(header).encode(),
                                                           np.uint8), a0=np.arange(3.0))
    assert same(load(tmp_path / "v1.npz"), np.arange(3.0))


def test_top_level_can_be_any_supported_value(tmp_path):
    for obj in (np.arange(3.0), [1, 2], 5, "x", None):
        save(obj, tmp_path / "x.npz")
        back = load(tmp_path / "x.npz")
        assert same(back, obj) if isinstance(obj, np.ndarray) else back == obj


def test_writes_exactly_to_the_given_path(tmp_path):
    path = tmp_path / "checkpoint.bin"
    save({"a": np.ones(2)}, path)
    save({"a": np.zeros(2)}, str(path))  # overwrites
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.bin"]  # no .npz, no temp
    assert np.array_equal(load(path)["a"], np.zeros(2))


def test_file_is_a_plain_npz(tmp_path):
    save({"w": np.arange(4.0)}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        header = json.loads(npz["__cygrad__"].tobytes())
        assert header["root"] == {"dict": [["w", {"array": "a0"}]]}
        assert np.array_equal(npz["a0"], np.arange(4.0))


def test_plain_npz_loads_as_flat_dict(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.arange(3), y=np.eye(2, dtype=np.float32))
    back = load(tmp_path / "plain.npz")
    assert back.keys() == {"x", "y"} and same(back["y"], np.eye(2, dtype=np.float32))


# ---------------------------------------------------------------------- unsupported values

@pytest.mark.parametrize("value", [
    {"s": {1, 2}}, {"c": 1j}, {"b": b"bytes"}, {(1, 2): 3}, {None: 1}, {True: 1},
    [{"deep": [1, {"x": frozenset({2})}]}], {"obj": np.array([1, "a", None], dtype=object)},
])
def test_what_the_data_format_cannot_hold_is_pickled(tmp_path, value):
    """torch pickles everything; so does cygrad what its data format cannot hold, and loads
    it back under the weights_only rules (these need no allowlisting)."""
    save(value, tmp_path / "p.pt")
    back = load(tmp_path / "p.pt")
    if isinstance(value, dict) and "obj" in value:
        assert back["obj"].tolist() == value["obj"].tolist()
    else:
        assert back == value
    with np.load(tmp_path / "p.pt", allow_pickle=False) as npz:  # still a zip of arrays
        assert npz["p0"].dtype == np.uint8


@pytest.mark.parametrize("value", [{"o": object()}, {"f": len}])
def test_weights_only_refuses_what_is_not_allowlisted(tmp_path, value):
    import pickle

    save(value, tmp_path / "p.pt")
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global: GLOBAL builtins"):
        load(tmp_path / "p.pt")
    assert cygrad.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "p.pt") == \
        ["builtins.object" if "o" in value else "builtins.len"]
    back = load(tmp_path / "p.pt", weights_only=False)
    assert ("o" in back and type(back["o"]) is object) or back.get("f") is len


class Net(cygrad.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = cygrad.nn.Linear(3, 2)
        self.drop = cygrad.nn.Dropout(0.25)
        self.register_buffer("steps", cygrad.zeros((), dtype=cygrad.int64))

    def forward(self, x):
        return self.drop(self.fc(x))


def test_a_whole_module_saves_and_loads_as_torchs(tmp_path):
    """torch.save(model, f); torch.load(f) needs the model's classes allowlisted (torch 2.6's
    weights_only default), or weights_only=False; the module comes back whole."""
    import pickle

    model = Net().eval()
    x = cygrad.randn(4, 3)
    save(model, tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError, match="Net was not an allowed global"):
        load(tmp_path / "model.pt")
    assert cygrad.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "model.pt") == [
        f"{__name__}.Net", "cygrad.nn.layers.Linear", "cygrad.nn.layers.Dropout"]
    with cygrad.serialization.safe_globals([Net, cygrad.nn.Linear, cygrad.nn.Dropout]):
        back = load(tmp_path / "model.pt")
    assert cygrad.serialization.get_safe_globals() == []
    for loaded in (back, load(tmp_path / "model.pt", weights_only=False)):
        assert type(loaded) is Net and not loaded.training
        assert type(loaded.fc.weight) is cygrad.nn.Parameter and loaded.fc.weight.requires_grad
        assert np.array_equal(loaded(x).numpy(), model(x).numpy())
        assert loaded.steps.dtype == cygrad.int64
    optimizer = cygrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save(optimizer, tmp_path / "opt.pt")
    assert type(load(tmp_path / "opt.pt", weights_only=False)) is cygrad.optim.SGD


def test_a_pickle_cannot_smuggle_a_call(tmp_path):
    """A crafted pickle calling os.system (or a tensor rebuild with a non-tensor class) is
    refused under weights_only."""
    import pickle

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("true",))

    save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        load(tmp_path / "evil.pt")
    from cygrad.serialization import _checked_rebuild

    with pytest.raises(pickle.UnpicklingError):
        _checked_rebuild(np.ones(2), False, Evil)


def test_self_containing_structure_raises(tmp_path):
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        save(loop, tmp_path / "loop.npz")
    shared = [1]
    save({"a": shared, "b": shared}, tmp_path / "shared.npz")  # shared, not circular: fine
    assert load(tmp_path / "shared.npz") == {"a": [1], "b": [1]}


# ---------------------------------------------------------------------- unsafe and broken files

class MakesMarker:
    """Unpickling this runs open(marker, "w"): the file appears iff a payload ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled_npz(path, marker, with_structure=True):
    payload = np.empty(1, dtype=object)
    payload[0] = MakesMarker(marker)
    entries = {"a0": payload}
    if with_structure:
        header = {"format": "cygrad-checkpoint", "version": 1, "root": {"array": "a0"}}
        entries["__cygrad__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **entries)  # np.savez pickles object arrays by default


@pytest.mark.parametrize("with_structure", [True, False])
def test_pickled_object_array_is_refused_and_never_runs(tmp_path, with_structure):
    # The payload is live: loading it with pickle allowed creates the marker.
    pickled_npz(tmp_path / "probe.npz", tmp_path / "probe-marker")
    with np.load(tmp_path / "probe.npz", allow_pickle=True) as npz:
        npz["a0"][0].close()  # what the payload returned: the marker, opened
    assert (tmp_path / "probe-marker").exists()

    marker = tmp_path / "marker"
    pickled_npz(tmp_path / "evil.npz", marker, with_structure)
    with pytest.raises(ValueError, match="evil.npz.*pickled"):
        load(tmp_path / "evil.npz")
    assert not marker.exists()


def test_pickle_file_that_is_not_a_zip_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "marker"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(ValueError, match="evil.pkl"):
        load(tmp_path / "evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.5, 0.9, 0.99])
def test_truncated_file_raises_value_error_naming_path(tmp_path, fraction):
    save({"w": np.arange(1000.0), "step": 3}, tmp_path / "full.npz")
    raw = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(ValueError, match="cut.npz"):
        load(tmp_path / "cut.npz")


def test_corrupt_array_bytes_raise_value_error(tmp_path):
    save({"w": np.arange(1000.0)}, tmp_path / "c.npz")
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside a0's data: the zip's CRC no longer matches
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="c.npz"):
        load(tmp_path / "c.npz")


def test_npy_file_is_not_a_checkpoint(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3))
    with pytest.raises(ValueError, match="a.npy"):
        load(tmp_path / "a.npy")


@pytest.mark.parametrize("structure", [
    b"not json", json.dumps({"format": "other"}).encode(),
    json.dumps({"format": "cygrad-checkpoint", "version": 99, "root": None}).encode(),
    json.dumps({"format": "cygrad-checkpoint", "version": 1, "root": {"array": "a7"}}).encode(),
    json.dumps({"format": "cygrad-checkpoint", "version": 1, "root": {"eval": "x"}}).encode(),
])
def test_malformed_structure_raises_value_error(tmp_path, structure):
    buffer = io.BytesIO()
    np.savez(buffer, __cygrad__=np.frombuffer(structure, dtype=np.uint8))
    (tmp_path / "m.npz").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="m.npz"):
        load(tmp_path / "m.npz")


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


def test_zip_without_npy_entries_raises(tmp_path):
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("a0.npy", b"garbage, not an npy header")
    with pytest.raises(ValueError, match="z.npz"):
        load(tmp_path / "z.npz")


# ---------------------------------------------------------------------- crafted files (issue 14)

def rss_bytes():
    """This process's resident memory (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def bomb(path, entries, declared_mb=256):
    """A checkpoint whose structure refers to `entries` only, plus an unreferenced entry that
    inflates to declared_mb MiB of zeros (a zip bomb, ~0.1% of that on disk)."""
    header = {"format": "cygrad-checkpoint", "version": 1,
              "root": {"dict": [[k, {"array": k}] for k in entries]}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.frombuffer(json.dumps(header).encode(), np.uint8))
        z.writestr("__cygrad__.npy", buffer.getvalue())
        for name in entries:
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.arange(3.0))
            z.writestr(f"{name}.npy", buffer.getvalue())
        with z.open("bomb.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                     "shape": (declared_mb << 17,)})
            zero = bytes(1 << 20)
            for _ in range(declared_mb):
                f.write(zero)


def test_unreferenced_entries_are_never_read(tmp_path):
    bomb(tmp_path / "bomb.npz", ["a"])
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    before = rss_bytes()
    back = load(tmp_path / "bomb.npz")
    after = rss_bytes()
    assert list(back) == ["a"] and np.array_equal(back["a"], np.arange(3.0))
    if before is not None:
        assert after - before < 64 << 20  # reading every entry cost 256 MiB


def header_only(path, shape, descr="<f4", stored=True):
    """An entry whose .npy header declares `shape` but holds 16 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    buffer.write(bytes(16))
    header = {"format": "cygrad-checkpoint", "version": 1, "root": {"array": "a0"}}
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        structure = io.BytesIO()
        np.lib.format.write_array(structure, np.frombuffer(json.dumps(header).encode(), np.uint8))
        z.writestr("__cygrad__.npy", structure.getvalue())
        z.writestr("a0.npy", buffer.getvalue())


@pytest.mark.parametrize("stored", [True, False])
def test_a_declared_size_the_file_cannot_hold_is_refused_before_allocating(tmp_path, stored):
    header_only(tmp_path / "huge.npz", (1 << 40,), stored=stored)  # 4 TiB of float32
    with pytest.raises(ValueError, match=r"huge.npz: entry 'a0' declares .*\(1099511627776,\)"):
        load(tmp_path / "huge.npz")


def test_a_zip_record_that_lies_about_the_size_is_refused(tmp_path):
    header_only(tmp_path / "lie.npz", (1 << 40,))
    raw = bytearray((tmp_path / "lie.npz").read_bytes())
    # make the zip records of a0 claim 4 TiB + header too: the file is then too small for it
    info = zipfile.ZipFile(tmp_path / "lie.npz").getinfo("a0.npy")
    size = info.file_size.to_bytes(4, "little")
    for at in [i for i in range(len(raw) - 3) if raw[i:i + 4] == size]:
        raw[at:at + 4] = (0xFFFFFFF0).to_bytes(4, "little")
    (tmp_path / "lie.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="lie.npz"):
        load(tmp_path / "lie.npz")


def structure_file(path, text):
    buffer = io.BytesIO()
    np.savez(buffer, __cygrad__=np.frombuffer(text.encode(), dtype=np.uint8))
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("depth", [300, 900, 5000])
def test_deeply_nested_structure_is_a_value_error(tmp_path, depth):
    root = "[]"
    for _ in range(depth):
        root = '{"list": [' + root + "]}"
    structure_file(tmp_path / "deep.npz",
                   '{"format": "cygrad-checkpoint", "version": 1, "root": ' + root + "}")
    with pytest.raises(ValueError, match="deep.npz"):
        load(tmp_path / "deep.npz")


def test_saving_a_structure_nested_too_deep_is_a_value_error(tmp_path):
    deep = []
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        save(deep, tmp_path / "deep.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_huge_integer_is_a_value_error_naming_the_path(tmp_path):
    structure_file(tmp_path / "digits.npz", '{"format": "cygrad-checkpoint", "version": 1, '
                   '"root": ' + "9" * 5000 + "}")
    with pytest.raises(ValueError, match="digits.npz"):
        load(tmp_path / "digits.npz")


def test_a_truncated_file_leaves_no_file_open(tmp_path):
    # Under -X dev -W error an unclosed file is a ResourceWarning turned error (issue 16).
    import subprocess
    import sys

    save({"w": np.arange(1000.0)}, tmp_path / "full.npz")
    raw = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[:len(raw) // 2])
    code = ("import gc, cygrad\n"
            "try:\n    cygrad.load(r'%s')\nexcept ValueError:\n    pass\n"
            "gc.collect()\nprint('clean')\n" % (tmp_path / "cut.npz"))
    from pathlib import Path

    src = str(Path(cygrad.__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-X", "dev", "-W", "error", "-c", code],
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": src})
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr
    assert "ResourceWarning" not in proc.stderr


def test_file_objects_and_torchs_keyword_arguments(tmp_path):
    """torch.save(obj, f) / torch.load(f, map_location=..., weights_only=...) as programs
    write them: binary file objects as well as paths, the CPU as map_location."""
    model = cygrad.nn.Linear(3, 2)
    buf = io.BytesIO()
    cygrad.save(model.state_dict(), buf)
    buf.seek(0)
    loaded = cygrad.load(buf, map_location="cpu", weights_only=True)
    assert np.array_equal(loaded["weight"], model.weight.numpy())
    path = tmp_path / "model.pt"
    with open(path, "wb") as f:
        cygrad.save({"epoch": 3, "w": model.weight}, f)
    with open(path, "rb") as f:
        assert cygrad.load(f)["epoch"] == 3
    assert cygrad.load(path, map_location=cygrad.device("cpu"))["epoch"] == 3
    assert cygrad.load(path, map_location=lambda storage, loc: storage)["epoch"] == 3
    with pytest.raises(RuntimeError, match="CPU only"):
        cygrad.load(path, map_location="cuda:0")
    with pytest.raises(RuntimeError, match="explicit pickle_module"):
        cygrad.load(path, pickle_module=__import__("pickle"), weights_only=True)
    with pytest.raises(NotImplementedError, match="mmap"):
        cygrad.load(path, mmap=True)
    with pytest.raises(ValueError, match="BytesIO: not a readable"):
        cygrad.load(io.BytesIO(b"not a zip"))


def test_modules_holding_functions_pickle(tmp_path):
    """A TransformerEncoderLayer holds F.relu as its activation: the op table's functions are
    named where a program reaches them, so pickle finds them (word_language_model saves its
    whole Transformer)."""
    import pickle
    import types

    import cygrad.nn.functional as F

    for module in (cygrad, F, cygrad.special, cygrad.linalg):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, types.FunctionType) and not name.startswith("_"):
                assert pickle.loads(pickle.dumps(value)) is value, f"{module.__name__}.{name}"
    layer = cygrad.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).eval()
    save(layer, tmp_path / "layer.pt")
    back = load(tmp_path / "layer.pt", weights_only=False)
    x = cygrad.randn(3, 2, 8)
    assert back.activation is F.relu and np.array_equal(back(x).numpy(), layer(x).numpy())
