"""The results table as a figure, drawn as scib-metrics' ``plot_results_table`` draws it:
one row per embedding (best first), a circle per metric coloured within its column
(PRGn, ±2.5 standard deviations around the column's mean), a bar per aggregate (YlGnBu),
the columns grouped by metric type. Needs matplotlib (scib needs it and plottable)."""

import numpy as np
import pandas as pd

_METRIC_TYPE = "Metric Type"
_AGGREGATE_SCORE = "Aggregate score"


def plot_table(df: pd.DataFrame, sort_col: str, svg_path: str | None = None):
    """A matplotlib Figure of ``get_results()``'s table ``df``, rows sorted by ``sort_col``;
    written to ``svg_path`` too when given (text kept as text, to edit afterwards)."""
    try:
        import matplotlib as mpl
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plot_results_table needs matplotlib: pip install matplotlib") from e
    types = df.loc[_METRIC_TYPE]
    values = df.drop(_METRIC_TYPE).astype(np.float64).sort_values(by=sort_col, ascending=False)
    columns = list(values.columns)
    n_rows, n_cols = values.shape
    with mpl.rc_context({"svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(1.5 + 1.25 * n_cols, 2.2 + 0.5 * n_rows))
        ax.set_xlim(-1.6, n_cols)
        ax.set_ylim(n_rows + 1.1, -0.4)
        ax.axis("off")
        for row, name in enumerate(values.index):
            ax.text(-1.5, row + 1, str(name), ha="left", va="center", weight="bold", fontsize=10)
            if row:
                ax.plot([-1.6, n_cols], [row + 0.5] * 2, color="k", lw=1, ls=(0, (1, 5)))
        previous_group = None
        for col, title in enumerate(columns):
            group = types[title]
            if group != previous_group:
                ax.text(col - 0.5, -0.25, group, ha="left", va="center", fontsize=10, weight="bold")
                if previous_group is not None:
                    ax.plot([col - 0.5] * 2, [-0.4, n_rows + 0.5], color="k", lw=1)
                previous_group = group
            ax.text(col, 0.2, title.replace(" ", "\n", 1), ha="center", va="center", fontsize=9)
            column = values[title].to_numpy()
            finite = column[np.isfinite(column)]
            for row, value in enumerate(column):
                y = row + 1
                if not np.isfinite(value):
                    ax.text(col, y, "-", ha="center", va="center", fontsize=10)
                elif group == _AGGREGATE_SCORE:
                    ax.barh(y, 0.9 * value, left=col - 0.45, height=0.7,
                            color=mpl.colormaps["YlGnBu"](value))
                    ax.text(col - 0.4, y, f"{value:.2f}", ha="left", va="center", fontsize=9,
                            color="white" if value > 0.6 else "black")
                else:
                    mean, spread = finite.mean(), 2.5 * finite.std()
                    shade = 0.5 if spread == 0 else 0.5 + 0.5 * np.clip((value - mean) / spread, -1, 1)
                    ax.add_patch(mpl.patches.Circle((col, y), 0.3, color=mpl.colormaps["PRGn"](shade)))
                    ax.text(col, y, f"{value:.2f}", ha="center", va="center", fontsize=9,
                            color="white" if abs(shade - 0.5) > 0.3 else "black")
        ax.plot([-1.6, n_cols], [0.5, 0.5], color="k", lw=1)
        ax.set_aspect("equal", adjustable="box")
        if svg_path is not None:
            fig.savefig(svg_path, facecolor="white", dpi=300)
    return fig
