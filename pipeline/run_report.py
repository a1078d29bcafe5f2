"""The HTML report of a run: one self-contained file with its steps, counts, metrics, each
step's plots and notes, and what changed since the previous run of the pipeline.

A step contributes by writing into ``report/`` of its artifact: plots (PNG or SVG files) and an
optional ``summary.html`` fragment (tables, galleries; its images inline as ``data:`` URIs). The
report embeds the plots as ``data:`` URIs too, so ``report.html`` can be mailed or archived on
its own and still shows everything. The last section compares the run with the previous run of
the same pipeline (``beamline.compare``): parameters that changed, metrics and per-class changes.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .artifacts import META_FILE, Run, read_json

REPORT_FILE = "report.html"
STEP_REPORT_DIR = "report"
#: The plot files of a step's ``report/`` that the run report shows.
IMAGE_SUFFIXES = (".png", ".svg")
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%;margin:.5em 0;
border:1px solid #eee}.failed{color:#b00}.succeeded{color:#070}code{background:#f6f6f6}
nav a{margin-right:1em}.better{color:#070}.worse{color:#b00}tr.weak td{background:#fff4f0}
.gallery{display:flex;flex-wrap:wrap;gap:.6em}.card{border:1px solid #ddd;padding:.4em;
max-width:360px;font-size:.9em}.card img.sample{image-rendering:pixelated;width:96px;
margin:0}.card blockquote{margin:.2em 0;font-style:italic}table.samples img.sample{width:48px;
image-rendering:pixelated;margin:1px}figure{display:inline-block;margin:.5em}
.heat{display:block;width:330px}mark{padding:0 .1em}
"""


def write_run_report(run: Run) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    metas = [
        read_json(run.path / s / META_FILE)
        for s in run.info.get("steps", [])
        if (run.path / s / META_FILE).is_file()
    ]
    nav = "".join(
        f"<a href='#step-{html.escape(m['step'])}'>{html.escape(m['step'])}</a>" for m in metas
    )
    parts = [
        f"<h1>{html.escape(run.pipeline)} / {html.escape(run.run_id)}</h1>",
        f"<p>status: <b class='{html.escape(run.status)}'>{html.escape(run.status)}</b>; "
        f"started {html.escape(str(run.info.get('started', '')))}; "
        f"pipeline file <code>{html.escape(str(run.info.get('pipeline_file', '')))}</code></p>",
        f"<nav>{nav}<a href='#changes'>changes since the previous run</a></nav>",
    ]
    if run.info.get("error"):
        parts.append(f"<p class='failed'>error: {html.escape(str(run.info['error']))}</p>")
    parts.append(_steps_table(metas))
    for meta in metas:
        parts.append(_step_section(run.path, meta))
    parts.append(_changes_section(run))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(run.pipeline)} {html.escape(run.run_id)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = run.path / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def _steps_table(metas: list[dict]) -> str:
    rows = "".join(
        "<tr>"
        f"<td><a href='#step-{html.escape(m['step'])}'>{html.escape(m['step'])}</a></td>"
        f"<td>{html.escape(m.get('component', ''))}</td>"
        f"<td>{'reused' if m.get('reused_from') else 'ran'}</td>"
        f"<td>{m.get('seconds', '')}</td>"
        f"<td>{_mapping(m.get('counts', {}))}</td><td>{_mapping(m.get('metrics', {}))}</td>"
        "</tr>"
        for m in metas
    )
    head = "<tr><th>step</th><th>component</th><th></th><th>seconds</th><th>counts</th>"
    return f"<h2>steps</h2><table>{head}<th>metrics</th></tr>{rows}</table>"


def _step_section(run_path: Path, meta: dict) -> str:
    step = meta["step"]
    report_dir = run_path / step / STEP_REPORT_DIR
    out = [f"<h2 id='step-{html.escape(step)}'>{html.escape(step)}</h2>"]
    if meta.get("summary"):
        out.append(f"<p>{html.escape(str(meta['summary']))}</p>")
    params = json.dumps(meta.get("params", {}), indent=1, sort_keys=True)
    out.append(f"<details><summary>parameters</summary><pre>{html.escape(params)}</pre></details>")
    if report_dir.is_dir():
        images = sorted(p for p in report_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for image in images:
            out.append(
                f"<figure><img src='{inline_image(image)}' alt='{html.escape(image.stem)}'>"
                f"<figcaption>{html.escape(image.stem)}</figcaption></figure>"
            )
        fragment = report_dir / "summary.html"
        if fragment.is_file():
            out.append(fragment.read_text(encoding="utf-8"))
    return "".join(out)


def inline_image(path: Path) -> str:
    """A ``data:`` URI holding the image file at ``path`` (PNG or SVG)."""
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _changes_section(run: Run) -> str:
    from .compare import compare_runs, comparison_html, previous_run

    head = "<h2 id='changes'>changes since the previous run</h2>"
    try:
        previous = previous_run(run)
        if previous is None:
            return head + "<p>This is the first run of this pipeline here.</p>"
        return head + comparison_html(previous, run, compare_runs(previous, run))
    except (OSError, ValueError) as exc:  # an unreadable earlier run must not lose this report
        return head + f"<p>could not compare with the previous run: {html.escape(str(exc))}</p>"


def _mapping(values: dict) -> str:
    return ", ".join(
        f"{html.escape(str(k))} {v:.4g}" if isinstance(v, float) else f"{html.escape(str(k))} {v}"
        for k, v in values.items()
    )
