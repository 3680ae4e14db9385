"""The Python examples of the README and of every docs/*.md page run as written.

Checked against the pages themselves: each page's ```python blocks run in order, in one
namespace of their own, in a temporary folder (examples write files). A page added under
docs/ is picked up without touching this file.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def _run(page: Path) -> None:
    env: dict = {"__name__": f"docs:{page.name}"}
    for code in _blocks(page):
        exec(compile(code, str(page), "exec"), env)


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    assert _blocks(README), "the README has Python examples"
    monkeypatch.chdir(tmp_path)  # examples write files (e.g. curves.graphml)
    _run(README)
    assert (tmp_path / "curves.graphml").exists()


def test_the_readme_links_every_docs_page():
    """Every page under docs/ is reachable from the README's documentation list."""
    text = README.read_text(encoding="utf-8")
    assert PAGES, "docs/*.md pages"
    missing = [p.name for p in PAGES if f"(docs/{p.name})" not in text]
    assert not missing, f"docs pages not linked from the README: {missing}"


def test_the_readme_stays_short():
    """A newcomer reads it: at most ~250 lines; the rest lives in docs/*.md."""
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 260, f"README.md has {n} lines; move sections to docs/*.md"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_page_python_blocks_run(page, tmp_path, monkeypatch):
    if any("nsfwjs-inception-v3" in code for code in _blocks(page)) and not _nsfwjs_available():
        pytest.skip(f"{page.name} runs the trained InceptionV3: the nsfwjs@4.4.0 package is not available "
                    "(tests/test_cli_v3.py covers it where it is)")
    monkeypatch.chdir(tmp_path)
    _run(page)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_links_between_pages_resolve():
    """Every relative link of the README and the docs pages names a file that exists, and a
    heading of it where the link has an #anchor."""
    bad = []
    for page in [README, *PAGES]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            path, _, anchor = target.partition("#")
            if re.match(r"[a-z]+:", path):
                continue
            dest = (page.parent / path) if path else page
            if not dest.exists():
                bad.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{page.name}: {target} (no such heading)")
    assert not bad, bad


def _nsfwjs_available() -> bool:
    from weights import tfjs

    try:
        tfjs.locate_package()
    except tfjs.TfjsFormatError:
        return False
    return True
