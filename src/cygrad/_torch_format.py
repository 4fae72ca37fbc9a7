"""Reading a checkpoint PyTorch wrote (torch.save's zip format, torch 1.6 and later) without
torch: state dicts, tensors, parameters, numbers and containers come back as cygrad's.

The zip holds `<name>/data.pkl` (a pickle whose tensors refer to storages by key) and each
storage's raw bytes at `<name>/data/<key>` (`<name>/byteorder` says their byte order). The
pickle is read by an unpickler that resolves only what a checkpoint of data needs: torch's
tensor and parameter rebuilds (done here, from numpy arrays of the storages, every view
checked to lie inside its storage), its storage classes and dtypes, OrderedDict and Python's
plain types. Anything else (a whole pickled torch module, a class of the program's) is
refused with pickle.UnpicklingError naming it: torch's objects cannot become cygrad's.
"""

import collections
import pickle

import numpy as np

# torch's storage classes (the pickle names them) and the numpy dtype each holds
_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64,
             "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
             "ByteStorage": np.uint8, "BoolStorage": np.bool_}
_UNSUPPORTED = {"HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_MAX_STORAGE = 1 << 40


class _Storage:
    """A storage class named by the pickle (its dtype), or a storage read from the zip."""

    def __init__(self, dtype, array=None):
        self.dtype, self.array = dtype, array


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None):
    """torch._utils._rebuild_tensor_v2: the view (offset, size, stride) of a storage, copied
    into a cygrad tensor; a view reaching outside its storage is refused."""
    from .tensor import Tensor, _rebuild

    if not isinstance(storage, _Storage) or storage.array is None:
        raise pickle.UnpicklingError("torch checkpoint: a tensor without a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) \
            or int(offset) < 0:
        raise pickle.UnpicklingError(f"torch checkpoint: bad tensor geometry size={size} "
                                     f"stride={stride} offset={offset}")
    array = storage.array
    count = int(np.prod(size, dtype=np.int64)) if size else 1
    if count:
        last = int(offset) + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= array.size:
            raise pickle.UnpicklingError(f"torch checkpoint: a tensor of size {size} and "
                                         f"stride {stride} at offset {offset} reaches past "
                                         f"its storage of {array.size} elements")
        view = np.lib.stride_tricks.as_strided(
            array[int(offset):], size, tuple(s * array.itemsize for s in stride),
            writeable=False)
        data = np.array(view)
    else:
        data = np.empty(size, array.dtype)
    return _rebuild(data, bool(requires_grad), Tensor)


def _rebuild_parameter(data, requires_grad, hooks=None, *state):
    """torch._utils._rebuild_parameter(_with_state): a cygrad Parameter of the tensor."""
    from .nn.module import Parameter
    from .tensor import Tensor, _rebuild

    if not isinstance(data, Tensor):
        raise pickle.UnpicklingError("torch checkpoint: a parameter of a non-tensor")
    return _rebuild(data._data, bool(requires_grad), Parameter)


def _globals():
    import builtins

    from . import dtypes
    from .tensor import Size, device

    allowed = {("collections", "OrderedDict"): collections.OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
               ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
               ("torch", "Size"): Size, ("torch", "device"): device}
    for name in ("set", "frozenset", "slice", "complex", "bytearray", "range"):
        allowed[("builtins", name)] = getattr(builtins, name)
    for name, dtype in _STORAGES.items():
        allowed[("torch", name)] = _Storage(dtype)
    for name in ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"):
        allowed[("torch", name)] = dtypes.as_dtype(name)
    return allowed


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, read_storage):
        super().__init__(file)
        self._allowed = _globals()
        self._read_storage = read_storage
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "torch" and name in _UNSUPPORTED:
            raise pickle.UnpicklingError(f"torch checkpoint: it holds {_UNSUPPORTED[name]} "
                                         "tensors, a dtype cygrad does not have")
        what = ("a whole torch module or object" if module.startswith("torch")
                else "an object of a program's own class")
        raise pickle.UnpicklingError(f"torch checkpoint: {module}.{name} is {what}, which "
                                     "cygrad cannot rebuild; load a state_dict() saved by "
                                     "torch instead (tensors, numbers and containers)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _Storage) and isinstance(pid[2], str)):
            raise pickle.UnpicklingError(f"torch checkpoint: unknown persistent id {pid!r:.80}")
        _, kind, key, location, numel = pid
        if key not in self._storages:
            self._storages[key] = _Storage(kind.dtype, self._read_storage(key, kind.dtype,
                                                                          int(numel)))
        return self._storages[key]


def load(archive, path, file_size, trust):
    """The object in a torch zip checkpoint (archive: an open zipfile.ZipFile). trust is
    serialization's: data only either way (weights_only=False cannot make torch's classes)."""
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{path}: not a torch checkpoint (no single <name>/data.pkl)")
    root = pickles[0][:-len("data.pkl")]
    order = "little"
    if root + "byteorder" in names:
        order = archive.read(root + "byteorder").decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise ValueError(f"{path}: unknown byte order {order!r}")

    def read_storage(key, dtype, numel):
        name = f"{root}data/{key}"
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise ValueError(f"{path}: storage {key!r} is missing") from None
        itemsize = np.dtype(dtype).itemsize
        if not 0 <= numel <= _MAX_STORAGE or info.file_size < numel * itemsize or \
                info.compress_size > file_size or \
                info.file_size > info.compress_size * 1032 + 1024:  # deflate's ratio at most
            raise ValueError(f"{path}: storage {key!r} declares {numel} elements but holds "
                             f"{info.file_size} bytes")
        raw = archive.read(name)
        array = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<" if order == "little"
                                                                 else ">"), count=numel)
        return array.astype(np.dtype(dtype).newbyteorder("="), copy=False)

    info = archive.getinfo(pickles[0])
    if info.compress_size > file_size:
        raise ValueError(f"{path}: its pickle declares more bytes than the file holds")
    import io

    try:
        return _TorchUnpickler(io.BytesIO(archive.read(pickles[0])), read_storage).load()
    except pickle.UnpicklingError:
        raise
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        raise ValueError(f"{path}: a torch checkpoint cygrad cannot read: "
                         f"{type(err).__name__}: {err}") from err
