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
