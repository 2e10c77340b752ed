"""Cohort report: distribution per metric, share of twins meeting each threshold (Wilson 95 %
confidence interval), worst cases with the command that opens them; histograms and a PDF.

A *metric* here is a (metric key, structure) pair pooled over the template's slots; the share
meeting a threshold counts slot values (a twin with two screws contributes two), and
``not assessable`` values are counted apart, never as met or missed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

WORST_N = 5


@dataclass
class MetricSummary:
    """Distribution of one metric over the cohort (values in ``unit``)."""

    metric: str
    structure: str
    title: str
    unit: str
    n: int
    n_not_assessable: int
    mean: float
    median: float
    p05: float
    p95: float
    minimum: float
    maximum: float
    threshold: float | None = None
    threshold_kind: str = ""
    threshold_source: str = ""
    n_meets: int = 0
    share_meets: float | None = None
    share_ci95: tuple[float, float] | None = None
    worst: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.title or self.metric}" + (f" ({self.structure})" if self.structure else "")


def open_command(source: str, twin_id: str, results: str = "RESULTS") -> str:
    """The command that opens a twin in the app (generated twins are saved first)."""
    if source.startswith("generated:"):
        return (f"surgiplan cohort open {results} {twin_id} --out {twin_id}.surgiplan"
                f" && surgiplan gui {twin_id}.surgiplan")
    return f"surgiplan gui {source}"


def summarise(rows: list[dict[str, Any]], *, results: str = "RESULTS") -> list[MetricSummary]:
    """One :class:`MetricSummary` per (metric, structure), in first-seen order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["metric"], r["structure"] or "")].append(r)
    return [_summary(key, group, results) for key, group in groups.items()]


def _summary(key: tuple[str, str], group: list[dict[str, Any]], results: str) -> MetricSummary:
    values = np.array([r["value"] for r in group], dtype=float)
    ok = np.isfinite(values)
    v = values[ok]
    stats = ([float(f(v)) for f in (np.mean, np.median)]
             + [float(np.percentile(v, q)) for q in (5, 95)]
             + [float(v.min()), float(v.max())]) if len(v) else [math.nan] * 6
    first = group[0]
    mean, median, p05, p95, low, high = stats
    s = MetricSummary(key[0], key[1], pooled_title(group), first["unit"], int(ok.sum()),
                      int((~ok).sum()), mean, median, p05, p95, low, high)
    threshold = first["threshold"]
    if threshold is not None and math.isfinite(threshold) and len(v):
        s.threshold, s.threshold_kind = float(threshold), first["threshold_kind"]
        s.threshold_source = first["threshold_source"]
        s.n_meets = int(sum(1 for r in group if r["meets"] == 1.0))
        s.share_meets, s.share_ci95 = s.n_meets / s.n, wilson_ci(s.n_meets, s.n)
        order = np.argsort(v if s.threshold_kind == "min" else -v, kind="stable")
        kept = [r for r in group if math.isfinite(r["value"])]
        s.worst = [{"twin_id": kept[i]["twin_id"], "slot": kept[i]["slot"],
                    "value": float(kept[i]["value"]), "source": kept[i]["source"],
                    "open": open_command(kept[i]["source"], kept[i]["twin_id"], results)}
                   for i in order[:WORST_N]]
    return s


def pooled_title(group: list[dict[str, Any]]) -> str:
    """The title of a metric pooled over slots: the rows' title when they share it, else the
    title with each row's slot name replaced by ``[slot]`` ("Coverage of tumour 1" and
    "... tumour 2" -> "Coverage of [slot]"), else the metric key."""
    titles = {r["title"] for r in group}
    if len(titles) == 1:
        return titles.pop()
    generic = {r["title"].replace(r["slot"], "[slot]") for r in group if r["slot"] in r["title"]}
    if len(generic) == 1 and all(r["slot"] in r["title"] for r in group):
        return generic.pop()
    return str(group[0]["metric"])


def wilson_ci(k: int, n: int) -> tuple[float, float]:
    """Wilson score 95 % confidence interval of a proportion k/n (scipy)."""
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def write_report(rows: list[dict[str, Any]], out_dir: Path, *, results: str = "RESULTS",
                 title: str = "Cohort report") -> dict[str, Path]:
    """Write ``summary.json``, one histogram PNG per metric and ``report.pdf`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_pdf import PdfPages

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = summarise(rows, results=results)
    paths = {"summary": out_dir / "summary.json", "pdf": out_dir / "report.pdf"}
    paths["summary"].write_text(json.dumps(_summary_json(rows, summaries), indent=1),
                                encoding="utf-8")
    with PdfPages(paths["pdf"]) as pdf:
        pdf.savefig(_text_page(rows, summaries, title))
        for n, s in enumerate(x for x in summaries if x.n):
            fig = histogram(s, [r["value"] for r in rows
                                if r["metric"] == s.metric and (r["structure"] or "") ==
                                s.structure])
            png = out_dir / f"hist_{n:02d}_{_slug(s.metric, s.structure)}.png"
            fig.savefig(png, dpi=80)
            pdf.savefig(fig)
            _close(fig)
    return paths


def histogram(s: MetricSummary, values: list[float]) -> Any:
    """A matplotlib figure: the metric's histogram with its threshold line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    v = np.array(values, dtype=float)
    ax.hist(v[np.isfinite(v)], bins=20, color="#4a7ab5", edgecolor="white")
    if s.threshold is not None:
        ax.axvline(s.threshold, color="#c0392b", linestyle="--",
                   label=f"threshold {'>=' if s.threshold_kind == 'min' else '<='} "
                         f"{s.threshold:g} {s.unit}")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(f"{s.label} [{s.unit}]" if s.unit else s.label)
    ax.set_ylabel("slots (twin x plan)")
    extra = f"; {s.n_not_assessable} not assessable" if s.n_not_assessable else ""
    ax.set_title(f"{s.label}: n = {s.n}{extra}", fontsize=9)
    fig.tight_layout()
    return fig


def _text_page(rows: list[dict[str, Any]], summaries: list[MetricSummary], title: str) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))
    twins = sorted({r["twin_id"] for r in rows})
    lines = [title, "", f"{len(twins)} twins, {len(rows)} rows; templates: "
             + ", ".join(sorted({r['template'] for r in rows})), "",
             "Share meeting each threshold (Wilson 95 % CI):"]
    for s in summaries:
        if s.share_meets is not None and s.share_ci95 is not None:
            lines.append(f"  {s.label}: {s.n_meets}/{s.n} = {100 * s.share_meets:.0f} % "
                         f"[{100 * s.share_ci95[0]:.0f}, {100 * s.share_ci95[1]:.0f}] "
                         f"({'>=' if s.threshold_kind == 'min' else '<='} {s.threshold:g} "
                         f"{s.unit}; {s.threshold_source})")
            lines.extend(f"      worst: {w['twin_id']} {w['slot']} {w['value']:.2f}"
                         for w in s.worst[:3])
    fig.text(0.05, 0.97, "\n".join(lines[:70]), va="top", family="monospace", fontsize=6.5)
    return fig


def _summary_json(rows: list[dict[str, Any]], summaries: list[MetricSummary]) -> dict[str, Any]:
    return {"schema": "surgiplan.cohort-report/1",
            "twins": len({r["twin_id"] for r in rows}), "rows": len(rows),
            "metrics": [{**asdict(s), "label": s.label} for s in summaries]}


def _slug(metric: str, structure: str) -> str:
    text = f"{metric}_{structure}" if structure else metric
    return "".join(c if c.isalnum() else "_" for c in text)[:60]


def _close(fig: Any) -> None:
    fig.clear()
