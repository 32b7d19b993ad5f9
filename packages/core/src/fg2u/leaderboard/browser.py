"""The leaderboard page in a real browser: headless Chromium renders ``leaderboard.html``, saves a
screenshot of the first screen and reports the text a reader sees there without scrolling.

Chromium is a system package (Debian: ``apt-get install -y chromium``), found as ``$FG2U_CHROMIUM`` or
the first of ``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable`` on the
PATH; `find_chromium` returns None when there is none, and the functions here raise
`ChromiumNotFound` saying how to install it.

`visible_text` copies the page into a temporary file with a small script appended that collects
every text node whose layout box lies (at least partly) inside the first ``width`` × ``height`` screen,
and reads it back from Chromium's ``--dump-dom`` output. The browser does the layout; nothing is guessed
from the HTML source.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["ChromiumNotFound", "find_chromium", "screenshot", "visible_text", "WIDTH", "HEIGHT"]

#: The first screen the page is designed for (CSS pixels).
WIDTH, HEIGHT = 1400, 900
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_MARKER = "fg2u-visible-text"
_SCRIPT = """
<script>
(function () {
  const seen = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    if (!text || node.parentElement.closest("script,style")) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const box of range.getClientRects()) {
      if (box.width > 0 && box.height > 0 && box.top < window.innerHeight && box.bottom > 0 &&
          box.left < window.innerWidth && box.right > 0) { seen.push(text); break; }
    }
  }
  const out = document.createElement("pre");
  out.id = "__MARKER__";
  out.textContent = JSON.stringify({width: window.innerWidth, height: window.innerHeight, text: seen});
  document.body.appendChild(out);
})();
</script>
""".replace("__MARKER__", _MARKER)


class ChromiumNotFound(RuntimeError):
    """No Chromium/Chrome executable; the message says how to install one."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$FG2U_CHROMIUM`` if set, else the first candidate on the PATH, else None."""
    explicit = os.environ.get("FG2U_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) or Path(explicit).is_file() else None
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        raise ChromiumNotFound(
            "no Chromium found (looked for $FG2U_CHROMIUM, " + ", ".join(_CANDIDATES) + "); install it, e.g. "
            "`apt-get update && apt-get install -y chromium` on Debian/Ubuntu, or point FG2U_CHROMIUM at a Chrome binary"
        )
    return path


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="fg2u-chromium-") as profile:
        command = [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited with {result.returncode}: {result.stderr[-2000:]}")
    return result


def screenshot(
    page: str | os.PathLike,
    png: str | os.PathLike,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    timeout_s: float = 120.0,
) -> Path:
    """Renders ``page`` (an HTML file) headless at ``width`` × ``height`` and writes the first screen to
    ``png``; returns its path."""
    page, png = Path(page).resolve(), Path(png).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page} does not exist; render it first (python -m fg2u.leaderboard render)")
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()], timeout_s)
    if not png.is_file():
        raise RuntimeError(f"chromium did not write {png}")
    return png


def visible_text(
    page: str | os.PathLike, *, width: int = WIDTH, height: int = HEIGHT, timeout_s: float = 120.0
) -> dict:
    """The text nodes laid out inside the first ``width`` × ``height`` screen of ``page``.

    Returns ``{"width": innerWidth, "height": innerHeight, "text": [str, ...]}`` in document order
    (inner sizes as Chromium reports them; the window frame may take a few pixels of ``height``).
    """
    page = Path(page).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page} does not exist; render it first (python -m fg2u.leaderboard render)")
    source = page.read_text(encoding="utf-8")
    marker = source.rfind("</body>")
    probe = (source[:marker] + _SCRIPT + source[marker:]) if marker >= 0 else source + _SCRIPT
    with tempfile.TemporaryDirectory(prefix="fg2u-page-") as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(probe, encoding="utf-8")
        result = _run(
            [f"--window-size={width},{height}", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()], timeout_s
        )
    start = result.stdout.find(f'<pre id="{_MARKER}">')
    if start < 0:
        raise RuntimeError("chromium's DOM dump has no visible-text report (did the page's script run?)")
    end = result.stdout.find("</pre>", start)
    return json.loads(html.unescape(result.stdout[start + len(f'<pre id="{_MARKER}">') : end]))
