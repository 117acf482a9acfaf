"""Units of table entries from their names (hepablate's naming rule: the unit is the suffix)."""

from __future__ import annotations

#: Name suffix -> unit, the longer suffixes first (`_v_per_cm` before `_v`).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_per_cm_v", "V/cm"),
    ("_v_per_cm", "V/cm"),
    ("_s_per_m", "S/m"),
    ("_per_c", "1/degC"),
    ("_mm", "mm"),
    ("_deg", "deg"),
    ("_us", "us"),
    ("_v", "V"),
    ("_a", "A"),
)


def unit_of(name: str) -> str:
    """Unit of a table entry from the suffix of its name ('' if it has none), e.g.
    'max_voltage_v' -> 'V', 'voltage_per_cm_v' -> 'V/cm', 'max_tilt_deg' -> 'deg'."""
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""
