#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Plot the demo's pool use over time, stock beside reservations.

    demo-plot.py TIMELINE_CSV PNG

TIMELINE_CSV is the guest's demo-timeline.csv (mode, second, used_blocks,
pool_blocks, error_lines), sampled every second while the writers ran.
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    # One scale for the error lines of both sides, so that none reads as none.
    err_top = max([int(r["error_lines"]) for r in rows] + [1]) * 1.05
    for ax, mode, title in (
        (axes[0], "stock", "stock 6.12"),
        (axes[1], "reserve", "with reservations"),
    ):
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        t = [int(r["second"]) for r in sel]
        used = [100 * int(r["used_blocks"]) / int(r["pool_blocks"]) for r in sel]
        errs = [int(r["error_lines"]) for r in sel]
        ax.plot(t, used, color="tab:blue", label="pool data used (%)")
        ax.set_ylim(0, 105)
        ax.set_xlabel("seconds")
        ax.set_title(title)
        ax2 = ax.twinx()
        ax2.plot(t, errs, color="tab:red", linestyle=":", label="kernel error lines")
        ax2.set_ylim(0, err_top)
        if mode == "reserve":
            ax2.set_ylabel("kernel error lines, cumulative")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="lower right")
    axes[0].set_ylabel("pool data used (%)")
    fig.suptitle("The RFC scenario: 1 GiB pool, 10 GiB thin volume, three buffered writers")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
