"""A run folder from traces: per-window CSV, JSON summary, markdown table and PNG plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evaluation import metrics
from evaluation.engine import Trace

FloatArray = NDArray[np.float64]
LAST_SHARE = 0.2
TABLE_COLUMNS = (
    ("ctr", "CTR", "{:.4f}"),
    ("ctr_last20", "CTR last 20%", "{:.4f}"),
    ("pct_oracle_last20", "% oracle last 20%", "{:.1f}"),
    ("regret_vs_oracle", "regret (clicks)", "{:.0f}"),
    ("below_median_share", "below-median share", "{:.3f}"),
    ("below_median_share_last20", "below-median last 20%", "{:.3f}"),
    ("coverage", "coverage", "{:.3f}"),
    ("novelty", "novelty", "{:.3f}"),
    ("intra_list_diversity", "ILD", "{:.3f}"),
    ("apl", "APL", "{:.3f}"),
    ("long_tail_coverage", "LT coverage", "{:.3f}"),
    ("serendipity", "serendipity", "{:.4f}"),
    ("impressions_per_s", "impressions/s", "{:.0f}"),
)


def summarize(traces: list[Trace], embeddings: FloatArray, n_items: int) -> dict[str, Any]:
    """Return per-policy metrics; popularity is impressions pooled over the non-oracle runs."""
    oracle = next((t for t in traces if t.name == "oracle"), None)
    pooled = [t for t in traces if t.name != "oracle"] or traces
    popularity = np.zeros(n_items)
    for trace in pooled:
        popularity += np.bincount(trace.items[trace.impressions], minlength=n_items)
    tail = metrics.long_tail(popularity)
    k = traces[0].items.shape[1]
    baseline = np.argsort(-popularity, kind="stable")[:k]
    rows: dict[str, Any] = {}
    for trace in traces:
        n = trace.items.shape[0]
        last = slice(n - max(1, int(LAST_SHARE * n)), n)
        shown = int(trace.impressions.sum())
        shown_last = max(1, int(trace.impressions[last].sum()))
        row: dict[str, Any] = {
            "impressions": shown,
            "clicks": int((trace.clicks & trace.impressions).sum()),
            "ctr": metrics.ctr(trace.clicks, trace.impressions),
            "ctr_last20": metrics.ctr(trace.clicks[last], trace.impressions[last]),
            "expected_ctr_last20": float(trace.expected[last].sum()) / shown_last,
            "below_median_share": float(trace.below_median.sum()) / max(1, shown),
            "below_median_share_last20": float(trace.below_median[last].sum()) / shown_last,
            "coverage": metrics.catalog_coverage(trace.items, n_items),
            "novelty": metrics.novelty(trace.items, popularity),
            "intra_list_diversity": (
                metrics.intra_list_diversity(trace.items, embeddings) if k > 1 else 0.0
            ),
            "apl": metrics.average_popularity_lift(trace.items, tail),
            "long_tail_coverage": metrics.long_tail_coverage(trace.items, tail),
            "serendipity": metrics.serendipity(
                trace.items, trace.clicks & trace.impressions, baseline
            ),
            "seconds": round(trace.seconds, 3),
            "impressions_per_s": shown / trace.seconds if trace.seconds > 0 else 0.0,
            "refits": trace.refits,
        }
        if oracle is not None:
            oracle_last = float(oracle.expected[last].sum()) / max(
                1, int(oracle.impressions[last].sum())
            )
            row["pct_oracle_last20"] = 100.0 * row["expected_ctr_last20"] / oracle_last
            row["regret_vs_oracle"] = float(oracle.expected.sum() - trace.expected.sum())
        else:
            row["pct_oracle_last20"] = float("nan")
            row["regret_vs_oracle"] = float((trace.best - trace.expected).sum())
        rows[trace.name] = row
    return rows


def window_rows(traces: list[Trace], window: int) -> list[dict[str, Any]]:
    """Return one CSV row per policy and window of ``window`` steps."""
    oracle = next((t for t in traces if t.name == "oracle"), None)
    out: list[dict[str, Any]] = []
    for trace in traces:
        n = trace.items.shape[0]
        reference = oracle.expected if oracle is not None else trace.best
        regret = np.cumsum(reference - trace.expected)
        for start in range(0, n, window):
            end = min(n, start + window)
            part = slice(start, end)
            shown = int(trace.impressions[part].sum())
            out.append(
                {
                    "policy": trace.name,
                    "step_start": start,
                    "step_end": end,
                    "impressions": shown,
                    "clicks": int((trace.clicks[part] & trace.impressions[part]).sum()),
                    "ctr": metrics.ctr(trace.clicks[part], trace.impressions[part]),
                    "expected_ctr": float(trace.expected[part].sum()) / max(1, shown),
                    "best_ctr_same_state": float(trace.best[part].sum()) / max(1, shown),
                    "cumulative_regret": float(regret[end - 1]),
                    "below_median_share": float(trace.below_median[part].sum()) / max(1, shown),
                }
            )
    return out


def write_run(
    out_dir: Path,
    traces: list[Trace],
    embeddings: FloatArray,
    n_items: int,
    window: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write steps.csv, summary.json, table.md and the PNG plots; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = window_rows(traces, window)
    with (out_dir / "steps.csv").open("w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    policies = summarize(traces, embeddings, n_items)
    summary = {**extra, "policies": policies}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    (out_dir / "table.md").write_text(markdown_table(policies))
    plot_run(out_dir, rows)
    return summary


def markdown_table(policies: dict[str, Any]) -> str:
    """Return the policies x metrics table as GitHub markdown."""
    header = "| policy | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |"
    lines = [header, "|---|" + "---:|" * len(TABLE_COLUMNS)]
    for name, row in policies.items():
        cells = [fmt.format(row[key]) for key, _, fmt in TABLE_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_run(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write regret.png, ctr.png and below_median.png from the window rows."""
    import matplotlib.pyplot as plt

    for filename, fig in figures(rows).items():
        fig.savefig(out_dir / filename)
        plt.close(fig)


# Each plot: file name, window-row key, title, y-axis label.
PLOTS = (
    (
        "regret.png",
        "cumulative_regret",
        "cumulative regret vs oracle",
        "expected clicks lost to the oracle (cumulative)",
    ),
    ("ctr.png", "ctr", "moving CTR (per window)", "CTR (clicks per impression)"),
    (
        "below_median.png",
        "below_median_share",
        "share of impressions below median CTR",
        "share of the window's impressions",
    ),
)


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one matplotlib figure per plot of PLOTS, by file name (closed by the caller)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise SystemExit(
            "banditrec simulate draws plots with matplotlib: pip install 'banditrec[sim]'"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["policy"] for r in rows))
    # Distinct colour and dash per policy: the default cycle repeats after 10 lines.
    palette = [plt.get_cmap("tab20")(i) for i in range(20)]
    dashes = ("-", "--", ":", "-.")
    drawn = {}
    for filename, key, title, ylabel in PLOTS:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        for n, name in enumerate(names):
            mine = [r for r in rows if r["policy"] == name]
            x = [r["step_end"] for r in mine]
            y = np.array([r[key] for r in mine], dtype=np.float64)
            if key == "ctr" and y.size >= 5:
                y = np.convolve(y, np.ones(5) / 5, mode="same")
            color = palette[(2 * n) % 20 + (n // 10) % 2]
            ax.plot(x, y, label=name, linewidth=1.2, color=color, linestyle=dashes[n % 4])
        ax.set_title(title)
        ax.set_xlabel("step (one served list)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        drawn[filename] = fig
    return drawn
