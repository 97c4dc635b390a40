"""Figures in, bench/results/RESULTS.md and PNG plots out. Percentiles, formatting and the header."""

from __future__ import annotations

import datetime
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import grpc

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def ms(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def count(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.0f}"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Target:
    name: str
    target: str
    figure: str
    met: bool | None  # None: not measured in this run (the figure says why)


@dataclass
class Report:
    mode: str
    litellm_version: str = "not installed"
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)  # Markdown lines: where the time goes

    def write(self, directory: Path = RESULTS, update: bool = False) -> Path:
        """Write RESULTS.md; with `update`, only this run's targets and sections replace the file's own,
        and the rest of the earlier run stays (`--only` runs a part of the benchmarks)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "RESULTS.md"
        lines = self.markdown()
        if update and path.exists():
            lines = merged(path.read_text(encoding="utf-8").splitlines(), self)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def markdown(self) -> list[str]:
        lines = ["# Modelyard benchmarks", "", *header_lines(self.mode, self.litellm_version), ""]
        lines += ["## Targets", "", "| | target | figure | met |", "|---|---|---|---|"]
        for t in self.targets:
            met = "not measured" if t.met is None else ("met" if t.met else "**not met**")
            lines.append(f"| {t.name} | {t.target} | {t.figure} | {met} |")
        lines.append("")
        for table in self.tables:
            lines += [f"## {table.title}", "", _row(table.header), _row(["---"] * len(table.header))]
            lines += [_row(r) for r in table.rows]
            lines += ["", *(f"- {n}" for n in table.notes), ""]
        if self.profile:
            lines += ["## Where the time goes", "", *self.profile, ""]
        if self.plots:
            lines += ["## Plots", "", *(f"![{p}]({p})" for p in self.plots), ""]
        return lines


def merged(earlier: list[str], report: Report) -> list[str]:
    """The earlier RESULTS.md with this report's targets and sections put in place of theirs."""
    fresh = report.markdown()
    header, old_targets, old_sections = _parse(earlier)
    _, new_targets, new_sections = _parse(fresh)
    titles = [title for title, _ in new_sections]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [line for line in header if line] + [
        f"- Updated {now} ({report.mode}): {', '.join(t for t in titles if t not in ('Plots',))}; the rest is "
        "from the run above.",
        "",
    ]
    targets = dict(old_targets)
    targets.update(new_targets)
    lines = [
        "# Modelyard benchmarks",
        "",
        *header,
        "## Targets",
        "",
        "| | target | figure | met |",
        "|---|---|---|---|",
    ]
    lines += [*targets.values(), ""]
    sections = dict(old_sections)
    plots = [*sections.pop("Plots", []), *dict(new_sections).pop("Plots", [])]
    for title, body in new_sections:
        if title != "Plots":
            sections[title] = body
    for title, body in sections.items():
        lines += [f"## {title}", *body]
    unique_plots = [p for i, p in enumerate(plots) if p.startswith("![") and p not in plots[:i]]
    if unique_plots:
        lines += ["## Plots", "", *unique_plots, ""]
    return lines


def _parse(lines: list[str]) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, list[str]]]]:
    """Header lines, target rows by name, and (title, body lines) of every other section, in order."""
    header: list[str] = []
    targets: list[tuple[str, str]] = []
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("## "):
            sections.append((line[3:], []))
        elif not sections:
            if not line.startswith("# "):
                header.append(line)
        elif sections[-1][0] == "Targets":
            if line.startswith("| ") and not line.startswith("| |"):
                targets.append((line.split(" | ")[0][2:], line))
        else:
            sections[-1][1].append(line)
    return header, targets, [(title, body) for title, body in sections if title != "Targets"]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def header_lines(mode: str, litellm_version: str) -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- Date: {now}; mode: {mode}",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"modelyard {_version('modelyard')}, litellm {litellm_version}",
        "- Every process (router, backends, load generator, LiteLLM) shares these cores; "
        "figures on a shared machine are noisy.",
    ]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def bar_plot(
    name: str,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
    log: bool = False,
) -> str | None:
    """A grouped bar chart saved as bench/results/<name>.png; returns the file name (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.0))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, [0.0 if math.isnan(v) else v for v in values], width, label=label)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))])
    ax.set_xticklabels(labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log and any(v > 0 for values in series.values() for v in values):
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    plt.close(fig)
    return f"{name}.png"


def scatter_plot(
    name: str,
    title: str,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
) -> str | None:
    """Points per series (x, y) on a log y axis, saved as bench/results/<name>.png."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    for label, (xs, ys) in series.items():
        ax.scatter(xs, ys, s=6, alpha=0.6, label=label)
    if any(y > 0 for _, ys in series.values() for y in ys):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(markerscale=3)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    plt.close(fig)
    return f"{name}.png"
