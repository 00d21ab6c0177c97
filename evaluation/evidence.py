"""Tables and plots of an experiments run: each default against its alternatives, the targets."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bandits import FatigueBuckets, decay_prior
from evaluation.experiments import (
    LOSS_BAR,
    REPLICA,
    SETTINGS,
    TARGETS,
    Plan,
    label_of,
    mean_by,
    policy_names,
    spread_by,
)
from evaluation.policies import AGE_BANDS_COUNT, AGE_BANDS_FACTOR, AGE_BANDS_FIRST, MAX_UNCLICKED

REFERENCE_ORDER = ("default", REPLICA, "fixed decay", "service before", "random")


def verdicts(rows: list[dict[str, Any]], plan: Plan) -> dict[str, dict[str, Any]]:
    """Return per setting: the default's value, its worst loss to an alternative, and noise.

    A loss is ``1 - default / alternative`` of the mean % of oracle over seeds, per family;
    its noise is the standard error of the same ratio seed by seed (the two ran on the same
    world and traffic), and at least half the gap between the default and itself on another
    random stream. The worst loss decides: above LOSS_BAR and above two noises the default
    must change (or become adaptive); above LOSS_BAR but within them, chance can explain it.
    """
    names = policy_names(plan.default_policy)
    means = mean_by(rows, "pct_oracle")
    chance = replica_gaps(rows)
    per_seed = {(r["family"], r["label"], r["seed"]): float(r["pct_oracle"]) for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    found: dict[str, dict[str, Any]] = {}
    for setting, values in SETTINGS.items():
        labels = [(value, label_of(plan.default_policy, setting, o, names)) for value, o in values]
        default = next((value for value, label in labels if label == "default"), None)
        worst: dict[str, Any] = {"loss": -math.inf, "family": "", "value": "", "noise": 0.0}
        beyond: dict[str, Any] | None = None
        for family in sorted({r["family"] for r in rows}):
            scores = {label: means[(family, label)] for _, label in labels}
            # A setting the default does not use (e.g. soft temperature under hard
            # membership): how far its worst value falls behind its best.
            own = "default" if default is not None else min(scores, key=scores.__getitem__)
            for value, label in labels:
                if label == own:
                    continue
                loss = 1.0 - scores[own] / scores[label]
                ratios = [per_seed[(family, own, s)] / per_seed[(family, label, s)] for s in seeds]
                noise = (
                    float(np.std(ratios, ddof=1) / math.sqrt(len(ratios)))
                    if len(ratios) > 1
                    else math.inf
                )
                # Beyond noise: above two paired standard errors, and above what the same
                # policy on another random stream moved in this family.
                noise = max(noise, chance.get(family, 0.0) / 2.0)
                if (
                    loss > LOSS_BAR
                    and loss > 2.0 * noise
                    and (beyond is None or loss > beyond["loss"])
                ):
                    beyond = {"loss": loss, "family": family, "value": value, "noise": noise}
                if loss > worst["loss"]:
                    worst = {"loss": loss, "family": family, "value": value, "noise": noise}
        found[setting] = {"default": default, "labels": labels, "beyond": beyond, **worst}
    return found


def replica_gaps(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Return per family ``|1 - default / replica|``: the default against itself on another
    random stream, seed means (0 where the replica was not run)."""
    means = mean_by(rows, "pct_oracle")
    return {
        family: abs(1.0 - means[(family, "default")] / means[(family, REPLICA)])
        for family, label in means
        if label == REPLICA
    }


def settings_tables(rows: list[dict[str, Any]], plan: Plan) -> str:
    """Return one markdown table per setting: values x families, % of oracle (mean ± half range)."""
    means, spreads = mean_by(rows, "pct_oracle"), spread_by(rows, "pct_oracle")
    worlds = list(dict.fromkeys(r["family"] for r in rows))
    out: list[str] = []
    for setting, verdict in verdicts(rows, plan).items():
        out.append(f"**{setting}**" + (f" (default {verdict['default']})" if verdict["default"]
                                       else " (not used by the default)"))  # fmt: skip
        out.append("")
        out.append("| value | " + " | ".join(worlds) + " |")
        out.append("|---|" + "---:|" * len(worlds))
        for value, label in verdict["labels"]:
            cells = [f"{means[(f, label)]:.1f} ± {spreads[(f, label)]:.1f}" for f in worlds]
            name = f"**{value}**" if value == verdict["default"] else value
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        loss = verdict["loss"]
        if verdict["default"] is None:
            out.append(f"\nNot used by the default; its worst value trails its best by up to "
                       f"{100 * loss:.1f}% (in {verdict['family']}).")  # fmt: skip
        elif verdict["beyond"] is not None:
            beyond = verdict["beyond"]
            out.append(f"\n**Change**: the default loses {100 * beyond['loss']:.1f}% (noise "
                       f"{100 * beyond['noise']:.1f}%) to {beyond['value']} "
                       f"in {beyond['family']}.")  # fmt: skip
        elif loss > LOSS_BAR:
            out.append(f"\nWithin chance: its worst loss, {100 * loss:.1f}% to "
                       f"{verdict['value']} in {verdict['family']}, is under two noises "
                       f"({100 * verdict['noise']:.1f}% each); no loss above 2% is beyond "
                       "them.")  # fmt: skip
        else:
            out.append(f"\nHolds: its worst loss is {100 * max(loss, 0.0):.1f}% "
                       f"({verdict['value']} in {verdict['family']}).")  # fmt: skip
        out.append("")
    return "\n".join(out)


def references_table(rows: list[dict[str, Any]]) -> str:
    """Return families x reference policies: % of oracle, and the default's ratios."""
    means, spreads = mean_by(rows, "pct_oracle"), spread_by(rows, "pct_oracle")
    ratios_random, ratios_fixed = mean_by(rows, "x_random"), mean_by(rows, "x_fixed_decay")
    worlds = list(dict.fromkeys(r["family"] for r in rows))
    head = " | ".join(f"{name} % oracle" for name in REFERENCE_ORDER)
    lines = [f"| family | {head} | default x random | default x fixed decay |",
             "|---|" + "---:|" * (len(REFERENCE_ORDER) + 2)]  # fmt: skip
    for family in worlds:
        cells = [f"{means[(family, n)]:.1f} ± {spreads[(family, n)]:.1f}" for n in REFERENCE_ORDER]
        cells += [f"{ratios_random[(family, 'default')]:.2f}",
                  f"{ratios_fixed[(family, 'default')]:.2f}"]  # fmt: skip
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def target_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the issue's targets per family, each with its figure and whether it is met."""
    means = mean_by(rows, "pct_oracle")
    ratios_random, ratios_fixed = mean_by(rows, "x_random"), mean_by(rows, "x_fixed_decay")
    worlds = list(dict.fromkeys(r["family"] for r in rows))
    found: list[dict[str, Any]] = []
    if "default" in worlds:
        share = means[("default", "default")] / 100.0
        found.append({"target": "default world: >= 90% of oracle", "family": "default",
                      "figure": f"{100 * share:.1f}%",
                      "met": share >= TARGETS["oracle_default_world"]})  # fmt: skip
    for family in worlds:
        labels = {label for f, label in means if f == family}
        tuned = [label for label in labels if label not in ("oracle", "random", REPLICA)]
        best = max(tuned, key=lambda label: means[(family, label)])
        versus_best = means[(family, "default")] / means[(family, best)]
        found += [
            {"target": ">= 1.7x random", "family": family,
             "figure": f"{ratios_random[(family, 'default')]:.2f}x",
             "met": ratios_random[(family, "default")] >= TARGETS["vs_random"]},
            {"target": ">= 1.15x per-cluster TS with fixed decay", "family": family,
             "figure": f"{ratios_fixed[(family, 'default')]:.2f}x",
             "met": ratios_fixed[(family, "default")] >= TARGETS["vs_fixed_decay"]},
            {"target": ">= 0.95x the best hand-tuned variant", "family": family,
             "figure": f"{versus_best:.3f}x (best: {best})",
             "met": versus_best >= TARGETS["vs_best"]},
        ]  # fmt: skip
    return found


def targets_table(rows: list[dict[str, Any]]) -> str:
    """Return the targets as a markdown table."""
    lines = ["| target | family | figure | |", "|---|---|---:|---|"]
    for row in target_rows(rows):
        verdict = "met" if row["met"] else "**missed**"
        lines.append(f"| {row['target']} | {row['family']} | {row['figure']} | {verdict} |")
    return "\n".join(lines) + "\n"


def decay_buckets(n_users: int) -> FatigueBuckets:
    """Return the buckets the simulator's learned decay uses in a world of ``n_users``."""
    return FatigueBuckets.log_spaced(AGE_BANDS_FIRST * n_users, AGE_BANDS_FACTOR,
                                     AGE_BANDS_COUNT, MAX_UNCLICKED)  # fmt: skip


def decay_table(rows: list[dict[str, Any]], plan: Plan) -> str:
    """Return the default's learned decay curve per family (seed mean) next to the world's."""
    worlds = plan.worlds()
    out: list[str] = []
    for family, world in worlds.items():
        curves = _curves(rows, family)
        if not curves:
            continue
        buckets = decay_buckets(world.n_users)
        learned = buckets.grid(np.mean(curves, axis=0))
        truth = buckets.grid(decay_prior(buckets, world.fatigue, world.fatigue_half_life))
        bands = (
            ["< 0.25"]
            + [
                f"{a:g}-{b:g}"
                for a, b in zip(
                    [0.25 * 2**j for j in range(AGE_BANDS_COUNT - 1)],
                    [0.25 * 2 ** (j + 1) for j in range(AGE_BANDS_COUNT - 1)],
                    strict=True,
                )
            ]
            + ["> 8"]
        )
        visits = world.fatigue_half_life / world.n_users
        out.append(f"**{family}** (fatigue {world.fatigue} per ignored impression, "
                   f"half-life {world.fatigue_half_life:g} steps = {visits:g} visits): "
                   "learned / world")  # fmt: skip
        out.append("")
        out.append("| unclicked n \\ visits since | " + " | ".join(bands) + " |")
        out.append("|---|" + "---:|" * len(bands))
        for n in range(buckets.max_unclicked):
            cells = [f"{learned[n, a]:.2f} / {truth[n, a]:.2f}" for a in range(buckets.n_ages)]
            label = f"{n + 1}" + ("+" if n + 1 == buckets.max_unclicked else "")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _curves(rows: list[dict[str, Any]], family: str) -> list[list[float]]:
    return [r["decay_curve"] for r in rows if r["family"] == family and "decay_curve" in r]


def plot_evidence(rows: list[dict[str, Any]], plan: Plan, out_dir: Path) -> list[str]:
    """Write families.png, settings.png and decay.png; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means, spreads = mean_by(rows, "pct_oracle"), spread_by(rows, "pct_oracle")
    worlds = list(dict.fromkeys(r["family"] for r in rows))
    written = []
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    width = 0.8 / len(REFERENCE_ORDER)
    for j, name in enumerate(REFERENCE_ORDER):
        x = np.arange(len(worlds)) + (j - (len(REFERENCE_ORDER) - 1) / 2) * width
        ax.bar(x, [means[(f, name)] for f in worlds], width,
               yerr=[spreads[(f, name)] for f in worlds], label=name, capsize=2)  # fmt: skip
    ax.set_xticks(np.arange(len(worlds)), worlds)
    ax.set_xlabel("world family")
    ax.set_ylabel("expected CTR, last 20% of the run (% of oracle)")
    ax.set_title("the defaults against the references (mean over seeds; bars: seed range)")
    ax.axhline(90, color="grey", linewidth=0.8, linestyle=":")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "families.png")
    plt.close(fig)
    written.append("families.png")

    settings = verdicts(rows, plan)
    columns = 4
    lines = math.ceil(len(settings) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(14, 3.4 * lines), dpi=100, squeeze=False)
    for ax, (setting, verdict) in zip(axes.ravel(), settings.items(), strict=False):
        values = [value for value, _ in verdict["labels"]]
        for family in worlds:
            ax.plot(range(len(values)), [means[(family, label)] for _, label in verdict["labels"]],
                    marker="o", label=family)  # fmt: skip
        ax.set_xticks(range(len(values)),
                      [f"{v}*" if v == verdict["default"] else v for v in values],
                      fontsize=7)  # fmt: skip
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel("value (* = default)", fontsize=8)
        ax.set_ylabel("% of oracle, last 20%", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(settings) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "settings.png")
    plt.close(fig)
    written.append("settings.png")

    worlds_config = plan.worlds()
    with_curves = [f for f in worlds if any(r["family"] == f and "decay_curve" in r for r in rows)]
    if with_curves:
        fig, axes = plt.subplots(1, len(with_curves), figsize=(3.6 * len(with_curves), 3.6),
                                 dpi=100, squeeze=False, sharey=True)  # fmt: skip
        for ax, family in zip(axes[0], with_curves, strict=True):
            world = worlds_config[family]
            buckets = decay_buckets(world.n_users)
            curves = [
                r["decay_curve"] for r in rows if r["family"] == family and "decay_curve" in r
            ]
            learned = buckets.grid(np.mean(curves, axis=0))
            truth = buckets.grid(decay_prior(buckets, world.fatigue, world.fatigue_half_life))
            ages = buckets.typical_ages()[1 : 1 + buckets.n_ages] / world.n_users
            for n in range(buckets.max_unclicked):
                line = ax.plot(ages, learned[n], marker="o", label=f"n={n + 1} learned")[0]
                ax.plot(ages, truth[n], linestyle="--", color=line.get_color(),
                        label=f"n={n + 1} world")  # fmt: skip
            ax.set_xscale("log")
            ax.set_title(family, fontsize=9)
            ax.set_xlabel("visits since the last ignored impression")
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel("click-chance multiplier vs fresh")
        axes[0, 0].legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out_dir / "decay.png")
        plt.close(fig)
        written.append("decay.png")
    return written


def write_evidence(rows: list[dict[str, Any]], plan: Plan, out_dir: Path, command: str) -> str:
    """Write tables.md and the plots; return the markdown."""
    plots = plot_evidence(rows, plan, out_dir)
    seconds = sum(float(r["seconds"]) for r in rows)
    text = "\n".join([
        f"Command: `{command}`",
        "",
        f"{len(rows)} runs of {plan.steps} lists of {plan.k} (policies learn in batches of "
        f"{plan.batch} lists); {seconds:.0f} s of policy time in all.",
        "",
        "### Targets",
        "",
        targets_table(rows),
        "### The defaults against the references (% of oracle, last 20%, mean ± half range)",
        "",
        references_table(rows),
        "### Each default against its alternatives (% of oracle, last 20%)",
        "",
        settings_tables(rows, plan),
        "### The learned seen decay (default policy, mean over seeds)",
        "",
        decay_table(rows, plan),
        *[f"![{name}]({name})" for name in plots],
        "",
    ])  # fmt: skip
    (out_dir / "tables.md").write_text(text)
    return text
