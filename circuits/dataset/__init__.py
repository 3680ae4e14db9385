"""Dataset analysis on real images: receptive-field crops, streaming scans, labels, curve extraction.

- `sources`: skimage's photographs or a folder of images;
- `crops`: receptive-field crops as valid positions of a unit's map;
- `accumulators`, `tails`: mergeable histogram / top-k / per-bin samples, exponential tail fits;
- `scan`: the streaming, resumable, distributable scan (`torchrun`);
- `labels`: labelling sheets and the three views of hand labels against activation;
- `extraction`, `spline`: curve extraction by attribution (vs Canny), spline tracing.

Every part reads the model's own network (`model.graph`, see `network`): InceptionV1 and
InceptionV3 alike, with each network's units, receptive fields (crop sizes) and input range.

Example:
    >>> from circuits.dataset import skimage_source
    >>> skimage_source().names[:3]
    ('astronaut', 'brick', 'camera')
"""

from circuits.dataset.scan import ScanInterrupted, ScanState, load_crops, scan
from circuits.dataset.sources import ImageSource, folder_source, open_source, skimage_source

__all__ = ["scan", "ScanState", "ScanInterrupted", "load_crops", "ImageSource", "skimage_source", "folder_source",
           "open_source"]
