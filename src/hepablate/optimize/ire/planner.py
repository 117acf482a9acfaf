"""What one IRE planning run works with: the case, the engine, the limits and defaults, the
target region and needle-path map derived from them (fixed for the run), the caches of
results the search meets again, and the record of what the search did."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from hepablate.case.model import Case
from hepablate.core.cache import ByteBudgetCache
from hepablate.core.progress import NullProgress, Progress
from hepablate.evaluation import PlanningDefaults, target_region
from hepablate.optimize.ire.model import IreEngine, IrePlanOutcome, SearchRecord
from hepablate.optimize.ire.options import IrePlanOptions, Limits
from hepablate.optimize.ire.search import run_search
from hepablate.physics.ire.session import IreSession
from hepablate.placement.geometry import Layout2D
from hepablate.placement.paths import EntryRegion, PathMap

#: Needle path checks remembered (`layouts.check_path`): the search meets the same paths
#: again with other splits, reach estimates and pair sets.
PATH_CACHE_ENTRIES = 200_000


class IrePlanner:
    """Plans one case on one engine problem (`run`; the steps are in `search`)."""

    def __init__(
        self,
        case: Case,
        engine: IreEngine | IreSession,
        limits: Limits,
        defaults: PlanningDefaults,
        opts: IrePlanOptions,
        progress: Progress | None = None,
    ):
        self.case = case
        self.engine = engine.problem if isinstance(engine, IreSession) else engine
        self.lim = limits
        self.defaults = defaults
        self.opts = opts
        self.progress = progress or NullProgress()
        self.grid = self.engine.grid
        self.structures = self.engine.structures
        sp = self.grid.spacing_mm
        self.region = target_region(self.structures, case.target_key, case.margin_mm, sp)
        self.safety_mm = (
            opts.safety_distance_mm
            if opts.safety_distance_mm is not None
            else defaults.path_safety_distance_mm.value
        )
        from hepablate.evaluation.criteria import load_criteria

        self.required = (
            opts.required_coverage
            if opts.required_coverage is not None
            else load_criteria().required_coverage.value
        )
        """Target coverage a plan must reach (criteria.yaml, or the option)."""
        self.max_cycles = (
            opts.max_cycles if opts.max_cycles is not None else defaults.max_cycles.value
        )
        self.paths = PathMap(case, self.safety_mm)
        self.entry = (
            EntryRegion(opts.entry.centre_lps_mm, opts.entry.radius_mm) if opts.entry else None
        )
        if self.entry is not None:
            self.paths.validate_entry_region(self.entry)
        idx = np.argwhere(self.region)
        self.region_idx = idx
        self.region_pts = self.grid.index_to_lps(idx[:, ::-1].astype(float))
        self.search_region = self.region
        if opts.robust:
            from hepablate.evaluation import dilate_mm

            err = (
                opts.placement_error_mm
                if opts.placement_error_mm is not None
                else defaults.placement_error_mm.value
            )
            grown = dilate_mm(self.region, err, sp)
            grown &= self.structures.get("liver", grown) | self.region
            self.search_region = grown
        self.record = SearchRecord()
        # Results the search meets again (same keys, same answers).
        self.path_cache: ByteBudgetCache[tuple, Any] = ByteBudgetCache(
            max_entries=PATH_CACHE_ENTRIES
        )
        """`PathMap.check_path` with the entry region, per (tip, direction)."""
        self.fit_cache: ByteBudgetCache[tuple, tuple[float, Layout2D]] = ByteBudgetCache()
        """Layout fits per (projected points, layout, tumour weight, widest pair)."""
        self.open_fraction: dict[tuple, float] = {}
        """Fraction of the target's cross-section with a clear parallel path, per direction
        (`layouts.most_open`)."""
        self.session = engine if isinstance(engine, IreSession) else IreSession(engine)
        self.session.paths = self.paths  # the final evaluation checks the same paths
        """The engine with the nonlinear results of recently confirmed cycles remembered (the
        final `evaluate` of the chosen plan reuses them)."""

    @property
    def stats(self) -> dict[str, float]:
        return self.record.stats

    @cached_property
    def walls(self) -> dict[str, np.ndarray]:
        """Each vessel's and bile duct's lumen grown by one voxel (thermal damage rule)."""
        from scipy import ndimage

        from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name

        return {
            k: ndimage.binary_dilation(np.asarray(m, bool), iterations=1)
            for k, m in self.structures.items()
            if (base_name(k) in VESSELS or base_name(k) in BILE_DUCTS) and np.any(m)
        }

    def run(self) -> IrePlanOutcome:
        return run_search(self)
