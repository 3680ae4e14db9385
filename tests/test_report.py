"""`circuits report`: a small site of the hand-built mixed3b curves, built once per module, checked
on disk and in a real browser (Debian's headless chromium driven by selenium).

Tiny settings (3 units, 4 feature-visualization steps, 16 orientations, 2 photographs at 96 px)
keep the build to seconds; the browser tests skip, saying why, only when chromium or chromedriver
is not installed (`.ci/run` installs both).
"""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

import weights
from circuits.cli import main
from circuits.report import ReportSettings, build_report
from circuits.report.cache import fingerprint

UNITS = "mixed3b:379,mixed3b:385,mixed3b:342"
EARLY = "mixed3a:hb_early_curve_bank"
TINY = ReportSettings(vis_steps=4, n_angles=16, curvatures=(0.5, 1.0), heat_orientations=16, heat_curvatures=3,
                      image_size=96, max_images=2, top_k=6, per_bin=3, n_angles_early=24, n_angles_edit=16,
                      n_top_weights=5, joint_top_k=2, joint_step=30)


@pytest.fixture(scope="module")
def model():
    return weights.model("handbuilt")


@pytest.fixture(scope="module")
def site(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    first = build_report(model, UNITS, out, settings=TINY, early=EARLY, progress=False)
    return out, first


def _pages(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.html"))


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.csp = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if a.get(k):
                self.refs.append(a[k])
        if tag == "meta" and a.get("http-equiv", "").lower() == "content-security-policy":
            self.csp = "default-src 'none'" in a.get("content", "")


# --- on disk ---------------------------------------------------------------------------


def test_every_part_is_computed_once_then_reused(site, model):
    """A rerun with nothing changed computes nothing (every part comes from the cache) and writes the
    same pages, byte for byte; checked against the first run's list of computed parts."""
    out, first = site
    assert sorted(first.computed) == sorted(["vis", "tuning", "heatmap", "weights", "scan", "joint", "early", "edit"])
    before = {p: p.read_bytes() for p in _pages(out)}
    again = build_report(model, UNITS, out, settings=TINY, early=EARLY, progress=False)
    assert again.computed == [] and sorted(again.reused) == sorted(first.computed)
    assert {p: p.read_bytes() for p in _pages(out)} == before


def test_a_changed_setting_recomputes_only_its_part(site, model, tmp_path):
    """Only the part whose settings changed is recomputed (the cache key is the part's settings)."""
    out, _ = site
    import dataclasses

    changed = dataclasses.replace(TINY, vis_steps=5)
    r = build_report(model, UNITS, out, settings=changed, early=EARLY, progress=False)
    assert r.computed == ["vis"]
    build_report(model, UNITS, out, settings=TINY, early=EARLY, progress=False)  # back to the fixture's pages


def test_a_changed_image_folder_is_scanned_again(tmp_path):
    """The scan's cache key follows the folder's contents (names, sizes, times), not only its path."""
    import dataclasses

    from PIL import Image

    from circuits.report.compute import images_key

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (100, 100), (10, 20, 30)).save(folder / "a.png")
    s = dataclasses.replace(TINY, images=str(folder))
    k1 = images_key(s)
    assert images_key(s) == k1
    Image.new("RGB", (100, 100), (40, 50, 60)).save(folder / "b.png")
    assert images_key(s) != k1


def test_fingerprint_follows_the_weights(model):
    """The fingerprint changes when one weight changes and comes back when it is restored."""
    import torch

    fp = fingerprint(model)
    w = model.mixed3b_5x5_pre_relu_conv.weight
    with torch.no_grad():
        old = w[0, 0, 0, 0].item()
        w[0, 0, 0, 0] += 1.0
        try:
            assert fingerprint(model) != fp
        finally:
            w[0, 0, 0, 0] = old
    assert fingerprint(model) == fp


def test_pages_reference_only_local_files_that_exist(site):
    """Every src/href of every page is a relative path to a file of the site (or an anchor), and every
    page carries a content security policy that allows nothing by default."""
    out, first = site
    pages = _pages(out)
    assert out / "index.html" in pages and first.family_page in pages and len(first.unit_pages) == 3
    for p in pages:
        parser = _Refs()
        parser.feed(p.read_text())
        assert parser.csp, f"{p} has no content security policy"
        for ref in parser.refs:
            if ref.startswith("#"):
                continue
            assert not urlparse(ref).scheme and not ref.startswith("/"), f"{p}: non-local reference {ref}"
            target = (p.parent / unquote(ref.split("#")[0])).resolve()
            assert target.is_file() and out.resolve() in target.parents, f"{p}: {ref} is not a file of the site"


def test_family_page_has_every_section(site):
    """The family page shows each unit's visualization, curve, heat map, dataset and the early-curve
    and editing sections, and the heat maps are in dataset standard deviations."""
    out, first = site
    text = first.family_page.read_text()
    for anchor in ("vis", "radial", "heatmaps", "dataset", "joint", "early", "editing", "about"):
        assert f'id="{anchor}"' in text
    for u in UNITS.split(","):
        assert f'data-unit="{u}"' in text
    assert "standard deviations from the unit's mean pre-ReLU activation over the dataset" in text
    assert text.count('class="heatmap"') == 3 * 2  # curves and angles maps of each unit
    assert text.count('class="radial"') == 4  # the family's curves and the three editing conditions
    assert text.count('class="radial joint"') == 1 and text.count('class="lines"') == 4  # 3 sources + aligned


def test_a_visualization_that_does_not_fire_its_unit_is_said_so(site, model):
    """Each unit is read on its own feature visualization (the PNG the page shows, through the model
    independently of the report); the page warns exactly when one of them leaves its unit at 0."""
    import torch
    from PIL import Image

    out, first = site
    fired = {}
    for u in UNITS.split(","):
        layer, ch = u.split(":")
        png = np.array(Image.open(first.family_page.parent / "img" / "vis" / f"{layer}_{ch}.png").convert("RGB"))
        x = torch.from_numpy(png).permute(2, 0, 1)[None].float() / 255
        t = model.run_with_cache(model.to_input(x), [model.unit(u).branch])[model.unit(u).branch]
        fired[u] = float(t[0, model.unit(u).branch_channel, t.shape[-2] // 2, t.shape[-1] // 2]) > 0
    assert ("do not make their unit fire" in first.family_page.read_text()) == (not all(fired.values()))


def test_early_weights_excite_same_and_inhibit_opposite_orientation(site):
    """On the hand-built network the early curves excite the curves of the same orientation and inhibit
    the opposite one (built so; "Curve Circuits" measures the same on InceptionV1; the README's
    three-way table in docs/families.md: +0.30 at 0 degrees, -1.00 at 180)."""
    out, _ = site
    import json

    rec = [json.loads(p.read_text()) for p in (out / "_cache").glob("early-*.json")]
    assert len(rec) == 1
    from circuits.report.cache import _join

    import numpy as np

    with np.load(next((out / "_cache").glob("early-*.npz"))) as z:
        r = _join(rec[0]["result"], {k: z[k] for k in z.files})
    centres, mean = np.asarray(r["centres"]), np.asarray(r["mean"])
    assert mean[centres == 0][0] > 0 and mean[centres == -180][0] < 0


def test_strongest_inputs_are_the_banks_the_curves_are_built_from(site, model):
    """Each hand-built curve's strongest excitatory inputs from mixed3a are units of the banks the
    spec builds it from (the 24 early curves and the 8 3a lines), an independent fact of the spec."""
    from circuits import families as fam

    out, first = site
    import json

    rec = json.loads(next((out / "_cache").glob("weights-*.json")).read_text())["result"]
    assert rec["before"] == "mixed3a" and rec["after"] is None  # nothing live after mixed3b
    built = {u.id for f in ("mixed3a:hb_early_curve_bank", "mixed3a:hb_lines_3a") for u in fam.resolve_units(f, model)}
    for u in UNITS.split(","):
        top = [uid for uid, _, how in rec["inputs"][u]["excite"]]
        assert all(how == "expanded: relu" for _, _, how in rec["inputs"][u]["excite"])  # the 5x5 bottleneck
        assert top and set(top) <= built, (u, top)


def test_interrupted_run_leaves_no_half_written_page(site, model, monkeypatch):
    """A run that fails while writing pages leaves every page whole (the previous one) and no
    temporary file behind (the atomic writer)."""
    from circuits.report import pages

    out, first = site
    before = {p: p.read_bytes() for p in _pages(out)}
    calls = []

    def failing(d, uid):
        calls.append(uid)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return pages.page("x", "<p>changed</p>", 2)

    monkeypatch.setattr(pages, "unit_page", failing)
    with pytest.raises(KeyboardInterrupt):
        build_report(model, UNITS, out, settings=TINY, early=EARLY, progress=False)
    monkeypatch.undo()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    for p, data in before.items():
        now = p.read_bytes()
        assert now == data or b"<p>changed</p>" in now and now.rstrip().endswith(b"</html>")
    build_report(model, UNITS, out, settings=TINY, early=EARLY, progress=False)


@pytest.mark.parametrize("argv, words", [
    (["--out", "{file}"], "is a file"),
    (["--out", "{foreign}"], "not a report site"),
    (["--out", "{new}", "--images", "/no/such/folder"], "no such folder"),
    (["--out", "{new}", "--device", "cuda:99"], "--device cuda:99"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, capsys, argv, words):
    """Bad --out, --images or --device: exit status 2 and one line naming the value, nothing written."""
    f = tmp_path / "file.txt"
    f.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    paths = {"file": f, "foreign": foreign, "new": tmp_path / "new"}
    argv = [a.format(**paths) for a in argv]
    assert main(["report", "mixed3b:379", *argv, "--no-progress"]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]


def test_a_folder_holding_only_an_interrupted_runs_cache_is_accepted(tmp_path):
    """A first run interrupted before any page leaves only _cache/: the next run may use the folder."""
    from circuits.report.site import check_out_folder

    (tmp_path / "s" / "_cache").mkdir(parents=True)
    assert check_out_folder(tmp_path / "s") == tmp_path / "s"


def test_unknown_family_is_refused(tmp_path, capsys):
    """A family that does not exist: exit 2, naming it."""
    assert main(["report", "mixed3b:no_such_family", "--out", str(tmp_path / "s"), "--no-progress"]) == 2
    assert "no_such_family" in capsys.readouterr().err


# --- in a real browser ---------------------------------------------------------------------


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1300,1000", "--allow-file-access-from-files"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture(scope="module")
def browser():
    b = _browser()
    yield b
    b.quit()


def test_every_page_loads_cleanly_offline(site, browser):
    """In headless chromium, each page: no console message at warning level or above (the browser's
    log, which also reports CSP violations and failed loads), every image loaded (naturalWidth > 0),
    and every resource the page fetched is a file:// URL."""
    out, _ = site
    for p in _pages(out):
        browser.get_log("browser")  # drop what earlier pages left
        browser.get(p.resolve().as_uri())
        browser.execute_script("return document.readyState")
        bad = browser.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert bad == [], f"{p}: images that did not load: {bad[:5]}"
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).concat([document.URL])")
        assert urls and all(u.startswith("file://") for u in urls), [u for u in urls if not u.startswith("file://")]
        n_imgs = browser.execute_script("return document.images.length")
        if p.name != "index.html" or p.parent != out:
            assert n_imgs > 0
        logs = [e for e in browser.get_log("browser") if e["level"] in ("WARNING", "SEVERE")]
        assert logs == [], f"{p}: console: {logs}"
        assert browser.execute_script(
            "return getComputedStyle(document.body).fontFamily").startswith("system-ui"), "stylesheet not applied"


def _opacities(browser, fig_index: int = 0) -> dict[str, list[float]]:
    return browser.execute_script("""
        const fig = document.querySelectorAll('figure.radial')[arguments[0]];
        const out = {};
        fig.querySelectorAll('path.curve').forEach(e => {
            const u = e.getAttribute('data-unit');
            (out[u] = out[u] || []).push(parseFloat(getComputedStyle(e).opacity));
        });
        return out;""", fig_index)


def test_hovering_a_unit_isolates_its_curve(site, browser):
    """Hovering a unit's peak dot in the radial plot fades every other unit's curve (computed opacity
    < 0.2) and leaves its own at 1; moving away restores all; keyboard focus on a key does the same."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    out, first = site
    browser.get(first.family_page.resolve().as_uri())
    units = UNITS.split(",")
    assert all(v == [1.0] for v in _opacities(browser).values())
    fig = browser.find_elements(By.CSS_SELECTOR, "figure.radial")[0]
    for u in units:
        dot = fig.find_element(By.CSS_SELECTOR, f'circle.peak[data-unit="{u}"]')
        ActionChains(browser).move_to_element(dot).perform()
        op = _opacities(browser)
        assert op[u] == [1.0], (u, op)
        assert all(max(v) < 0.2 for k, v in op.items() if k != u), (u, op)
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
    assert all(v == [1.0] for v in _opacities(browser).values())
    key = fig.find_element(By.CSS_SELECTOR, f'.keys a[data-unit="{units[1]}"]')
    browser.execute_script("arguments[0].focus()", key)
    op = _opacities(browser)
    assert op[units[1]] == [1.0] and all(max(v) < 0.2 for k, v in op.items() if k != units[1])
