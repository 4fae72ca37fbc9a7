"""cygrad.optim: torch.optim's optimisers and learning-rate schedulers.

    SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta      (cygrad.optim.<name>)
    Adamax, NAdam, RAdam                               (Adam's variants: numpy twins, no kernel yet)
    Rprop, ASGD                                        (numpy twins, no kernel yet)
    LBFGS                                              (step(closure): quasi-Newton)
    lr_scheduler.StepLR, CosineAnnealingLR, ...        (cygrad.optim.lr_scheduler)

Each optimiser has torch's signature, options, error messages, state and state_dict layout,
and updates a whole parameter group in one exact kernel call (optimizer.py says how); LBFGS,
whose step calls the closure several times, runs on cygrad's tensor ops (lbfgs.py).
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adam_family import Adamax, NAdam, RAdam
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .rprop_asgd import ASGD, Rprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
           "NAdam", "RAdam", "Rprop", "ASGD", "LBFGS", "lr_scheduler"]
