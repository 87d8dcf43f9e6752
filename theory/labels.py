"""Labeling functions ``C`` with ``|C| <= 1`` and ``||grad C|| <= 1``.

Public ``theory.labels`` API; see ``theory/_labels.py`` for details.
"""

from theory._labels import (
    LabelingFunction,
    constant_label,
    linear_teacher,
    network_teacher,
    random_signs,
    tanh_teacher,
)

__all__ = [
    "LabelingFunction",
    "constant_label",
    "linear_teacher",
    "network_teacher",
    "random_signs",
    "tanh_teacher",
]
