"""Parameters as one flat vector and back (torch.nn.utils.parameters_to_vector, ...)."""

from ...tensor import Tensor
from ...utils._tensors import wrap

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated, in order, into one 1-d Tensor (recorded: a
    gradient flows back to the parameters, as in torch)."""
    import cygrad

    return cygrad.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Point each parameter's data at its slice of vec (in order, reshaped to the
    parameter's shape): as in torch, the parameters then share vec's memory."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__module__}."
                        f"{type(vec).__name__}")
    flat = vec._data
    if flat.ndim != 1:
        flat = flat.reshape(-1)
    pointer = 0
    for param in parameters:
        n = param._data.size
        if pointer + n > flat.size:
            raise RuntimeError(f"shape '{list(param._data.shape)}' is invalid for input of "
                               f"size {max(flat.size - pointer, 0)}")
        param.data = wrap(flat[pointer:pointer + n].reshape(param._data.shape))
        pointer += n
