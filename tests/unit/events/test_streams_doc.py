"""docs/streams.md is what the schemas and the reference data say (`make docs` writes it)."""

from __future__ import annotations

from ioc.events.schemas import SCHEMAS, field_bounds
from ioc.events.streams_doc import DOC_PATH, main, render


def test_docs_streams_md_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), "docs/streams.md is stale: run `make docs`"
    assert main(["--check"]) == 0


def test_every_field_and_range_of_every_stream_is_in_it() -> None:
    text = render()
    for stream, model in SCHEMAS.items():
        assert f"## `{stream}`" in text
        section = text.split(f"## `{stream}`", 1)[1].split("\n## ", 1)[0]
        for name in model.model_fields:
            assert f"| `{name}` |" in section, (stream, name)
        for name, (low, high) in field_bounds(model).items():
            row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
            shown = [f"{int(x):,}" if float(x).is_integer() else f"{x:g}" for x in (low, high) if x is not None]
            assert all(value in row for value in shown), (stream, name, row)


def test_a_stale_file_is_reported(tmp_path, monkeypatch, capsys) -> None:
    stale = tmp_path / "streams.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr("ioc.events.streams_doc.DOC_PATH", stale)
    assert main(["--check"]) == 1
    assert "make docs" in capsys.readouterr().err
