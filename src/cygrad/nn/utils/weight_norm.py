"""The older, hook-based weight_norm and spectral_norm (torch.nn.utils.weight_norm,
torch.nn.utils.spectral_norm, deprecated in torch for nn.utils.parametrizations but still in
much code): parameters `<name>_g` and `<name>_v` (or `<name>_orig` with buffers `<name>_u`,
`<name>_v`), and a forward pre-hook that computes module.<name> before each call."""

import warnings

from ...autograd import no_grad
from ...ops.registry import FUNCTIONS
from .. import functional as F
from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..module import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm", "SpectralNorm", "spectral_norm",
           "remove_spectral_norm"]


def _compute(module, name, weight):
    """module.<name> := weight, a plain attribute the layer's forward reads (nn/module.py)."""
    module.__dict__[name] = weight


class WeightNorm:
    """The forward pre-hook of nn.utils.weight_norm: module.<name> = g * v / ||v||."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return FUNCTIONS["_weight_norm"](v, g, self.dim)

    @staticmethod
    def apply(module, name, dim):
        warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                      "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning,
                      stacklevel=3)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError("Cannot register two weight_norm hooks on the same "
                                   f"parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        del module._parameters[name]
        module.register_parameter(
            name + "_g", Parameter(FUNCTIONS["norm_except_dim"](weight, 2, fn.dim).data))
        module.register_parameter(name + "_v", Parameter(weight.data))
        module._set_computed(name, "_parameters", True)
        _compute(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        module.__dict__.pop(self.name, None)
        module._set_computed(self.name, "_parameters", False)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module, inputs):
        _compute(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Weight normalisation through a forward pre-hook (torch.nn.utils.weight_norm): parameters
    `<name>_g` (the norms over every dimension but dim; None: one norm) and `<name>_v`, and
    module.<name> = g * v / ||v|| computed before each call. Returns module."""
    WeightNorm.apply(module, name, dim)
    return module


def _remove(module, kind, name, what):
    """Undo the pre-hook of `kind` for `name`: its remove(), then the hook unregistered."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, kind) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return
    raise ValueError(f"{what} of '{name}' not found in {module}")


def remove_weight_norm(module, name="weight"):
    """Undo weight_norm: module.<name> a parameter again, holding the current weight."""
    _remove(module, WeightNorm, name, "weight_norm")
    return module


class SpectralNorm:
    """The forward pre-hook of nn.utils.spectral_norm: module.<name> = weight_orig / sigma, the
    largest singular value estimated by the power method (one step per training-mode call)."""

    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.copy_(F.normalize(weight_mat.t().mv(u), dim=0, eps=self.eps))
                    u.copy_(F.normalize(weight_mat.mv(v), dim=0, eps=self.eps))
                u, v = u.clone(), v.clone()
        sigma = u.dot(weight_mat.mv(v))
        return weight / sigma

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        module.__dict__.pop(self.name, None)
        module._set_computed(self.name, "_parameters", False)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        _compute(module, self.name, self.compute_weight(module, module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError("Cannot register two spectral_norm hooks on the same "
                                   f"parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with no_grad():
            weight_mat = fn.reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        module._set_computed(fn.name, "_parameters", True)
        _compute(module, fn.name, weight.data)
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        module._register_state_dict_hook(_SpectralNormStateDictHook(fn))
        module._register_load_state_dict_pre_hook(_SpectralNormLoadHook(fn))
        return fn


class _SpectralNormStateDictHook:
    """Notes the version of the spectral norm's entries in the state dict's metadata."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, module, state_dict, prefix, local_metadata):
        meta = local_metadata.setdefault("spectral_norm", {})
        key = self.fn.name + ".version"
        if key in meta:
            raise RuntimeError(f"Unexpected key in metadata['spectral_norm']: {key}")
        meta[key] = self.fn._version


class _SpectralNormLoadHook:
    """A state dict of before version 1 (`<name>`, `<name>_orig`, `<name>_u`, no `<name>_v`):
    not converted by cygrad (torch solves for v); it says so."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, state_dict, prefix, local_metadata, strict, missing_keys,
                 unexpected_keys, error_msgs):
        version = local_metadata.get("spectral_norm", {}).get(self.fn.name + ".version")
        key = prefix + self.fn.name
        if version is None and key in state_dict and key + "_v" not in state_dict:
            error_msgs.append(f"{key}: a spectral_norm state dict from before its version 1 "
                              "(no _v entry): cygrad does not convert those")


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Spectral normalisation through a forward pre-hook (torch.nn.utils.spectral_norm):
    parameter `<name>_orig`, buffers `<name>_u` and `<name>_v`, and module.<name> =
    weight_orig / sigma computed before each call (one power-method step in training mode).
    dim: None gives 1 for the ConvTranspose layers, else 0. Returns module."""
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo spectral_norm: module.<name> a parameter again, holding the current weight."""
    _remove(module, SpectralNorm, name, "spectral_norm")
    for table, kind in (("_state_dict_hooks", _SpectralNormStateDictHook),
                        ("_load_state_dict_pre_hooks", _SpectralNormLoadHook)):
        hooks = module._hook_table(table)
        for k, (hook, _) in list(hooks.items()):
            if isinstance(hook, kind) and hook.fn.name == name:
                del hooks[k]
                break
    return module
