"""Numba kernels are cached by every source file they can reach, never stale.

The end-to-end test copies the packages, computes a numba trial, edits a
constant of ``montecarlo/_rng.py`` (which the kernels of
``montecarlo/_numba_trial.py`` call into) and computes it again: numba's own
cache, keyed by the kernel's file alone, would return the old numbers.
It compiles the kernels twice (about a minute on 2 cores).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest

import montecarlo as mc
from montecarlo import _kernel_cache, _numba_trial, _rng
from montecarlo._kernel_cache import (
    KEEP,
    PackageSourceLocator,
    _prune,
    cache_dir,
    dependencies,
)

ROOT = Path(__file__).parents[1]
PACKAGES = ("theory", "bounds", "montecarlo", "figures")


def _cached_dispatchers(module):
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, numba.core.registry.CPUDispatcher)
        and obj.py_func.__module__ == module.__name__
        and obj._cache.cache_path is not None
    ]


@pytest.mark.parametrize("module", [_rng, _numba_trial])
def test_every_cached_kernel_uses_the_source_closure_locator(module):
    kernels = _cached_dispatchers(module)
    assert kernels
    for kernel in kernels:
        assert isinstance(kernel._cache._impl.locator, PackageSourceLocator)
        assert Path(kernel._cache.cache_path) == cache_dir(Path(module.__file__))


def test_the_kernels_depend_on_what_they_import_and_not_on_the_rest():
    files = {
        p.relative_to(ROOT).as_posix()
        for p in dependencies(ROOT / "montecarlo" / "_numba_trial.py")
    }
    assert {
        "montecarlo/_numba_trial.py",
        "montecarlo/_rng.py",
        "montecarlo/_config.py",
        "montecarlo/_stats.py",
    } <= files
    assert not {"montecarlo/run.py", "montecarlo/_store.py"} & files
    assert {p.name for p in dependencies(ROOT / "montecarlo" / "_rng.py")} == {
        "_rng.py"
    }


def test_old_cache_directories_are_pruned(tmp_path):
    base = tmp_path / "__pycache__"
    old = []
    for i in range(6):
        d = base / f"numba-_mod-{i:016x}"
        d.mkdir(parents=True)
        os.utime(d, (time.time() - 1000 + i, time.time() - 1000 + i))
        old.append(d)
    other = base / "numba-_other-0000000000000000"
    other.mkdir()
    stale = base / "_mod.f-10.py311.nbi"  # numba's own, from before the locator
    stale.touch()
    current = base / "numba-_mod-ffffffffffffffff"
    current.mkdir()
    _prune(base, "numba-_mod-", current)
    kept = sorted(p.name for p in base.iterdir())
    assert kept == sorted(
        [current.name, other.name, *(d.name for d in old[-(KEEP - 1) :])]
    )


_PROBE = """
import json, sys
import numpy as np
import montecarlo as mc
from montecarlo._backends import get_backend
from montecarlo._kernel_cache import cache_dir
from pathlib import Path
import montecarlo._numba_trial as k
config = mc.Config(n=5, d=4, depth=2, width=6, labels="network_teacher")
key = mc.samplers.stream_key(3, config.config_hash)
trials = np.arange(4)
out = {name: get_backend(name).run(config, key, trials, None)[0].tolist()
       for name in ("numba", "numpy")}
out["cache"] = str(cache_dir(Path(k.__file__).resolve()))
out["file"] = mc.__file__
print(json.dumps(out))
"""


def _probe(copy: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = str(copy)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_editing_a_dependency_recompiles_the_kernels_that_call_it(tmp_path):
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    before = _probe(tmp_path)
    assert Path(before["file"]).is_relative_to(tmp_path)
    np.testing.assert_allclose(before["numba"], before["numpy"], rtol=1e-9, atol=1e-12)
    rng = tmp_path / "montecarlo" / "_rng.py"
    text = rng.read_text()
    assert text.count("_W0 = 0x9E3779B9\n") == 1  # Philox's Weyl constant
    rng.write_text(text.replace("_W0 = 0x9E3779B9\n", "_W0 = 0x9E3779BB\n"))
    after = _probe(tmp_path)
    assert after["cache"] != before["cache"]
    changed = ~np.isclose(after["numpy"], before["numpy"], rtol=1e-6)
    assert changed.sum() > 20  # the edit changed the draws (most statistics)
    # the numba kernels follow the edit: not the old draws, the numpy ones
    np.testing.assert_allclose(after["numba"], after["numpy"], rtol=1e-9, atol=1e-12)


def test_compilation_is_announced_before_the_bar_and_a_done_run_has_no_bar(
    tmp_path, capsys, monkeypatch
):
    marked = []
    monkeypatch.setattr(_kernel_cache, "kernels_compiled", lambda: False)
    monkeypatch.setattr(
        _kernel_cache, "mark_kernels_compiled", lambda: marked.append(1)
    )
    spec = mc.parse_spec(
        "[configs.a]\ntrials = 30\nn = 4\nd = 3\nwidth = 3\n", name="a"
    )
    mc.run_sweep(spec, tmp_path, progress=True)
    err = capsys.readouterr().err
    announce = "compiling kernels (once per install, about 20 s) ..."
    assert err.index(announce) < err.index("kernels compiled in") < err.index("30/30")
    assert marked == [1]
    monkeypatch.setattr(_kernel_cache, "kernels_compiled", lambda: True)
    mc.run_sweep(spec, tmp_path, progress=True)  # all stored: one line, no bar
    assert capsys.readouterr().err == "all 30 trials already stored\n"
    mc.run_sweep(spec.with_trials(40), tmp_path, progress=True)  # cached: no notice
    err = capsys.readouterr().err
    assert "compiling" not in err and "40/40" in err
