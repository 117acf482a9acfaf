"""Units from names: hepablate names every quantity with its unit as a suffix
(`voltage_v`, `spacing_mm`, `field_v_per_cm`); this is the one place that reads them back."""

from __future__ import annotations

#: Name suffix -> unit, the longer suffixes first (`_v_per_cm` before `_v`).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_per_cm_v", "V/cm"),
    ("_v_per_cm", "V/cm"),
    ("_s_per_m", "S/m"),
    ("_w_per_m_k", "W/(m K)"),
    ("_kg_per_m3", "kg/m^3"),
    ("_j_per_kg_k", "J/(kg K)"),
    ("_w_per_m3", "W/m^3"),
    ("_j_per_mol", "J/mol"),
    ("_per_cm", "1/cm"),
    ("_per_s", "1/s"),
    ("_per_c", "1/degC"),
    ("_deg", "deg"),
    ("_mm", "mm"),
    ("_um", "um"),
    ("_nm", "nm"),
    ("_us", "us"),
    ("_ml", "ml"),
    ("_s", "s"),
    ("_c", "degC"),
    ("_j", "J"),
    ("_w", "W"),
    ("_v", "V"),
    ("_a", "A"),
)


def unit_of(name: str) -> str:
    """Unit of a quantity from the suffix of its name ('' if the name carries none)."""
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""
