"""The report as one self-contained HTML page.

Inline CSS and SVG drawn here, no JavaScript, no external assets (a Content-Security-Policy
forbids loading any), so the file can be mailed or archived as is: the overall status, a PSI
table with statuses, a data-quality table, the predictions against the training target, and
per-feature reference-vs-current histograms over the reference bins. Every name and value
taken from the metadata or the input is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

DASH = "&#8211;"  # shown for "not applicable"

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;
background:#f5f6f8;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.2rem;margin:2rem 0 .6rem}
h3{font-size:1.05rem;margin:0 0 .4rem}
.meta{color:#566070;font-size:.9rem;margin:.2rem 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:16px;margin:12px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92rem}
th,td{border-bottom:1px solid #e4e7ec;padding:6px 10px;text-align:left}
th{background:#eef1f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:.8rem;font-weight:600;
color:#fff}
.s-ok{background:#2e8540}.s-warn{background:#c77700}.s-drift{background:#c62828}
.s-insufficient_data,.s-no_reference{background:#7a8491}
.overall{font-size:1.1rem;padding:10px 14px;border-radius:8px;color:#fff;display:inline-block;
margin-top:.6rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(500px,1fr));gap:12px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;
vertical-align:middle}
.warnings{background:#fff8e1;border:1px solid #f0c36d;border-radius:8px;padding:8px 14px}
svg text{font-family:inherit}
footer{color:#566070;font-size:.85rem;margin-top:2rem}
"""
REFERENCE_COLOR = "#7b93c9"
CURRENT_COLOR = "#f08c4a"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return DASH
    if isinstance(value, float):
        if math.isnan(value):
            return DASH
        return f"{value:.{digits}g}"
    return _e(value)


def _badge(status: str) -> str:
    return f'<span class="badge s-{_e(status)}">{_e(status.replace("_", " "))}</span>'


def _axis(value: float) -> tuple[float, float]:
    """A round top for a fraction axis and its tick step (at most 5 steps, top <= 100%)."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25):
        if value <= step * 5:
            return max(step, math.ceil(value / step - 1e-9) * step), step
    return 1.0, 0.25


def histogram_svg(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float], title: str
) -> str:
    """Grouped bars (reference vs current fraction per bin) as an inline SVG element."""
    width, height = 520, 250
    left, right, top, bottom = 46, 10, 12, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    peak, step = _axis(max([*reference, *current, 0.0]))
    group = plot_w / n
    bar = max(group * 0.38, 1.0)
    parts = [
        f'<svg class="histogram" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
    ]
    for i in range(round(peak / step) + 1):
        y = top + plot_h * (1 - i * step / peak)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#e3e6eb" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#566070">{i * step:.0%}</text>'
        )
    for i, label in enumerate(labels):
        x0 = left + i * group + group * 0.1
        for j, (series, color, name) in enumerate(
            ((reference, REFERENCE_COLOR, "reference"), (current, CURRENT_COLOR, "current"))
        ):
            value = series[i] if i < len(series) else 0.0
            h = plot_h * value / peak
            x = x0 + j * bar
            parts.append(
                f'<rect class="bar-{name}" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{_e(label)}: {name} {value:.1%}</title></rect>"
            )
        cx = left + (i + 0.5) * group
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" font-size="10" fill="#39424e" '
            f'text-anchor="end" transform="rotate(-40 {cx:.1f} {top + plot_h + 12})">'
            f"{_e(short)}</text>"
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="#8a94a3" stroke-width="1"/></svg>'
    )
    return "".join(parts)


def _legend() -> str:
    return (
        f'<p class="legend"><span style="background:{REFERENCE_COLOR}"></span>training reference'
        f'<span style="background:{CURRENT_COLOR}"></span>current input</p>'
    )


def render_html(result: Mapping[str, Any], *, generated_at: str | None = None) -> str:
    """The report as one self-contained HTML document."""
    generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
    features: Mapping[str, Any] = result["features"]
    thresholds = result["thresholds"]
    status = result["status"]
    drifted, warned = result["drifted_features"], result["warned_features"]
    title = f"Drift report: {result['model_name']} {result['model_version']}"
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        '<header id="report-header"><h1>Drift and data-quality report</h1>',
        f'<p class="meta">Model <b>{_e(result["model_name"])}</b> version '
        f"<b>{_e(result['model_version'])}</b> · input <code>{_e(result['source'])}</code> · "
        f"{result['window']['rows']} rows · generated {_e(generated_at)}</p>",
        f'<p class="meta">PSI thresholds: ok &lt; {thresholds["warn"]} ≤ warn &lt; '
        f"{thresholds['drift']} ≤ drift; at least {thresholds['min_samples']} values per "
        "feature for a verdict.</p>",
        f'<div id="overall-status" class="overall s-{_e(status)}">Overall: '
        f"{_e(status.replace('_', ' '))} — {len(drifted)} drifted, {len(warned)} warning, "
        f"{len(features)} features</div></header>",
    ]
    if result.get("warnings"):
        out.append('<section class="warnings" id="input-warnings"><h2>Input warnings</h2><ul>')
        out += [f"<li>{_e(w)}</li>" for w in result["warnings"]]
        out.append("</ul></section>")

    out.append(
        '<section id="drift"><h2>Drift by feature (PSI)</h2><table id="psi-table"><thead><tr>'
        "<th>feature</th><th>kind</th><th>PSI</th><th>status</th><th>values</th>"
        "<th>current mean</th><th>reference mean</th><th>current std</th>"
        "<th>reference std</th></tr></thead><tbody>"
    )
    for name, f in features.items():
        cur, ref = f.get("current") or {}, f.get("reference") or {}
        out.append(
            f'<tr data-feature="{_e(name)}" data-status="{_e(f["status"])}"><td>{_e(name)}</td>'
            f"<td>{_e(f['kind'])}</td><td class=num>{_fmt(f['psi'])}</td>"
            f"<td>{_badge(f['status'])}</td><td class=num>{f['count']}</td>"
            f"<td class=num>{_fmt(cur.get('mean'))}</td><td class=num>{_fmt(ref.get('mean'))}</td>"
            f"<td class=num>{_fmt(cur.get('std'))}</td><td class=num>{_fmt(ref.get('std'))}</td>"
            "</tr>"
        )
    out.append("</tbody></table></section>")

    rows = result["window"]["rows"] or 1
    out.append(
        '<section id="data-quality"><h2>Data quality</h2><table id="quality-table"><thead><tr>'
        "<th>feature</th><th>missing</th><th>missing %</th>"
        "<th>outside training range</th><th>training range</th><th>unknown categories</th>"
        "</tr></thead><tbody>"
    )
    for name, f in features.items():
        quality = f["data_quality"]["window"]
        ref = f.get("reference") or {}
        span = (
            f"[{_fmt(ref.get('min'))}, {_fmt(ref.get('max'))}]" if f["kind"] == "numeric" else DASH
        )
        out.append(
            f'<tr data-feature="{_e(name)}"><td>{_e(name)}</td>'
            f"<td class=num>{quality['missing']}</td>"
            f"<td class=num>{quality['missing'] / rows:.1%}</td>"
            f"<td class=num>{quality.get('out_of_range', DASH)}</td><td>{span}</td>"
            f"<td class=num>{quality.get('unknown_category', DASH)}</td></tr>"
        )
    out.append("</tbody></table></section>")

    prediction = result["prediction"]
    out.append('<section id="prediction"><h2>Predictions vs training target</h2>')
    if result.get("has_predictions") and prediction.get("histogram"):
        hist = prediction["histogram"]
        what = "classes" if prediction["kind"] == "class" else "values"
        out.append(
            f'<div class="card"><h3>Predicted {what} '
            f"{_badge(prediction['status'])} PSI {_fmt(prediction['psi'])}</h3>"
            + histogram_svg(hist["bins"], hist["reference"], hist["current"], "predictions")
            + _legend()
            + "</div>"
        )
    else:
        out.append(
            '<p class="meta">No <code>prediction</code> column in the input: add one (the '
            "service's window export has it) to compare predictions with the training target "
            "distribution.</p>"
        )
    out.append("</section>")

    out.append('<section id="features"><h2>Per-feature distributions</h2><div class="grid">')
    for index, (name, f) in enumerate(features.items()):
        out.append(
            f'<article class="card feature" id="feature-{index}" data-feature="{_e(name)}">'
            f"<h3>{_e(name)} {_badge(f['status'])} <small>PSI {_fmt(f['psi'])}</small></h3>"
        )
        hist = f.get("histogram")
        if hist and hist["bins"]:
            out.append(histogram_svg(hist["bins"], hist["reference"], hist["current"], name))
            out.append(_legend())
        else:
            out.append('<p class="meta">No reference statistics for this feature.</p>')
        out.append("</article>")
    out.append("</div></section>")
    out.append(
        "<footer>PSI (population stability index) = Σ (current &minus; reference) · ln(current / "
        "reference) over the training decile bins (categories for categorical features); "
        "values below the training minimum count in the first bin, above the maximum in the "
        "last. See docs/monitoring.md for how to act on each signal.</footer>"
    )
    out.append("</main></body></html>")
    return "\n".join(out)
