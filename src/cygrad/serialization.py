"""Save and load nested checkpoints (state dicts, optimizer state, counters) as safe .npz files.

    cygrad.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    checkpoint = cygrad.load(path)

A file is a zip of .npy entries, readable by `np.load` alone:
  "__cygrad__"  the nested structure as UTF-8 JSON bytes (a uint8 array)
  "a0", "a1"…   one entry per array, in the order the structure first meets them

In the JSON, Python None, bools, ints, floats and strings are stored as themselves; containers
and arrays as one-key objects: {"dict": [[key, value], ...]}, {"list": [...]}, {"tuple": [...]},
{"array": "a0"} and {"scalar": "a1"} (a numpy scalar, kept as a 0-d entry so its dtype survives).
Dict keys may be str or int, so an optimizer's state dict keeps its integer keys.

Why it is safe: entries are read with `np.load(..., allow_pickle=False)`, so no byte of a file
is ever unpickled; an entry holding an object array is refused with a ValueError. Arrays come
back bitwise (dtype, shape and bytes), floats in the JSON are written with repr, which
round-trips exactly (NaN and infinities included).
"""

import json
import os
import secrets
import zipfile
import zlib

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

_STRUCTURE = "__cygrad__"
_FORMAT = "cygrad-checkpoint"
_VERSION = 1


def save(obj, path):
    """Write obj (nested dicts/lists/tuples of arrays, Tensors, numbers, str, bool, None) to path.

    The file is written exactly at path (no ".npz" is appended, unlike np.savez), through a
    temporary file in the same folder that replaces path only once complete, so a crash never
    leaves a half-written checkpoint. Tensors are saved as their data; load returns arrays.
    Raises TypeError for anything else (sets, objects, object arrays, non-str/int dict keys).
    """
    arrays = {}
    root = _encode(obj, arrays, active=set())
    header = {"format": _FORMAT, "version": _VERSION, "root": root}
    text = json.dumps(header, allow_nan=True, ensure_ascii=False)
    entries = {_STRUCTURE: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:
            np.savez(f, allow_pickle=False, **entries)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """The structure saved at path, with numpy arrays where arrays or Tensors were saved.

    A plain .npz without cygrad's structure entry loads as a flat dict {name: array}.
    Raises ValueError (naming path) for a truncated, corrupt or unsafe file.
    """
    path = os.fspath(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path}: not a readable cygrad/npz file (truncated or corrupt?): "
                         f"{err}") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single .npy array, not a cygrad checkpoint (.npz)")
    with npz:
        arrays = {name: _read_entry(npz, name, path) for name in npz.files}
    if _STRUCTURE not in arrays:
        return arrays
    return _decode_file(arrays, path)


# ---------------------------------------------------------------------- writing

def _encode(obj, arrays, active):
    """obj as a JSON-able node; its arrays go into `arrays` under fresh names."""
    if isinstance(obj, Tensor):
        obj = obj._data
    # Before Python's types: np.float64 is a float subclass, yet must come back as np.float64.
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.hasobject:
            raise TypeError(f"cannot save an array of dtype {obj.dtype}: object arrays would "
                            "need pickle, which cygrad files never contain")
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(obj)
        return {"array" if isinstance(obj, np.ndarray) else "scalar": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if not isinstance(obj, (dict, list, tuple)):
        raise TypeError(f"cannot save an object of type {type(obj).__name__}; cygrad.save "
                        "takes dicts, lists, tuples, arrays, Tensors, numbers, str, bool, None")
    if id(obj) in active:
        raise ValueError("cannot save a structure that contains itself")
    active.add(id(obj))
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"cannot save dict key {key!r} of type {type(key).__name__}; "
                                "keys must be str or int")
            items.append([key, _encode(value, arrays, active)])
        node = {"dict": items}
    else:
        kind = "list" if isinstance(obj, list) else "tuple"
        node = {kind: [_encode(value, arrays, active) for value in obj]}
    active.discard(id(obj))
    return node


# ---------------------------------------------------------------------- reading

def _read_entry(npz, name, path):
    try:
        array = npz[name]
    except ValueError as err:
        # numpy's refusal to unpickle: raised before any byte of the payload is interpreted.
        raise ValueError(f"{path}: entry {name!r} cannot be loaded safely ({err}); cygrad files "
                         "hold only plain arrays, never pickled objects") from err
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        raise ValueError(f"{path}: entry {name!r} is truncated or corrupt: {err}") from err
    if not isinstance(array, np.ndarray):  # np.load hands back raw bytes for a non-.npy member
        raise ValueError(f"{path}: entry {name!r} is not an .npy array")
    return array


def _decode_file(arrays, path):
    raw = arrays.pop(_STRUCTURE)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: structure entry has dtype {raw.dtype} and shape {raw.shape}, "
                         "expected 1-d uint8")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: structure entry is not valid JSON: {err}") from err
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a cygrad checkpoint (unknown structure header)")
    if header.get("version") != _VERSION:
        raise ValueError(f"{path}: checkpoint format version {header.get('version')!r} is not "
                         f"supported (this cygrad reads version {_VERSION})")
    try:
        return _decode(header["root"], arrays)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(f"{path}: malformed structure entry: {err!r}") from err


def _decode(node, arrays):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unexpected node {node!r}")
    (kind, value), = node.items()
    if kind == "array":
        return arrays[value]
    if kind == "scalar":
        return arrays[value][()]
    if kind == "list":
        return [_decode(v, arrays) for v in value]
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in value)
    if kind == "dict":
        out = {}
        for key, v in value:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ValueError(f"bad dict key {key!r}")
            out[key] = _decode(v, arrays)
        return out
    raise ValueError(f"unknown node kind {kind!r}")
