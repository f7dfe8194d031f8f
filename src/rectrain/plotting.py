"""Figures drawn off-screen without touching pyplot's global backend, so that a notebook
that calls rectrain keeps its inline plots."""

from __future__ import annotations

from typing import Any, Tuple


def subplots(*args: Any, figsize: Tuple[float, float] = (8, 4), **kwargs: Any) -> Tuple[Any, Any]:
    """Like ``pyplot.subplots`` but on a private Agg canvas: ``fig.savefig`` works, nothing is
    registered with pyplot and nothing needs closing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*args, **kwargs)
