"""figures: every plot renders from a small stored result (Agg, temporary
directory); the report lists every claim of the inference layer, opens with
the summary matrix, and its HTML is well formed (checked with a parser, and in
headless Chromium where one is installed)."""

import ast
import base64
import html.parser
import inspect
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread
from scipy import integrate, stats

import montecarlo as mc
from figures import _ensembles, _style, _theorems, write_report
from figures import _report as report_module
from figures.__main__ import main
from figures._ensembles import median_ci, reflected_kde
from figures._style import new_figure, save_figure
from montecarlo._results import load_run
from montecarlo.claims import collect

TINY = """
title = "tiny test suite"
seed = 3
eta = { start = 1e-4, stop = 10.0, num = 21 }
[defaults]
trials = 40
n = 5
d = 5
depth = 2
width = 6
[configs.t41_width]
theorem = "4.1"
weights = "gaussian"
width = [2, 8, 32]
[configs.t41_depth]
theorem = "4.1"
weights = "gaussian"
depth = [1, 3]
[configs.t41_fixed]
theorem = "4.1"
weights = "gaussian"
fixed_data = true
[configs.t51_depth]
theorem = "5.1"
weights = "small"
depth = [1, 3]
[configs.c51]
theorem = "corollary_5.1"
weights = "ball"
r = [0.0, 1.0]
[configs.t61_depth]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
depth = [1, 2, 3]
[configs.t61_gauss]
weights = "gaussian"
activation = "identity"
output_activation = false
width = 5
depth = [1, 2, 3]
"""

MC_FIGURES = [
    "theorem_4_1_part2",
    "theorem_4_1_part1",
    "theorem_5_1",
    "corollary_5_1",
    "theorem_6_1",
    "c_star_sweep",
    "confusion_vs_architecture",
    "cosine_kde_depth",
    "cosine_kde_width",
    "theorem_6_1_vs_gaussian",
]


def _instance(name, p_above, p_below):
    ev = {
        "p_above": p_above,
        "p_below": p_below,
        "worst_T": 9,
        "bound_over_mean": 2.0,
        "max_lower_over_bound": 1.2,
    }
    return {
        "name": name,
        "info": {"loss": "square", "runs": 400, "eta": 0.1, "data": "gaussian"},
        "evidence": {
            "theorem_3_1": ev,
            "theorem_3_2_derived": ev,
            "theorem_3_2_printed": {**ev, "p_above": 1e-9},
        },
    }


SGD_JSON = {
    "experiment": "sgd_check",
    "runs": 400,
    "instances": [_instance("stub", 0.5, 1e-5)],
}


def _stub_plot(result, out_dir):
    """Stands in for figures._sgd (tested by its owner): one figure from the JSON."""
    fig = new_figure(3, 2)
    fig.subplots().plot([0, 1], [len(result["instances"]), 0])
    return list(save_figure(fig, out_dir, "sgd_stub"))


@pytest.fixture(scope="module")
def stub_plots():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(
            report_module.EXPERIMENT_PLOTS, "sgd_check", (__name__, "_stub_plot")
        )
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, stub_plots):
    """A real (numpy backend) run of TINY plus a stub sgd_check.json, reported."""
    out = tmp_path_factory.mktemp("tiny")
    mc.run_sweep(mc.parse_spec(TINY, name="tiny"), out, backend="numpy")
    (out / "sgd_check.json").write_text(json.dumps(SGD_JSON))
    md = write_report(out, c=0.5)
    return out, md


def test_figures_never_touch_pyplot_global_state():
    # Figures are drawn on matplotlib.figure.Figure with an Agg canvas only.
    for module in (_ensembles, report_module, _style, _theorems):
        tree = ast.parse(inspect.getsource(module))
        imported = [
            f"{getattr(node, 'module', '')}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        ]
        assert not [m for m in imported if "pyplot" in m], module.__name__


def test_every_plot_is_written_as_png_and_pdf(tiny):
    out, _ = tiny
    for name in [*MC_FIGURES, "sgd_stub"]:
        png, pdf = out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf"
        assert png.stat().st_size > 1000, name
        assert pdf.read_bytes()[:5] == b"%PDF-", name
        image = imread(png)
        # an image of plausible size with more than one colour in it
        assert image.shape[0] > 200 and image.shape[1] > 200, name
        assert np.ptp(image[..., :3]) > 0.5, name


def test_report_has_one_row_per_claim_and_opens_with_the_summary(tiny):
    out, md = tiny
    text = md.read_text()
    claims = collect(load_run(out), c=0.5)
    rows = [line for line in text.splitlines() if re.match(r"^\| \[\d+\]", line)]
    assert len(rows) == len(claims)
    for row in rows:
        assert re.search(
            r'class="v-(consistent|violated|inconclusive|ensemble-dep)', row
        )
    assert "printed Theorem 3.2 holds on linear regression" in text
    # the summary matrix comes first, then the claims, then the configuration
    assert (
        text.index("## Summary")
        < text.index("## Claims")
        < text.index("## Configuration")
    )
    summary = text[text.index("## Summary") : text.index("## Claims")]
    assert "| statement | inequality | prose |" in summary
    assert "t41_width" in text and "width = 2, 8, 32" in text


class _Page(html.parser.HTMLParser):
    """Collects what the HTML checks need: ids, links, images, tables, text."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.images = set(), [], []
        self.tables = self.heads = 0
        self.text, self._stack = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._stack.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        self.tables += tag == "table"
        self.heads += tag == "thead"

    def handle_endtag(self, tag):
        while self._stack and self._stack.pop() != tag:
            pass

    def handle_data(self, data):
        if not {"code", "pre", "style"} & set(self._stack):
            self.text.append(data)


def test_html_is_rendered_markdown_with_resolving_links_and_images(tiny):
    out, _ = tiny
    page = _Page()
    page.feed((out / "report.html").read_text())
    text = "".join(page.text)
    assert "`" not in text  # code spans rendered, no raw markdown
    assert not re.search(r"^\|.*\|$", text, flags=re.M)  # tables rendered
    assert "**" not in text
    assert page.tables >= 5 and page.heads == page.tables  # every table has a head
    for href in page.links:
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        else:
            assert (out / href).is_file(), href  # the PDF links
    assert page.images
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _CHROMIUM is None,
    reason="no chromium on PATH (Debian: apt install chromium); the HTML is "
    "checked by the parser test instead",
)
def test_html_in_headless_chromium(tiny, tmp_path):
    out, _ = tiny
    script = (
        "JSON.stringify({imgs: [...document.images].map(i => i.naturalWidth), "
        "missing: [...document.querySelectorAll('a[href^=\"#\"]')].filter(a => "
        "!document.getElementById(a.getAttribute('href').slice(1))).length, "
        "ticks: document.body.innerText.includes('`'), "
        "first: document.querySelector('h2').textContent})"
    )
    page = (
        (out / "report.html")
        .read_text()
        .replace(
            "</body>",
            f"<script>document.title = {script};</script></body>",
        )
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    res = subprocess.run(
        [
            _CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    title = re.search(r"<title>(.*?)</title>", res.stdout, flags=re.S).group(1)
    info = json.loads(html.unescape(title))
    assert info["imgs"] and all(w > 0 for w in info["imgs"])  # every image decodes
    assert info["missing"] == 0 and not info["ticks"]
    assert info["first"] == "Summary"


def test_report_embeds_every_figure(tiny):
    out, md = tiny
    text = md.read_text()
    html = (out / "report.html").read_text()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(pngs) == len(MC_FIGURES) + 1
    for name in pngs:
        assert f"](figures/{name})" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(pngs)
    on_disk = {(out / "figures" / n).read_bytes() for n in pngs}
    assert {base64.b64decode(s) for s in images} == on_disk
    assert "<table>" in html and 'id="fig-c-star-sweep"' in html


def test_experiments_only_directory(tmp_path, stub_plots):
    (tmp_path / "sgd_check.json").write_text(json.dumps(SGD_JSON))
    md = write_report(tmp_path)
    text = md.read_text()
    assert "No Monte Carlo store" in text
    assert "printed Theorem 3.2" in text and 'class="v-violated"' in text
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "sgd_stub.pdf",
        "sgd_stub.png",
    ]


def test_missing_plot_module_is_reported_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setitem(
        report_module.EXPERIMENT_PLOTS, "sgd_check", ("figures._no_such_module", "f")
    )
    (tmp_path / "sgd_check.json").write_text(json.dumps(SGD_JSON))
    text = write_report(tmp_path).read_text()
    assert "figures.\\_no\\_such\\_module is not available" in text


SINGLE = """
title = "one configuration, no grid axis"
eta = { start = 1e-3, stop = 3.0, num = 15 }
[configs.only]
theorem = "6.1"
weights = "orthogonal_linear"
activation = "identity"
output_activation = false
trials = 40
n = 5
d = 5
"""


def test_single_configuration_spec_and_cli_regenerate_identically(tmp_path, capsys):
    mc.run_sweep(mc.parse_spec(SINGLE, name="single"), tmp_path, backend="numpy")
    md = write_report(tmp_path)
    first = md.read_text()
    figs = sorted(p.stem for p in (tmp_path / "figures").glob("*.png"))
    assert figs == ["c_star_sweep", "theorem_6_1"]
    assert "confusion vs. architecture" in first and "not drawn" in first
    # one configuration: no axis, so no trend or c* claim, only the user constant
    assert "bound holds at c = 1 (a user-given constant)" in first
    assert main([str(tmp_path)]) == 0
    assert "report:" in capsys.readouterr().out
    assert md.read_text() == first  # regenerated from the store, deterministically


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"c": 0.0}, "c must"),
        ({"c": np.inf}, "c must"),
    ],
)
def test_write_report_rejects_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        write_report(tmp_path, **kwargs)


def test_write_report_rejects_a_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="out_dir"):
        write_report(tmp_path / "nope")


@pytest.mark.parametrize("argv", [["--confidence", "2"], ["--c", "-1"], []])
def test_cli_rejects_bad_arguments(tmp_path, argv):
    args = [str(tmp_path / "nope")] if not argv else [str(tmp_path), *argv]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_median_ci_is_the_binomial_order_statistic_interval():
    # Oracle: for n = 100 the 95% interval is [x_(40), x_(61)] (1-based),
    # from binom.ppf(0.025, 100, 0.5) = 40.
    x = np.arange(100.0)
    assert stats.binom.ppf(0.025, 100, 0.5) == 40
    assert median_ci(x) == (49.5, 39.0, 60.0)


def test_reflected_kde_keeps_its_mass_on_the_interval():
    rng = np.random.default_rng(0)
    samples = np.clip(rng.normal(0.9, 0.2, 500), -1, 1)  # piled up near +1
    grid = np.linspace(-1, 1, 4001)
    mass = integrate.trapezoid(reflected_kde(samples, grid), grid)
    # Reflection at +-1 returns the mass leaking past each end; what is lost is
    # mass reflected beyond the far end, exp-small here (< 1e-6), plus the
    # trapezoid error, O(h^2 f'') ~ 1e-6 on this grid.
    assert mass == pytest.approx(1.0, abs=1e-4)
