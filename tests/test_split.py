"""Cutting a file into pieces for the Dask engine (scoring/_split.py): CSV byte ranges whose
quoted values hold line breaks keep the local engine's row numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _helpers import SCORE_TABLE
from crossentropy.scoring import InputError, score

TABLE = SCORE_TABLE


def _notes_csv(path: Path, n: int, bad_row: int, stray_quote: bool = False) -> None:
    rng = np.random.default_rng(3)
    lines = ["note,y,p_a,p_b"]
    for i in range(1, n + 1):
        note = f'"two\nlines, {i} ""q"""' if i % 7 == 0 else f"n{i}"
        if stray_quote and i == 11:
            note = 'ab"c'
        p = rng.random()
        first = "x" if i == bad_row else f"{p:.4f}"
        lines.append(f"{note},{'a' if p < 0.5 else 'b'},{first},{1 - p:.4f}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("stray_quote", [False, True])
def test_quoted_line_breaks_keep_row_numbers_under_dask(tmp_path: Path, stray_quote: bool) -> None:
    pytest.importorskip("distributed")
    path = tmp_path / "notes.csv"
    _notes_csv(path, 3000, bad_row=2345, stray_quote=stray_quote)
    messages = []
    for engine, extra in (("local", {}), ("dask", {"partitions": 7})):
        with pytest.raises(InputError) as info:
            score(path, engine=engine, **extra, **TABLE)  # type: ignore[arg-type]
        messages.append(str(info.value))
    assert "row 2345" in messages[0]
    assert messages[0] == messages[1]
    _notes_csv(path, 3000, bad_row=-1, stray_quote=stray_quote)
    local = score(path, **TABLE)
    on_dask = score(path, engine="dask", partitions=7, worst=5, **TABLE)
    assert on_dask.n == local.n == 3000
    assert on_dask.log_loss == pytest.approx(local.log_loss, rel=1e-13)
    assert [w["row"] for w in on_dask.worst] == [w["row"] for w in local.worst][:5]
