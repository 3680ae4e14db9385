"""`circuits report`: the article for any family of any network, as a static, offline web site.

`build_report(model, family, out)` computes every piece the library measures for a family
— feature visualizations, radial tuning, orientation x curvature heat maps, dataset
statistics and crops, each unit's strongest weights, and, given the family below, the
weights by orientation difference and the editing experiment — caches them under `out`,
and writes an index, a "Curve Detectors"-like family page and a Microscope-like page per
unit. Only local files are referenced; the pages' content security policy allows nothing else.

Modules: `settings` (what is computed), `cache` (the weights' fingerprint and the cache),
`compute` (the computations), `svg` (inline figures), `assets` (stylesheet and script),
`pages` (the HTML), `site` (putting it together).

Example:
    >>> from circuits.report import ReportSettings
    >>> ReportSettings().vis_steps
    128
"""

from circuits.report.settings import ReportSettings
from circuits.report.site import ReportResult, build_report

__all__ = ["ReportSettings", "ReportResult", "build_report"]
