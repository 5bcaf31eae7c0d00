"""docs/streams.md is what the schemas and the reference data say (`make docs` writes it)."""

from __future__ import annotations

from ioc.config import DEFAULT_CONFIG_PATH, load_settings
from ioc.events.declared import DeclaredField, build_schemas
from ioc.events.schemas import SCHEMAS, field_bounds
from ioc.events.streams_doc import DOC_PATH, main, render


def test_docs_streams_md_is_up_to_date() -> None:
    # Generated with the shipped configuration: its declared fields (camera `ward`) are listed.
    configured = render(schemas=load_settings(DEFAULT_CONFIG_PATH).schemas())
    assert DOC_PATH.read_text(encoding="utf-8") == configured, "docs/streams.md is stale: run `make docs`"
    assert main(["--check", "--config", str(DEFAULT_CONFIG_PATH)]) == 0
    assert "| `ward` | text |" in configured and "| `ward` |" not in render()


def test_declared_fields_show_with_type_unit_range_and_description() -> None:
    schemas = build_schemas({"reservoir": [DeclaredField(name="gate_pct", type="number", min=0, max=100,
                                                         required=True, unit="% open", description="gate opening")]})
    row = next(line for line in render(schemas=schemas).splitlines() if line.startswith("| `gate_pct` |"))
    assert row == ("| `gate_pct` | number | % open | 0 to 100 | yes | declared in the configuration (`fields:`):"
                   " gate opening |")


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
    assert main(["--check", "--config", str(DEFAULT_CONFIG_PATH)]) == 1
    assert "make docs" in capsys.readouterr().err
