"""Feature visualization: parameterizations, transforms, objectives, the render loop, the CLI.

Each test names its independent reference: a formula written out (numpy FFT, the
colour matrix product, Lucid's Gram-matrix diversity, Lucid's redirected-ReLU rule),
a second implementation (torch.rot90, the full concatenated layer), or an invariant
(the hooks of a model before and after a render).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import weights
from circuits import graph
from circuits.cli import main as cli_main
from circuits.optvis import objectives as obj
from circuits.optvis import param, render, transform
from circuits.optvis.redirected_relu import LUCID_REDIRECT_STEPS, RedirectedReLU, redirected_relu_grad
from circuits.optvis.render import NonFiniteObjectiveError, evaluate
from circuits.core.graph import INCEPTION_V1 as V1


@pytest.fixture(scope="module")
def model():
    """The fixed random network (weights.model("random"): seed 0, He-scaled, zero biases)."""
    return weights.model("random")


def hook_ids(m):
    return sorted((h.name, h.id) for h in m.active_hooks)


# --- parameterizations ------------------------------------------------------------


def test_colour_matrix_is_lucids_published_constant():
    # Lucid, lucid/optvis/param/color.py: color_correlation_svd_sqrt.
    lucid = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
    np.testing.assert_array_equal(param.COLOR_CORRELATION_SVD_SQRT.numpy(), lucid)


def test_to_valid_rgb_matches_lucids_formula_in_numpy():
    # Lucid: t_flat @ (C / max column norm).T, then sigmoid; written out in numpy on NHWC.
    t = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(3))
    c = param.COLOR_CORRELATION_SVD_SQRT.numpy().astype(np.float64)
    cn = c / np.linalg.norm(c, axis=0).max()
    nhwc = t.permute(0, 2, 3, 1).numpy().astype(np.float64)
    want = 1 / (1 + np.exp(-(nhwc.reshape(-1, 3) @ cn.T).reshape(nhwc.shape)))
    got = param.to_valid_rgb(t, decorrelate=True).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("h,w", [(16, 16), (12, 17)])
def test_fourier_image_matches_lucids_fft_image_in_numpy(h, w):
    # Lucid's fft_image written out with numpy: scale = 1/max(f, 1/max(w,h)) * sqrt(wh),
    # irfft2 (normalized 1/(hw), as TF's irfft2d), /4; then sigmoid (no decorrelation).
    p = param.FourierImage((h, w), batch=2, sd=0.3, decorrelate=False, seed=5)
    spec = p.spectrum.detach().double().numpy()
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.abs(np.fft.fftfreq(w)[: w // 2 + 1])[None, :]
    freqs = np.sqrt(fx**2 + fy**2)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(w, h)) * np.sqrt(w * h)
    raw = np.fft.irfft2(scale * (spec[..., 0] + 1j * spec[..., 1]), s=(h, w)) / 4.0
    np.testing.assert_allclose(p().detach().numpy(), 1 / (1 + np.exp(-raw)), rtol=1e-5, atol=1e-6)


def test_params_are_seeded_in_range_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    for cls in (param.FourierImage, param.PixelImage):
        a, b, c = cls(20, batch=3, seed=1)(), cls(20, batch=3, seed=1)(), cls(20, batch=3, seed=2)()
        assert a.shape == (3, 3, 20, 20) and a.min() >= 0 and a.max() <= 1
        assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="image size"):
        param.image(0)
    with pytest.raises(ValueError, match="batch"):
        param.image(8, batch=0)


# --- transforms -------------------------------------------------------------------


def test_rotate_by_90_degrees_equals_rot90():
    # Positive angles turn clockwise on screen (y down) = torch.rot90 with k=-1.
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(transform.rotate(x, 90), torch.rot90(x, -1, dims=(-2, -1)), atol=1e-5)
    np.testing.assert_allclose(transform.rotate(x, -90), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)


def test_pad_jitter_scale_shapes_and_content():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 20, 20, generator=g)
    p = transform.Pad(3)(x, g)
    assert p.shape[-2:] == (26, 26) and torch.all(p[..., :3, :] == 0.5) and torch.equal(p[..., 3:23, 3:23], x)
    offsets = set()
    for _ in range(200):
        j = transform.Jitter(4)(x, g)
        assert j.shape[-2:] == (16, 16)
        # The crop is a window of the input: find where it sits.
        hits = [(a, b) for a in range(5) for b in range(5) if torch.equal(x[..., a : a + 16, b : b + 16], j)]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert offsets == {(a, b) for a in range(5) for b in range(5)}  # Lucid's offsets 0..d inclusive
    s = transform.RandomScale([1.5])(x, g)
    assert s.shape[-2:] == (30, 30)


def test_standard_transforms_follow_lucid_and_are_seeded():
    ts = transform.standard_transforms()
    assert [type(t).__name__ for t in ts] == ["Pad", "Jitter", "RandomScale", "RandomRotate", "Jitter"]
    assert ts[0].width == 12 and ts[0].value == 0.5 and ts[1].d == 8 and ts[4].d == 4
    assert ts[2].scales == [1 + (i - 5) / 50 for i in range(11)]
    assert ts[3].angles == [float(a) for a in list(range(-10, 11)) + 5 * [0]]
    x = torch.rand(1, 3, 40, 40)
    t = transform.compose(ts)
    a = t(x, torch.Generator().manual_seed(7))
    b = t(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


# --- objectives -------------------------------------------------------------------


@pytest.fixture(scope="module")
def acts(model):
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0)) * 255 - 117
    return model.run_with_cache(x, ["mixed3b", "mixed3b_5x5", "mixed3a", "mixed3a_3x3", "mixed3b_1x1"])


def test_unit_objectives_read_the_branch_and_equal_the_concatenated_layer(acts):
    # Reference: the full mixed3b concatenation, channel 379 (= mixed3b_5x5 channel 59).
    full = acts["mixed3b"][:, 379]
    c = obj.channel("mixed3b", 379, model=V1)
    assert c.hooks == {"mixed3b_5x5"}
    torch.testing.assert_close(c(acts), full.mean())
    n = obj.neuron("mixed3b", 379, model=V1)
    torch.testing.assert_close(n(acts), full[:, 6, 6].sum())  # Lucid's centre: (H//2, W//2), summed over images
    torch.testing.assert_close(obj.neuron("mixed3b", 379, y=2, x=3, batch=1, model=V1)(acts), full[1, 2, 3])


def test_objectives_compose_like_numbers(acts):
    a, b, c = obj.channel("mixed3b", 379, model=V1), obj.neuron("mixed3a", 81, model=V1), obj.channel("mixed3b", 5, model=V1)
    combo = 2 * a + b - c / 4 + 1
    assert combo.hooks == {"mixed3b_5x5", "mixed3a_3x3", "mixed3b_1x1"}  # mixed3a:81 = mixed3a_3x3:17
    torch.testing.assert_close(combo(acts), 2 * a(acts) + b(acts) - c(acts) / 4 + 1)
    torch.testing.assert_close((a * b)(acts), a(acts) * b(acts))
    torch.testing.assert_close((-a)(acts), -a(acts))
    assert sum([a, b]).hooks == a.hooks | b.hooks
    assert combo.min_size == max(a.min_size, b.min_size, c.min_size)


def test_direction_and_attribution_objectives_written_out(acts):
    t = acts["mixed3a"]
    v = torch.randn(256, generator=torch.Generator().manual_seed(1))
    want = (t * v.view(1, -1, 1, 1)).sum(1).mean()
    torch.testing.assert_close(obj.direction("mixed3a", v, model=V1)(acts), want)
    a = torch.randn(256, 3, 5, generator=torch.Generator().manual_seed(2))
    h, w = t.shape[-2:]
    y0, x0 = h // 2 - 1, w // 2 - 2  # the 3x5 window around the centre (H//2, W//2)
    want = (t[:, :, y0 : y0 + 3, x0 : x0 + 5] * a).sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(obj.attribution("mixed3a", a, model=V1)(acts), want)


def test_diversity_is_lucids_gram_cosine_sum():
    # Identical images: every pair has cosine 1, so sum_{i != j} 1 / B = B - 1.
    x = torch.rand(1, 8, 4, 4).repeat(3, 1, 1, 1)
    torch.testing.assert_close(obj.diversity("conv2d0", model=V1)({"conv2d0": x}), torch.tensor(2.0))
    # Disjoint channels: Gram matrices do not overlap, similarity 0.
    y = torch.zeros(2, 8, 4, 4)
    y[0, :4], y[1, 4:] = 1.0, 1.0
    assert float(obj.diversity("conv2d0", model=V1)({"conv2d0": y})) == 0.0
    with pytest.raises(ValueError, match="at least 2 images"):
        obj.diversity("conv2d0", model=V1)({"conv2d0": x[:1]})


def test_family_objective_sums_its_units(acts):
    from circuits import families

    fam = families.family("mixed3b:curves", V1)
    want = sum(acts["mixed3b"][:, u.channel].mean() for u in fam.units)
    torch.testing.assert_close(obj.family("mixed3b:curves", model=V1)(acts), want)
    w = {"mixed3b:379": 2.0, "mixed3b:406": -1.0}
    torch.testing.assert_close(
        obj.family("mixed3b:curves", weights=w, model=V1)(acts),
        2 * acts["mixed3b"][:, 379].mean() - acts["mixed3b"][:, 406].mean(),
    )
    assert obj.as_objective("mixed3b:curves", V1).description.startswith("Family(mixed3b:curves")
    assert obj.as_objective("mixed3b:379", V1).description == "Channel(mixed3b:379)"
    with pytest.raises(TypeError, match="pass model="):
        obj.channel("mixed3b", 379)  # no network: no lookup by layer name


def test_objective_errors_are_clear():
    with pytest.raises(KeyError, match="did you mean mixed3b"):
        obj.channel("mixd3b", 3, model=V1)
    with pytest.raises(IndexError, match="out of range for mixed3b"):
        obj.neuron("mixed3b", 480, model=V1)
    with pytest.raises(ValueError, match="256 values"):
        obj.direction("mixed3a", torch.ones(10), model=V1)
    with pytest.raises(ValueError, match=r"\[256\] or \[256, kh, kw\]"):
        obj.attribution("mixed3a", torch.ones(3, 3), model=V1)
    with pytest.raises(ValueError, match="2 weights for 10 units"):
        obj.family("mixed3b:curves", weights=[1, 2], model=V1)


# --- redirected ReLU --------------------------------------------------------------


def test_redirected_relu_gradient_is_lucids_rule():
    # Lucid's redirected_relu_grad written out element by element.
    x = torch.tensor([[-1.0, 2.0, -3.0], [-1.0, -2.0, -3.0]])
    g = torch.tensor([[0.5, -1.0, -2.0], [0.5, -1.0, -2.0]])
    got = redirected_relu_grad(x, g)
    # Image 0: one positive input passes gradient, so the plain ReLU gradient is used.
    assert got[0].tolist() == [0.0, -1.0, 0.0]
    # Image 1: nothing passes; gradient pushing a negative input further down (g > 0) is
    # blocked, gradient pushing it up (g < 0, the loss is minimized) passes.
    assert got[1].tolist() == [0.0, -1.0, -2.0]
    xr = x.clone().requires_grad_()
    RedirectedReLU.apply(xr).backward(g)
    assert torch.equal(xr.grad, got)


def test_redirected_relu_applies_only_for_lucids_first_steps_and_is_removed(model):
    seen = []
    handle = model.add_hook("mixed3a_3x3", lambda x, h: seen.append(len(model.active_hooks)))
    try:
        before = hook_ids(model)
        render(model, obj.neuron("mixed3a", 81, model=V1), param.image(64), steps=LUCID_REDIRECT_STEPS + 3,
               redirected_relu=True, progress=False)
        assert hook_ids(model) == before
    finally:
        model.remove_hook(handle)
    assert len(seen) == LUCID_REDIRECT_STEPS + 3
    assert all(n > 1 for n in seen[:LUCID_REDIRECT_STEPS]) and seen[LUCID_REDIRECT_STEPS:] == [1, 1, 1]


def test_redirected_relu_starts_a_dead_neuron(model):
    # With zero biases this random unit is negative at the centre of a grey image: the
    # plain ReLU passes no gradient and nothing moves; the redirected one starts it.
    o = obj.neuron("mixed3b", 379, model=V1)
    plain = render(model, o, param.image(96), steps=8, transforms=[], progress=False)
    assert plain.values == [0.0] * 8
    redirected = render(model, o, param.image(96), steps=8, transforms=[], redirected_relu=True, progress=False)
    assert evaluate(model, o, redirected.final) > 0


# --- the render loop --------------------------------------------------------------


def test_objective_rises_during_rendering(model):
    o = obj.channel("mixed3a", 81, model=V1)
    p = param.image(64, seed=0)
    before = evaluate(model, o, p().detach())
    r = render(model, o, p, steps=12, progress=False)
    after = evaluate(model, o, r.final)
    assert after > before + 0.5 * abs(before) + 1e-3, (before, after)
    assert r.final.shape == (1, 3, 64, 64) and r.final.min() >= 0 and r.final.max() <= 1


def test_render_runs_only_up_to_the_objectives_tensor(model):
    calls = []
    handles = [model.add_hook(n, lambda x, h: calls.append(h.name)) for n in ("mixed3b_1x1", "mixed3b", "mixed4a")]
    try:
        render(model, obj.channel("mixed3b", 379, model=V1), param.image(96), steps=2, progress=False)
    finally:
        for h in handles:
            model.remove_hook(h)
    assert calls == []  # mixed3b:379 lives in the 5x5 branch: no other branch, no concat, nothing later


def test_fixed_seed_gives_identical_renders(model):
    kw = dict(steps=5, thresholds=[2, 5], progress=False)
    a = render(model, "mixed3a:81", param.image(64, seed=3), seed=3, **kw)
    b = render(model, "mixed3a:81", param.image(64, seed=3), seed=3, **kw)
    c = render(model, "mixed3a:81", param.image(64, seed=4), seed=4, **kw)
    assert sorted(a.images) == [2, 5]
    assert all(torch.equal(a.images[s], b.images[s]) for s in a.images) and a.values == b.values
    assert not torch.equal(a.final, c.final)


def test_hooks_identical_after_render_exception_nan_and_interrupt(model):
    handle = model.add_hook("conv2d0", lambda x, h: None)
    try:
        before = hook_ids(model)

        def boom(step, value, images):
            if step == 2:
                raise RuntimeError("callback failed")

        with pytest.raises(RuntimeError, match="callback failed"):
            render(model, "mixed3a:81", param.image(64), steps=5, redirected_relu=True, callback=boom, progress=False)
        assert hook_ids(model) == before

        calls = []

        def nan_at_3(acts):
            calls.append(1)
            v = acts["mixed3a"][:, 81].mean()
            return v * float("nan") if len(calls) == 3 else v

        nan_obj = obj.Objective(nan_at_3, ["mixed3a"], "NaNAt3", network=V1)
        with pytest.raises(NonFiniteObjectiveError, match="at step 3 of 5"):
            render(model, nan_obj, param.image(64), steps=5, redirected_relu=True, progress=False)
        assert hook_ids(model) == before

        def interrupt(step, value, images):
            if step == 3:
                raise KeyboardInterrupt

        r = render(model, "mixed3a:81", param.image(64), steps=9, callback=interrupt, redirected_relu=True, progress=False)
        assert r.interrupted_at == 3 and list(r.images) == [3] and len(r.values) == 3
        assert hook_ids(model) == before
    finally:
        model.remove_hook(handle)


def test_render_bad_input_is_refused_clearly(model):
    before = hook_ids(model)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        render(model, "mixed3a:81", param.image(64), steps=0)
    with pytest.raises(ValueError, match="thresholds"):
        render(model, "mixed3a:81", param.image(64), steps=4, thresholds=[5])
    with pytest.raises(ValueError, match="receptive field of mixed3b_5x5 is 91 px"):
        render(model, obj.neuron("mixed3b", 379, model=V1), param.image(64), steps=2)
    with pytest.raises(KeyError, match="did you mean"):
        render(model, "mixed3c:1", param.image(64), steps=2)
    with pytest.raises(ValueError, match=r"\.png"):
        render(model, "mixed3a:81", param.image(64), steps=2, out="x.jpg")
    assert hook_ids(model) == before


def test_render_saves_a_png_grid(model, tmp_path):
    from PIL import Image

    out = tmp_path / "vis.png"
    r = render(model, "mixed3a:81", param.image(64, batch=2), steps=3, thresholds=[1, 3], out=out, progress=False)
    arr = np.asarray(Image.open(out))
    assert arr.shape == (2 * 64, 2 * 64, 3)  # rows: thresholds; columns: the batch
    want = (r.images[3][1].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(arr[64:, 64:], want)


# --- the superstimulus (hand-built network) ---------------------------------------


def test_visualization_of_a_handbuilt_curve_unit_is_a_superstimulus():
    """The rendered image drives a hand-built curve unit harder than any synthetic curve.

    Reference: the maximum response over a sweep of rendered curves (circuits.tuning.stimuli:
    36 orientations x 4 curvatures x 2 polarities, centred on the unit's receptive field).
    """
    m = weights.model("handbuilt")
    assert_superstimulus(m, "mixed3b:379")


def assert_superstimulus(m, unit_id: str, size: int = 96, steps: int = 64) -> None:
    from circuits.tuning import stimuli

    unit = m.unit(unit_id)
    o = obj.neuron(unit, unit.channel)
    cy, cx = graph.centre_position(unit.branch, size)
    orientations = torch.arange(0, 360, 10.0).repeat(4)
    curvatures = torch.tensor([0.1, 0.4, 0.7, 1.0]).repeat_interleave(36)
    best = 0.0
    for fg, bg in (("black", "white"), ("white", "black")):
        x = stimuli.curve(orientations, curvatures, fg=fg, bg=bg, size=size, centre=unit.centre_in_input(size))
        with torch.no_grad():
            r = m.run(x, until=unit.branch)[:, unit.branch_channel, cy, cx]
        best = max(best, float(r.max()))
    assert best > 0, f"{unit_id} should respond to some synthetic curve"
    vis = render(m, o, param.image(size, seed=0), steps=steps, redirected_relu=True, progress=False)
    got = evaluate(m, o, vis.final)
    assert got > best, f"rendered image gives {got:.4g}, the best synthetic curve {best:.4g}"


# --- CLI ----------------------------------------------------------------------------


def test_cli_vis_writes_a_png_and_reports(tmp_path, capsys):
    out = tmp_path / "v.png"
    rc = cli_main(["vis", "mixed3a:81", "--weights", "random", "--steps", "3", "--size", "64", "--quiet", "--out", str(out)])
    assert rc == 0 and out.exists()
    assert "Channel(mixed3a:81)" in capsys.readouterr().out
    rc = cli_main(["vis", "mixed3b:curves", "--weights", "random", "--steps", "2", "--size", "64", "--batch", "2",
                   "--diversity", "100", "--quiet", "--out", str(out)])
    assert rc == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["vis", "mixed3a:81", "--weights", "random", "--steps", "0", "--out", "v.png"], "--steps must be >= 1"),
        (["vis", "mixed3b:379", "--weights", "random", "--size", "64", "--neuron", "--out", "v.png"], "receptive field"),
        (["vis", "mixed3b:curvs", "--weights", "random", "--out", "v.png"], "did you mean"),
        (["vis", "mixed3a:81", "--weights", "random", "--out", "v.jpg"], ".png"),
    ],
)
def test_cli_vis_bad_input(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "v.png").exists()
