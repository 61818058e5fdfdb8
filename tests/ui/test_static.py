"""The viewer's files as they ship: every module is fetched at once, nothing comes from
elsewhere, and the package carries them all."""

from __future__ import annotations

import re

from clew.ui.api import STATIC


def test_the_page_preloads_every_module_so_none_waits_for_its_importer() -> None:
    page = (STATIC / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([\w.-]+)">', page))
    modules = {path.name for path in STATIC.glob("*.js")} - {"app.js"}
    assert preloaded == modules
    assert '<script type="module" src="/static/app.js"></script>' in page


def test_every_import_names_a_module_that_ships() -> None:
    modules = {path.name for path in STATIC.glob("*.js")}
    for path in STATIC.glob("*.js"):
        for imported in re.findall(r'^import .* from "\./([\w.-]+)";$', path.read_text(), re.M):
            assert imported in modules, f"{path.name} imports {imported}"


def test_nothing_is_fetched_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        if path.suffix in {".js", ".html", ".css"}:
            text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a name, not a fetch
            assert not re.search(r"https?://", text), path.name
