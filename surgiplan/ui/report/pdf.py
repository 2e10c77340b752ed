"""The plan report as HTML for ``QTextDocument`` and as a PDF written by ``QPdfWriter``.

Images are passed as QImages and referenced as ``img:NAME`` resources. Page numbers are added
by ``QTextDocument.print_``. Everything in LPS mm.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QUrl
from PySide6.QtGui import QFont, QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import write_bytes_atomic
from surgiplan.model.provenance import REVIEWED
from surgiplan.ui.report.content import ReportContent, fmt

DISCLAIMER = ("SurgiPlan is a planning and training aid; it is not a certified medical device. "
              "Every number is a model estimate on this twin with the stated uncertainty model.")
IMAGE_TITLES = {"3d": "3D view", "axial": "Axial slice through the target",
                "coronal": "Coronal slice through the target",
                "sagittal": "Sagittal slice through the target",
                "probe": "Probe's eye (perpendicular) and along the path"}
CSS = """
h1 { font-size: 15pt; color: #123; }
h2 { font-size: 11.5pt; color: #124; margin-top: 10px; }
td, th { padding: 2px 4px; }
th { background: #dde5ee; text-align: left; }
.small { font-size: 7.5pt; color: #444; }
.ok { color: #117722; } .bad { color: #bb1111; font-weight: bold; }
.best { font-weight: bold; }
"""


def _rows(pairs: list[tuple[str, str]], *, mono: bool = False) -> str:
    cell = "<td><tt>{}</tt></td>" if mono else "<td>{}</td>"
    body = "".join(f"<tr><td><b>{escape(k)}</b></td>{cell.format(escape(v))}</tr>"
                   for k, v in pairs)
    return f'<table border="0" cellspacing="0" width="100%">{body}</table>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<table border="1" cellspacing="0" cellpadding="2" width="100%" '
            f'style="border-color:#99a">{"<tr>" + head + "</tr>"}{body}</table>')


def _plan_section(c: ReportContent) -> str:
    p = c.plan
    status = str(p.status) + (f" by {p.approved_by} on {p.approved_utc}" if p.approved_by
                              else "")
    items = "".join(f"<li>{escape(i.label)} ({i.kind}, simulator {escape(i.simulator_id)})"
                    "</li>" for i in p.interventions)
    table = _rows([("Name", p.name), ("Status", status), ("Author", p.author),
                   ("Created", p.created_utc), ("Modified", p.modified_utc),
                   ("Notes", p.notes or "—")])
    text = f"<h2>Plan</h2>{table}<ul>{items}</ul>"
    if c.alternatives:
        text += ("<p>Compared with: " + escape(", ".join(c.alternatives)) + ".</p>")
    return text


def _verdict_section(c: ReportContent) -> str:
    """The headline: the plan's overall level and every reason it is not safe."""
    css = "ok" if c.verdict == "safe" else "bad"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in c.verdict_reasons)
    return (f'<h2>Verdict: <span class="{css}">{escape(c.verdict.upper())}</span></h2>'
            + (f"<ul>{reasons}</ul>" if reasons else
               "<p>No structure within its margin, no simulator concern, every metric "
               "assessed.</p>"))


def _metrics_section(c: ReportContent) -> str:
    def meets(value: bool | None) -> str:
        return "" if value is None else ('<span class="ok">yes</span>' if value
                                         else '<span class="bad">NO</span>')

    parts = ["<h2>Metrics (value and 95 % interval)</h2>"]
    for label in dict.fromkeys(m.intervention for m in c.metrics):
        rows = [[escape(m.title), escape(m.value), escape(m.interval), escape(m.threshold),
                 meets(m.meets), f'<span class="small">{escape(m.source)}</span>']
                for m in c.metrics if m.intervention == label]
        parts.append(f"<p><b>{escape(label)}</b></p>" + _table(
            ["Metric", "Value", "95 % interval (kind)", "Threshold", "Met", "Threshold source"],
            rows))
    return "".join(parts)


def _comparison_section(c: ReportContent) -> str:
    comp = c.comparison
    if comp is None or len(comp.plans) < 2:
        return ""
    rows = []
    for name in comp.plans:
        s = comp.safety[name]
        closest = s.closest
        rows.append([("<b>" if name == comp.safest else "") + escape(name),
                     escape(str(s.worst_level)) if s.structures else "—",
                     escape(closest.structure) if closest else "—",
                     fmt(s.clearance_mm, "mm") if s.structures else "—",
                     f"{100 * s.max_breach_probability:.0f} %"])
    why = f"<p>{escape(comp.why)}</p>" if comp.why else ""
    return ("<h2>Comparison with the other candidate plans</h2>"
            + _table(["Plan", "Worst level", "Closest structure", "Clearance",
                      "Max breach probability"], rows) + why)


IMAGE_LEGEND = ("Legend: only this plan's objects are drawn. A path's colour is its verdict "
                "level (green safe, amber caution, red breach, blue not scored); E marks the "
                "entry, T the target; the strip under each view names every coloured object. "
                "Slices carry a scale bar in mm and the patient's side letters (R/L, A/P, S/I).")


def _images_section(names: list[str]) -> str:
    if not names:
        return "<p><i>No views could be rendered.</i></p>"
    grid = [n for n in ("3d", "axial", "coronal", "sagittal") if n in names]
    cells = [f'<td align="center"><img src="img:{n}" width="300"><br>'
             f'<span class="small">{IMAGE_TITLES[n]}</span></td>' for n in grid]
    rows = "".join("<tr>" + "".join(cells[i:i + 2]) + "</tr>" for i in range(0, len(cells), 2))
    text = (f"<h2>Views</h2><table cellpadding='3'>{rows}</table>"
            f"<p class='small'>{escape(IMAGE_LEGEND)}</p>")
    if "probe" in names:
        text += (f'<p align="center"><img src="img:probe" width="600"><br><span class="small">'
                 f'{IMAGE_TITLES["probe"]}</span></p>')
    return text


def _automatic_section(c: ReportContent) -> str:
    """The structures an automatic method made that no one has reviewed (method, flag)."""
    rows = [[escape(n), escape(m), escape(f)] for n, m, f in c.automatic
            if not f.startswith(REVIEWED)]
    done = [n for n, _, f in c.automatic if f.startswith(REVIEWED)]
    text = "<h2>Automatic structures (not reviewed)</h2>"
    text += (_table(["Structure", "Method", "Quality flag"], rows) if rows
             else "<p>None: every automatic structure was reviewed.</p>")
    if done:
        text += f"<p class='small'>Reviewed: {escape(', '.join(done))}.</p>"
    return text


def _longitudinal_section(c: ReportContent) -> str:
    """Structure changes between baseline and follow-up (volumes, surface movement)."""
    rows = [[escape(str(ch.get("series", ""))),
             escape(f"{ch['baseline']} -> {ch['followup']}"),
             f"{ch['baseline_ml']:.2f} -> {ch['followup_ml']:.2f}",
             f"{ch['change_ml']:+.2f}" + ("" if ch.get("change_percent") is None
                                          else f" ({ch['change_percent']:+.1f} %)"),
             f"{ch['max_growth_mm']:.1f} / {ch['max_shrink_mm']:.1f}"]
            for ch in c.longitudinal]
    return ("<h2>Follow-up: structure changes</h2>"
            + _table(["Series", "Baseline -> follow-up", "Volume (ml)", "Change (ml)",
                      "Largest growth / shrinkage of the surface (mm)"], rows)
            + "<p class='small'>Both structures on the reference grid, the follow-up carried "
            "through its series' registration.</p>")


def _signoff() -> str:
    rows = "".join(f"<tr><td width='22%'><b>{r}</b></td><td width='30%'>Name:</td>"
                   "<td width='28%'>Signature:</td><td width='20%'>Date:</td></tr>"
                   for r in ("Planned by", "Reviewed by", "Approved by"))
    return ("<h2>Approval and sign-off</h2>"
            '<table border="1" cellspacing="0" cellpadding="10" width="100%">'
            f"{rows}</table><p class='small'>By signing, the approver confirms having reviewed "
            "the plan, its metrics with their intervals and the uncertainty model above.</p>")


def report_html(c: ReportContent, image_names: list[str]) -> str:
    """The report as HTML (images referenced as ``img:NAME``)."""
    warn = "".join(f"<li>{escape(w)}</li>" for w in c.warnings)
    return (
        f"<html><head><style>{CSS}</style></head><body>"
        f"<h1>{escape(c.title)}</h1><p class='small'>Generated {escape(c.created_utc)} by "
        f"SurgiPlan. Coordinates: DICOM patient LPS, millimetres.</p>"
        + _verdict_section(c)
        + f"<h2>Case</h2>{_rows(c.case)}{_plan_section(c)}"
        + (f"<h2>Warnings</h2><ul>{warn}</ul>" if warn else "")
        + (_automatic_section(c) if c.automatic else "")
        + (_longitudinal_section(c) if c.longitudinal else "")
        + _metrics_section(c) + _comparison_section(c) + _images_section(image_names)
        + "<h2>Uncertainty model</h2>"
        + "".join(f"<p>{escape(u)}</p>" for u in c.uncertainty)
        + "<h2>Provenance (ASME V&amp;V 40 credibility evidence)</h2>"
        "<p><b>Software</b></p>" + _rows(c.provenance)
        + "<p><b>Simulator plug-ins</b></p>" + _rows(c.plugins)
        + "<p><b>Parameters and inputs (LPS mm)</b></p>" + _rows(c.parameters, mono=True)
        + "<p><b>Input hashes (SHA-256)</b></p>"
        + f"<div class='small'>{_rows(c.hashes, mono=True)}</div>"
        + f"<p><b>Report date</b>: {escape(c.created_utc)}</p>"
        + _signoff() + f"<p class='small'>{escape(DISCLAIMER)}</p></body></html>")


def _complete_pdf(data: bytes) -> bool:
    """True for a whole PDF: the header, and the end-of-file marker in its last bytes."""
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]


def write_pdf(content: ReportContent, images: dict[str, QImage], path: str | Path) -> Path:
    """Write the report to ``path`` (A4 PDF), atomically; returns the path.

    The PDF is made in memory, checked to be complete, written to a temporary file renamed over
    ``path``, then read back and compared; a full disk or an unwritable place raises
    ``BadInputError`` and leaves any previous report untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create the folder ({exc.strerror})", path=path.parent,
                            action="choose a writable folder") from exc
    data = pdf_bytes(content, images)
    if not _complete_pdf(data):
        raise BadInputError("the PDF could not be made (it came out incomplete)", path=path,
                            action="try again; if it persists, report a bug")
    write_bytes_atomic(path, data)
    if not path.is_file() or path.read_bytes() != data:
        raise BadInputError("the PDF on disk differs from the one written", path=path,
                            action="check the drive, then write the report again")
    return path


def pdf_bytes(content: ReportContent, images: dict[str, QImage]) -> bytes:
    """The report as A4 PDF bytes."""
    names = [n for n, img in images.items() if img is not None and not img.isNull()]
    doc = QTextDocument()
    font = QFont()
    font.setPointSizeF(8.5)
    doc.setDefaultFont(font)
    for name in names:
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(f"img:{name}"),
                        images[name])
    doc.setHtml(report_html(content, names))
    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(content.title)
    writer.setCreator(f"SurgiPlan {content.provenance[0][1]}")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    writer.setResolution(300)
    doc.print_(writer)
    del writer  # finishes the document
    buffer.close()
    return bytes(array.data())
