"""Shared fixtures: real recordings from ../shared and tiny stores built through eegfm itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("EEGFM_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real recordings (see its README); skips with the reason if absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DATA} (set EEGFM_REAL_DATA)")
    return REAL_DATA
