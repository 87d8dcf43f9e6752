"""Every bad input gives one line naming the key or flag and its allowed range.

The command line is run in process: a bad input exits with code 2 and exactly
one line on stderr, starting with ``error:``, before anything runs; nothing
is written to ``--out``. The library functions raise ``ValueError`` naming the
argument.
"""

import errno
import importlib.machinery
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import bounds
import montecarlo as mc
import theory
from montecarlo import _memory, _provenance, _store, run

GOOD = """
[defaults]
trials = 4
n = 4
d = 3
width = 4
[configs.a]
theorem = "4.1"
weights = "gaussian"
"""


def _spec(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return str(path)


def _run_bad(argv: list[str], capsys) -> str:
    """Run the CLI; assert exit code 2 and one ``error:`` line; return the line."""
    try:
        code = run.main(argv)
    except SystemExit as exc:  # argparse's own checks exit
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


@pytest.fixture(autouse=True)
def sixteen_gib(monkeypatch):
    """A machine with 16 GiB, so that memory refusals do not depend on the host."""
    monkeypatch.setattr(_memory, "machine_memory", lambda: 16 * 2**30)


# (spec text, extra flags, what the one line must contain)
SPEC_CASES = {
    "defaults-unknown-key": (
        "[defaults]\nwidht = 8\n[configs.a]\nwidth = [4, 8]\n",
        [],
        ["defaults.widht: unknown key (allowed: ["],
    ),
    "defaults-batch-size-zero": (
        "[defaults]\nbatch_sizes = [0]\n[configs.a]\nn = 4\n",
        [],
        ["defaults.batch_sizes: must be a list of integers >= 1, got [0]"],
    ),
    "defaults-n-not-a-number": (
        '[defaults]\nn = "ten"\n[configs.a]\nbatch_sizes = [2]\n',
        [],
        ["defaults.n: must be an integer >= 2, got 'ten'"],
    ),
    "trials-a-float": (
        "[configs.a]\ntrials = 1e13\n",
        [],
        [
            "configs.a.trials: must be an integer in [1, 10000000], got 1000000000",
            "a float: write the integer",
        ],
    ),
    "seed-beyond-int64": (
        "seed = 99999999999999999999\n[configs.a]\nn = 4\n",
        [],
        ["seed: must be an integer in [0, 2^63 - 1 = 9223372036854775807]"],
    ),
    "width-beyond-memory": (
        GOOD + "width = 100000\n",
        [],
        ["configs.a: needs about", "GiB allowed (80% of this machine's memory)"],
    ),
    "n-beyond-memory": (
        GOOD + "n = 200000\n",
        [],
        ["configs.a: needs about", "Gram n x n", "lower n, d, width or depth"],
    ),
    "batch-size-a-single-batch": (
        GOOD + "batch_sizes = [4]\n",
        [],
        ["configs.a.batch_sizes: 4 leaves a single mini-batch", "at most n / 2 = 2"],
    ),
    "trials-flag-too-large": (
        GOOD,
        ["--trials", "10000000000000"],
        ["--trials must be an integer in [1, 10000000], got 10000000000000"],
    ),
    "seed-flag-too-large": (
        GOOD,
        ["--seed", "99999999999999999999"],
        ["--seed must be an integer in [0, 2^63 - 1 = 9223372036854775807]"],
    ),
    "trials-flag-not-an-integer": (
        GOOD,
        ["--trials", "1e3"],
        ["argument --trials: invalid int value: '1e3'"],
    ),
    "scheduler-not-an-address": (
        GOOD,
        ["--scheduler", "notaurl://x"],
        ["--scheduler must be a Dask scheduler address", "unknown scheme 'notaurl'"],
    ),
    "chunk-size-zero": (GOOD, ["--chunk-size", "0"], ["--chunk-size must be"]),
    "threads-zero": (GOOD, ["--threads", "0"], ["--threads must be an integer in"]),
    "confidence-nan": (GOOD, ["--confidence", "nan"], ["--confidence must be in"]),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_bad_input_is_one_line_before_anything_is_written(case, tmp_path, capsys):
    text, flags, fragments = SPEC_CASES[case]
    out = tmp_path / "out"
    line = _run_bad(
        ["--spec", _spec(tmp_path, text), "--out", str(out), *flags], capsys
    )
    for fragment in fragments:
        assert fragment in line, line
    assert not out.exists()


def test_spec_that_is_a_directory_is_named_as_one(tmp_path, capsys):
    line = _run_bad(["--spec", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert f"got {str(tmp_path)!r}, which is a directory" in line
    assert not (tmp_path / "o").exists()


def test_out_that_cannot_be_created_is_named(tmp_path, capsys):
    # /sys refuses new entries even to root (tests run as root: chmod would not)
    out = Path("/sys/gradient-confusion-test-out")
    if not Path("/sys").is_dir():
        pytest.skip("needs Linux sysfs")
    line = _run_bad(["--spec", _spec(tmp_path, GOOD), "--out", str(out)], capsys)
    assert f"cannot create results directory {out}" in line
    assert "choose a writable --out" in line


def test_out_on_a_read_only_file_system_is_named(tmp_path, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(
        _store.os, "open", read_only
    )  # the lock file is the first write
    out = tmp_path / "out"
    line = _run_bad(["--spec", _spec(tmp_path, GOOD), "--out", str(out)], capsys)
    assert line == (
        f"error: cannot write to results directory {out}: Read-only file system; "
        "choose a writable --out"
    )


def test_out_of_another_spec_is_refused_and_left_unchanged(tmp_path, capsys):
    out = tmp_path / "out"
    mc.run_sweep(mc.parse_spec(GOOD, name="first"), out)
    meta = _store.read_meta(out)
    line = _run_bad(["--spec", _spec(tmp_path, GOOD), "--out", str(out)], capsys)
    assert "holds a run of spec 'first', not 'bad'" in line and "--fresh" in line
    assert _store.read_meta(out) == meta


def test_bad_seed_does_not_touch_an_existing_run(tmp_path, capsys):
    out = tmp_path / "out"
    path = _spec(tmp_path, GOOD)
    assert run.main(["--spec", path, "--out", str(out), "--no-report"]) == 0
    capsys.readouterr()
    meta = _store.read_meta(out)
    _run_bad(["--spec", path, "--out", str(out), "--seed", str(2**63)], capsys)
    assert _store.read_meta(out) == meta
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\^63"):
        mc.run_sweep(mc.parse_spec(GOOD, name="bad"), out, seed=2**63)
    assert _store.read_meta(out) == meta


def test_memory_estimate_scales_with_the_configuration():
    small = _memory.trial_bytes(mc.Config(n=10, width=32, depth=2, d=10))
    wide = _memory.trial_bytes(mc.Config(n=10, width=100_000, depth=2, d=10))
    # weights width^2 (drawn, QR/norm workspace): 3 x 8 x 1e10 bytes dominate
    assert 2.4e11 <= wide <= 2.5e11 and small < 2**20
    big_n = _memory.trial_bytes(mc.Config(n=200_000, width=32, depth=2, d=10))
    assert 3 * 8 * 200_000**2 <= big_n <= 1.01 * 3 * 8 * 200_000**2


def test_machine_memory_is_what_the_system_reports():
    total = _memory.machine_memory()
    assert 0 < total <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_threads_multiply_the_memory_a_run_needs(monkeypatch):
    # a configuration that fits on one thread but not on 200 at once
    spec = mc.parse_spec(GOOD.replace("n = 4", "n = 8000"), name="t")
    monkeypatch.setattr(_memory, "machine_memory", lambda: 8 * 2**30)
    _memory.check_memory(spec, threads=1, chunk_size=64)
    with pytest.raises(mc.SpecError, match=r"200 trial\(s\) at once"):
        _memory.check_memory(spec, threads=200, chunk_size=64)


# --- library functions -------------------------------------------------------------


def test_gram_names_x_when_it_is_not_numeric():
    W = [np.ones((3, 2)), np.ones((1, 3))]
    with pytest.raises(
        ValueError, match="^X must be an array of real numbers, got 'abc'"
    ):
        theory.gram(W, "abc", np.zeros(2), activation="tanh", loss="square")
    with pytest.raises(ValueError, match=r"^y must be an array of real numbers"):
        theory.gram(W, np.ones((2, 2)), "ab", activation="tanh", loss="square")
    with pytest.raises(ValueError, match=r"^weights\[1\] must be an array of real"):
        theory.gram(
            [W[0], [["a", 1, 2]]],
            np.ones((2, 2)),
            np.zeros(2),
            activation="tanh",
            loss="square",
        )


def test_theorem_3_1_accepts_steps_beyond_int64():
    args = dict(alpha=0.1, n=2, L=1.0, mu=0.5, eta=0.1, gap0=1.0)
    floor = 2 * 0.1 / (2 * 0.5 * (1 - 2 * 1.0 * 0.1 / 2))  # n eta / (2 mu (1 - nLa/2))
    assert bounds.theorem_3_1(10**30, **args) == pytest.approx(floor, rel=1e-15)
    np.testing.assert_allclose(
        bounds.theorem_3_1([0, 10**30], **args), [1.0 + floor, floor], rtol=1e-15
    )
    with pytest.raises(ValueError, match="T must contain integers >= 0, got -1"):
        bounds.theorem_3_1([10**30, -1], **args)
    with pytest.raises(ValueError, match="T must be a non-empty array of integers"):
        bounds.theorem_3_1(1e30, **args)


# --- the start-up check of the import names ----------------------------------------


def test_this_environment_has_no_foreign_package():
    assert _provenance.foreign_package() is None


def test_a_shadowing_package_is_named_at_start(monkeypatch, tmp_path, capsys):
    find_spec = importlib.util.find_spec
    fake = tmp_path / "figures" / "__init__.py"

    def shadowed(name, *args):
        if name == "figures":
            return importlib.machinery.ModuleSpec(name, None, origin=str(fake))
        return find_spec(name, *args)

    monkeypatch.setattr(_provenance.importlib.util, "find_spec", shadowed)
    line = _run_bad(["--list"], capsys)
    assert f"the module 'figures' is imported from {fake}, not from" in line
    assert "install gradient-confusion into its own environment" in line


def test_a_package_claimed_by_another_distribution_is_named(monkeypatch, capsys):
    claims = _provenance.importlib.metadata.packages_distributions()
    claims["bounds"] = [*claims.get("bounds", []), "bounds"]
    monkeypatch.setattr(
        _provenance.importlib.metadata, "packages_distributions", lambda: claims
    )
    line = _run_bad(["--list"], capsys)
    assert (
        "the module 'bounds' is also installed by the distribution(s) ['bounds']"
        in line
    )


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("tcp://10.0.0.5:8786", {"address": "tcp://10.0.0.5:8786"}),
        ("10.0.0.5:8786", {"address": "10.0.0.5:8786"}),
        ("tls://[::1]:8786", {"address": "tls://[::1]:8786"}),
        ("inproc://10.0.0.5/1234/1", {"address": "inproc://10.0.0.5/1234/1"}),
    ],
)
def test_scheduler_addresses_distributed_accepts(value, target):
    from montecarlo._dask import scheduler_target

    assert scheduler_target(value) == target


def test_scheduler_file_is_accepted_and_a_missing_port_is_named(tmp_path):
    from montecarlo._dask import scheduler_target

    path = tmp_path / "scheduler.json"
    path.write_text('{"address": "tcp://127.0.0.1:8786"}')
    assert scheduler_target(str(path)) == {"scheduler_file": str(path)}
    with pytest.raises(ValueError, match="missing port number in address 'host'"):
        scheduler_target("tcp://host")
