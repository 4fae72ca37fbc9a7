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
import math
import os
import secrets
import zipfile
import zlib

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "get_unsafe_globals_in_checkpoint", "safe_globals"]

_STRUCTURE = "__cygrad__"
_FORMAT = "cygrad-checkpoint"
_VERSION = 1


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Write obj (nested dicts/lists/tuples of arrays, Tensors, numbers, str, bool, None) to f,
    a path or a binary file object (torch's signature; the pickle arguments are accepted and
    unused: nothing is pickled).

    A path is written exactly (no ".npz" is appended, unlike np.savez), through a temporary
    file in the same folder that replaces it only once complete, so a crash never leaves a
    half-written checkpoint. Tensors are saved as their data; load returns arrays. Raises
    TypeError for anything else (sets, objects such as a whole Module: save its state_dict(),
    object arrays, non-str/int dict keys).
    """
    arrays = {}
    root = _encode(obj, arrays, active=set())
    header = {"format": _FORMAT, "version": _VERSION, "root": root}
    try:
        text = json.dumps(header, allow_nan=True, ensure_ascii=False)
    except ValueError as err:  # an int beyond Python's int-to-str digit limit
        raise ValueError(f"{_name(f)}: cannot write the structure: {err}") from None
    entries = {_STRUCTURE: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    if hasattr(f, "write"):  # a file object: written where it stands
        np.savez(f, allow_pickle=False, **entries)
        return
    path = os.fspath(f)
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:
            np.savez(f, allow_pickle=False, **entries)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """The structure saved in f (a path or a binary file object), with numpy arrays where
    arrays or Tensors were saved. torch's signature: map_location may name the CPU (or be
    None), weights_only is what cygrad always does (data only, nothing unpickled), mmap and the
    pickle arguments are accepted unset.

    A plain .npz without cygrad's structure entry loads as a flat dict {name: array}.
    Raises ValueError (naming the file, and the entry where one is at fault) for a truncated,
    corrupt or unsafe file. Memory stays bounded by what the file can hold: only the entries
    the structure refers to are read, and each entry's declared size is checked against its
    zip record and the file's size before anything is allocated.
    """
    if map_location is not None and not callable(map_location) and \
            str(map_location).split(":")[0] != "cpu" and not isinstance(map_location, dict):
        raise RuntimeError(f"cygrad runs on the CPU only, got map_location={map_location!r}")
    if mmap:
        raise NotImplementedError("load(mmap=True) is not supported: cygrad reads the arrays")
    if pickle_module is not None or pickle_load_args:
        raise TypeError("cygrad.load unpickles nothing: pickle_module and pickle arguments "
                        "are not taken")
    if hasattr(f, "read"):  # (a zip is read from its end record: the file's size bounds it)
        start = f.tell()
        size = f.seek(0, 2)
        f.seek(start)
        return _load_from(f, _name(f), size)
    path = os.fspath(f)
    with open(path, "rb") as file:  # closed on every way out (a truncated file included)
        return _load_from(file, path, os.fstat(file.fileno()).st_size)


# torch.load(weights_only=True) unpickles only allowlisted globals; programs allowlist theirs
# (a class saved in a checkpoint) with these. cygrad's files hold no pickled globals at all, so
# the list is kept, as torch keeps it, and never consulted.
_safe_globals = []


def add_safe_globals(safe_globals):
    """Allowlist globals for weights_only loading (kept; cygrad's files never need them)."""
    _safe_globals.extend(safe_globals)


def clear_safe_globals():
    _safe_globals.clear()


def get_safe_globals():
    return list(_safe_globals)


class safe_globals:  # noqa: N801  (torch's name)
    """`with safe_globals([...]):` the globals allowlisted inside the block only."""

    def __init__(self, safe_globals):
        self.safe_globals = list(safe_globals)

    def __enter__(self):
        self._before = len(_safe_globals)
        _safe_globals.extend(self.safe_globals)

    def __exit__(self, *exc):
        del _safe_globals[self._before:]


def get_unsafe_globals_in_checkpoint(f):
    """The globals a weights_only load of f would refuse: none in a file cygrad can read
    (nothing in it is pickled); a file it cannot read raises load's ValueError."""
    load(f)
    return []


def _name(f):
    """A file's name for messages: its path, or the file object's name or type."""
    if hasattr(f, "write") or hasattr(f, "read"):
        return str(getattr(f, "name", type(f).__name__))
    return os.fspath(f)


def _load_from(f, path, size):
    """load's reading, from an open binary file f of `size` bytes (path names it)."""
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        f.seek(0)
        if f.read(6) == b"\x93NUMPY":
            raise ValueError(f"{path}: holds a single .npy array, not a cygrad checkpoint "
                             "(.npz)") from None
        raise ValueError(f"{path}: not a readable cygrad/npz file (truncated or corrupt?): "
                         f"{err}") from err
    with archive:
        entries = _Entries(archive, path, size)
        if _STRUCTURE not in entries.names:
            return {name: entries[name] for name in entries.names}
        return _decode_file(entries, path)


# ---------------------------------------------------------------------- writing

def _encode(obj, arrays, active):
    """obj as a JSON-able node; its arrays go into `arrays` under fresh names."""
    if len(active) > _MAX_DEPTH:
        raise ValueError(f"cannot save containers nested deeper than {_MAX_DEPTH} levels")
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
        hint = (" (torch pickles a whole module or optimizer; cygrad pickles nothing: save its "
                "state_dict() and load it into a new one)" if hasattr(obj, "state_dict") else "")
        raise TypeError(f"cannot save an object of type {type(obj).__name__}{hint}; cygrad.save "
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

# The largest ratio of a deflated entry's size to its compressed size (zlib's limit is 1032:1),
# with room for the stream's own bytes: a declared size beyond it cannot be in the file.
_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20  # bytes read at a time
_MAX_DEPTH = 200  # containers nested deeper than this are refused (save and load)


class _Entries:
    """The .npy entries of an open zip, read on first use (each once), sizes checked first."""

    def __init__(self, archive, path, file_size):
        self.archive, self.path, self.file_size = archive, path, file_size
        self.infos = {}
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            self.infos[name] = info
        self.names = list(self.infos)
        self.arrays = {}

    def __getitem__(self, name):
        if name not in self.arrays:
            if name not in self.infos:
                raise KeyError(f"no entry {name!r}")
            self.arrays[name] = self._read(name, self.infos[name])
        return self.arrays[name]

    def _fail(self, name, what):
        return ValueError(f"{self.path}: entry {name!r} {what}")

    def _read(self, name, info):
        if not info.filename.endswith(".npy"):
            raise self._fail(name, "is not an .npy array")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self._fail(name, f"uses zip compression method {info.compress_type}; cygrad "
                             "reads stored or deflated entries only")
        limit = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED
                                      else _DEFLATE_RATIO) + 1024
        if info.compress_size > self.file_size or info.file_size > limit:
            raise self._fail(name, f"declares {info.file_size} bytes in {info.compress_size} "
                             f"compressed bytes, more than the file ({self.file_size} bytes) "
                             "can hold")
        try:
            with self.archive.open(info) as stream:
                return self._read_npy(name, info, stream)
        except ValueError as err:
            if str(err).startswith(self.path):
                raise
            raise self._fail(name, f"is not a readable .npy array: {err}") from err
        except (OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as err:
            raise self._fail(name, f"is truncated or corrupt: {err}") from err

    def _read_npy(self, name, info, stream):
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise self._fail(name, f"has .npy format version {version}, which cygrad does "
                             "not read")
        if dtype.hasobject:  # refused before a byte of the payload is interpreted
            raise self._fail(name, f"holds dtype {dtype}, which cannot be loaded safely "
                             "(it would be unpickled); cygrad files hold only plain arrays, "
                             "never pickled objects")
        nbytes = math.prod(shape) * dtype.itemsize
        header = stream.tell()
        if header + nbytes != info.file_size:
            raise self._fail(name, f"declares an array of shape {shape} and dtype {dtype} "
                             f"({nbytes} bytes), but the entry holds {info.file_size - header}")
        array = np.empty(shape, dtype, order="F" if fortran else "C")
        raw = memoryview(array.reshape(-1, order="A").view(np.uint8)) if nbytes else b""
        done = 0
        while done < nbytes:
            got = stream.readinto(raw[done:done + _CHUNK])
            if not got:
                raise self._fail(name, f"ends after {done} of its {nbytes} bytes")
            done += got
        if stream.read(1):  # also where zipfile checks the entry's CRC
            raise self._fail(name, "holds more bytes than its header declares")
        return array


def _decode_file(entries, path):
    raw = entries[_STRUCTURE]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: structure entry has dtype {raw.dtype} and shape {raw.shape}, "
                         "expected 1-d uint8")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError included,
        # and the int-to-str digit limit (a 5000-digit number)
        raise ValueError(f"{path}: structure entry is not valid JSON: "
                         f"{type(err).__name__}: {str(err)[:200]}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a cygrad checkpoint (unknown structure header)")
    if header.get("version") != _VERSION:
        raise ValueError(f"{path}: checkpoint format version {header.get('version')!r} is not "
                         f"supported (this cygrad reads version {_VERSION})")
    try:
        return _decode(header["root"], entries, 0)
    except (KeyError, TypeError, IndexError) as err:
        raise ValueError(f"{path}: malformed structure entry: {err!r}") from err
    except ValueError as err:
        if str(err).startswith(path):
            raise
        raise ValueError(f"{path}: malformed structure entry: {err}") from err


def _decode(node, entries, depth):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if depth > _MAX_DEPTH:
        raise ValueError(f"containers nested deeper than {_MAX_DEPTH} levels")
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unexpected node {str(node)[:100]}")
    (kind, value), = node.items()
    if kind in ("array", "scalar"):
        if not isinstance(value, str) or value == _STRUCTURE:
            raise ValueError(f"bad array name {str(value)[:100]}")
        array = entries[value]
        return array if kind == "array" else array[()]
    if kind == "list":
        return [_decode(v, entries, depth + 1) for v in value]
    if kind == "tuple":
        return tuple(_decode(v, entries, depth + 1) for v in value)
    if kind == "dict":
        out = {}
        for key, v in value:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ValueError(f"bad dict key {str(key)[:100]}")
            out[key] = _decode(v, entries, depth + 1)
        return out
    raise ValueError(f"unknown node kind {str(kind)[:100]}")
