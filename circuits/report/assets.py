"""The site's one stylesheet and one script, written next to the pages (nothing is fetched).

The script does one thing: wherever an element with ``data-unit`` inside a
``.radial`` figure is hovered or focused (a curve, its peak dot, its key), the figure
gets the class ``isolating`` and every element of that unit the class ``active``;
the stylesheet then fades every other curve, as the radial plots of "Curve Detectors" do.

Example:
    >>> "isolating" in SCRIPT and ".radial.isolating" in STYLE
    True
"""

from __future__ import annotations

__all__ = ["STYLE", "SCRIPT", "CSP"]

# Only local files: no network request can leave a page (and none is made).
CSP = ("default-src 'none'; img-src file: data:; style-src file:; script-src file:; font-src 'none'; "
       "connect-src 'none'; base-uri 'none'; form-action 'none'")

STYLE = """\
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; }
header.site { background: #f4f4f2; border-bottom: 1px solid #ddd; padding: 8px 24px; font-size: 14px; }
header.site a { margin-right: 14px; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 24px 48px; }
h1 { font-size: 26px; margin: 18px 0 4px; } h2 { font-size: 20px; margin: 28px 0 6px; border-bottom: 1px solid #eee; }
h3 { font-size: 16px; margin: 16px 0 4px; }
a { color: #1a5fb4; text-decoration: none; } a:hover, a:focus { text-decoration: underline; }
.note { color: #555; font-size: 14px; max-width: 860px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.card { text-align: center; font-size: 13px; }
.card img.vis { width: 128px; height: 128px; image-rendering: auto; border: 1px solid #ccc; display: block; }
.big img.vis { width: 288px; height: 288px; }
figure { margin: 8px 0; }
.radial { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
.radial .keys { list-style: none; padding: 0; margin: 0; columns: 2; font-size: 13px; }
.radial .keys li { padding: 1px 4px; }
.radial .keys .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; }
.radial.isolating .curve:not(.active) { opacity: 0.08; }
.radial.isolating .keys li:not(.active) { opacity: 0.35; }
.radial .keys li.active { font-weight: bold; }
.radial svg .curve.peak { cursor: pointer; }
table.layers td:last-child, table.layers th:last-child { text-align: left; }
.crops { display: flex; flex-wrap: wrap; gap: 3px; }
.crop { font-size: 11px; text-align: center; color: #444; }
.crop img { width: 72px; height: 72px; display: block; border: 1px solid #ddd; }
.quilt th { font-weight: normal; color: #555; font-size: 12px; white-space: nowrap; }
.quilt td { text-align: left; }
.quilt img { width: 48px; height: 48px; margin-right: 2px; }
.units-strip img { width: 40px; height: 40px; vertical-align: middle; border: 2px solid transparent; }
.units-strip a.current img { border-color: #222; }
.figure-row { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; }
details summary { cursor: pointer; color: #1a5fb4; }
.legend-scale { font-size: 12px; color: #555; }
.legend-scale span { display: inline-block; width: 18px; height: 10px; vertical-align: middle; }
.sw-neg { background: #2166ac; } .sw-zero { background: #ffffff; border: 1px solid #ccc; } .sw-pos { background: #b2182b; }
"""

SCRIPT = """\
// Hover or focus a unit (curve, peak dot or key) in a radial plot: fade every other unit.
(function () {
  function setup(fig) {
    var items = fig.querySelectorAll('[data-unit]');
    function on(unit) {
      fig.classList.add('isolating');
      items.forEach(function (e) { e.classList.toggle('active', e.getAttribute('data-unit') === unit); });
    }
    function off() {
      fig.classList.remove('isolating');
      items.forEach(function (e) { e.classList.remove('active'); });
    }
    items.forEach(function (e) {
      var unit = e.getAttribute('data-unit');
      e.addEventListener('mouseenter', function () { on(unit); });
      e.addEventListener('mouseleave', off);
      e.addEventListener('focus', function () { on(unit); });
      e.addEventListener('blur', off);
    });
  }
  document.querySelectorAll('.radial').forEach(setup);
})();
"""
