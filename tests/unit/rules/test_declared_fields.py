"""Rules over fields a deployment declares in its configuration (`fields:`, ioc.events.declared):
checked at load like built-in fields, with their types; unknown without the declaration; and
`ioc rules check` reads them from the configuration it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ioc.cli.main import main
from ioc.config import DEFAULT_CONFIG_PATH, REPO_ROOT
from ioc.events.declared import BUILTIN, DeclaredField, build_schemas
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules

REFERENCE = load_reference(REPO_ROOT / "config" / "reference")
SCHEMAS = build_schemas({"camera": [DeclaredField(name="ward", type="text"),
                                    DeclaredField(name="lanes", type="integer", min=1, max=12)]})

WARD_RULE = """\
rules:
  - id: t.ward
    stream: camera
    kind: window
    key: [ward]
    where: "event_type == 'crowd'"
    agg: {agg}
    field: {field}
    window: 15m
    condition: "value >= 2"
"""


def _load(tmp_path: Path, text: str, schemas=SCHEMAS):  # type: ignore[no-untyped-def]
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path], REFERENCE, schemas=schemas)


def test_a_declared_field_is_a_key_an_expression_name_and_a_typed_window_field(tmp_path: Path) -> None:
    rule = _load(tmp_path, WARD_RULE.format(agg="sum", field="lanes")).by_id["t.ward"]
    assert rule.kind.key_fields("camera") == ("ward",) and not rule.kind.ref_keys("camera")
    with pytest.raises(Exception) as info:
        _load(tmp_path, WARD_RULE.format(agg="sum", field="ward"))
    assert "'ward' is not a number field of stream 'camera'" in str(info.value)
    assert "lanes" in str(info.value)  # the declared number field is offered


def test_without_the_declaration_the_field_is_unknown_and_errors_list_declared_ones(tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        _load(tmp_path, WARD_RULE.format(agg="distinct", field="source_id"), schemas=BUILTIN)
    assert "key: unknown field 'ward' of stream 'camera' (event fields: count, district" in str(info.value)
    typo = WARD_RULE.format(agg="distinct", field="source_id").replace("event_type == 'crowd'", "wrad == 'x'")
    with pytest.raises(Exception) as info:
        _load(tmp_path, typo)
    assert "unknown field 'wrad'" in str(info.value) and "'ward'" in str(info.value)


def test_rules_check_uses_the_configuration_s_declared_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(WARD_RULE.format(agg="distinct", field="source_id"), encoding="utf-8")
    without = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    without.pop("fields", None)
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(without), encoding="utf-8")
    args = ["rules", "check", str(rules), "--reference", str(REPO_ROOT / "config" / "reference")]
    assert main([*args, "--config", str(DEFAULT_CONFIG_PATH)]) == 0  # config/ioc.yaml declares camera `ward`
    assert main([*args, "--config", str(plain)]) == 1
    assert "unknown field 'ward' of stream 'camera'" in capsys.readouterr().err
