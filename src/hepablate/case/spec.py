"""The `case.yaml` schema (format version 1); see docs/case-format.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from hepablate.anatomy.vocabulary import STRUCTURE_NAMES
from hepablate.errors import InputError, input_error_from_validation

CASE_FORMAT_VERSION = 1

SegmentationFormat = Literal["auto", "labelmap", "slicer_seg", "dicom_seg", "rtstruct"]


class StructureSpec(BaseModel):
    """One structure: where to find it and what it is."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="standard structure name, e.g. liver, tumour, portal_vein")
    id: str | None = Field(None, description="tumour id (required for tumours), e.g. T1")
    label: StrictInt | None = Field(
        None, ge=0, le=2**31 - 1, description="label-map value or DICOM SEG segment number"
    )
    segment: str | None = Field(None, description="segment / ROI name in the segmentation file")
    file: str | None = Field(None, description="a mask file of its own, relative to the case")

    @model_validator(mode="after")
    def _check(self) -> StructureSpec:
        if self.name not in STRUCTURE_NAMES:
            raise ValueError(
                f"unknown structure name '{self.name}'; expected one of {', '.join(STRUCTURE_NAMES)}"
            )
        if self.name == "tumour" and not self.id:
            raise ValueError("a tumour needs an 'id' (e.g. T1)")
        if self.name != "tumour" and self.id:
            raise ValueError(f"only tumours take an 'id' (structure '{self.name}')")
        given = [x is not None for x in (self.label, self.segment, self.file)]
        if sum(given) != 1:
            raise ValueError(
                f"structure '{self.key}' needs exactly one of 'label', 'segment' or 'file'"
            )
        return self

    @property
    def key(self) -> str:
        return f"tumour:{self.id}" if self.name == "tumour" else self.name


class SegmentationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="label map, .seg.nrrd, DICOM SEG or RTSTRUCT, relative path")
    format: SegmentationFormat = "auto"


class CaseSpec(BaseModel):
    """Contents of `case.yaml`."""

    model_config = ConfigDict(extra="forbid")

    format_version: StrictInt = CASE_FORMAT_VERSION
    case_id: str
    description: str = ""
    ct: str | None = Field(None, description="CT file, or a folder with one DICOM series")
    segmentation: SegmentationSpec | None = None
    structures: list[StructureSpec]
    target: str = Field(description="id of the target tumour")
    margin_mm: StrictFloat = Field(5.0, ge=0, le=30, description="required ablative margin (mm)")
    resample_masks: StrictBool = Field(
        False,
        description="resample masks whose grid differs from the reference grid (nearest "
        "neighbour); when false such a mismatch is an error",
    )

    @model_validator(mode="after")
    def _check(self) -> CaseSpec:
        if self.format_version != CASE_FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} not supported (expected {CASE_FORMAT_VERSION})"
            )
        keys = [s.key for s in self.structures]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"structures listed twice: {', '.join(sorted(dup))}")
        if f"tumour:{self.target}" not in keys:
            raise ValueError(f"target '{self.target}' is not a tumour id listed in 'structures'")
        if "liver" not in keys:
            raise ValueError("a case needs a 'liver' structure")
        needs_seg = [s.key for s in self.structures if s.file is None]
        if needs_seg and self.segmentation is None:
            raise ValueError(
                f"structures {', '.join(needs_seg)} refer to a segmentation file but "
                "'segmentation' is not given"
            )
        return self


#: case.yaml is a short hand-written file; anything larger is not one.
MAX_SPEC_BYTES = 1 << 20


def read_text_strict(path: Path, what: str, max_bytes: int = MAX_SPEC_BYTES) -> str:
    """The file as UTF-8 text; `InputError` for a folder, an unreadable file, more than
    `max_bytes`, bytes that are not UTF-8, or NUL characters."""
    if path.is_dir():
        raise InputError(f"is a directory; expected a {what} file", source=str(path))
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=str(path)) from None
    if len(data) > max_bytes:
        raise InputError(f"larger than {max_bytes} bytes; not a {what} file", source=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (invalid byte at offset {exc.start})", source=str(path)
        ) from None
    if "\x00" in text:
        raise InputError("holds a NUL character; expected text", source=str(path))
    return text


def read_case_spec(path: Path) -> CaseSpec:
    if not path.exists():
        raise InputError("file not found (a case directory needs a case.yaml)", source=str(path))
    text = read_text_strict(path, "case.yaml")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({str(exc).splitlines()[0]})", source=str(path)) from None
    except RecursionError:
        raise InputError("not valid YAML (nested too deeply)", source=str(path)) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"not valid YAML ({str(exc)[:120]})", source=str(path)) from None
    if not isinstance(raw, dict):
        raise InputError("expected a mapping at the top level", source=str(path))
    try:
        return CaseSpec.model_validate(raw)
    except ValidationError as exc:
        raise input_error_from_validation(exc, source=str(path)) from None
    except RecursionError:
        raise InputError("nested too deeply", source=str(path)) from None
