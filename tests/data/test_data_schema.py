"""Row ids, the Arrow schema and its Hugging Face metadata, record validation."""

from __future__ import annotations

import json
from dataclasses import replace

import pyarrow as pa
import pytest
from datasets import Features, Image, Value

from megastyle.data import (
    ALL_COLUMNS,
    OFFICIAL_COLUMNS,
    arrow_schema,
    make_id,
    parse_id,
    record_from_row,
    record_to_row,
    validate_record,
)


def test_make_and_parse_id_round_trip() -> None:
    assert make_id(12, 3405) == "s12_c3405"
    assert parse_id("s12_c3405") == (12, 3405)
    assert parse_id(make_id(0, 0)) == (0, 0)


@pytest.mark.parametrize("bad", ["12_3405", "s12c3", "s-1_c2", "s1_c2_", "S1_C2", "", "s1_cx"])
def test_parse_id_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="not a MegaStyle row id"):
        parse_id(bad)


@pytest.mark.parametrize(("style", "content"), [(-1, 0), (0, -5), (1.0, 2), (True, 1)])
def test_make_id_rejects_bad_numbers(style: object, content: object) -> None:
    with pytest.raises(ValueError):
        make_id(style, content)  # type: ignore[arg-type]


def test_schema_official_columns_first_then_ours_all_nullable() -> None:
    schema = arrow_schema()
    assert schema.names == ["id", "image", "content", "style", *ALL_COLUMNS[4:]]
    assert tuple(schema.names[:4]) == OFFICIAL_COLUMNS
    assert schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("seed").type == pa.int64()
    assert all(field.nullable for field in schema)


def test_hf_metadata_makes_image_an_image_feature() -> None:
    schema = arrow_schema()
    meta = json.loads(schema.metadata[b"huggingface"])
    assert meta["info"]["features"]["image"] == {"_type": "Image"}
    # The real decoder: `datasets` only honours the metadata when the field matches its own.
    features = Features.from_arrow_schema(schema)
    assert isinstance(features["image"], Image)
    assert features["style_id"] == Value("int64")
    assert features["style"] == Value("string")


def test_subset_schema_metadata_lists_only_those_columns() -> None:
    schema = arrow_schema(["id", "style"])
    assert schema.names == ["id", "style"]
    assert set(json.loads(schema.metadata[b"huggingface"])["info"]["features"]) == {"id", "style"}
    with pytest.raises(ValueError, match="unknown columns"):
        arrow_schema(["id", "nope"])


def test_row_conversion_round_trip(record_factory) -> None:
    record = record_factory(4, 9)
    row = record_to_row(record)
    assert row["image"] == {"bytes": record.image, "path": "s4_c9.png"}
    assert list(row) == list(ALL_COLUMNS)
    assert record_from_row(row) == record


def test_record_from_official_row_defaults_extras_to_none(record_factory) -> None:
    record = record_factory(1, 2)
    row = {"id": "s1_c2", "image": {"bytes": record.image, "path": None}, "content": "c", "style": "s"}
    back = record_from_row(row)
    assert (back.id, back.image, back.content, back.style) == ("s1_c2", record.image, "c", "s")
    assert back.style_id is None and back.seed is None and back.image_path is None
    assert record_from_row({**row, "image": record.image}).image == record.image  # bare bytes too
    with pytest.raises(ValueError, match="no image"):
        record_from_row({**row, "image": {"bytes": None, "path": "x.png"}})


def test_pil_image_decodes_the_record(record_factory) -> None:
    image = record_factory(2, 5, size=(20, 10)).pil_image()
    assert image.size == (20, 10) and image.mode == "RGB"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": ""}, "id must be"),
        ({"image": b""}, "image must be"),
        ({"image": "not bytes"}, "image must be"),
        ({"style": None}, "style must be"),
        ({"seed": -1}, "seed must be"),
        ({"seed": 2**63}, "seed must be"),
        ({"style_id": "3"}, "style_id must be"),
        ({"backend": 5}, "backend must be"),
        ({"style_attributes": "{not json"}, "not valid JSON"),
    ],
)
def test_validate_record_catches_bad_fields(record_factory, change: dict, message: str) -> None:
    validate_record(record_factory(1, 1))  # the untouched record is fine
    with pytest.raises(ValueError, match=message):
        validate_record(replace(record_factory(1, 1), **change))
