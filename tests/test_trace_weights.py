"""`torchvision:` weight sources (weights/torchvision_models.py) and the command line on them.

References: the eager torchvision module with the same weights and torchvision's own
preprocessing (its weights' transforms) written out; the commands are run in-process and
checked for what they print and write.
"""

from __future__ import annotations

import json
import urllib.error

import pytest
import torch

import torchvision  # a dependency of the package: a missing one is an error, not a skip

import weights  # noqa: E402
from circuits.cli import main  # noqa: E402
from weights import torchvision_models as tvm  # noqa: E402

SOURCE = "torchvision:resnet18:random"


def _imagenet(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


def test_random_source_is_torchvisions_seeded_init_with_imagenet_preprocessing():
    """Against torchvision's resnet18 built under the same seed, fed (x - mean) / std by hand:
    the network takes [0, 1] RGB and equals it; seeds differ, sources of one architecture
    share one graph."""
    m = weights.model(SOURCE)
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        got, want = m(x), ref(_imagenet(x))
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5
    assert m.input_range == (0.0, 1.0) and m.graph.default_input_size == 224
    other = weights.model(SOURCE + ":1")
    assert other.graph is m.graph
    assert not torch.equal(other.layer1_0_bn1.weight, m.layer1_0_bn1.weight)
    assert weights.model(SOURCE) is not m  # a new model each time (models are mutable)


def test_inception_v3_preprocessing_and_default_size_come_from_its_transforms():
    """torchvision's inception_v3 transforms: crop 299 and ImageNet mean/std."""
    assert tvm.preprocessing("inception_v3") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 299)


def test_checkpoint_file_with_arch(tmp_path):
    """A .pth state dict of the architecture (a 'fine-tuned' resnet18: its own random weights)
    loads through --weights FILE --arch torchvision:resnet18, equal to the eager module;
    a checkpoint of another architecture is refused, naming it."""
    torch.manual_seed(7)
    ref = torchvision.models.resnet18(weights=None, num_classes=1000).eval()
    path = tmp_path / "ft.pth"
    torch.save(ref.state_dict(), path)
    m = weights.model(f"torchvision:resnet18:{path}")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert float((m(x) - ref(_imagenet(x))).abs().max() / ref(_imagenet(x)).abs().max()) < 1e-5
    bad = tmp_path / "vgg.pth"
    torch.save(torchvision.models.vgg11(weights=None).state_dict(), bad)
    with pytest.raises(ValueError, match="not a checkpoint of torchvision's resnet18"):
        weights.model(f"torchvision:resnet18:{bad}")
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        weights.model(f"torchvision:resnet18:{tmp_path / 'missing.pth'}")


def test_pretrained_offline_says_how_to_use_a_local_file(tmp_path, monkeypatch):
    """Offline (the download raises as urllib does without a network) and with an empty cache:
    the error names the URL, the cache folder and the --weights FILE --arch alternative."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(url, dst, *a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(tvm.OfflineError) as e:
        weights.model("torchvision:resnet18")
    msg = str(e.value)
    assert "resnet18-f37072fd.pth" in msg and str(tmp_path) in msg
    assert "--weights resnet18-f37072fd.pth --arch torchvision:resnet18" in msg


def test_bad_sources_are_clear_errors():
    with pytest.raises(ValueError, match="unknown torchvision architecture 'resnet81'.*resnet18"):
        tvm.parse("torchvision:resnet81")
    with pytest.raises(ValueError, match="bad seed"):
        tvm.parse("torchvision:resnet18:random:x")


# --- the command line ---------------------------------------------------------------


def test_cli_layers_and_weights(capsys):
    """`circuits layers` lists the traced tensors with torchvision's names; `circuits weights`
    computes expanded weights through a residual block (against weights_between)."""
    from circuits.analysis.expanded import weights_between

    assert main(["layers", "--weights", SOURCE]) == 0
    out = capsys.readouterr().out
    assert "layer2.0.downsample.1" in out and "layer3" in out and "conv2d" in out
    assert main(["weights", "layer1.0:3", "layer2.0.bn1:5", "--weights", SOURCE, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    w = weights_between(weights.model(SOURCE), "layer1.0:3", "layer2.0.bn1:5")
    assert abs(rows[0]["total"] - float(w.sum())) < 1e-5 * max(1.0, abs(float(w.sum())))


def test_cli_tune_discover_vis_dataset(tmp_path, capsys):
    """tune, discover, vis and dataset run on a traced network, at small sizes, and write
    what they say they wrote."""
    assert main(["tune", "layer2:17", "--weights", SOURCE, "--angles", "8", "--no-progress",
                 "--json", str(tmp_path / "t.json")]) == 0
    t = json.loads((tmp_path / "t.json").read_text())
    assert "layer2:17" in json.dumps(t)
    assert main(["discover", "layer1", "--weights", SOURCE, "--orientations", "8", "--curvatures", "0.5",
                 "--no-progress"]) == 0
    assert "pass every criterion" in capsys.readouterr().out
    assert main(["vis", "layer2:17", "--weights", SOURCE, "--steps", "4", "--size", "48", "--quiet",
                 "--out", str(tmp_path / "v.png")]) == 0
    assert (tmp_path / "v.png").stat().st_size > 0
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(2):
        Image.fromarray((torch.rand(100, 120, 3, generator=g) * 255).byte().numpy()).save(images / f"{i}.png")
    assert main(["dataset", "layer2.1.relu:17", "--images", str(images), "--weights", SOURCE, "--no-plots",
                 "--quiet", "--image-size", "96", "--json", str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["network"] == "resnet18" and d["units"]["layer2.1.relu:17"]["tensor"] == "layer2.1.bn1"


def test_googlenets_transform_input_is_folded_into_the_preprocessing():
    """Pretrained GoogLeNet re-normalizes its ImageNet-normalized input inside forward
    (transform_input=True, as torchvision builds it with weights). The source folds that
    into the `normalize` node, (x - 0.5) / 0.5: against the eager module (transform_input
    on) fed (x - mean) / std, on seeded random weights (no download here)."""
    torch.manual_seed(0)
    ref = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = ref(_imagenet(x))
    import copy

    net = tvm._trace(copy.deepcopy(ref), "googlenet", tvm.graph("googlenet"))
    assert not any(n.kind.opaque for n in net.graph.nodes)
    with torch.no_grad():
        assert float((net(x) - want).abs().max() / want.abs().max()) < 1e-5
