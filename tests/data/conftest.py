from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "paddleocr-configs"


@pytest.fixture
def thai_dict() -> Path:
    p = SHARED / "ppocrv5_th_dict.txt"
    if not p.is_file():
        pytest.skip(f"official Thai dictionary not found at {p} (the ../shared checkout is absent)")
    return p


@pytest.fixture
def stale_thai_dict() -> Path:
    """The older upstream revision (commit 9b0493f) that many copies still have: line 441 is
    'ωก', so ก has no line of its own (523 lines). Kept beside the current file in ../shared."""
    p = SHARED / "ppocrv5_th_dict.stale-9b0493f.txt"
    if not p.is_file():
        pytest.skip(f"stale official Thai dictionary not found at {p} (the ../shared checkout is absent)")
    return p
