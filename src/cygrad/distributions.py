"""torch.distributions' most used members: Categorical (REINFORCE's policy), Normal (a VAE's
posterior, Gaussian policies), Bernoulli and Uniform, with torch's constructors, properties,
sample / rsample / log_prob / entropy / cdf formulas and argument checks. Samples come from
cygrad's generator (cygrad.manual_seed reproduces them; the streams are not torch's).
log_prob, entropy and rsample are made of cygrad's ops, so gradients reach the parameters;
sample does not (as torch's).

Not here (AttributeError): the rest of torch.distributions (Beta, Dirichlet, MultivariateNormal,
transforms, kl_divergence ...).
"""

import math
import numbers

from . import autograd, dtypes
from .tensor import Size, Tensor

__all__ = ["Distribution", "Categorical", "Normal", "Bernoulli", "Uniform"]


def _f(name):
    import cygrad

    return getattr(cygrad, name)


def _as_tensor(x, like=None):
    if isinstance(x, Tensor):
        return x
    dtype = like.dtype if isinstance(like, Tensor) else dtypes.get_default_dtype()
    return _f("tensor")(x, dtype=dtype)


def _broadcast_all(*values):
    """The arguments as tensors of one shape (numbers take the tensors' dtype)."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    tensors = [_as_tensor(v, like) for v in values]
    return _f("broadcast_tensors")(*tensors)


def _shape(sample_shape):
    return Size(tuple(sample_shape) if not isinstance(sample_shape, numbers.Integral)
                else (sample_shape,))


class Distribution:
    """Base class: batch_shape, event_shape, sample and the properties torch's has."""

    has_rsample = False
    has_enumerate_support = False
    _validate_default = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = Size(batch_shape), Size(event_shape)
        self._validate_args = (Distribution._validate_default if validate_args is None
                               else validate_args)

    @staticmethod
    def set_default_validate_args(value):
        if value not in (True, False):
            raise ValueError
        Distribution._validate_default = value

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=()):
        return Size(_shape(sample_shape) + self._batch_shape + self._event_shape)

    def sample(self, sample_shape=()):
        with autograd.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} does not implement rsample")

    def sample_n(self, n):
        return self.sample(Size((n,)))

    @property
    def stddev(self):
        return self.variance.sqrt()

    def perplexity(self):
        return self.entropy().exp()

    def _support(self, values, expand):
        """enumerate_support: the values along a new first dim, over the batch shape."""
        values = values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values

    def _check(self, ok, message):
        if self._validate_args and not ok:
            raise ValueError(message)

    def _check_sample(self, value, ok, support):
        """torch's _validate_sample: a value outside the support is a ValueError."""
        if self._validate_args and not bool(ok.all()):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape "
                             f"{tuple(value.shape)}) to be within the support ({support}) of "
                             f"the distribution {self!r}, but found invalid values:\n{value}")

    _params = ()

    def __repr__(self):
        shown = []
        for k in self._params:
            if k in self.__dict__:
                v = self.__dict__[k]
                shown.append(f"{k}: {v.shape if v.numel() > 1 else v.detach()}")
        return f"{type(self).__name__}({', '.join(shown)})"


class _ProbsOrLogits(Distribution):
    """A distribution given by probs or by logits (exactly one): the other made when first
    asked for (`_to_probs`, `_to_logits`)."""

    _params = ("probs", "logits")
    has_enumerate_support = True

    @staticmethod
    def _one_of(probs, logits):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")

    def __getattr__(self, name):
        if name == "probs":
            self.probs = self._to_probs(self.logits)
            return self.probs
        if name == "logits":
            eps = dtypes.finfo(self.probs.dtype).eps
            self.logits = self._to_logits(self.probs.clamp(eps, 1 - eps))
            return self.logits
        raise AttributeError(name)


class Categorical(_ProbsOrLogits):
    """One of K categories (the last dim of probs or logits), probabilities normalised."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._one_of(probs, logits)
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
            param = self.probs
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
            param = self.logits
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], Size(), validate_args)
        if probs is not None:
            self._check(bool((probs._data >= 0).all()),
                        "Expected parameter probs to be non-negative")

    @staticmethod
    def _to_probs(logits):
        return logits.softmax(-1)

    @staticmethod
    def _to_logits(probs):
        return probs.log()

    @property
    def param_shape(self):
        return Size(self.batch_shape + (self._num_events,))

    @property
    def mean(self):
        return _f("full")(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    variance = mean

    @property
    def mode(self):
        return self.probs.argmax(-1)

    def sample(self, sample_shape=()):
        shape = _shape(sample_shape)
        n = math.prod(shape)
        probs_2d = self.probs.detach().reshape(-1, self._num_events)
        draws = _f("multinomial")(probs_2d, n, True).T
        return draws.reshape(tuple(shape) + tuple(self.batch_shape))

    def log_prob(self, value):
        value = _as_tensor(value)
        data = value._data
        self._check_sample(value, (data == data.round()) & (data >= 0)
                           & (data < self._num_events), f"IntegerInterval(lower_bound=0, "
                           f"upper_bound={self._num_events - 1})")
        value = value.long().unsqueeze(-1)
        value, log_pmf = _f("broadcast_tensors")(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self):
        logits = self.logits.clamp(min=dtypes.finfo(self.logits.dtype).min)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        return self._support(_f("arange")(self._num_events), expand)


class Normal(Distribution):
    """The Gaussian N(loc, scale**2), loc and scale broadcast to the batch shape."""

    has_rsample = True
    _params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = _broadcast_all(loc, scale)
        super().__init__(self.loc.shape, Size(), validate_args)
        self._check(bool((self.scale._data > 0).all()),
                    "Expected parameter scale to be positive")

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale ** 2

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with autograd.no_grad():
            return _f("normal")(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = _f("randn")(*shape, dtype=self.loc.dtype) if shape else \
            _f("randn")((), dtype=self.loc.dtype)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        value = _as_tensor(value, self.loc)
        var = self.scale ** 2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - \
            math.log(math.sqrt(2 * math.pi))

    def cdf(self, value):
        value = _as_tensor(value, self.loc)
        return 0.5 * (1 + ((value - self.loc) * self.scale.reciprocal() /
                           math.sqrt(2)).erf())

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()


class Bernoulli(_ProbsOrLogits):
    """A 0/1 variable with P(1) = probs (or sigmoid(logits))."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._one_of(probs, logits)
        if probs is not None:
            (self.probs,) = _broadcast_all(probs)
            param = self.probs
        else:
            (self.logits,) = _broadcast_all(logits)
            param = self.logits
        super().__init__(param.shape, Size(), validate_args)
        if probs is not None:
            self._check(bool(((self.probs._data >= 0) & (self.probs._data <= 1)).all()),
                        "Expected parameter probs to be in [0, 1]")

    @staticmethod
    def _to_probs(logits):
        return logits.sigmoid()

    @staticmethod
    def _to_logits(probs):
        return probs.log() - (-probs).log1p()

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with autograd.no_grad():
            return _f("bernoulli")(self.probs.detach().expand(shape))

    def log_prob(self, value):
        from .nn import functional as F

        value = _as_tensor(value, self.logits)
        self._check_sample(value, (value._data == 0) | (value._data == 1), "Boolean()")
        logits, value = _broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        from .nn import functional as F

        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand=True):
        return self._support(_f("arange")(2, dtype=self.probs.dtype), expand)


class Uniform(Distribution):
    """Uniform on [low, high)."""

    has_rsample = True
    _params = ("low", "high")

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = _broadcast_all(low, high)
        super().__init__(self.low.shape, Size(), validate_args)
        self._check(bool((self.low._data < self.high._data).all()),
                    "Expected parameter low to be less than high")

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        rand = _f("rand")(*shape, dtype=self.low.dtype) if shape else \
            _f("rand")((), dtype=self.low.dtype)
        return self.low + rand * (self.high - self.low)

    def log_prob(self, value):
        value = _as_tensor(value, self.low)
        inside = (self.low <= value) & (self.high > value)
        self._check_sample(value, inside._data, f"Interval(lower_bound={self.low}, "
                           f"upper_bound={self.high})")
        return inside.type(self.low.dtype).log() - (self.high - self.low).log()

    def cdf(self, value):
        value = _as_tensor(value, self.low)
        return ((value - self.low) / (self.high - self.low)).clamp(0, 1)

    def entropy(self):
        return (self.high - self.low).log()

