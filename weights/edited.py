"""Edited models on disk: the parameters, the edit log and its tensors in one .safetensors file.

The format (unchanged from when it lived in ``circuits.editing.edits``): the model's
parameters under their usual keys (direct edits included); the edit log
(`circuits.editing.edit_log`) as JSON ``{"version": 1, "edits": [...]}`` in the
metadata under "circuits.edits"; the tensors the log needs
(`circuits.editing.log.edit_tensors`) under ``"circuits_edits.<key>"``. Loading
replays the log (`circuits.editing.log.replay`), which checks it against the
weights; an implant's donor is rebuilt with `weights.model` from the description
its entry records (a source name or a file).

Example:
    >>> import weights
    >>> from circuits.editing import scale_weights
    >>> from weights.edited import is_edited_file, load_edited, save_edited
    >>> m = weights.model("random")
    >>> m.apply_edit(scale_weights("conv2d1:0", "conv2d2:5", 0.5, network=m))
    >>> save_edited(m, "/tmp/circuits-edited-example.safetensors")
    >>> is_edited_file("/tmp/circuits-edited-example.safetensors")
    True
    >>> load_edited("/tmp/circuits-edited-example.safetensors").edits == m.edits
    True
"""

from __future__ import annotations

import json
import os

from circuits.core.files import atomic_path
from circuits.core import model as models
from circuits.core.model import Network, StateDictError, check_state_dict
from circuits.editing.edits import edit_log
from circuits.editing.log import EditLogMismatch, edit_tensors, replay

from .checkpoint import CheckpointError, read_metadata
from .registry import NETWORK_KEY

__all__ = ["METADATA_KEY", "TENSOR_PREFIX", "FORMAT_VERSION", "EditLogMismatch", "is_edited_file", "save_edited", "load_edited"]

# safetensors metadata key holding the JSON edit log; tensors an edit needs to be
# re-applied or undone after loading are stored under this key prefix.
METADATA_KEY = "circuits.edits"
TENSOR_PREFIX = "circuits_edits."
FORMAT_VERSION = 1


def is_edited_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a .safetensors file written by `save_edited` (with an edit log)."""
    if not str(path).endswith(".safetensors"):
        return False
    return METADATA_KEY in read_metadata(path)


def save_edited(model: Network, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Save the model with its edits as .safetensors (written to a temp file, then renamed).

    metadata: extra str -> str entries for the file's metadata.
    """
    from safetensors.torch import save_file

    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"edited models are saved as .safetensors, got {path!r}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({TENSOR_PREFIX + k: v.detach().cpu() for k, v in edit_tensors(model).items()})
    meta = dict(metadata or {})
    meta[METADATA_KEY] = json.dumps({"version": FORMAT_VERSION, "edits": edit_log(model)})
    meta[NETWORK_KEY] = model.graph.name  # which network class loads it back
    bad = {k: v for k, v in meta.items() if not (isinstance(k, str) and isinstance(v, str))}
    if bad:
        raise TypeError(f"safetensors metadata must map str to str, got {bad!r}")
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def _donor(description: str) -> Network:
    from .registry import model

    return model(description)


def load_edited(path: str | os.PathLike) -> Network:
    """The model (InceptionV1, or the network its metadata names) with the weights and edits
    saved by `save_edited`, checked and undoable.

    A file without an edit log loads as an unedited model.
    """
    from safetensors.torch import load_file as st_load

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    meta = read_metadata(path)
    try:
        tensors = st_load(path, device="cpu")
    except Exception as e:  # safetensors raises its own error type
        raise CheckpointError(f"{path} is truncated or corrupt ({type(e).__name__}: {e})") from e
    params = {k: v for k, v in tensors.items() if not k.startswith(TENSOR_PREFIX)}
    extra = {k[len(TENSOR_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TENSOR_PREFIX)}
    network = meta.get(NETWORK_KEY, "InceptionV1")
    cls = getattr(models, network, None)
    if not (isinstance(cls, type) and issubclass(cls, Network)):
        raise CheckpointError(f"{path}: its metadata names an unknown network {network!r} (known: InceptionV1, InceptionV3)")
    try:
        check_state_dict(params, cls.graph)
    except StateDictError as e:
        raise StateDictError(f"{path}: {e}") from None
    model = cls(params, source=path).eval()
    if METADATA_KEY not in meta:
        if extra:
            raise EditLogMismatch(f"{path} holds edit tensors ({len(extra)}) but no edit log in its metadata")
        return model
    try:
        log = json.loads(meta[METADATA_KEY])
        entries = log["edits"]
        version = log.get("version")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise EditLogMismatch(f"{path}: the edit log in the metadata is not valid ({e})") from None
    if version != FORMAT_VERSION:
        raise EditLogMismatch(f"{path}: edit log format {version!r} is not supported (expected {FORMAT_VERSION})")
    replay(model, entries, extra, donor=_donor, where=path)
    return model
