"""torch.special: the functions cygrad has, under torch.special's names (expit, logit, erf,
erfc, exp2, expm1, log1p, logsumexp, softmax, log_softmax, round, sinc, xlogy, xlog1py, entr,
ndtr, log_ndtr, gammaln, digamma, psi, polygamma, multigammaln, erfinv). The rest of
torch.special (the Bessel and zeta functions ...) is not built: asking for one raises
AttributeError naming it."""

import math

__all__ = ["expit", "logit", "erf", "erfc", "exp2", "expm1", "log1p", "logsumexp", "softmax",
           "log_softmax", "round", "sinc", "xlogy", "xlog1py", "entr", "ndtr", "log_ndtr",
           "gammaln", "digamma", "psi", "polygamma", "multigammaln", "erfinv"]


def _f(name):
    import cygrad

    return getattr(cygrad, name)


def expit(input):
    """The logistic sigmoid."""
    return _f("sigmoid")(input)


def logit(input, eps=None):
    return _f("logit")(input, eps)


def erf(input):
    return _f("erf")(input)


def erfc(input):
    return _f("erfc")(input)


def exp2(input):
    return _f("exp2")(input)


def expm1(input):
    return _f("expm1")(input)


def log1p(input):
    return _f("log1p")(input)


def logsumexp(input, dim, keepdim=False):
    return _f("logsumexp")(input, dim, keepdim)


def softmax(input, dim, *, dtype=None):
    return _f("softmax")(input, dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None):
    return _f("log_softmax")(input, dim, dtype=dtype)


def round(input, *, decimals=0):  # noqa: A001  (torch's name)
    return _f("round")(input, decimals=decimals)


def sinc(input):
    return _f("sinc")(input)


def xlogy(input, other):
    return _f("xlogy")(input, other)


def xlog1py(input, other):
    """input * log1p(other), 0 where input is 0 (NaN where other is NaN), as torch's."""
    import cygrad

    other = other if isinstance(other, cygrad.Tensor) else cygrad.tensor(other)
    product = input * other.log1p()
    return cygrad.where((input == 0) & ~other.isnan(), product * 0, product)


def entr(input):
    """-x log x elementwise: 0 at 0, -inf below 0."""
    safe = input.masked_fill(input <= 0, 1)
    out = -(safe * safe.log())
    out = out.masked_fill(input == 0, 0.0)
    return out.masked_fill(input < 0, float("-inf"))


def ndtr(input):
    """The standard normal CDF: (1 + erf(x / sqrt 2)) / 2."""
    return 0.5 * (1 + (input * (1 / math.sqrt(2))).erf())


def log_ndtr(input):
    """log of the standard normal CDF, through erfc (accurate far into the left tail)."""
    return (0.5 * (-input * (1 / math.sqrt(2))).erfc()).log()


def gammaln(input):
    """log|Gamma(x)| (torch.lgamma)."""
    return _f("lgamma")(input)


def digamma(input):
    return _f("digamma")(input)


psi = digamma


def polygamma(n, input):
    """The n-th derivative of digamma (torch.polygamma)."""
    return _f("polygamma")(n, input)


def multigammaln(input, p):
    """The multivariate log-gamma of dimension p (torch.mvlgamma)."""
    return _f("mvlgamma")(input, p)


def erfinv(input):
    return _f("erfinv")(input)


def __getattr__(name):
    raise AttributeError(f"module 'cygrad.special' has no attribute '{name}': cygrad does not "
                         f"implement torch.special.{name}")
