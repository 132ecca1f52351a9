"""The files a released lecture loads, vendored from npm at release time, never from a CDN.

``grader/lectures/lecture_assets/package.json`` names three npm packages at exact versions and
``package-lock.json`` pins their integrity:

- ``mathjax`` 3.2.2: ``es5/tex-svg-full.js`` typesets TeX as SVG with every TeX extension
  built in, so it never loads another file (the engine JupyterLab 4 uses for the same cells);
- ``reveal.js`` 5.2.1: the slides (script, style sheets, the white theme and its font, the
  speaker-notes plugin);
- ``@jupyter-widgets/html-manager`` 1.0.15 (the manager for ipywidgets 8's saved state):
  ``dist/embed.js``, a standalone bundle that brings the saved widgets to life without
  require.js, with its icon fonts.

``installed()`` runs ``npm ci --ignore-scripts`` once into ``<venv>/share/cvcourse/
lecture-assets`` (never globally, never into git) and again when the lock file changes.
:class:`Assets` writes the ``<script>``/``<link>`` tags the templates ask for: links to a
shared ``assets/`` folder beside the lectures, or, for ``--single-file``, the files' text
inlined (style sheets with their fonts as ``data:`` URLs).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

from markupsafe import Markup

from cvcourse.fileio import atomic_path
from grader.pipeline.course import CourseError

PROJECT = Path(__file__).resolve().parent / "lecture_assets"
HOME = Path(sys.prefix) / "share" / "cvcourse" / "lecture-assets"
STAMP = ".cvcourse-lock-sha256"

# What a release copies, as (npm package, file or folder inside it, name under assets/).
# Icon fonts: only the formats every current browser picks first (woff2, then woff).
FILES = [
    ("mathjax", "es5/tex-svg-full.js", "mathjax/tex-svg-full.js"),
    ("reveal.js", "dist/reveal.js", "reveal.js/reveal.js"),
    ("reveal.js", "dist/reveal.css", "reveal.js/reveal.css"),
    ("reveal.js", "dist/theme/white.css", "reveal.js/theme/white.css"),
    ("reveal.js", "dist/theme/fonts/source-sans-pro", "reveal.js/theme/fonts/source-sans-pro"),
    ("reveal.js", "plugin/notes/notes.js", "reveal.js/notes.js"),
    ("@jupyter-widgets/html-manager", "dist/embed.js", "html-manager/embed.js"),
    ("@jupyter-widgets/html-manager", "dist/*.woff2", "html-manager/"),
    ("@jupyter-widgets/html-manager", "dist/*.woff", "html-manager/"),
]
# Font formats copied out of a font folder (the .eot/.ttf twins are for old browsers only).
FONT_SUFFIXES = (".css", ".woff", ".woff2")
OLD_FONTS = (".eot", ".ttf", ".otf")


def _lock_digest() -> str:
    return hashlib.sha256((PROJECT / "package-lock.json").read_bytes()).hexdigest()


def installed(home: Path = HOME, *, progress: bool = True) -> Path:
    """``node_modules`` holding the pinned packages; runs ``npm ci`` when they are missing."""
    modules = home / "node_modules"
    digest = _lock_digest()
    stamp = home / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest and modules.is_dir():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise CourseError(
            "release-lectures vendors MathJax, reveal.js and the widget manager from npm, "
            "and npm is not installed: install Node.js and npm (Debian: apt-get install npm)"
        )
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(PROJECT / name, home / name)
    if progress:
        print(f"installing the lecture assets with npm into {home} (once)", file=sys.stderr)
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise CourseError(f"npm ci failed in {home}:\n{(done.stdout + done.stderr)[-2000:]}")
    stamp.write_text(digest + "\n")
    return modules


def _sources(modules: Path):
    """(source file, name under assets/) for every file a release ships."""
    for package, inside, target in FILES:
        root = modules / package
        if "*" in inside:
            matches = sorted(root.glob(inside))
            if not matches:
                raise CourseError(f"{package} has no {inside} (is the pinned version installed?)")
            for path in matches:
                yield path, target + path.name
        elif (root / inside).is_dir():
            for path in sorted((root / inside).iterdir()):
                if path.suffix in FONT_SUFFIXES:
                    yield path, f"{target}/{path.name}"
        elif (root / inside).is_file():
            yield root / inside, target
        else:
            raise CourseError(f"{package} has no {inside} (is the pinned version installed?)")


def copy_assets(modules: Path, folder: Path) -> int:
    """Copy the shipped files into ``folder`` (atomically, each); returns their bytes."""
    total = 0
    for source, name in _sources(modules):
        target = folder / name
        data = source.read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes(data)
        total += len(data)
    return total


# --- tags for the templates --------------------------------------------------------------------

_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]+)\1\s*\)")
_CSS_IMPORT = re.compile(r"@import\s+url\(\s*(['\"]?)([^'\")]+)\1\s*\)\s*;")


def _data_url(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0]
    if kind is None:
        kind = {".woff": "font/woff", ".woff2": "font/woff2"}.get(path.suffix, "")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def inline_css(path: Path) -> str:
    """The style sheet with its ``@import``s inlined and the files it names as data URLs.

    Fonts in the formats only old browsers need (.eot, .ttf) keep their URL, unembedded,
    as the assets/ folder leaves them out: a browser never asks for a format when it can
    read a better one listed beside it.
    """

    def load(match):
        return inline_css((path.parent / match.group(2)).resolve())

    def embed(match):
        url = match.group(2)
        if url.startswith(("data:", "#")) or "://" in url:
            return match.group(0)
        target = (path.parent / url.split("?")[0].split("#")[0]).resolve()
        if target.suffix in OLD_FONTS or not target.is_file():
            return match.group(0)
        return f"url({_data_url(target)})"

    return _CSS_URL.sub(embed, _CSS_IMPORT.sub(load, path.read_text(encoding="utf-8")))


# html-manager's bundle finds its fonts from its own <script src>; inlined, it has none.
# Each font is a module ``e.exports=n.p+"<hash>.<ext>"``: point the woff2 ones at data URLs,
# and give the bundle the page's folder as its public path instead of throwing.
_PUBLIC_PATH_THROW = 'throw new Error("Automatic publicPath is not supported in this browser")'
_FONT_MODULE = re.compile(r'e\.exports=n\.p\+"([0-9a-f]{20}\.woff2)"')


def _inline_embed(path: Path) -> str:
    code = path.read_text(encoding="utf-8")
    if code.count(_PUBLIC_PATH_THROW) != 1 or not _FONT_MODULE.search(code):
        raise CourseError(f"{path}: not the html-manager bundle this release knows how to inline")
    code = code.replace(_PUBLIC_PATH_THROW, "e=document.baseURI")
    return _FONT_MODULE.sub(lambda m: f'e.exports="{_data_url(path.parent / m.group(1))}"', code)


class Assets:
    """``<script>`` and style-sheet tags for the templates: linked under ``prefix`` or inlined.

    ``modules`` is the installed ``node_modules`` (inlining reads from it; linking only names
    files that :func:`copy_assets` put under ``prefix``).
    """

    def __init__(self, modules: Path, *, prefix: str = "assets", inline: bool = False):
        self.inline = inline
        self.prefix = prefix.rstrip("/")
        self._files = {name: source for source, name in _sources(modules)}

    def _source(self, name: str) -> Path:
        if name not in self._files:
            raise CourseError(f"no lecture asset named {name!r}")
        return self._files[name]

    def script(self, name: str) -> Markup:
        source = self._source(name)
        if not self.inline:
            return Markup('<script src="{}"></script>').format(f"{self.prefix}/{name}")
        code = _inline_embed(source) if name == "html-manager/embed.js" else source.read_text()
        # the HTML parser ends a script at "</script" whatever the JavaScript around it
        code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
        return Markup(f"<script>{code}</script>")  # vendored, pinned code (not user text)

    def stylesheet(self, name: str) -> Markup:
        source = self._source(name)
        if not self.inline:
            return Markup('<link rel="stylesheet" href="{}">').format(f"{self.prefix}/{name}")
        css = inline_css(source).replace("</style", "<\\/style")
        return Markup(f"<style>{css}</style>")  # vendored, pinned (not user text)


def folder_size(paths) -> int:
    """Bytes in the given files and folders (recursively)."""
    total = 0
    for path in map(Path, paths):
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            total += path.stat().st_size
    return total


def human(size: int) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units, as file managers show)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


__all__ = ["Assets", "copy_assets", "folder_size", "human", "inline_css", "installed"]
