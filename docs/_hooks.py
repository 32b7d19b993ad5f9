"""mkdocs hook: serve the committed plots of results/plots/ as plots/<name>.png (no copy in docs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]


def on_files(files: Files, config: Any) -> Files:
    plots = ROOT / "results" / "plots"
    for png in sorted(plots.glob("*.png")):
        files.append(
            File(
                f"plots/{png.name}",
                src_dir=str(plots.parent),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
