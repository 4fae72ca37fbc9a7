"""cygrad.utils.tensorboard against torch.utils.tensorboard: the same calls write the same
events (read back with tensorboard's own loader). Skipped without tensorboard; the
comparisons with torch skip without torch."""

import glob
import io
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")

import cygrad  # noqa: E402
from cygrad.utils.tensorboard import SummaryWriter  # noqa: E402


def _events(logdir):
    """Every event of the one event file in logdir, wall times zeroed (they are the clock's)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
    assert len(files) == 1, files
    out = []
    for event in LegacyEventFileLoader(files[0]).Load():
        event.wall_time = 0
        out.append(event)
    return out


def _pixels(png):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))


def _same(ours, theirs):
    """Equal events; images compared by their decoded pixels (the PNG encoders differ)."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert len(a.summary.value) == len(b.summary.value)
        for va, vb in zip(a.summary.value, b.summary.value):
            if va.HasField("image"):
                assert (va.image.height, va.image.width, va.image.colorspace) == \
                    (vb.image.height, vb.image.width, vb.image.colorspace)
                np.testing.assert_array_equal(_pixels(va.image.encoded_image_string),
                                              _pixels(vb.image.encoded_image_string))
                va.image.encoded_image_string = vb.image.encoded_image_string = b""
        assert a == b, f"\n{a}\n!=\n{b}"


RNG = np.random.default_rng(0)
WEIGHTS = RNG.standard_normal((64, 32)).astype(np.float32)
IMAGE = RNG.random((3, 5, 7)).astype(np.float32)
BATCH = RNG.random((10, 1, 4, 6))
LABELS = RNG.integers(0, 2, 50)
SCORES = RNG.random(50)

# (method, args, kwargs): args holding arrays, passed as each library's tensors
CALLS = [
    ("add_scalar", ("loss/train", 2.5), {"global_step": 3}),
    ("add_scalar", ("loss/test", "t0"), {"global_step": 4}),
    ("add_scalar", ("lr", 0.125), {"new_style": True}),
    ("add_scalar", ("lr2", 0.1), {"new_style": True, "double_precision": True}),
    ("add_histogram", ("w", "WEIGHTS"), {"global_step": 1}),
    ("add_histogram", ("w_auto", "WEIGHTS"), {"bins": "auto", "global_step": 2}),
    ("add_histogram", ("w_max", "WEIGHTS"), {"max_bins": 7}),
    ("add_histogram_raw", ("raw", -1.0, 2.0, 3, 1.5, 5.0, [0.0, 1.0, 2.0], [1, 1, 1]), {}),
    ("add_text", ("notes", "hello *tensorboard*"), {"global_step": 5}),
    ("add_image", ("img", "IMAGE"), {}),
    ("add_image", ("img_hwc", "IMAGE_HWC"), {"dataformats": "HWC"}),
    ("add_images", ("batch", "BATCH"), {"global_step": 2}),
    ("add_tensor", ("t", "WEIGHTS"), {}),
    ("add_pr_curve", ("pr", "LABELS", "SCORES"), {"num_thresholds": 20}),
]


def _arg(lib, value):
    arrays = {"WEIGHTS": WEIGHTS, "IMAGE": IMAGE, "IMAGE_HWC": IMAGE.transpose(1, 2, 0).copy(),
              "BATCH": BATCH, "LABELS": LABELS, "SCORES": SCORES,
              "t0": np.array(1.75, np.float32)}
    if isinstance(value, str) and value in arrays:
        return lib.tensor(arrays[value])
    return value


def _write(lib, writer_class, logdir):
    with writer_class(logdir) as w:
        for name, args, kwargs in CALLS:
            getattr(w, name)(*[_arg(lib, a) for a in args], walltime=1.0, **kwargs)


def test_each_summary_as_torchs(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("PIL")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    _write(cygrad, SummaryWriter, str(tmp_path / "ours"))
    _write(torch, TorchWriter, str(tmp_path / "theirs"))
    _same(_events(str(tmp_path / "ours")), _events(str(tmp_path / "theirs")))


def test_scalars_hparams_and_purge_lay_out_directories_as_torchs(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    for lib, cls, name in ((cygrad, SummaryWriter, "ours"), (torch, TorchWriter, "theirs")):
        with cls(str(tmp_path / name), purge_step=7) as w:
            w.add_scalars("run/loss", {"train": 1.5, "test": 2.5}, 3, walltime=2.0)
            w.add_hparams({"lr": 0.1, "bs": 32, "opt": "adam", "flag": True,
                           "t": lib.tensor([0.5])}, {"hparam/acc": 0.9},
                          hparam_domain_discrete={"opt": ["adam", "sgd"]}, run_name="hp")
    dirs = {}
    for name in ("ours", "theirs"):
        root = tmp_path / name
        dirs[name] = sorted(os.path.relpath(d, root) for d, _, files in os.walk(root)
                            if any(f.startswith("events.") for f in files))
    assert dirs["ours"] == dirs["theirs"] == [".", "hp", "run_loss_test", "run_loss_train"]
    for sub in dirs["ours"]:
        _same(_events(str(tmp_path / "ours" / sub)), _events(str(tmp_path / "theirs" / sub)))


def test_values_read_back_without_torch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with SummaryWriter(str(tmp_path)) as w:
        for step in range(3):
            w.add_scalar("loss", cygrad.tensor(1.0 / (step + 1)), step)
        w.add_histogram("w", cygrad.tensor(WEIGHTS), 0)
        w.add_text("note", "hi", 0)
        w.add_image("img", cygrad.tensor(IMAGE), 0)
    acc = EventAccumulator(str(tmp_path)).Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == \
        [(0, 1.0), (1, np.float32(0.5)), (2, np.float32(1 / 3))]
    h = acc.Histograms("w")[0].histogram_value
    flat = WEIGHTS.astype(float).ravel()
    assert (h.min, h.max, h.num) == (flat.min(), flat.max(), flat.size)
    assert h.sum == pytest.approx(flat.sum()) and sum(h.bucket) == flat.size
    img = acc.Images("img")[0]
    assert (img.height, img.width) == (5, 7)
    if pytest.importorskip("PIL"):
        expected = (IMAGE.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
        np.testing.assert_array_equal(_pixels(img.encoded_image_string), expected)


def test_png_without_pil_decodes_to_the_pixels():
    import zlib

    from cygrad.utils.tensorboard.summary import _png

    for c in (1, 3, 4):
        px = RNG.integers(0, 256, (3, 5, c), dtype=np.uint8)
        data = _png(px)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
        rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(3, 1 + 5 * c)
        assert not rows[:, 0].any()
        np.testing.assert_array_equal(rows[:, 1:].reshape(3, 5, c), px)


def test_bad_input_and_missing_methods(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        with pytest.raises(AssertionError, match="one element"):
            w.add_scalar("x", cygrad.ones(3))
        with pytest.raises(ValueError, match="no element"):
            w.add_histogram("h", np.zeros(0))
        with pytest.raises(ValueError, match="bucket_limits"):
            w.add_histogram_raw("h", 0, 1, 1, 1, 1, [1.0], [1, 2])
        with pytest.raises(TypeError, match="dictionary"):
            w.add_hparams([("lr", 1)], {})
        with pytest.raises(NotImplementedError, match="add_graph"):
            w.add_graph(cygrad.nn.Linear(2, 2), cygrad.ones(1, 2))
        with pytest.raises(NotImplementedError, match="add_embedding"):
            w.add_embedding(cygrad.ones(3, 2))
    w.close()  # twice: nothing happens, as torch's
    assert w.get_logdir() == str(tmp_path)


def test_a_torch_program_imports_it_unedited(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text(
        "import torch\nfrom torch.utils.tensorboard import SummaryWriter\n"
        "w = SummaryWriter(log_dir='logs')\n"
        "w.add_scalar('Loss/train', torch.tensor(0.5), 1)\nw.flush()\n"
        "print(type(w).__module__, w.get_logdir())\n")
    out = subprocess.run([sys.executable, "-m", "cygrad", "run", str(program)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cygrad.utils.tensorboard.writer", "logs"]
    assert len(_events(str(tmp_path / "logs"))) == 2


def test_without_tensorboard_the_import_fails_as_torchs():
    code = ("import sys; sys.modules['tensorboard'] = None\n"
            "try:\n    import cygrad.utils.tensorboard\nexcept ModuleNotFoundError as e:\n"
            "    print('ModuleNotFoundError', e.name)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["ModuleNotFoundError", "tensorboard"], out.stderr
