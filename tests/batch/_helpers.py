"""Shared values of the batch tests."""

#: Laser planner options that plan the 3 mm phantom in about two seconds.
FAST_LASER = {
    "grid_spacing_mm": 3.0,
    "monte_carlo_samples": 4,
    "max_coarse_runs": 1,
    "max_confirmations": 1,
    "sensitivity": False,
}
