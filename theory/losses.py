"""The square and logistic losses with their derivatives.

Public ``theory.losses`` API; see ``theory/_losses.py`` for details.
"""

from theory._losses import LOSSES, Loss, get_loss, logistic, square

__all__ = ["LOSSES", "Loss", "get_loss", "logistic", "square"]
