"""Numba's on-disk kernel cache, keyed by every source file the kernels depend on.

numba's own cache (``cache=True``) keys a compiled function by *its own*
source file only. The kernels of :mod:`montecarlo._numba_trial` call into
:mod:`montecarlo._rng` and read constants of other modules, so after an edit
of ``_rng.py`` numba would load the old machine code and the numba backend
would silently disagree with the numpy reference.

Importing this module (``montecarlo/__init__.py`` does, before any kernel is
defined) puts a cache locator in front of numba's for functions defined in
this distribution's packages (``theory``, ``bounds``, ``montecarlo``,
``figures``). A compiled function can only reach its module's globals, which
its module's imports bind, so its cache is keyed by the module's *import
closure*: the module's file and, transitively, every file of these packages
it imports (found by reading the ``import`` statements, function bodies
included; ``import a.b`` counts ``a/__init__.py`` too, since it binds ``a``).
The cache directory is named by a hash of those files' contents and of the
numba and Python versions, so an edit of any file a kernel can reach starts a
fresh cache, and an edit elsewhere (say ``run.py``) does not recompile.
Functions outside these packages keep numba's locators.

Where the directory is, first writable of:

1. ``$NUMBA_CACHE_DIR/<package>_<path hash>/numba-<module>-<hash>/`` if
   ``NUMBA_CACHE_DIR`` is set (e.g. shared by Dask workers);
2. ``<package>/__pycache__/numba-<module>-<hash>/``;
3. numba's user-wide cache directory, then the temporary directory, each
   with the subpath of 1 (a read-only installation still imports).

Old directories do not accumulate: when a module's new directory is made,
all but the :data:`KEEP` most recently modified ``numba-<module>-*``
directories are deleted, and so are numba's own cache files from before this
locator in ``<package>/__pycache__``. ``NUMBA_CACHE_LOCATOR_CLASSES``, if
set, replaces every locator, this one included (numba's documented override).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numba
from numba.core import caching, config
from numba.misc.appdirs import AppDirs

__all__ = [
    "KEEP",
    "PackageSourceLocator",
    "cache_dir",
    "dependencies",
    "kernels_compiled",
    "mark_kernels_compiled",
    "source_hash",
]

KEEP = 3
"""Cache directories kept per module: the current one and the two latest others."""

_PACKAGES = ("theory", "bounds", "montecarlo", "figures")
_ROOT = Path(__file__).resolve().parent.parent
_KERNELS = _ROOT / "montecarlo" / "_numba_trial.py"


def _module_files(name: str) -> list[Path]:
    """Source files of ``name`` (a module, or a package's ``__init__``) if ours."""
    parts = name.split(".")
    if parts[0] not in _PACKAGES:
        return []
    base = _ROOT.joinpath(*parts)
    found = [base.with_suffix(".py"), base / "__init__.py"]
    return [f for f in found if f.is_file()]


def _statements(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` outside function bodies (which kernels cannot run)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    return out


def _imported(path: Path) -> set[str]:
    """Absolute names of the modules whose globals ``path`` binds at import.

    ``import a.b`` binds ``a``: both ``a`` and ``a.b`` count. ``from a import
    b`` binds the submodule ``a.b`` if there is one, else an attribute of
    ``a``. Imports inside functions are skipped: compiled code cannot import.
    """
    package = path.relative_to(_ROOT).parent.parts  # a module's or __init__'s
    names: set[str] = set()
    for node in _statements(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                names.add(sub if _module_files(sub) else module)
    return names


@functools.cache
def dependencies(path: Path) -> tuple[Path, ...]:
    """The import closure of a module within this distribution's packages.

    Args:
        path: A source file of one of the packages.

    Returns:
        Sorted source files: ``path`` and every file of the packages it
        imports, transitively.
    """
    seen = {path}
    todo = [path]
    while todo:
        for name in _imported(todo.pop()):
            for file in _module_files(name):
                if file not in seen:
                    seen.add(file)
                    todo.append(file)
    return tuple(sorted(seen))


@functools.cache
def source_hash(path: Path) -> str:
    """Hash of the import closure of ``path`` and of the numba/Python versions.

    Args:
        path: A source file of one of the packages.

    Returns:
        16 hex digits of a SHA-256 over the closure's relative paths and contents.
    """
    h = hashlib.sha256(
        f"numba {numba.__version__}; python {sys.version_info[:3]}".encode()
    )
    for file in dependencies(path):
        name = file.relative_to(_ROOT).as_posix().encode()
        data = file.read_bytes()
        h.update(len(name).to_bytes(8, "little") + name)
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _prune(base: Path, prefix: str, keep: Path) -> None:
    """Delete all but the newest :data:`KEEP` ``<prefix>*`` directories in ``base``."""
    others = [p for p in base.glob(f"{prefix}*") if p.is_dir() and p != keep]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP - 1 :]:
        # another process may be pruning too: a file already gone is the
        # outcome wanted, not an error
        shutil.rmtree(old, ignore_errors=True)
    if base.name == "__pycache__":  # numba's own (stale) files for these modules
        for old in [*base.glob("*.nbi"), *base.glob("*.nbc")]:
            old.unlink(missing_ok=True)


@functools.cache
def cache_dir(path: Path) -> Path | None:
    """The cache directory of the kernels defined in the source file ``path``.

    Args:
        path: A source file of one of the packages.

    Returns:
        The first writable candidate (see the module docstring), created if
        missing, or None if none is writable.
    """
    prefix = f"numba-{path.stem}-"
    name = prefix + source_hash(path)
    subpath = caching._CacheLocator.get_suitable_cache_subpath(str(path))
    bases = [path.parent / "__pycache__"]
    if config.CACHE_DIR:
        bases.insert(0, Path(config.CACHE_DIR) / subpath)
    bases += [
        Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / subpath,
        Path(tempfile.gettempdir()) / f"numba-cache-{os.getuid()}" / subpath,
    ]
    for base in bases:
        target = base / name
        existed = target.is_dir()
        if _writable(target):
            if not existed:
                _prune(base, prefix, target)
            return target
    return None


class PackageSourceLocator(caching._CacheLocator):
    """numba cache locator for functions of this distribution's packages.

    The cache path holds the hash of the function's module's import closure
    (:func:`source_hash`), which is also the source stamp numba checks.
    """

    def __init__(self, py_func: object, py_file: str) -> None:
        self._file = Path(py_file).resolve()
        self._lineno = py_func.__code__.co_firstlineno

    def get_cache_path(self) -> str:
        """The directory of this function's index and data files."""
        return str(cache_dir(self._file))

    def get_source_stamp(self) -> str:
        """The hash of every source file the function's module can reach."""
        return source_hash(self._file)

    def get_disambiguator(self) -> str:
        """The function's first line number (as numba's own locators)."""
        return str(self._lineno)

    @classmethod
    def from_function(
        cls, py_func: object, py_file: str
    ) -> PackageSourceLocator | None:
        """A locator for ``py_func`` if it lives in one of this distribution's packages.

        Args:
            py_func: The Python function being compiled.
            py_file: Its source file.

        Returns:
            The locator, or None (numba then tries its own locators).
        """
        file = Path(py_file).resolve()
        ours = file.suffix == ".py" and file.parent.parent == _ROOT
        if not ours or file.parent.name not in _PACKAGES or cache_dir(file) is None:
            return None
        return cls(py_func, py_file)


def _install() -> None:
    # The list is shared by every CacheImpl subclass (CPU and CUDA): mutate it.
    locators = caching.CacheImpl._locator_classes
    if PackageSourceLocator not in locators:
        locators.insert(0, PackageSourceLocator)


def _marker() -> Path | None:
    """The file saying the numba backend's kernels are compiled for this CPU."""
    from numba.core.registry import cpu_target

    directory = cache_dir(_KERNELS)
    if directory is None:
        return None
    cpu = repr(cpu_target.target_context.codegen().magic_tuple()).encode()
    return directory / f"compiled-{hashlib.sha256(cpu).hexdigest()[:12]}"


def kernels_compiled() -> bool:
    """Whether the numba backend's kernels, as they are now, are cached for this CPU."""
    marker = _marker()
    return marker is not None and marker.is_file()


def mark_kernels_compiled() -> None:
    """Record that the numba backend's kernels are now cached for this CPU."""
    marker = _marker()
    if marker is not None:
        marker.touch()


_install()
