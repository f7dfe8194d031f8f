"""Figures drawn off-screen without touching pyplot's global backend, so that a notebook
that calls rectrain keeps its inline plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple, Union

from rectrain.outputs import save_figure


def subplots(*args: Any, figsize: Tuple[float, float] = (8, 4), **kwargs: Any) -> Tuple[Any, Any]:
    """Like ``pyplot.subplots`` but on a private Agg canvas: ``fig.savefig`` works, nothing is
    registered with pyplot and nothing needs closing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*args, **kwargs)


def finish_axes(axes: Any, xlabel: str = "global step") -> None:
    """The house style of a curve panel: x label, light grid, a legend when there are labels."""
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)


def save_png(fig: Any, out: Union[str, Path], dpi: int = 100) -> Path:
    """Lay out ``fig`` and write it as PNG, atomically (a reader never sees half a file)."""
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=dpi)
    return path
