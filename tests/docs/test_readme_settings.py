"""The README's configuration table lists every setting, so the docs cannot fall behind."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"`TELEMETRY_([A-Z_]+)`", README.read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "add these settings to README.md"
    # TELEMETRY_API_KEY is the demo command's key, not a server setting.
    assert documented - fields == {"API_KEY"}, "README names settings that do not exist"
