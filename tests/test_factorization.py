"""Activation factorization (circuits.analysis.factorization) and its CLI, `circuits factorize`,
with `trace-curve --factor`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from circuits.analysis.factorization import Factorization, activation_matrix, factorize, load_factor, nmf


@pytest.fixture(scope="module")
def handbuilt():
    import weights

    return weights.model("handbuilt").eval()


def _photo(name: str, size: int) -> torch.Tensor:
    import skimage.data

    from circuits.dataset.sources import resize_short, to_rgb_uint8

    return resize_short(to_rgb_uint8(getattr(skimage.data, name)(), name), size)


@pytest.fixture(scope="module")
def cat():
    return _photo("chelsea", 112)


@pytest.fixture(scope="module")
def cup():
    return _photo("coffee", 96)


def test_activation_matrix_is_the_layer_positions_by_channels(handbuilt, cat):
    """Against the model's own cache: row y*w + x of the matrix is the activation vector at (y, x)."""
    a, (hw,) = activation_matrix(handbuilt, "mixed3a", [cat])
    t = handbuilt.run_with_cache(handbuilt.to_input(cat[None]), ["mixed3a"])["mixed3a"][0]
    assert hw == tuple(t.shape[-2:]) and a.shape == (hw[0] * hw[1], t.shape[0])
    y, x = 3, 5
    np.testing.assert_allclose(a[y * hw[1] + x], t[:, y, x].double().numpy())


def test_reconstruction_error_equals_scikit_learns_within_2_percent(handbuilt, cat):
    """Against scikit-learn run by the test on the same matrix (the model's cache, not the module's
    reader), with another initialization and solver (random init, multiplicative updates): the
    rank-K Frobenius error of the factorization equals sklearn's `reconstruction_err_` within 2%;
    it is also at least the rank-K SVD error (Eckart-Young: no rank-K matrix does better)."""
    from sklearn.decomposition import NMF

    k = 4
    f = factorize(handbuilt, "mixed3a", [cat], k, max_iter=1000, tol=1e-6)
    t = handbuilt.run_with_cache(handbuilt.to_input(cat[None]), ["mixed3a"])["mixed3a"][0]
    a = t.flatten(1).T.double().numpy()
    ref = NMF(n_components=k, init="random", solver="mu", max_iter=3000, tol=1e-7, random_state=1).fit(a)
    assert abs(f.error - ref.reconstruction_err_) <= 0.02 * ref.reconstruction_err_, (f.error, ref.reconstruction_err_)
    # the error it reports is that of the factors it returns
    s = np.concatenate([f.maps(0).reshape(k, -1).T])
    assert np.isclose(np.linalg.norm(a - s @ f.directions), f.error, rtol=1e-9)
    sv = np.linalg.svd(a, compute_uv=False)
    assert f.error >= np.sqrt((sv[k:] ** 2).sum()) * (1 - 1e-9)
    assert f.relative_error == pytest.approx(f.error / np.linalg.norm(a))


def test_planted_factors_are_recovered():
    """Against a constructed matrix S0 D0 of non-negative rank 3 with disjoint channel groups:
    the error is ~0 and each recovered direction is one planted group (cosine > 0.999)."""
    rng = np.random.default_rng(0)
    d0 = np.zeros((3, 30))
    for i in range(3):
        d0[i, 10 * i : 10 * i + 10] = rng.uniform(0.5, 1.5, 10)
    s0 = rng.exponential(1.0, (200, 3)) * (rng.random((200, 3)) < 0.5)
    s, d, _ = nmf(s0 @ d0, 3, max_iter=2000, tol=1e-8)
    assert np.linalg.norm(s0 @ d0 - s @ d) < 1e-3 * np.linalg.norm(s0 @ d0)
    cos = (d @ (d0 / np.linalg.norm(d0, axis=1, keepdims=True)).T)
    assert sorted(cos.max(1)) > [0.999] * 3 and sorted(cos.argmax(1)) == [0, 1, 2]
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    assert list(s.sum(0)) == sorted(s.sum(0), reverse=True)  # largest share first


def test_joint_factorization_stacks_the_images(handbuilt, cat, cup):
    """Against the one-image matrices concatenated by the test: the joint factorization is the NMF
    of [A_cat; A_cup], and each image's maps have its own map size."""
    f = factorize(handbuilt, "mixed3a", [cat, cup], 3, ["cat", "cup"])
    (a1, h1), (a2, h2) = activation_matrix(handbuilt, "mixed3a", [cat]), activation_matrix(handbuilt, "mixed3a", [cup])
    s, d, _ = nmf(np.concatenate([a1, a2]), 3)
    np.testing.assert_allclose(f.directions, d)
    assert f.maps(0).shape == (3, *h1[0]) and f.maps(1).shape == (3, *h2[0])
    np.testing.assert_allclose(f.maps(1).reshape(3, -1).T, s[len(a1):])
    with pytest.raises(IndexError, match="holds 2 images"):
        f.maps(2)


def test_json_round_trip(handbuilt, cup, tmp_path):
    """The JSON written is read back to the same factors; `load_factor` checks FILE.json:K."""
    f = factorize(handbuilt, "mixed3b", [cup], 2, ["cup"])
    p = tmp_path / "f.json"
    p.write_text(json.dumps(f.to_json()))
    g, k = load_factor(f"{p}:1")
    assert k == 1 and g.names == ["cup"] and g.shapes == f.shapes and g.layer == "mixed3b"
    np.testing.assert_allclose(g.directions, f.directions)
    np.testing.assert_allclose(g.maps(0), f.maps(0))
    with pytest.raises(IndexError, match="rank 2 has factors 0..1"):
        load_factor(f"{p}:2")
    with pytest.raises(ValueError, match="FILE.json:K"):
        load_factor(str(p))
    with pytest.raises(ValueError, match="format"):
        Factorization.from_json({"format": "other"})


def test_factor_objective_is_the_mean_projection(handbuilt, cup):
    """Against numpy: the factor's objective on an image is the mean over positions of A @ d."""
    f = factorize(handbuilt, "mixed3a", [cup], 2)
    a, _ = activation_matrix(handbuilt, "mixed3a", [cup])
    obj = f.objective(1, handbuilt)
    acts = handbuilt.run_with_cache(handbuilt.to_input(cup[None]), list(obj.hooks))
    assert float(obj(acts)) == pytest.approx(float((a @ f.direction(1)).mean()), rel=1e-5)


def test_one_hot_factor_attribution_equals_the_units(handbuilt, cup):
    """Against the family code path of `attribution_map` (the unit's own pre-ReLU conv, ReLU'd and
    summed): a one-hot direction on the post-ReLU concatenation gives the same map, divided by the
    number of positions (the objective averages over them)."""
    from circuits.dataset.extraction import attribution_map
    from circuits.optvis.objectives import direction

    v = torch.zeros(480)
    v[379] = 1.0
    by_unit = attribution_map(handbuilt, "mixed3b:379", cup)
    by_dir = attribution_map(handbuilt, direction("mixed3b", v, model=handbuilt), cup)
    n = np.prod(handbuilt.run(handbuilt.to_input(cup[None]), until="mixed3b").shape[-2:])
    assert float(by_unit.max()) > 0
    torch.testing.assert_close(by_dir * n, by_unit, rtol=1e-4, atol=1e-6 * float(by_unit.max()))


def test_bad_input_is_refused(handbuilt, cup):
    """Clear errors naming the bad value: a pre-ReLU tensor, a rank past the live channels, no images."""
    with pytest.raises(ValueError, match="negative values.*post-ReLU"):
        factorize(handbuilt, "mixed3a_pre_relu", [cup], 2)
    with pytest.raises(ValueError, match="rank 50 is more than"):
        factorize(handbuilt, "mixed3b", [cup], 50)
    with pytest.raises(ValueError, match="at least one image"):
        factorize(handbuilt, "mixed3b", [], 2)
    with pytest.raises(ValueError, match="rank must be a positive int"):
        factorize(handbuilt, "mixed3b", [cup], 0)


def test_cli_factorize_then_trace_curve_with_the_factor(tmp_path, capsys):
    """End to end: `circuits factorize` writes its JSON and figure, and `trace-curve --factor F.json:K`
    fits a spline to that factor's attribution; bad factor specs exit 2 before any work."""
    from circuits.cli import main

    j, png = tmp_path / "f.json", tmp_path / "f.png"
    rc = main(["factorize", "mixed3b", "--image", "skimage:coffee", "--size", "96", "--rank", "2",
               "--json", str(j), "--plot", str(png), "--vis-steps", "4", "--vis-size", "48", "--quiet"])
    assert rc == 0 and j.exists() and png.exists()
    out = capsys.readouterr().out
    assert "factor 1: share" in out and "relative error" in out
    t = tmp_path / "t.json"
    rc = main(["trace-curve", "--factor", f"{j}:0", "--image", "skimage:coffee", "--size", "96", "--steps", "20",
               "--out", str(tmp_path / "t.png"), "--json", str(t)])
    assert rc == 0 and len(json.loads(t.read_text())["control_points_yx"]) == 4
    assert main(["trace-curve", "mixed3b:curves", "--factor", f"{j}:0", "--image", "skimage:coffee",
                 "--out", str(tmp_path / "u.png")]) == 2
    assert main(["trace-curve", "--factor", f"{j}:7", "--image", "skimage:coffee", "--out", str(tmp_path / "u.png")]) == 2
    assert "rank 2 has factors 0..1" in capsys.readouterr().err
    assert main(["trace-curve", "--factor", f"{j}:0", "--weights", "random-v3", "--image", "skimage:coffee",
                 "--size", "96", "--out", str(tmp_path / "u.png")]) == 2
    assert "factor of InceptionV1's mixed3b" in capsys.readouterr().err
    assert not (tmp_path / "u.png").exists()
    assert main(["factorize", "mixed3b", "--rank", "2"]) == 2
    assert main(["factorize", "nolayer", "--image", "skimage:coffee", "--rank", "2"]) == 2


def test_cli_refuses_bad_device_and_outputs_before_work(tmp_path, capsys):
    """--device and output paths are checked before any image is read or model loaded."""
    from circuits.cli import main

    assert main(["factorize", "mixed3b", "--image", "skimage:coffee", "--rank", "2", "--device", "nodevice"]) == 2
    assert "--device must be cpu, cuda, cuda:N or mps, got 'nodevice'" in capsys.readouterr().err
    assert main(["factorize", "mixed3b", "--image", "skimage:coffee", "--rank", "2", "--json", str(tmp_path / "x.txt")]) == 2
    assert "--json must end in .json" in capsys.readouterr().err
    assert main(["factorize", "mixed3b", "--image", "skimage:nosuch", "--rank", "2"]) == 2
    assert "unknown skimage image 'nosuch'" in capsys.readouterr().err


def test_figure_text_is_readable_at_its_saved_size(handbuilt, cup, tmp_path, monkeypatch):
    """Every visible text of the saved figure is at least 11 px tall (font size x dpi / 72: 8 pt at
    100% zoom), the rule of tests/test_figures.py; the file is written."""
    from matplotlib.figure import Figure

    from circuits.plots.factorization import factorization_figure

    seen = []
    original = Figure.savefig

    def record(fig, fname, *args, **kwargs):
        original(fig, fname, *args, **kwargs)
        seen.append((fig, kwargs.get("dpi")))

    monkeypatch.setattr(Figure, "savefig", record)
    f = factorize(handbuilt, "mixed3b", [cup], 2, ["cup"])
    path = factorization_figure([cup], f, tmp_path / "f.png", vis=[torch.rand(3, 32, 32)] * 2)
    assert path.exists()
    (fig, dpi), = seen
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
             if t.get_visible() and t.get_text()]
    assert texts and min(t.get_fontsize() * dpi / 72 for t in texts) >= 11
