"""Summaries of the timed reps: medians, ratios to the best peer and to the target, the table.

Values are throughputs (higher is better): MB/s of decoded output (MB = 10**6 bytes) or
cutouts/s. A ratio is bigarrays' median over a peer's median; "vs target" divides that
by the target ratio, so >= 1.00 means the target is met.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bigarrays_bench.cases import Case, Subject

__all__ = ["Summary", "flat_summary", "format_table", "summarise"]


@dataclass
class Summary:
    case: str
    unit: str
    what: str
    medians: dict[str, float | None]  # by subject label; None = can't
    cant: dict[str, str]
    best_peer: str | None = None
    ratio_best_peer: float | None = None
    target: str | None = None  # e.g. "1.2x tensorstore"
    ratio_target_peer: float | None = None
    vs_target: float | None = None
    met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": "summary", **self.__dict__}


def summarise(case: Case, subjects: list[Subject], values: dict[str, list[float]]) -> Summary:
    """The medians of one (non-flat) case and its ratios."""
    medians: dict[str, float | None] = {
        s.label: (statistics.median(values[s.label]) if values.get(s.label) else None) for s in subjects}
    cant = {s.label: s.cant for s in subjects if s.cant}
    return _ratios(Summary(case.name, case.unit, case.what, medians, cant), case)


def _ratios(out: Summary, case: Case) -> Summary:
    """``out`` with its ratios to the best peer and to the case's target filled in."""
    medians = out.medians
    mine = medians.get("bigarrays")
    peers = {k: v for k, v in medians.items() if k != "bigarrays" and v is not None}
    if mine is not None and peers:
        out.best_peer = max(peers, key=lambda k: peers[k])
        out.ratio_best_peer = mine / peers[out.best_peer]
    if case.target is not None:
        out.target = f">= {case.target.ratio:g}x {case.target.peer}"
        peer = medians.get(case.target.peer)
        if mine is not None and peer:
            out.ratio_target_peer = mine / peer
            out.vs_target = out.ratio_target_peer / case.target.ratio
            out.met = out.vs_target >= 1.0
    return out


def flat_summary(case: Case, subjects: list[Subject], values: dict[str, list[float]],
                 tolerance: float = 1.10) -> tuple[list[Summary], dict[str, Any]]:
    """Per-size rows (ms per cutout as well) and the max/min spread of each library's time per cutout."""
    by_size: dict[str, list[Subject]] = {}
    for s in subjects:
        by_size.setdefault(s.label.split("@", 1)[1], []).append(s)
    rows = []
    times: dict[str, list[float]] = {}
    for size, subs in by_size.items():
        medians: dict[str, float | None] = {}
        for s in subs:
            m = statistics.median(values[s.label]) if values.get(s.label) else None
            medians[s.library] = m
            if m:
                times.setdefault(s.library, []).append(1000.0 / m)
        rows.append(_ratios(Summary(f"{case.name}@{size}", case.unit,
                                    f"volume {size} (side {subs[0].params.get('side')})", medians, {}), case))
    spread = {lib: max(t) / min(t) for lib, t in times.items()}
    ms = {lib: [round(v, 3) for v in t] for lib, t in times.items()}
    flat = {"type": "flat", "case": case.name, "ms_per_cutout": ms, "max_over_min": spread,
            "tolerance": tolerance, "met": spread.get("bigarrays", float("inf")) <= tolerance}
    return rows, flat


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def format_table(summaries: list[Summary], flats: list[dict[str, Any]]) -> str:
    """A plain-text table of medians and ratios."""
    head = ["case", "unit", "bigarrays", "tensorstore", "cloudvolume", "other peer", "best peer", "x best", "target",
            "x TP", "vs target", "met"]
    fixed = {"bigarrays", "tensorstore", "cloudvolume"}
    lines = [head]
    def cell(s: Summary, lib: str) -> str:
        return "can't" if lib in s.cant else _fmt(s.medians.get(lib))

    for s in summaries:
        others = " ".join(f"{k} {cell(s, k)}" for k in s.medians if k not in fixed)
        lines.append([s.case, s.unit, cell(s, "bigarrays"), cell(s, "tensorstore"), cell(s, "cloudvolume"),
                      others or "-",
                      s.best_peer or "-", _fmt(s.ratio_best_peer, 2), s.target or "-", _fmt(s.ratio_target_peer, 2),
                      _fmt(s.vs_target, 2), "-" if s.met is None else ("yes" if s.met else "NO")])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i < 2 or i in (5, 6, 8) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    for f in flats:
        text.append("")
        text.append(f"{f['case']}: ms per cutout by declared size, and max/min (target <= {f['tolerance']:.2f})")
        for lib, ms in f["ms_per_cutout"].items():
            text.append(f"  {lib:12s} {' '.join(f'{v:8.2f}' for v in ms)}   max/min {f['max_over_min'][lib]:.3f}")
        text.append(f"  met: {'yes' if f['met'] else 'NO'}")
    return "\n".join(text)
