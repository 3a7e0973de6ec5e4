"""Training: task objectives (loss and metrics as the original code computes them) and a seeded training loop."""

from .loop import TrainConfig, fit, make_loader, seed_everything, timed_evaluate, train_one_epoch, training_state
from .objectives import Objective, objective_for

__all__ = ["Objective", "TrainConfig", "fit", "make_loader", "objective_for", "seed_everything", "timed_evaluate",
           "train_one_epoch", "training_state"]
