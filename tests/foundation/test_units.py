import pytest

from hepablate.core.units import unit_of


@pytest.mark.parametrize(
    "name,unit",
    [
        ("max_voltage_v", "V"),
        ("max_current_a", "A"),
        ("voltage_per_cm_v", "V/cm"),
        ("ire_threshold_v_per_cm", "V/cm"),
        ("sigma_baseline_s_per_m", "S/m"),
        ("sigma_temperature_coeff_per_c", "1/degC"),
        ("pulse_width_us", "us"),
        ("spacing_mm", "mm"),
        ("path_safety_distance_mm", "mm"),
        ("max_tilt_deg", "deg"),
        ("max_probe_angle_deg", "deg"),
        ("pulses", ""),
        ("required_coverage", ""),
        ("thermal_damage_omega", ""),
        ("max_cycles", ""),
    ],
)
def test_unit_from_name_suffix(name, unit):
    assert unit_of(name) == unit


def test_every_table_entry_keeps_its_unit():
    # The units the plans carry for the device, tissue and planning tables.
    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.devices.catalog import load_device_table
    from hepablate.evaluation import load_planning_defaults

    dev = {k: unit_of(k) for k, _ in load_device_table().ire}
    assert dev["max_voltage_v"] == "V" and dev["voltage_per_cm_v"] == "V/cm"
    assert dev["probes_max"] == "" and dev["exposure_limits_mm"] == "mm"
    el = {k: unit_of(k) for k, _ in load_tissue_table().tissues["liver"].electrical}
    assert el["ire_threshold_v_per_cm"] == "V/cm" and el["sigma_baseline_s_per_m"] == "S/m"
    units = {p.name: p.unit for p in load_planning_defaults().parameters()}
    assert units["planning.max_tilt_deg"] == "deg"
    assert units["planning.pullback_overlap_mm"] == "mm"
    assert units["planning.max_cycles"] == ""
