"""The render loop: optimize an image parameterization to maximize an objective.

`render` runs Adam on the parameters of an `ImageParam`: each step draws the images,
applies the random transforms, converts them to model input in the model's range
(`model.input_range`: pixels x 255 - 117 for InceptionV1, x 2 - 1 for InceptionV3, as
`circuits.to_model_input`), runs the model only up to the last hook the objective
reads, and steps to increase the objective. Images are kept at the `thresholds`
(step counts). Every hook the loop adds (the redirected-ReLU hooks) is removed when
it ends, also on an exception or KeyboardInterrupt; a KeyboardInterrupt stops the
render and returns what it has, as Lucid does.

Example:
    >>> import weights
    >>> model = weights.model("random")
    >>> result = render(model, "mixed3a:81", image(64), steps=4, progress=False)
    >>> result.final.shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from circuits.core.files import atomic_path
from circuits.core import graph
from circuits.core.model import Network
from .objectives import Objective, as_objective
from .param import ImageParam, image
from .redirected_relu import LUCID_REDIRECT_STEPS, redirected_relu_hooks
from .transform import Transform, compose, standard_transforms

__all__ = [
    "render",
    "RenderResult",
    "NonFiniteObjectiveError",
    "evaluate",
    "save_png",
    "zero_objective_message",
    "DEFAULT_STEPS",
]

log = logging.getLogger(__name__)

DEFAULT_STEPS = 512
DEFAULT_LR = 0.05  # Lucid's Adam learning rate


class NonFiniteObjectiveError(FloatingPointError):
    """The objective became NaN or infinite during a render."""


@dataclass
class RenderResult:
    """Images kept during a render, and the objective's value at every step.

    images: step count -> images [B, 3, H, W] in [0, 1] after that many updates.
    values: objective value (on the transformed images) before each update.
    interrupted_at: the step a KeyboardInterrupt stopped the render at, or None; the
        images are then also kept after the last completed update.
    """

    images: dict[int, torch.Tensor]
    values: list[float]
    objective: str
    interrupted_at: int | None = None
    seed: int = 0
    hooks: tuple[str, ...] = field(default=())

    @property
    def final(self) -> torch.Tensor:
        """The images at the last threshold reached."""
        return self.images[max(self.images)]

    @property
    def stayed_zero(self) -> bool:
        """Whether the objective was exactly 0 at every step (the image never changed)."""
        return bool(self.values) and all(v == 0.0 for v in self.values)

    def save(self, path: str | os.PathLike) -> Path:
        """Write a PNG grid: one row per kept step, one column per image of the batch."""
        rows = [torch.cat(list(self.images[s]), dim=-1) for s in sorted(self.images)]
        return save_png(torch.cat(rows, dim=-2), path)


def save_png(images: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save [3, H, W] or [B, 3, H, W] (side by side) images in [0, 1] as a PNG, atomically.

    >>> import tempfile
    >>> p = save_png(torch.zeros(3, 4, 4), tempfile.mkdtemp() + "/black.png")
    >>> p.stat().st_size > 0
    True
    """
    from PIL import Image  # matplotlib's own dependency

    x = images.detach().float().cpu()
    if x.dim() == 4:
        x = torch.cat(list(x), dim=-1)
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"save_png expects [3, H, W] or [B, 3, H, W] images, got {list(images.shape)}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("save_png expects finite images in [0, 1]")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"output file must end in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return path


def zero_objective_message(result: RenderResult, size: tuple[int, int], redirected_relu: bool,
                           network: graph.Graph) -> str:
    """Why a render whose objective stayed at 0 (or ended at 0) produced a useless image, and what to try.

    The objective is exactly 0 when the unit never fires on the images tried; a ReLU
    that is off passes no gradient, so the optimizer never moves the image. network:
    the graph of the rendered model.

    >>> r = RenderResult({1: torch.zeros(1, 3, 8, 8)}, [0.0], "channel mixed3b:379", hooks=("mixed3b",))
    >>> "at least 91" in zero_objective_message(r, (8, 8), False, graph.INCEPTION_V1)
    True
    """
    hook = result.hooks[-1] if result.hooks else None
    fired = sum(v != 0.0 for v in result.values)
    if not fired:
        msg = (
            f"the objective {result.objective} stayed at 0 for all {len(result.values)} steps: the unit never "
            "fired, a ReLU that is off passes no gradient, so the image is the unoptimized start (flat grey)"
        )
    else:
        msg = (
            f"the objective {result.objective} is 0 on the final image (it was above 0 at only {fired} of "
            f"{len(result.values)} steps, on transformed images): the image shows nothing the unit responds to"
        )
    rf = network.receptive_field(hook).size if hook else 0
    if hook and min(size) < rf:
        return msg + (
            f"; the image ({size[0]}x{size[1]} px) is smaller than the receptive field of {hook} ({rf} px): "
            f"use a size of at least {rf}"
        )
    if not redirected_relu:
        return msg + (
            f"; try the redirected ReLU gradient (redirected_relu=True, --redirected-relu), which lets gradient "
            f"through the ReLUs for the first {LUCID_REDIRECT_STEPS} steps, as Lucid does"
        )
    return msg + "; even with the redirected ReLU: the unit is probably dead in this network (all its weights 0?)"


def _check_steps(steps, thresholds) -> tuple[int, tuple[int, ...]]:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    thresholds = (steps,) if thresholds is None else tuple(thresholds)
    bad = [t for t in thresholds if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= steps]
    if not thresholds or bad:
        raise ValueError(f"thresholds must be step counts between 1 and steps={steps}, got {list(thresholds)}")
    return steps, tuple(sorted(set(thresholds)))


def _check_size(param: ImageParam, objective: Objective) -> None:
    h, w = param.size
    if min(h, w) < objective.min_size:
        hook = objective.last_hook
        raise ValueError(
            f"image of {h}x{w} px is smaller than {objective.description} needs ({objective.min_size} px: "
            f"the receptive field of {hook} is {objective.network.receptive_field(hook).size} px); "
            f"use a size of at least {objective.min_size}"
        )


def _check_network(model: Network, objective: Objective) -> None:
    # An objective of the input image alone is any network's.
    if objective.network is not model.graph and not objective.hooks <= {graph.INPUT}:
        raise ValueError(
            f"objective {objective.description} reads {objective.network.name} tensors "
            f"({', '.join(sorted(objective.hooks))}), but the model is {model.graph.name}: build it from units "
            f"of this model (model.unit(...), or model=model)"
        )


def evaluate(model: Network, objective, images: torch.Tensor) -> float:
    """The objective on images in [0, 1] (no transforms), running only as far as it needs.

    >>> import weights
    >>> v = evaluate(weights.model("random"), "conv2d0:0", torch.full((1, 3, 16, 16), 0.5))
    >>> isinstance(v, float)
    True
    """
    objective = as_objective(objective, model)
    _check_network(model, objective)
    with torch.no_grad():
        acts = model.run_with_cache(model.to_input(images), sorted(objective.hooks, key=model.graph.index))
        return float(objective(acts))


def render(
    model: Network,
    objective,
    param: ImageParam | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    thresholds: Sequence[int] | None = None,
    transforms: Iterable[Transform] | None = None,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    redirected_relu: bool = False,
    progress: bool = True,
    callback: Callable[[int, float, torch.Tensor], None] | None = None,
    out: str | os.PathLike | None = None,
) -> RenderResult:
    """Maximize `objective` over the images of `param`; Lucid's `render_vis` in torch.

    model: any declared network (InceptionV1, InceptionV3); images are converted to
        its input range, `model.input_range`.
    objective: an `Objective`, a unit id (channel objective) or a family id, of
        `model`'s network.
    param: default `image(128, seed=seed)` (Fourier, decorrelated, as Lucid).
    steps: Adam updates (default 512); thresholds: step counts at which images are
        kept (default: the last). transforms: default Lucid's standard transforms;
        pass [] for none. seed: seeds the transforms (and the default param).
    redirected_relu: use Lucid's redirected ReLU gradient for the first 17 updates.
    callback(step, value, images): called after each update (images detached).
    out: if given, the result is also saved there as a PNG grid.

    >>> import weights
    >>> r = render(weights.model("random"), "conv2d2:3", image(32), steps=3, thresholds=[1, 3], progress=False)
    >>> sorted(r.images), len(r.values)
    ([1, 3], 3)
    """
    steps, thresholds = _check_steps(steps, thresholds)
    objective = as_objective(objective, model)
    _check_network(model, objective)
    param = image(128, seed=seed) if param is None else param
    if not isinstance(param, ImageParam):
        raise TypeError(f"param must be an ImageParam (see circuits.optvis.param), got {type(param).__name__}")
    _check_size(param, objective)
    if not lr > 0:
        raise ValueError(f"learning rate must be positive, got {lr!r}")
    if out is not None and Path(out).suffix.lower() != ".png":
        raise ValueError(f"output file must end in .png, got {str(out)!r}")
    transform = compose(standard_transforms() if transforms is None else list(transforms))
    hooks = tuple(sorted(objective.hooks, key=model.graph.index))
    redirect = redirected_relu_hooks(hooks, model.graph) if redirected_relu else []
    # [0, 1] -> the model's input range, as circuits.to_model_input maps floats.
    lo, hi = model.input_range

    g = torch.Generator().manual_seed(seed)
    params = [p for p in param.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the image parameterization has no trainable parameters")
    opt = torch.optim.Adam(params, lr=lr)
    images: dict[int, torch.Tensor] = {}
    values: list[float] = []
    interrupted = None
    bar = tqdm(total=steps, desc=objective.description[:40], disable=not progress, leave=False)
    step = 0
    try:
        for step in range(1, steps + 1):
            with model.hooks(redirect if step <= LUCID_REDIRECT_STEPS else []):
                # circuits.to_model_input's formula; its range check would sync on every
                # step, and sigmoid images stay in [0, 1] through every transform.
                x = transform(param(), g) * (hi - lo) + lo
                value = objective(model.run_with_cache(x, hooks, detach=False))
                if value.dim() != 0:
                    raise ValueError(f"objective {objective.description} must return a scalar, got shape {list(value.shape)}")
                v = value.detach().item()
                if not math.isfinite(v):
                    raise NonFiniteObjectiveError(
                        f"objective {objective.description} became {v} at step {step} of {steps}; "
                        "stopping (try a lower learning rate, or check the weights for NaN)"
                    )
                opt.zero_grad(set_to_none=True)
                (-value).backward(inputs=params)
            opt.step()
            values.append(v)
            bar.update(1)
            bar.set_postfix(objective=f"{v:.4g}", refresh=False)
            if step in thresholds or callback is not None:
                with torch.no_grad():
                    current = param().detach().clone()
                if step in thresholds:
                    images[step] = current
                if callback is not None:
                    callback(step, v, current)
    except KeyboardInterrupt:
        interrupted = step
        done = len(values)  # updates completed; the images are those after them
        log.warning("render of %s interrupted at step %d; returning the images after %d updates",
                    objective.description, step, done)
        with torch.no_grad():
            images[done] = param().detach().clone()
    finally:
        bar.close()
    result = RenderResult(images, values, objective.description, interrupted, seed, hooks)
    if result.stayed_zero:
        log.warning("%s", zero_objective_message(result, param.size, redirected_relu, model.graph))
    if out is not None:
        result.save(out)
    return result
