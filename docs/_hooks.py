"""mkdocs hook: serve the committed plots of results/plots/ as plots/<name>.png and results/scaling/*.png as
scaling/<name>.png (no copy in docs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]


def on_files(files: Files, config: Any) -> Files:
    for folder in ("plots", "scaling"):
        for png in sorted((ROOT / "results" / folder).glob("*.png")):
            files.append(
                File(
                    f"{folder}/{png.name}",
                    src_dir=str(ROOT / "results"),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files
