"""The public surface: short lists, every name resolvable, heavy modules lazy."""

import importlib
import subprocess
import sys

import pytest

HEAVY = ("torch", "dask", "distributed", "pandas", "matplotlib")


def test_importing_the_core_packages_loads_no_heavy_module():
    # A fresh interpreter: what `import theory, bounds, montecarlo` loads.
    code = (
        "import sys, theory, bounds, montecarlo; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "package",
    [
        "theory",
        "theory.activations",
        "theory.losses",
        "theory.labels",
        "theory.confusion",
        "theory.toy",
        "theory.torch",
        "bounds",
        "montecarlo",
        "montecarlo.samplers",
        "montecarlo.backends",
        "montecarlo.dask",
        "montecarlo.claims",
        "montecarlo.sgd",
        "montecarlo.experiments",
        "figures",
    ],
)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__doc__ and len(module.__all__) <= 20
    # the names loaded on first use resolve too (they are listed by dir())
    for name in dir(module) if hasattr(module, "__dir__") else module.__all__:
        if not name.startswith("_"):
            assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018


def test_lazy_names_load_on_first_use():
    code = (
        "import sys, montecarlo, theory; montecarlo.load_results; "
        "print('pandas' in sys.modules, 'torch' in sys.modules); "
        "theory.torch.per_sample_gram; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "False", "True"]
