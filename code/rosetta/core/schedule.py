"""The race to 99%: one learning-rate schedule, computed here per step for every framework.

Every framework's race applies :func:`rates`'s value at step ``t`` as its learning rate at step
``t``, so the runs differ in their framework only. The schedule is a linear warm-up over
:data:`WARMUP_EPOCHS` to :data:`PEAK_LR`, then a linear decay that would reach zero one step
after the run's last step. Accuracy on the test set is measured :data:`EVALS_PER_EPOCH` times
an epoch (outside the timed steps); a run stops at the first measurement at or above
:data:`TARGET`.

SGD with momentum comes in two forms that agree at a constant rate and differ when it changes:
``"pytorch"`` (PyTorch, Optax: v <- mu v + g, w <- w - lr v) and ``"sutskever"`` (Keras, MXNet:
v <- mu v - lr g, w <- w + v, as in Sutskever et al., 2013). :data:`MOMENTUM_FORMS` names both;
each race record says which form its framework uses, and its parity is checked against the
reference run in that form.
"""
import numpy as np

TARGET = 0.99
PEAK_LR = 0.03
WARMUP_EPOCHS = 0.25
EVALS_PER_EPOCH = 4
FULL_SEEDS = (0, 1, 2)
QUICK_SEEDS = (0,)
MOMENTUM_FORMS = ("pytorch", "sutskever")


def rates(steps_per_epoch: int, epochs: int, peak: float = PEAK_LR,
          warmup_epochs: float = WARMUP_EPOCHS) -> np.ndarray:
    """The learning rate of every step of a race of ``epochs`` epochs (float64, one per step)."""
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"a race needs at least one step and one epoch, got {steps_per_epoch} steps "
                         f"per epoch and {epochs} epochs")
    if not peak > 0:
        raise ValueError(f"the peak learning rate must be positive, got {peak}")
    total = steps_per_epoch * epochs
    warm = min(total - 1, max(1, round(warmup_epochs * steps_per_epoch)))
    t = np.arange(total, dtype=np.float64)
    up = peak * (t + 1) / warm
    down = peak * (total - t) / (total - warm)
    return np.where(t < warm, up, np.minimum(peak, down))


def seeds(quick: bool) -> tuple:
    """The seeds a race runs over: several in full mode, one in quick mode."""
    return QUICK_SEEDS if quick else FULL_SEEDS


def eval_every(steps_per_epoch: int) -> int:
    """Steps between two accuracy measurements of a race."""
    return max(1, steps_per_epoch // EVALS_PER_EPOCH)


def check_form(form: str) -> str:
    if form not in MOMENTUM_FORMS:
        raise ValueError(f"momentum form must be one of {MOMENTUM_FORMS}, got {form!r}")
    return form
