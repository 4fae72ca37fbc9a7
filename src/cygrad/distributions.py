"""torch.distributions' most used members: Categorical (REINFORCE's policy), Normal (a VAE's
posterior, Gaussian policies), Bernoulli, Uniform, Exponential, Laplace, MultivariateNormal
and Independent (a batch of them as one event), with torch's constructors, properties,
sample / rsample / log_prob / entropy / cdf formulas and argument checks, kl_divergence between
them (register_kl for your own pairs). Samples come from cygrad's generator
(cygrad.manual_seed reproduces them; the streams are not torch's). log_prob, entropy,
kl_divergence and rsample are made of cygrad's ops, so gradients reach the parameters; sample
does not (as torch's).

Not here (AttributeError): the rest of torch.distributions (Beta, Dirichlet, Gamma,
transforms ...).
"""

import math
import numbers

from . import autograd, dtypes
from .tensor import Size, Tensor

__all__ = ["Distribution", "Categorical", "Normal", "Bernoulli", "Uniform", "Exponential",
           "Laplace", "Independent", "MultivariateNormal", "kl_divergence", "register_kl"]


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


class _LocScale(Distribution):
    """A location-scale family: loc and scale (positive) broadcast to the batch shape; the
    mean and the mode are loc."""

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


class Normal(_LocScale):
    """The Gaussian N(loc, scale**2), loc and scale broadcast to the batch shape."""

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



class Exponential(Distribution):
    """The exponential distribution of rate `rate` (mean 1 / rate)."""

    has_rsample = True
    _params = ("rate",)

    def __init__(self, rate, validate_args=None):
        (self.rate,) = _broadcast_all(rate)
        super().__init__(self.rate.shape, Size(), validate_args)
        self._check(bool((self.rate._data > 0).all()), "Expected parameter rate to be positive")

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return _f("zeros_like")(self.rate)

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        draws = _f("empty")(shape, dtype=self.rate.dtype).exponential_()
        return draws / self.rate

    def log_prob(self, value):
        value = _as_tensor(value, self.rate)
        self._check_sample(value, value._data >= 0, "GreaterThanEq(lower_bound=0.0)")
        return self.rate.log() - self.rate * value

    def cdf(self, value):
        value = _as_tensor(value, self.rate)
        return 1 - (-self.rate * value).exp()

    def icdf(self, value):
        return -(-_as_tensor(value, self.rate)).log1p() / self.rate

    def entropy(self):
        return 1.0 - self.rate.log()


class Laplace(_LocScale):
    """The Laplace distribution: density exp(-|x - loc| / scale) / (2 scale)."""

    @property
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return (2 ** 0.5) * self.scale

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        eps = dtypes.finfo(self.loc.dtype).eps
        u = _f("empty")(shape, dtype=self.loc.dtype).uniform_(eps - 1, 1)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value):
        value = _as_tensor(value, self.loc)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        value = _as_tensor(value, self.loc)
        return 0.5 - 0.5 * (value - self.loc).sign() * (
            -(value - self.loc).abs() / self.scale).expm1()

    def icdf(self, value):
        term = _as_tensor(value, self.loc) - 0.5
        return self.loc - self.scale * term.sign() * (-2 * term.abs()).log1p()

    def entropy(self):
        return 1 + (2 * self.scale).log()


def _sum_rightmost(value, dims):
    """value summed over its last `dims` dimensions."""
    return value.reshape(tuple(value.shape[:value.ndim - dims]) + (-1,)).sum(-1) if dims \
        else value


class Independent(Distribution):
    """base_distribution with its last reinterpreted_batch_ndims batch dimensions taken as
    event dimensions: log_prob and entropy summed over them (a diagonal Gaussian as one
    event)."""

    def __init__(self, base_distribution, reinterpreted_batch_ndims, validate_args=None):
        n = reinterpreted_batch_ndims
        if n > len(base_distribution.batch_shape):
            raise ValueError(f"Expected reinterpreted_batch_ndims <= "
                             f"len(base_distribution.batch_shape), actual {n} vs "
                             f"{len(base_distribution.batch_shape)}")
        shape = base_distribution.batch_shape + base_distribution.event_shape
        event_dim = n + len(base_distribution.event_shape)
        self.base_dist, self.reinterpreted_batch_ndims = base_distribution, n
        super().__init__(shape[:len(shape) - event_dim], shape[len(shape) - event_dim:],
                         validate_args)

    @property
    def has_rsample(self):
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self):
        return False if self.reinterpreted_batch_ndims else self.base_dist.has_enumerate_support

    @property
    def mean(self):
        return self.base_dist.mean

    @property
    def mode(self):
        return self.base_dist.mode

    @property
    def variance(self):
        return self.base_dist.variance

    def sample(self, sample_shape=()):
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value):
        return _sum_rightmost(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self):
        return _sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def __repr__(self):
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


class MultivariateNormal(Distribution):
    """The Gaussian N(loc, Sigma) over the last dim of loc, Sigma given as covariance_matrix,
    precision_matrix or scale_tril (its lower Cholesky factor L; exactly one of them); loc
    and the matrix broadcast over batch dims. log_prob and rsample go through L (a
    triangular solve, L @ eps)."""

    has_rsample = True
    _params = ("loc", "covariance_matrix", "precision_matrix", "scale_tril")

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        from . import linalg

        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or "
                             "scale_tril may be specified.")
        matrix = given[0]
        if matrix.dim() < 2:
            name = ("scale_tril" if scale_tril is not None else "covariance_matrix"
                    if covariance_matrix is not None else "precision_matrix")
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional "
                             "leading batch dimensions")
        batch = _f("broadcast_shapes")(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        k = loc.shape[-1]
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(*batch, k, k)
            tril = scale_tril
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(*batch, k, k)
            tril = linalg.cholesky(covariance_matrix)
        else:
            self.precision_matrix = precision_matrix.expand(*batch, k, k)
            flipped = linalg.cholesky(precision_matrix.flip(-2, -1))
            inverse = flipped.flip(-2, -1).transpose(-2, -1)
            eye = _f("eye")(k, dtype=precision_matrix.dtype)
            tril = linalg.solve_triangular(inverse, eye, upper=False)
        self.loc = loc.expand(*batch, k)
        self._tril = tril
        super().__init__(batch, Size((k,)), validate_args)

    def __getattr__(self, name):
        tril = self.__dict__.get("_tril")
        if tril is None:
            raise AttributeError(name)
        shape = tuple(self.batch_shape) + tuple(self.event_shape) * 2
        if name == "scale_tril":
            return tril.expand(*shape)
        if name == "covariance_matrix":
            return (tril @ tril.transpose(-2, -1)).expand(*shape)
        if name == "precision_matrix":
            from . import linalg

            eye = _f("eye")(tril.shape[-1], dtype=tril.dtype)
            inverse = linalg.solve_triangular(tril, eye, upper=False)
            return (inverse.transpose(-2, -1) @ inverse).expand(*shape)
        raise AttributeError(name)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._tril.pow(2).sum(-1).expand(*self._extended_shape())

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        eps = _f("randn")(*shape, dtype=self.loc.dtype) if shape else _f("randn")(
            (), dtype=self.loc.dtype)
        return self.loc + (self._tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return self._tril.diagonal(0, -2, -1).log().sum(-1)

    def log_prob(self, value):
        from . import linalg

        value = _as_tensor(value, self.loc)
        diff = value - self.loc
        shape = _f("broadcast_shapes")(tuple(self._tril.shape[:-2]), tuple(diff.shape[:-1]))
        k = self.loc.shape[-1]
        solved = linalg.solve_triangular(self._tril.expand(*shape, k, k),
                                         diff.expand(*shape, k).unsqueeze(-1), upper=False)
        maha = solved.squeeze(-1).pow(2).sum(-1)
        return -0.5 * (k * math.log(2 * math.pi) + maha) - self._half_log_det()

    def entropy(self):
        k = self.loc.shape[-1]
        h = 0.5 * k * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h.expand(*self.batch_shape) if len(self.batch_shape) else h


# ---------------------------------------------------------------------- KL divergence

_KL = {}


def register_kl(type_p, type_q):
    """Decorator: fn(p, q) computes KL(p || q) for p of type_p and q of type_q."""
    if not (isinstance(type_p, type) and issubclass(type_p, Distribution)):
        raise TypeError(f"Expected type_p to be a Distribution subclass but got {type_p}")
    if not (isinstance(type_q, type) and issubclass(type_q, Distribution)):
        raise TypeError(f"Expected type_q to be a Distribution subclass but got {type_q}")

    def decorator(fn):
        _KL[type_p, type_q] = fn
        return fn

    return decorator


def kl_divergence(p, q):
    """KL(p || q), over the batch shape: the rule registered for the pair of types (the most
    specific one along their classes' MROs)."""
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            fn = _KL.get((tp, tq))
            if fn is not None:
                return fn(p, q)
    raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and "
                              f"q type {type(q).__name__}")


def _infinite_where(t, mask, zero_mask):
    """t with +inf where mask and 0 where zero_mask (zero_mask wins)."""
    t = t.masked_fill(mask, float("inf"))
    return t.masked_fill(zero_mask, 0.0)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    return _infinite_where(t, (q.probs == 0).expand_as(t), (p.probs == 0).expand_as(t)).sum(-1)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    from .nn import functional as F

    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = _infinite_where(t1, q.probs == 0, p.probs == 0)
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = _infinite_where(t2, q.probs == 1, p.probs == 1)
    return t1 + t2


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return result.masked_fill((q.low > p.low) | (q.high < p.high), float("inf"))


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return -rate_ratio.log() + rate_ratio - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return (-scale_ratio.log() + loc_abs_diff / q.scale
            + scale_ratio * (-loc_abs_diff / p.scale).exp() - 1)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist),
                          p.reinterpreted_batch_ndims)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    from . import linalg

    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event "
                         "shapes cannot be computed")
    k = p.event_shape[0]
    shape = _f("broadcast_shapes")(tuple(p.batch_shape), tuple(q.batch_shape))
    lq = q._tril.expand(*shape, k, k)
    term1 = q._half_log_det() - p._half_log_det()
    trace = linalg.solve_triangular(lq, p._tril.expand(*shape, k, k), upper=False).pow(2)
    diff = (q.loc - p.loc).expand(*shape, k).unsqueeze(-1)
    maha = linalg.solve_triangular(lq, diff, upper=False).squeeze(-1).pow(2).sum(-1)
    return term1 + 0.5 * (trace.sum((-2, -1)) + maha - k)
