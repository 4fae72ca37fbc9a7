"""Save and load checkpoints (torch.save / torch.load): state dicts, optimizer state and counters
as plain .npz data; any other object pickled, and unpickled only under torch's weights_only
rules.

    cygrad.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    checkpoint = cygrad.load(path)

A file is a zip of .npy entries, readable by `np.load` alone:
  "__cygrad__"  the nested structure as UTF-8 JSON bytes (a uint8 array)
  "a0", "a1"…   one entry per array, in the order the structure first meets them

In the JSON, Python None, bools, ints, floats and strings are stored as themselves; containers
and arrays as one-key objects: {"dict": [[key, value], ...]}, {"list": [...]}, {"tuple": [...]},
{"array": "a0"} and {"scalar": "a1"} (a numpy scalar, kept as a 0-d entry so its dtype
survives), and a Tensor as {"tensor": "a2"} (with "requires_grad": true for a leaf that
requires grad, "parameter": true for a Parameter): it comes back a Tensor, as torch's does.
Dict keys may be str or int, so an optimizer's state dict keeps its integer keys.

What the data format cannot hold (a whole Module or optimizer, sets, namedtuples, objects of a
program's own classes) is pickled, as torch pickles everything, into one uint8 entry with the
root {"pickle": "p0"}. load unpickles it only as torch's weights_only loading does (the default):
a global (class or function) is resolved only if it is on the default allowlist (cygrad's
tensors through a checked rebuild, numpy's arrays, OrderedDict, Python's plain types) or was
allowlisted with add_safe_globals / safe_globals; weights_only=False trusts the file.

Why the data format is safe: entries are read with `np.load(..., allow_pickle=False)`, so no
byte of such a file is unpickled; an entry holding an object array is refused with a
ValueError. Arrays come back bitwise (dtype, shape and bytes), floats in the JSON are written
with repr, which round-trips exactly (NaN and infinities included).
"""

import collections
import json
import math
import os
import pickle
import secrets
import zipfile
import zlib

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "get_unsafe_globals_in_checkpoint", "safe_globals"]

_STRUCTURE = "__cygrad__"
_FORMAT = "cygrad-checkpoint"
_VERSION = 2  # 2: Tensors come back as Tensors ({"tensor": ...}); objects pickled ({"pickle"})
_READS = (1, 2)


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Write obj to f, a path or a binary file object (torch's signature).

    Nested dicts (str or int keys), lists and tuples of Tensors, arrays, numbers, str, bool and
    None are written as data (module docstring): nothing pickled, readable by np.load, and
    Tensors (and Parameters, with requires_grad) come back as they were. Anything else (a whole
    Module or optimizer, a set, an object of your own) is pickled, as torch pickles it
    (pickle_module's dumps when given, protocol pickle_protocol or 3 at least) into the same
    kind of file; load unpickles it only under torch's weights_only rules (see load).

    A path is written exactly (no ".npz" is appended, unlike np.savez), through a temporary
    file in the same folder that replaces it only once complete, so a crash never leaves a
    half-written checkpoint.
    """
    arrays = {}
    try:
        root = _encode(obj, arrays, active=set())
    except _Unstructured:
        dumps = (pickle_module or pickle).dumps
        arrays = {"p0": np.frombuffer(dumps(obj, protocol=max(pickle_protocol, 3)), np.uint8)}
        root = {"pickle": "p0"}
    header = {"format": _FORMAT, "version": _VERSION, "root": root}
    try:
        text = json.dumps(header, allow_nan=True, ensure_ascii=False)
    except ValueError as err:  # an int beyond Python's int-to-str digit limit
        raise ValueError(f"{_name(f)}: cannot write the structure: {err}") from None
    entries = {_STRUCTURE: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    # (every entry is a plain array; numpy 2.0's savez would store an allow_pickle= argument as
    # one more entry)
    if hasattr(f, "write"):  # a file object: written where it stands
        np.savez(f, **entries)
        return
    path = os.fspath(f)
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **entries)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class _Unstructured(Exception):
    """_encode met something the data format does not hold: save pickles obj instead."""


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """The object saved in f (a path or a binary file object); torch's signature.

    Data saved as data comes back as it was (Tensors as Tensors, arrays as arrays). A pickled
    object (save's fallback) is unpickled under torch's rules: with weights_only (the default
    unless a pickle_module is given, as torch 2.6 on) only allowlisted globals are resolved:
    cygrad's tensors, parameters and dtypes, numpy's arrays, OrderedDict and Python's set
    types, and what add_safe_globals / safe_globals allowlisted (a whole module's classes);
    anything else raises pickle.UnpicklingError naming it. weights_only=False unpickles
    anything: only for files you trust, as with torch. map_location may name the CPU (or be
    None); mmap is refused.

    A plain .npz without cygrad's structure entry loads as a flat dict {name: array}; a
    checkpoint torch.save wrote loads when it holds data (cygrad/_torch_format.py).
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
    if weights_only is None:
        weights_only = pickle_module is None
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is "
                           "specified")
    trust = None if weights_only else (pickle_module or pickle, pickle_load_args)
    if hasattr(f, "read"):  # (a zip is read from its end record: the file's size bounds it)
        start = f.tell()
        size = f.seek(0, 2)
        f.seek(start)
        return _load_from(f, _name(f), size, trust)
    path = os.fspath(f)
    with open(path, "rb") as file:  # closed on every way out (a truncated file included)
        return _load_from(file, path, os.fstat(file.fileno()).st_size, trust)


# torch.load(weights_only=True) unpickles only allowlisted globals; programs allowlist theirs
# (the classes of a whole saved module) with these.
_safe_globals = []


def add_safe_globals(safe_globals):
    """Allowlist globals (classes, functions) for weights_only loading."""
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
    """The globals ("module.name") of f's pickle that weights_only loading would refuse: none
    in a file saved as data (a file cygrad cannot read raises load's ValueError)."""
    found = []
    trust = ("scan", found)
    if hasattr(f, "read"):
        start = f.tell()
        size = f.seek(0, 2)
        f.seek(start)
        _load_from(f, _name(f), size, trust)
    else:
        with open(os.fspath(f), "rb") as file:
            _load_from(file, os.fspath(f), os.fstat(file.fileno()).st_size, trust)
    return found


# ---------------------------------------------------------------------- pickled objects

def _default_globals():
    """What weights_only loading resolves without being told: cygrad's tensors (through their
    checked rebuild), parameters, dtypes and devices, numpy's arrays and dtypes, OrderedDict and
    Python's plain types (torch's default allowlist, with numpy's arrays as cygrad's storage)."""
    import builtins

    from . import dtypes
    from .nn import module
    from .tensor import Size, Tensor, device

    allowed = {
        ("cygrad.tensor", "_rebuild"): _checked_rebuild,
        ("cygrad.tensor", "Tensor"): Tensor,
        ("cygrad.tensor", "Size"): Size,
        ("cygrad.tensor", "device"): device,
        ("cygrad.dtypes", "as_dtype"): dtypes.as_dtype,
        ("cygrad.nn.module", "Parameter"): module.Parameter,
        ("cygrad.nn.module", "_computed_table"): module._computed_table,
        ("cygrad", "Tensor"): Tensor,  # where the classes say they live (older files: above)
        ("cygrad", "Size"): Size,
        ("cygrad.nn", "Parameter"): module.Parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "Counter"): collections.Counter,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    }
    for name in ("set", "frozenset", "slice", "complex", "bytearray", "range"):
        allowed[("builtins", name)] = getattr(builtins, name)
    for code in "?bBhHiIlLqQefdgFDG":
        dtype_class = type(np.dtype(code))
        allowed[("numpy.dtypes", dtype_class.__name__)] = dtype_class
    for name in dir(dtypes):  # cygrad's dtype class and its instances (float32 ...)
        value = getattr(dtypes, name)
        if getattr(value if isinstance(value, type) else type(value), "__module__",
                   None) == "cygrad.dtypes":
            allowed[("cygrad.dtypes", name)] = value
    return allowed


def _parameter_class():
    from .nn.module import Parameter

    return Parameter


def _checked_rebuild(array, requires_grad, cls):
    """cygrad.tensor._rebuild for weights_only loading: a Tensor (or subclass) of a plain array."""
    from .tensor import Tensor, _rebuild

    if not (isinstance(cls, type) and issubclass(cls, Tensor)) or \
            not isinstance(array, np.ndarray) or array.dtype.hasobject or \
            not isinstance(requires_grad, bool):
        raise pickle.UnpicklingError("Weights only load failed: a tensor with a bad payload")
    return _rebuild(array, requires_grad, cls)


class _WeightsUnpickler(pickle.Unpickler):
    """Resolves only allowlisted globals (torch's weights_only unpickler's rule)."""

    def __init__(self, file, allowed, scan=None):
        super().__init__(file)
        self._allowed = allowed
        self._scan = scan
        self._user = {(getattr(g, "__module__", None), getattr(g, "__qualname__", None)): g
                      for g in _safe_globals}

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if (module, name) in self._user:
            return self._user[(module, name)]
        if self._scan is not None:
            self._scan.append(f"{module}.{name}")
            return _Placeholder
        raise pickle.UnpicklingError(
            "Weights only load failed. This file can still be loaded, to do so you have two "
            "options, do those steps only if you trust the source of the checkpoint.\n\t(1) "
            "Re-running `torch.load` with `weights_only` set to `False` will likely succeed, "
            "but it can result in arbitrary code execution. Do it only if you got the file "
            "from a trusted source.\n\t(2) Alternatively, to load with `weights_only=True` "
            "please check the recommended steps in the following error message.\n\t"
            f"WeightsUnpickler error: Unsupported global: GLOBAL {module}.{name} was not an "
            "allowed global by default. Please use `torch.serialization.add_safe_globals"
            f"([{name}])` or the `torch.serialization.safe_globals([{name}])` context manager "
            "to allowlist this global if you trust this class/function.")


class _Placeholder:
    """What a scan (get_unsafe_globals_in_checkpoint) resolves a refused global to."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return self


def _unpickle(raw, path, trust):
    """The object pickled in entry `raw` (1-d uint8) under trust: None (weights_only), a
    (pickle module, load arguments) pair (anything), or ("scan", list) (collect refused
    globals)."""
    import io

    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: pickle entry has dtype {raw.dtype} and shape {raw.shape}")
    data = raw.tobytes()
    if trust is None or trust[0] == "scan":
        unpickler = _WeightsUnpickler(io.BytesIO(data), _default_globals(),
                                      None if trust is None else trust[1])
        try:
            return unpickler.load()
        except pickle.UnpicklingError:
            raise
        except Exception as err:
            if trust is not None:
                return None
            raise pickle.UnpicklingError(f"Weights only load failed: {type(err).__name__}: "
                                         f"{err}") from err
    module, arguments = trust
    return module.loads(data, **arguments)


def _name(f):
    """A file's name for messages: its path, or the file object's name or type."""
    if hasattr(f, "write") or hasattr(f, "read"):
        return str(getattr(f, "name", type(f).__name__))
    return os.fspath(f)


def _load_from(f, path, size, trust=None):
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
        if _STRUCTURE not in entries.names and any(n.endswith("/data.pkl")
                                                   for n in archive.namelist()):
            from . import _torch_format  # a checkpoint torch.save wrote

            return _torch_format.load(archive, path, size, trust)
        if _STRUCTURE not in entries.names:
            return {name: entries[name] for name in entries.names}
        return _decode_file(entries, path, trust)


# ---------------------------------------------------------------------- writing

def _encode(obj, arrays, active):
    """obj as a JSON-able node; its arrays go into `arrays` under fresh names."""
    if len(active) > _MAX_DEPTH:
        raise ValueError(f"cannot save containers nested deeper than {_MAX_DEPTH} levels")
    if isinstance(obj, Tensor):
        name = f"a{len(arrays)}"
        arrays[name] = obj._data
        node = {"tensor": name}
        if obj.requires_grad and obj.grad_fn is None:
            node["requires_grad"] = True
        if type(obj) is _parameter_class():
            node["parameter"] = True
        elif type(obj) is not Tensor:
            raise _Unstructured(obj)
        return node
    # Before Python's types: np.float64 is a float subclass, yet must come back as np.float64.
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.hasobject:
            raise _Unstructured(obj)
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(obj)
        return {"array" if isinstance(obj, np.ndarray) else "scalar": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if type(obj) not in (dict, list, tuple, collections.OrderedDict):
        raise _Unstructured(obj)  # pickled instead (a namedtuple keeps its type there)
    if id(obj) in active:
        raise ValueError("cannot save a structure that contains itself")
    active.add(id(obj))
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise _Unstructured(key)
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


def _decode_file(entries, path, trust=None):
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
    if header.get("version") not in _READS:
        raise ValueError(f"{path}: checkpoint format version {header.get('version')!r} is not "
                         f"supported (this cygrad reads versions {_READS})")
    root = header.get("root")
    if isinstance(root, dict) and set(root) == {"pickle"}:
        return _unpickle(entries[root["pickle"]], path, trust)
    try:
        return _decode(root, entries, 0)
    except (KeyError, TypeError, IndexError) as err:
        raise ValueError(f"{path}: malformed structure entry: {err!r}") from err
    except ValueError as err:
        if str(err).startswith(path):
            raise
        raise ValueError(f"{path}: malformed structure entry: {err}") from err


def _tensor_node(node, entries):
    """A {"tensor": name, "requires_grad": bool, "parameter": bool} node: the Tensor."""
    from .tensor import _rebuild

    name = node["tensor"]
    if not isinstance(name, str) or name == _STRUCTURE or \
            not set(node) <= {"tensor", "requires_grad", "parameter"}:
        raise ValueError(f"bad tensor node {str(node)[:100]}")
    requires_grad = node.get("requires_grad", False) is True
    if node.get("parameter", False) is True:
        from .nn.module import Parameter

        return _rebuild(entries[name], requires_grad, Parameter)
    from .tensor import Tensor

    return _rebuild(entries[name], requires_grad, Tensor)


def _decode(node, entries, depth):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if depth > _MAX_DEPTH:
        raise ValueError(f"containers nested deeper than {_MAX_DEPTH} levels")
    if isinstance(node, dict) and "tensor" in node:
        return _tensor_node(node, entries)
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unexpected node {str(node)[:100]}")
    (kind, value), = node.items()
    if kind == "tensor":
        return _tensor_node(node, entries)
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
