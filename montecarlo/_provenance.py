"""Where this distribution's four import names come from.

``theory``, ``bounds``, ``montecarlo`` and ``figures`` are also the names of
unrelated distributions on PyPI; installed beside this one, any of them
shadows or overwrites a package of ours. :func:`foreign_package` finds a
package that does not come from this distribution's directory, or whose name
another installed distribution also claims.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

__all__ = ["DISTRIBUTION", "PACKAGES", "foreign_package"]

DISTRIBUTION = "gradient-confusion"
PACKAGES = ("theory", "bounds", "montecarlo", "figures")
_ROOT = Path(__file__).resolve().parent.parent


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def foreign_package() -> str | None:
    """A one-line description of the first package not from this distribution.

    Checks, without importing anything, that each of :data:`PACKAGES` is
    found in the directory this ``montecarlo`` comes from, and that no other
    installed distribution declares the same top-level name.

    Returns:
        The problem and the fix, or None when all four are ours.
    """
    fix = f"install {DISTRIBUTION} into its own environment (python -m venv)"
    claims = importlib.metadata.packages_distributions()
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = None if spec is None or spec.origin is None else Path(spec.origin)
        if origin is None or origin.resolve().parent.parent != _ROOT:
            where = "nowhere" if origin is None else str(origin)
            return (
                f"the module {name!r} is imported from {where}, not from "
                f"{_ROOT / name} where this {DISTRIBUTION} is: another package of "
                f"that name shadows it; {fix}"
            )
        others = sorted(
            {d for d in claims.get(name, []) if _normalized(d) != DISTRIBUTION}
        )
        if others:
            return (
                f"the module {name!r} is also installed by the distribution(s) "
                f"{others}, which may have overwritten its files; {fix}"
            )
    return None
