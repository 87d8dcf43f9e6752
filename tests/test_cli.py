"""``python -m montecarlo.run``: argument checks, tables, resume, bad specs."""

import pytest

import montecarlo as mc
from montecarlo import run

SPEC = """
title = "cli test"
seed = 3
eta = { start = 1e-3, stop = 10.0, num = 9 }
[defaults]
trials = 12
n = 6
d = 5
width = 6
[configs.width]
theorem = "4.1"
weights = "gaussian"
width = [4, 16]
[configs.orth]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
depth = [1, 3]
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "cli.toml"
    path.write_text(SPEC)
    return path


def test_run_prints_tables_and_claims_by_kind_and_resumes(spec_file, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--spec", str(spec_file), "--out", str(out), "--no-progress", "--no-report"]
    assert run.main(args) == 0
    text = capsys.readouterr().out
    assert "Theorem 4.1 part 2 (Gaussian init" in text and "Theorem 6.1" in text
    assert "width=16" in text and "depth=3" in text
    # the console ends with the claims grouped by kind, columns with a legend
    assert "The theorems' inequalities (for some constant c):" in text
    assert "Checks at a user-given constant (not verdicts on a theorem):" in text
    assert "P(eta <= eta_ref)" in text and "eta_ref: the group's median eta" in text
    assert len(mc.load_results(out)) == 48
    assert run.main([*args, "--trials", "20"]) == 0
    assert len(mc.load_results(out)) == 80
    assert run.main([*args, "--trials", "20"]) == 0
    assert len(mc.load_results(out)) == 80


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--trials", "0", "--trials must be an integer in [1, 10000000], got 0"),
        ("--seed", "-2", "--seed must be an integer in [0, 2^63 - 1"),
        ("--chunk-size", "0", "--chunk-size must be an integer >= 1"),
        ("--confidence", "1.5", "--confidence must be in (0, 1)"),
        ("--backend", "fortran", "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_naming_the_flag(flag, value, message, capsys):
    with pytest.raises(SystemExit) as info:
        run.main([flag, value])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_spec_is_reported_before_any_compute(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[configs.a]\nwidth = 0\ndepth = 'two'\n")
    out = tmp_path / "out"
    assert run.main(["--spec", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "configs.a.width" in err and "configs.a.depth" in err
    assert not out.exists()
    assert run.main(["--spec", "no_such_spec"]) == 2
    assert "bundled spec name" in capsys.readouterr().err


def test_list_shows_bundled_specs(capsys):
    assert run.main(["--list"]) == 0
    assert "quick" in capsys.readouterr().out.split()
