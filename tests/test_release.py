"""Release: license, version, typing marker, the wheel, and weight verification by computation.

Independent references: the MD5 of the Apache License 2.0 text as apache.org publishes
it; the published tuning table of "Curve Detectors" (where the reference data is on the
machine); the wheel's own archive listing and metadata (zipfile, email parser); and, for
verification, corruptions whose effect on orientation is known by geometry (kernels
rotated by 90 degrees turn every preferred orientation by 90; channels swapped between
units give each unit a neighbour's orientation).
"""

from __future__ import annotations

import email
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch

import circuits
from circuits.core.units import parse_unit
from weights import verify
from circuits.core.graph import INCEPTION_V1 as V1

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("circuits", "weights", "handbuilt")
CLI = "import sys; from circuits.cli import main; sys.exit(main(sys.argv[1:]))"


def cli(*args, cwd=None, path=ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(path), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", CLI, *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


# --- license, version, typing -------------------------------------------------------------------


def test_license_is_the_apache_2_0_text():
    """Reference: MD5 3b83ef96387f14655fc854ddc3c6bd57 of apache.org's LICENSE-2.0.txt."""
    assert hashlib.md5((ROOT / "LICENSE").read_bytes()).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]


def test_version_has_one_source():
    """pyproject reads the version from circuits.__version__; it is not written twice."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in meta["project"] and meta["project"]["dynamic"] == ["version"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "circuits.__version__"}
    parts = circuits.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts), circuits.__version__


def test_the_distribution_name_is_not_the_taken_one():
    """`circuits` on PyPI is an unrelated framework (checked with pip index when the name was chosen)."""
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == "circuits-vision"


def test_version_flag_prints_the_version_without_importing_torch():
    # argparse's version action exits (main returns its status); then: was torch imported?
    r = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom circuits.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
         "print('torch imported' if 'torch' in sys.modules else 'no torch')"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"circuits {circuits.__version__} (distribution circuits-vision)", "no torch"]


def test_packages_are_marked_typed():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for pkg in PACKAGES:
        assert (ROOT / pkg / "py.typed").is_file(), pkg
        assert data[pkg] == ["py.typed"], pkg


# --- the wheel ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """`python -m build` (sdist, then the wheel from it) on a copy of the tracked sources."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    files = subprocess.run(["git", "ls-files", "-z", "pyproject.toml", "README.md", "LICENSE", *PACKAGES],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return out


def test_build_gives_a_wheel_and_an_sdist_with_license_types_and_metadata(dist):
    """Reference: the archives' own listings and the wheel's METADATA, parsed as email headers."""
    v = circuits.__version__
    wheel = dist / f"circuits_vision-{v}-py3-none-any.whl"
    sdist = dist / f"circuits_vision-{v}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = email.message_from_bytes(z.read(f"circuits_vision-{v}.dist-info/METADATA"))
        entry = z.read(f"circuits_vision-{v}.dist-info/entry_points.txt").decode()
    assert {f"{p}/py.typed" for p in PACKAGES} <= names
    assert f"circuits_vision-{v}.dist-info/licenses/LICENSE" in names
    assert {"handbuilt/spec.py", "weights/verify.py", "circuits/cli/__init__.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "experiments/", "docs/"))]
    assert meta["Name"] == "circuits-vision" and meta["Version"] == v
    assert meta["License-Expression"] == "Apache-2.0"
    assert "circuits = circuits.cli:main" in entry
    import tarfile

    with tarfile.open(sdist) as t:
        top = f"circuits_vision-{v}/"
        assert {top + "LICENSE", top + "README.md", top + "pyproject.toml"} <= set(t.getnames())


def test_the_wheel_runs_outside_the_checkout(dist, tmp_path):
    """The wheel's files alone (installed with pip --target, dependencies from this environment),
    from another folder: the CLI answers from the installed copy, not from the checkout."""
    wheel = next(dist.glob("*.whl"))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([sys.executable, "-c", "import circuits, weights, handbuilt; "
                        "print(circuits.__file__, weights.__file__, handbuilt.__file__)"],
                       cwd=elsewhere, env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count(str(site)) == 3, r.stdout + r.stderr
    r = cli("unit", "mixed3b:379", cwd=elsewhere, path=site)
    assert r.returncode == 0 and "mixed3b_5x5 channel 59" in r.stdout, r.stderr
    r = cli("--version", cwd=elsewhere, path=site)
    assert r.stdout.strip().startswith(f"circuits {circuits.__version__}")


# --- verification by computation -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hb_sd() -> dict[str, torch.Tensor]:
    import handbuilt

    return handbuilt.state_dict()


def test_published_orientations_match_the_published_table():
    """Reference: "Curve Detectors"' tuning table (../shared/reference), read by circuits.tuning.reference."""
    from circuits.tuning import reference

    if not reference.available():
        pytest.skip(f"the published reference data is not on this machine ({reference.reference_dir()})")
    table = reference.tuning_table()
    assert {u: table[u]["pref_deg"] for u in verify.PUBLISHED_CURVE_ORIENTATIONS} == verify.PUBLISHED_CURVE_ORIENTATIONS


def test_the_hand_built_network_passes(hb_sd):
    """An InceptionV1 whose curves are built at the published orientations (within 4 degrees) passes."""
    report = verify.verify_state_dict(hb_sd, "the hand-built network")
    assert report.passed and len(report.units) == 10
    assert report.worst_error_deg <= 5


def _swap_curve_channels(sd: dict) -> dict:
    """Each curve unit's filter moved to the next curve unit's channel (a loader reading channels in
    another order)."""
    units = [parse_unit(u, V1) for u in verify.PUBLISHED_CURVE_ORIENTATIONS]
    chans = [u.branch_channel for u in units]
    out = dict(sd)
    for key in ("mixed3b_5x5_pre_relu_conv.weight", "mixed3b_5x5_pre_relu_conv.bias"):
        t = sd[key].clone()
        t[chans] = sd[key][chans[1:] + chans[:1]]
        out[key] = t
    return out


def test_channels_in_another_order_fail_naming_each_unit(hb_sd):
    """Reference: the swap itself -- unit i now computes unit i+1, so it prefers unit i+1's
    published orientation (18.5 degrees or more away from its own)."""
    from circuits.core.model import InceptionV1
    from circuits.tuning.metrics import peak_angle_error

    rep = verify.verify_model(InceptionV1(_swap_curve_channels(hb_sd)).eval())
    names = list(verify.PUBLISHED_CURVE_ORIENTATIONS)
    published = list(verify.PUBLISHED_CURVE_ORIENTATIONS.values())
    for i, check in enumerate(rep.units):
        assert not check.passed, check
        # what it measures is the next unit's orientation, within the hand-built network's 5 degrees
        assert peak_angle_error(check.measured_deg, published[(i + 1) % 10]) <= 5, (names[i], check)
    with pytest.raises(verify.VerificationError) as e:
        rep.raise_if_failed("swapped.pth")
    msg = str(e.value)
    for check in rep.units:
        assert f"{check.unit}: measured {check.measured_deg:g} deg, published {check.published_deg:g} deg" in msg
    assert "verify=False" in msg and "swapped.pth" in msg


def test_rotated_kernels_fail(hb_sd):
    """Reference: rotating every kernel by 90 degrees turns the network's preferred orientations by 90."""
    rotated = {k: torch.rot90(v, 1, (-2, -1)).contiguous() if v.ndim == 4 else v for k, v in hb_sd.items()}
    with pytest.raises(verify.VerificationError) as e:
        verify.verify_state_dict(rotated, "rotated.pth")
    from circuits.core.model import InceptionV1

    rep = verify.verify_model(InceptionV1(rotated).eval())
    assert all(abs(c.error_deg - 90) <= 6 for c in rep.units), rep.table()
    assert all(c.unit in str(e.value) for c in rep.units)


def test_the_check_is_for_inceptionv1():
    import weights

    with pytest.raises(ValueError, match="InceptionV3"):
        verify.verify_model(weights.model("random-v3"))


# --- circuits weights --verify FILE ---------------------------------------------------------------


def test_cli_verify_passes_a_good_file_and_fails_a_corrupted_one(hb_sd, tmp_path):
    torch.save(hb_sd, tmp_path / "good.pth")
    torch.save(_swap_curve_channels(hb_sd), tmp_path / "bad.pth")
    r = cli("weights", "--verify", tmp_path / "good.pth")
    assert r.returncode == 0, r.stderr
    assert "verified: all 10 curve units" in r.stdout and r.stdout.count(" ok") == 10
    r = cli("weights", "--verify", tmp_path / "bad.pth")
    assert r.returncode == 1
    assert r.stdout.count("FAIL") == 10
    assert "mixed3b:379: measured" in r.stderr and "published 243 deg" in r.stderr and "verify=False" in r.stderr


def test_cli_verify_bad_input_is_one_line(tmp_path):
    r = cli("weights", "--verify", tmp_path / "missing.pth")
    assert r.returncode == 2 and "no such weight file" in r.stderr and "Traceback" not in r.stderr
    r = cli("weights", "--verify", tmp_path / "missing.pth", "mixed3a:early_curves", "mixed3b:curves")
    assert r.returncode == 2 and "takes no SRC, DST" in r.stderr
    r = cli("weights", "mixed3a:early_curves")
    assert r.returncode == 2 and "needs SRC and DST" in r.stderr
