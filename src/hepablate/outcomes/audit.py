"""The audit report: the NICE key efficacy and safety outcomes of every patient in the registry.

Reads the registry tables (live rows only, `deleted_at IS NULL`, optionally one site) with
`registry.export.read_tables`, runs the outcome engines (endpoints, grading, survival,
proportions) and returns a JSON-ready dict; `write_audit_report` also renders `audit.html`
(self-contained) and `audit.pdf`. Grouping: efficacy and survival by the modality of the
first session that treated the tumour (tumour end points) or the patient (patient end
points); safety by the modality of the session an adverse event belongs to, with the patients
who had a session of that modality as denominator. "overall" pools every modality.

Measures (NICE IPG/HTG722 section 3.2-3.3 key outcomes; Ahmed 2014 terminology):
complete ablation = primary efficacy per tumour; LTP per tumour with a documented complete
ablation; local recurrence = patients with any LTP; distant recurrence = patients with new
intrahepatic or extrahepatic disease on follow-up; mortality = procedure-related deaths
(`death_procedure_related` or an adverse event with `death`); bleeding, infection, damage to
surrounding tissue, arrhythmia, needle-tract seeding = patients with >= 1 adverse event of
that category. Survival per Puijk 2021 (see survival.py), in days.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from scipy import stats

from hepablate.core.progress import NullProgress, Progress
from hepablate.errors import InputError, input_error_from_validation
from hepablate.outcomes.endpoints import (
    PatientFollowup,
    TumourEndpoints,
    TumourImaging,
    TumourSession,
    patient_recurrence,
    technique_efficacy,
    tumour_endpoints,
)
from hepablate.outcomes.grading import (
    CLAVIEN_DINDO_GRADES,
    SIR_2003_GRADES,
    SIR_2017_GRADES,
    AdverseEventFacts,
    comprehensive_complication_index,
    grade_all,
    timing,
)
from hepablate.outcomes.proportions import clopper_pearson_interval, wilson_interval
from hepablate.outcomes.published import MEASURES, load_published_series
from hepablate.outcomes.responses import derive_responses, response_section
from hepablate.outcomes.survival import (
    KaplanMeier,
    KmCiMethod,
    PatientCourse,
    cox_model,
    disease_free_survival,
    kaplan_meier,
    logrank,
    ltp_free_survival,
    overall_survival,
    time_to_progression,
)

SAFETY_CATEGORIES = (
    "bleeding",
    "infection",
    "damage_surrounding_tissue",
    "arrhythmia",
    "needle_tract_seeding",
)
MODALITY_ORDER = ("ire", "laser", "microwave", "radiofrequency")
MODALITY_LABEL = {
    "ire": "IRE",
    "laser": "Laser",
    "microwave": "Microwave",
    "radiofrequency": "Radiofrequency",
    "overall": "All modalities",
}
SIZE_GROUPS = (("<=30 mm", 0, 3000), ("30-50 mm", 3000, 5000), (">50 mm", 5000, None))
DAYS_PER_MONTH = 30.4375  # mean Gregorian month


class FollowupSchedule(BaseModel):
    """Required imaging follow-up: months after the first ablation, +/- tolerance in days.

    Defaults 1, 3, 6, 12 months (the brief; the NICE overview's series image at 1 and 3 months
    then 3-monthly) with a +/- 30-day window."""

    model_config = ConfigDict(extra="forbid")

    months: list[int] = Field(default_factory=lambda: [1, 3, 6, 12])
    tolerance_days: int = Field(default=30, ge=0, le=180)

    @field_validator("months")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("needs at least one month")
        if any(m < 1 or m > 240 for m in v):
            raise ValueError("months must be between 1 and 240")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("months must be strictly increasing")
        return v


def load_schedule(path: str | Path) -> FollowupSchedule:
    """Read a YAML schedule file (`months: [1, 3, 6, 12]`, `tolerance_days: 30`)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError as exc:
        raise InputError("file not found", source=str(p)) from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"not readable YAML ({exc.__class__.__name__})", source=str(p)) from exc
    if not isinstance(data, dict):
        raise InputError("expected a mapping with 'months' and 'tolerance_days'", source=str(p))
    try:
        return FollowupSchedule.model_validate(data)
    except ValidationError as exc:
        raise input_error_from_validation(exc, source=str(p)) from exc


@dataclass(frozen=True)
class AuditSettings:
    site: str | None = None
    ci_method: KmCiMethod = "log-log"
    schedule: FollowupSchedule = field(default_factory=FollowupSchedule)
    as_of: date | None = None  # default: today
    level: float = 0.95
    technique_efficacy_days: int = 30  # Ahmed 2014: efficacy at a pre-specified time point


# --- reading ---------------------------------------------------------------------------


@dataclass
class RegistryData:
    frames: dict[str, pd.DataFrame]
    source: str


def read_registry(url: str, site: str | None = None) -> RegistryData:
    """Live rows of the clinical tables (`registry.export.read_tables`); one-line InputError
    for an unusable database."""
    from sqlalchemy.exc import SQLAlchemyError

    from hepablate.registry.db import connect
    from hepablate.registry.export import read_tables

    shown = url
    if url.startswith("sqlite:///"):
        path = Path(url.split("///", 1)[1]).expanduser()
        if str(path) not in ("", ":memory:") and not path.is_file():
            raise InputError("no such database file", source=str(path), field="db")
    try:
        engine = connect(url)
        shown = engine.url.render_as_string(hide_password=True)
        frames = read_tables(engine, site)
    except InputError:
        raise
    except sqlite3.Error as exc:
        raise InputError(
            f"cannot read the registry database: {exc}", source=shown, field="db"
        ) from exc
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        msg = str(orig if orig else exc).splitlines()[0]
        raise InputError(
            f"cannot read the registry database: {msg}", source=shown, field="db"
        ) from exc
    # live rows whose parents were deleted are not live
    p = set(frames["patients"]["id"])
    for t in ("tumours", "procedure_sessions", "followups", "adverse_events"):
        frames[t] = frames[t][frames[t]["patient_id"].isin(p)]
    s = set(frames["procedure_sessions"]["id"])
    tu = set(frames["tumours"]["id"])
    tt = frames["treated_tumours"]
    frames["treated_tumours"] = tt[tt["session_id"].isin(s) & tt["tumour_id"].isin(tu)]
    frames["adverse_events"] = frames["adverse_events"][
        frames["adverse_events"]["session_id"].isin(s)
    ]
    f = set(frames["followups"]["id"])
    fl = frames["followup_lesions"]
    frames["followup_lesions"] = fl[fl["followup_id"].isin(f)]
    if frames["procedure_sessions"].empty:
        where = f" for site '{site}'" if site else ""
        raise InputError(
            f"the registry has no live procedure sessions{where}; nothing to audit",
            source=shown,
            field="db",
        )
    return RegistryData(frames, shown)


# --- helpers ---------------------------------------------------------------------------


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, date):
        return x.isoformat()
    return x


def prop(events: int, n: int, level: float = 0.95) -> dict[str, Any]:
    """A proportion with Wilson and Clopper-Pearson intervals (fractions 0..1)."""
    if n == 0:
        return {
            "events": events,
            "n": 0,
            "rate": None,
            "wilson_ci": None,
            "clopper_pearson_ci": None,
        }
    w = wilson_interval(events, n, level)
    c = clopper_pearson_interval(events, n, level)
    return {
        "events": int(events),
        "n": int(n),
        "rate": round(events / n, 6),
        "wilson_ci": [round(w[0], 6), round(w[1], 6)],
        "clopper_pearson_ci": [round(c[0], 6), round(c[1], 6)],
    }


def _bools(col: pd.Series) -> list[bool | None]:
    """A nullable boolean column (0/1/NaN from SQLite, bool/None from PostgreSQL) as Python
    True/False/None, without a Python call per value."""
    na = col.isna().to_numpy()
    vals = (col.to_numpy(dtype=object) == True).tolist()  # noqa: E712 (elementwise)
    return [None if m else v for v, m in zip(vals, na.tolist(), strict=True)]


def binomial_control_limits(p0: float, n: int | np.ndarray, coverage: float) -> tuple[Any, Any]:
    """Exact binomial funnel-plot limits with interpolation (Spiegelhalter DJ. Funnel plots for
    comparing institutional performance. Stat Med 2005;24:1185-1202, section 4). `n` may be an
    array; returns (lower, upper) as fractions."""
    ns = np.atleast_1d(np.asarray(n, dtype=float))

    def limit(q: float) -> np.ndarray:
        r = stats.binom.ppf(q, ns, p0)
        f_r = stats.binom.cdf(r, ns, p0)
        f_rm1 = np.where(r > 0, stats.binom.cdf(r - 1, ns, p0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(f_r > f_rm1, (f_r - q) / (f_r - f_rm1), 0.0)
        return np.clip((r - alpha) / ns, 0.0, 1.0)

    tail = (1.0 - coverage) / 2.0
    lo, hi = limit(tail), limit(1.0 - tail)
    if np.ndim(n) == 0:
        return float(lo[0]), float(hi[0])
    return lo, hi


# --- the computation -------------------------------------------------------------------


@dataclass
class _Derived:
    tumour_ep: dict[int, TumourEndpoints]
    tumour_modality: dict[int, str]
    patient_modality: dict[int, str]
    courses: dict[int, PatientCourse]
    first_date: dict[int, date]
    followed: set[int]
    distant: set[int]
    pid_of_tumour: dict[int, int]
    tumour_imaging: dict[int, list[TumourImaging]]


def _derive(fr: dict[str, pd.DataFrame]) -> _Derived:
    ses = fr["procedure_sessions"].sort_values(["procedure_date", "id"])
    first_ses = ses.drop_duplicates("patient_id")
    patient_modality = dict(zip(first_ses["patient_id"], first_ses["modality"], strict=True))
    first_date = dict(zip(first_ses["patient_id"], first_ses["procedure_date"], strict=True))

    tt = (
        fr["treated_tumours"]
        .merge(
            ses[["id", "procedure_date", "modality"]].rename(columns={"id": "session_id"}),
            on="session_id",
        )
        .sort_values(["procedure_date", "session_id"])
    )
    t_sessions: dict[int, list[TumourSession]] = defaultdict(list)
    tumour_modality: dict[int, str] = {}
    for tid, d, ok, mod in zip(
        tt["tumour_id"].tolist(),
        tt["procedure_date"],
        _bools(tt["technical_success"]),
        tt["modality"],
        strict=True,
    ):
        t_sessions[int(tid)].append(TumourSession(d, ok))
        tumour_modality.setdefault(int(tid), mod)

    fu = fr["followups"]
    fl = fr["followup_lesions"]
    fl = fl[fl["tumour_id"].notna()].merge(
        fu[["id", "followup_date"]].rename(columns={"id": "followup_id"}), on="followup_id"
    )
    t_img: dict[int, list[TumourImaging]] = defaultdict(list)
    for tid, d, res, ltp in zip(
        fl["tumour_id"].astype(int).tolist(),
        fl["followup_date"],
        _bools(fl["residual_tumour"]),
        _bools(fl["local_progression"]),
        strict=True,
    ):
        t_img[tid].append(TumourImaging(d, res, ltp))
    tumour_ep = {tid: tumour_endpoints(s, t_img.get(tid, [])) for tid, s in t_sessions.items()}

    tum = fr["tumours"]
    tumours_of: dict[int, list[int]] = defaultdict(list)
    for tid, pid in zip(tum["id"].tolist(), tum["patient_id"].tolist(), strict=True):
        tumours_of[int(pid)].append(int(tid))
    fus_of: dict[int, list[PatientFollowup]] = defaultdict(list)
    for pid, d, nih, dd in zip(
        fu["patient_id"].tolist(),
        fu["followup_date"],
        _bools(fu["new_intrahepatic_disease"]),
        _bools(fu["distant_disease"]),
        strict=True,
    ):
        fus_of[int(pid)].append(PatientFollowup(d, nih, dd))

    courses: dict[int, PatientCourse] = {}
    followed: set[int] = set()
    distant: set[int] = set()
    pts = fr["patients"]
    for pid, lc, dd, tx in zip(
        pts["id"], pts["last_contact_date"], pts["death_date"], pts["transplant_date"], strict=True
    ):
        pid = int(pid)
        if pid not in first_date:
            continue  # never treated: not in the audit
        first = first_date[pid]
        fus = [f for f in fus_of.get(pid, []) if f.followup_date >= first]
        eps = [tumour_ep[t] for t in tumours_of.get(pid, []) if t in tumour_ep]
        rec = patient_recurrence(eps, fus)
        if fus:
            followed.add(pid)
        if rec.distant is not None:
            distant.add(pid)
        last_fu = max((f.followup_date for f in fus), default=None)
        courses[pid] = PatientCourse(str(pid), first, lc, last_fu, dd, tx, rec)
    pid_of_tumour = {int(t): int(p) for t, p in zip(tum["id"], tum["patient_id"], strict=True)}
    return _Derived(
        tumour_ep,
        tumour_modality,
        patient_modality,
        courses,
        first_date,
        followed,
        distant,
        pid_of_tumour,
        t_img,
    )


def _km_block(times: list[int], events: list[bool], s: AuditSettings) -> tuple[dict, KaplanMeier]:
    km = kaplan_meier(times, events, ci_method=s.ci_method, level=s.level)
    return km.to_dict(), km


def _efficacy(tids: list[int], pids: list[int], dv: _Derived, s: AuditSettings) -> dict[str, Any]:
    level = s.level
    eps = [dv.tumour_ep[t] for t in tids]
    te = [
        technique_efficacy(
            dv.tumour_ep[t].first_ablation,
            dv.tumour_imaging.get(t, []),
            s.technique_efficacy_days,
            s.schedule.tolerance_days,
        )
        for t in tids
    ]
    te_known = [x for x in te if x is not None]
    ts = [e.technical_success for e in eps if e.technical_success is not None]
    prim = [e.primary_efficacy for e in eps if e.primary_efficacy is not None]
    sec = [e.secondary_efficacy for e in eps if e.secondary_efficacy is not None]
    comp = [e for e in eps if e.complete_documented]
    ltp_pat: dict[int, bool] = {}
    pid_of_tumour = dv.pid_of_tumour
    for t in tids:
        e = dv.tumour_ep[t]
        if e.complete_documented:
            p = pid_of_tumour[t]
            ltp_pat[p] = ltp_pat.get(p, False) or e.ltp
    followed = [p for p in pids if p in dv.followed]
    ih = sum(1 for p in followed if dv.courses[p].recurrence.intrahepatic_distant is not None)
    eh = sum(1 for p in followed if dv.courses[p].recurrence.extrahepatic is not None)
    return {
        "technical_success": prop(sum(ts), len(ts), level),
        "complete_ablation": prop(sum(prim), len(prim), level),
        "technique_efficacy": {
            **prop(sum(te_known), len(te_known), level),
            "at_days": s.technique_efficacy_days,
            "tolerance_days": s.schedule.tolerance_days,
        },
        "secondary_efficacy": prop(sum(1 for x in sec if x), len(sec), level),
        "residual_unablated": prop(sum(1 for e in eps if e.residual_unablated), len(prim), level),
        "ltp": prop(sum(1 for e in comp if e.ltp), len(comp), level),
        "local_recurrence": prop(sum(ltp_pat.values()), len(ltp_pat), level),
        "distant_recurrence": prop(
            sum(1 for p in followed if p in dv.distant), len(followed), level
        ),
        "intrahepatic_distant_recurrence": prop(ih, len(followed), level),
        "extrahepatic_recurrence": prop(eh, len(followed), level),
    }


def _survival(
    tids: list[int],
    pids: list[int],
    dv: _Derived,
    s: AuditSettings,
    km_store: dict[str, dict[str, KaplanMeier]],
    group: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cs = [dv.courses[p] for p in pids]
    for name, fn in (
        ("os", overall_survival),
        ("dfs", disease_free_survival),
        ("ttp", time_to_progression),
    ):
        tte = [fn(c) for c in cs]
        if not tte:
            out[name] = None
            continue
        d, km = _km_block([x.time_days for x in tte], [x.event for x in tte], s)
        out[name] = d
        km_store.setdefault(name, {})[group] = km
    tte = []
    for t in tids:
        e = dv.tumour_ep[t]
        if not e.complete_documented:
            continue
        c = dv.courses[dv.pid_of_tumour[t]]
        tte.append(
            ltp_free_survival(
                str(t),
                e.first_ablation,
                e.ltp_date,
                e.last_assessment,
                c.death_date,
                c.transplant_date,
            )
        )
    if tte:
        d, km = _km_block([x.time_days for x in tte], [x.event for x in tte], s)
        out["ltpfs"] = d
        km_store.setdefault("ltpfs", {})[group] = km
    else:
        out["ltpfs"] = None
    return out


def _safety(
    fr: dict[str, pd.DataFrame],
    ae: pd.DataFrame,
    pids: set[int],
    sessions: pd.DataFrame,
    level: float,
) -> dict[str, Any]:
    n = len(pids)
    pts = fr["patients"]
    pts = pts[pts["id"].isin(pids)]
    ae = ae[ae["patient_id"].isin(pids)]
    related = set(pts.loc[[v is True for v in _bools(pts["death_procedure_related"])], "id"])
    related |= set(ae.loc[ae["death"].astype(bool), "patient_id"])
    first = sessions.sort_values("procedure_date").drop_duplicates("patient_id")
    first = first[first["patient_id"].isin(pids)].merge(
        pts[["id", "death_date"]].rename(columns={"id": "patient_id"}), on="patient_id"
    )
    d30 = sum(
        1
        for fd, dd in zip(first["procedure_date"], first["death_date"], strict=True)
        if dd is not None and 0 <= (dd - fd).days <= 30
    )
    out: dict[str, Any] = {
        "mortality": prop(len(related), n, level),
        "mortality_30d_all_cause": prop(d30, n, level),
    }
    for cat in SAFETY_CATEGORIES:
        out[cat] = prop(ae.loc[ae["category"] == cat, "patient_id"].nunique(), n, level)
    out["complications_any"] = prop(ae["patient_id"].nunique(), n, level)
    major = ae[ae["_cd_major"]]
    out["major_complications_cd3plus"] = prop(major["patient_id"].nunique(), n, level)
    ses = sessions[sessions["patient_id"].isin(pids)]
    out["readmission_30d"] = prop(
        sum(v is True for v in _bools(ses["readmission_30d"])), len(ses), level
    )
    out["length_of_stay_days_median"] = (
        float(ses["length_of_stay_days"].median()) if len(ses) else None
    )
    return out


def _grades(ae: pd.DataFrame, sessions: pd.DataFrame) -> dict[str, Any]:
    cd = Counter(g.removesuffix("-d") for g in ae["_cd"])
    cci_by_session: dict[int, list[str]] = defaultdict(list)
    for sid, g in zip(ae["session_id"], ae["_cd"], strict=True):
        cci_by_session[int(sid)].append(g)
    cci = [comprehensive_complication_index(cci_by_session.get(int(s), [])) for s in sessions["id"]]
    with_c = [c for c in cci if c > 0]
    return {
        "n_events": len(ae),
        "clavien_dindo": {g: cd.get(g, 0) for g in CLAVIEN_DINDO_GRADES},
        "clavien_dindo_suffix_d": int(sum(1 for g in ae["_cd"] if g.endswith("-d"))),
        "sir_2003": {g: int((ae["_sir2003"] == g).sum()) for g in SIR_2003_GRADES},
        "sir_2017": {g: int((ae["_sir2017"] == g).sum()) for g in SIR_2017_GRADES},
        "cirse": {str(g): int((ae["_cirse"] == g).sum()) for g in range(1, 7)},
        "ctcae": {str(g): int((ae["_ctcae"] == g).sum()) for g in range(1, 6)},
        "timing": {
            k: int((ae["_timing"] == k).sum()) for k in ("immediate", "periprocedural", "delayed")
        },
        "by_category": {k: int(v) for k, v in ae["category"].value_counts().items()},
        "cci_per_session": {
            "sessions": len(cci),
            "mean": round(float(np.mean(cci)), 2) if cci else None,
            "sessions_with_complication": len(with_c),
            "median_if_complicated": round(float(np.median(with_c)), 1) if with_c else None,
        },
    }


def _grade_events(ae: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    ae = ae.copy()
    sd = dict(zip(sessions["id"], sessions["procedure_date"], strict=True))
    cols: dict[str, list[Any]] = defaultdict(list)
    rows: list[dict[Any, Any]] = ae.to_dict("records")
    for r in rows:
        f = AdverseEventFacts(
            therapy=r["therapy"],
            intervention=r["intervention"],
            intervention_anaesthesia=r["intervention_anaesthesia"],
            transfusion_units=int(r["transfusion_units"] or 0),
            icu_admission=bool(r["icu_admission"]),
            organ_failure=r["organ_failure"],
            extra_stay_days=int(r["extra_stay_days"] or 0),
            prolonged_hospitalisation=bool(r["prolonged_hospitalisation"]),
            permanent_sequelae=bool(r["permanent_sequelae"]),
            ongoing_at_discharge=bool(r["ongoing_at_discharge"]),
            death=bool(r["death"]),
            life_threatening=bool(r["life_threatening"]),
        )
        g = grade_all(f)
        cols["_cd"].append(g.clavien_dindo)
        cols["_cd_major"].append(g.clavien_dindo_major)
        cols["_sir2003"].append(g.sir_2003)
        cols["_sir2017"].append(g.sir_2017)
        cols["_cirse"].append(g.cirse)
        cols["_ctcae"].append(g.ctcae)
        pd_ = sd.get(r["session_id"])
        cols["_timing"].append(
            timing(pd_, r["onset_date"])
            if pd_ and r["onset_date"] and r["onset_date"] >= pd_
            else None
        )
    for k in ("_cd", "_cd_major", "_sir2003", "_sir2017", "_cirse", "_ctcae", "_timing"):
        ae[k] = cols[k] if len(ae) else pd.Series(dtype=object)
    if len(ae) == 0:
        ae["_cd_major"] = ae["_cd_major"].astype(bool)
    return ae


def _subgroups(tids: list[int], dv: _Derived, tum: pd.DataFrame, level: float) -> dict[str, Any]:
    size_c = dict(
        zip(tum["id"], (tum["size_mm"].astype(float) * 100).round().astype(int), strict=True)
    )
    ttype = dict(zip(tum["id"], tum["tumour_type"], strict=True))

    def block(ids: list[int]) -> dict[str, Any]:
        eps = [dv.tumour_ep[t] for t in ids]
        prim = [e.primary_efficacy for e in eps if e.primary_efficacy is not None]
        comp = [e for e in eps if e.complete_documented]
        return {
            "n_tumours": len(ids),
            "complete_ablation": prop(sum(prim), len(prim), level),
            "ltp": prop(sum(1 for e in comp if e.ltp), len(comp), level),
        }

    by_size = {}
    for label, lo, hi in SIZE_GROUPS:
        ids = [
            t for t in tids if (size_c[t] > lo if lo else True) and (hi is None or size_c[t] <= hi)
        ]
        by_size[label] = block(ids)
    by_type = {}
    for ty in sorted({ttype[t] for t in tids}):
        by_type[ty] = block([t for t in tids if ttype[t] == ty])
    return {"tumour_size": by_size, "tumour_type": by_type}


def _completeness(
    fr: dict[str, pd.DataFrame], dv: _Derived, s: AuditSettings, as_of: date
) -> dict[str, Any]:
    sched = s.schedule
    tol = sched.tolerance_days
    pts = fr["patients"].set_index("id")
    code = pts["patient_code"].to_dict()
    fu = fr["followups"]
    fdates: dict[int, list[int]] = defaultdict(list)
    for pid, d in zip(fu["patient_id"], fu["followup_date"], strict=True):
        pid = int(pid)
        if pid in dv.first_date:
            fdates[pid].append((d - dv.first_date[pid]).days)
    missed_visits = 0
    due_visits = 0
    patients_missing: set[int] = set()
    overdue: list[dict[str, Any]] = []
    never: list[int] = []
    for pid, first in dv.first_date.items():
        days = np.sort(np.asarray(fdates.get(pid, []), dtype=int))
        c = dv.courses[pid]
        stop = min((d for d in (c.death_date, c.transplant_date) if d is not None), default=None)
        elapsed = (as_of - first).days
        any_due = False
        for m in sched.months:
            due = round(m * DAYS_PER_MONTH)
            if elapsed <= due + tol:
                break  # window still open
            if stop is not None and (stop - first).days < due:
                break  # died / transplanted before the visit was due
            any_due = True
            due_visits += 1
            i = np.searchsorted(days, due - tol, side="left")
            if i < days.size and days[i] <= due + tol:
                continue
            missed_visits += 1
            patients_missing.add(pid)
            if i >= days.size and stop is None:  # nothing since: still owed
                overdue.append(
                    {
                        "patient_code": code.get(pid),
                        "visit_month": m,
                        "due_date": (pd.Timestamp(first) + pd.Timedelta(days=due))
                        .date()
                        .isoformat(),
                        "days_overdue": elapsed - due,
                    }
                )
        if any_due and days.size == 0:
            never.append(pid)
    overdue.sort(key=lambda r: -r["days_overdue"])
    # first overdue visit per patient is the one to chase
    seen: set[str] = set()
    chase = []
    for r in overdue:
        if r["patient_code"] not in seen:
            seen.add(r["patient_code"])
            chase.append(r)
    treated = len(dv.first_date)
    fl = fr["followup_lesions"]
    tl = fl[fl["tumour_id"].notna()]
    hcc = fr["patients"][fr["patients"]["diagnosis"] == "hcc"]
    return {
        "as_of": as_of.isoformat(),
        "schedule": {"months": sched.months, "tolerance_days": tol},
        "patients_treated": treated,
        "visits_due": due_visits,
        "visits_missed": missed_visits,
        "patients_with_missed_visit": prop(len(patients_missing), treated),
        "patients_without_any_followup": prop(len(never), treated),
        "patients_overdue_now": len(chase),
        "overdue": chase,
        "missing_fields": {
            "patients.last_contact_date": prop(
                int(fr["patients"]["last_contact_date"].isna().sum()), len(fr["patients"])
            ),
            "patients.child_pugh_class (HCC)": prop(
                int(hcc["child_pugh_class"].isna().sum()), len(hcc)
            ),
            "patients.ecog": prop(int(fr["patients"]["ecog"].isna().sum()), len(fr["patients"])),
            "followup_lesions.residual_and_local_progression": prop(
                int((tl["residual_tumour"].isna() & tl["local_progression"].isna()).sum()), len(tl)
            ),
            "followup_lesions.minimal_margin_mm (first imaging)": _first_margin_missing(fr),
        },
    }


def _first_margin_missing(fr: dict[str, pd.DataFrame]) -> dict[str, Any]:
    fl = fr["followup_lesions"]
    fl = (
        fl[fl["tumour_id"].notna()]
        .merge(
            fr["followups"][["id", "followup_date"]].rename(columns={"id": "followup_id"}),
            on="followup_id",
        )
        .sort_values("followup_date")
    )
    first = fl.drop_duplicates("tumour_id")
    return prop(int(first["minimal_margin_mm"].isna().sum()), len(first))


def _comparison(groups: dict[str, Any], level: float) -> list[dict[str, Any]]:
    pub = load_published_series()
    rows = []
    for mod, g in groups.items():
        if mod == "overall":
            continue
        for measure in MEASURES:
            ev, n, refs = pub.pooled(mod, measure)
            if not refs:
                continue
            unit = g["efficacy"].get(measure) or g["safety"].get(measure)
            if unit is None:
                continue
            p0 = ev / n
            row: dict[str, Any] = {
                "modality": mod,
                "measure": measure,
                "unit": unit,
                "published": {
                    "pooled_rate": round(p0, 6),
                    "events": ev,
                    "n": n,
                    "studies": [
                        {
                            "id": s.id,
                            "citation": s.citation,
                            "section": s.section,
                            "events": c.events,
                            "n": c.n,
                            "unit": c.unit,
                            "derived": c.derived,
                            "note": c.note,
                        }
                        for s, c in refs
                    ],
                },
            }
            if unit["n"] and 0.0 < p0 < 1.0:
                l95 = binomial_control_limits(p0, unit["n"], 0.95)
                l998 = binomial_control_limits(p0, unit["n"], 0.998)
                r = unit["rate"]
                pos = (
                    "within 95% limits"
                    if l95[0] <= r <= l95[1]
                    else "between 95% and 99.8% limits"
                    if l998[0] <= r <= l998[1]
                    else "outside 99.8% limits"
                )
                side = "" if l95[0] <= r <= l95[1] else (" (above)" if r > l95[1] else " (below)")
                row["funnel"] = {
                    "limits_95": [round(x, 6) for x in l95],
                    "limits_998": [round(x, 6) for x in l998],
                    "position": pos + side,
                }
            elif unit["n"]:
                row["funnel"] = {
                    "limits_95": None,
                    "limits_998": None,
                    "position": "no funnel: pooled published rate is 0 or 1",
                }
            rows.append(row)
    return rows


def build_audit(
    data: RegistryData, settings: AuditSettings | None = None, progress: Progress | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(audit dict, Kaplan-Meier curves for plotting) from the registry frames."""
    s = settings or AuditSettings()
    prog = progress or NullProgress()
    fr = data.frames
    as_of = s.as_of or date.today()
    prog.start("audit: deriving end points", total=6)
    dv = _derive(fr)
    prog.advance()
    ses = fr["procedure_sessions"]
    ae = _grade_events(fr["adverse_events"], ses)
    ae = ae.merge(
        ses[["id", "modality"]].rename(columns={"id": "session_id", "modality": "_modality"}),
        on="session_id",
    )
    prog.advance()
    mods = [m for m in MODALITY_ORDER if m in set(ses["modality"])]
    km_store: dict[str, dict[str, KaplanMeier]] = {}
    groups: dict[str, Any] = {}
    for g in ["overall", *mods]:
        if g == "overall":
            tids = sorted(dv.tumour_ep)
            pids = sorted(dv.courses)
            safety_pids = set(pids)
            g_ae, g_ses = ae, ses
        else:
            tids = sorted(t for t in dv.tumour_ep if dv.tumour_modality[t] == g)
            pids = sorted(p for p in dv.courses if dv.patient_modality[p] == g)
            g_ses = ses[ses["modality"] == g]
            safety_pids = set(g_ses["patient_id"].astype(int))
            g_ae = ae[ae["_modality"] == g]
        groups[g] = {
            "label": MODALITY_LABEL[g],
            "n_patients": len(pids),
            "n_tumours": len(tids),
            "n_sessions": len(g_ses),
            "n_patients_with_session": len(safety_pids),
            "efficacy": _efficacy(tids, pids, dv, s),
            "survival": _survival(tids, pids, dv, s, km_store, g),
            "safety": _safety(fr, g_ae, safety_pids, g_ses, s.level),
            "complications": _grades(g_ae, g_ses),
            "subgroups": _subgroups(tids, dv, fr["tumours"], s.level),
        }
    prog.advance()
    tests = _tests(dv, fr, mods, s)
    prog.advance()
    completeness = _completeness(fr, dv, s, as_of)
    prog.advance()
    comparison = _comparison(groups, s.level)
    responses = _responses(fr, dv, s, ["overall", *mods])
    prog.advance()
    prog.finish()
    from hepablate import __version__

    report = {
        "report": "hepablate audit",
        "hepablate_version": __version__,
        "database": data.source,
        "site": s.site,
        "as_of": as_of.isoformat(),
        "time_unit": "days",
        "survival_ci_method": s.ci_method,
        "proportion_ci_methods": ["wilson", "clopper-pearson"],
        "ci_level": s.level,
        "counts": {t: int(len(df)) for t, df in fr.items()},
        "groups": groups,
        "tests": tests,
        "completeness": completeness,
        "published_comparison": comparison,
        "responses": responses,
        "published_laser_note": load_published_series().documents["laser"]["per_study_figures"],
    }
    return _clean(report), km_store


def _responses(
    fr: dict[str, pd.DataFrame], dv: _Derived, s: AuditSettings, names: list[str]
) -> dict[str, Any]:
    """RECIST 1.1 / mRECIST responses by time point and the stored-vs-derived discrepancies
    (hepablate.outcomes.responses)."""
    groups = {
        g: set(dv.courses)
        if g == "overall"
        else {p for p in dv.courses if dv.patient_modality[p] == g}
        for g in names
    }
    due = [(m, round(m * DAYS_PER_MONTH)) for m in s.schedule.months]
    pts = fr["patients"]
    code = {int(k): str(v) for k, v in zip(pts["id"], pts["patient_code"], strict=True)}
    return response_section(
        derive_responses(fr, dv.first_date),
        groups,
        dv.first_date,
        due,
        s.schedule.tolerance_days,
        prop,
        s.level,
        code,
    )


def _tests(
    dv: _Derived, fr: dict[str, pd.DataFrame], mods: list[str], s: AuditSettings
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if len(mods) < 2:
        return {"note": "one modality only: no between-modality tests"}
    pids = sorted(dv.courses)
    mod = [dv.patient_modality[p] for p in pids]
    for name, fn in (("os", overall_survival), ("dfs", disease_free_survival)):
        tte = [fn(dv.courses[p]) for p in pids]
        try:
            out[f"logrank_{name}_by_modality"] = logrank(
                [x.time_days for x in tte], [x.event for x in tte], mod
            ).to_dict()
        except ValueError as exc:
            out[f"logrank_{name}_by_modality"] = {"note": str(exc)}
    # Cox model of OS: modality (reference = the most common), age, HCC, largest tumour size
    pts = fr["patients"].set_index("id")
    tum = fr["tumours"].groupby("patient_id")["size_mm"].max().astype(float)
    ref = Counter(mod).most_common(1)[0][0]
    tte = [overall_survival(dv.courses[p]) for p in pids]
    cov: dict[str, list[float]] = {}
    for m in mods:
        if m != ref:
            cov[f"modality_{m}_vs_{ref}"] = [1.0 if x == m else 0.0 for x in mod]
    cov["age_per_10_years"] = [
        (dv.first_date[p].year - float(pts.at[p, "year_of_birth"])) / 10.0  # type: ignore[arg-type]
        for p in pids
    ]
    cov["diagnosis_hcc"] = [1.0 if pts.at[p, "diagnosis"] == "hcc" else 0.0 for p in pids]
    cov["largest_tumour_per_10_mm"] = [float(tum.get(p, np.nan)) / 10.0 for p in pids]
    keep = [i for i, v in enumerate(cov["largest_tumour_per_10_mm"]) if math.isfinite(v)]
    if sum(tte[i].event for i in keep) >= 10:
        try:
            terms = cox_model(
                [tte[i].time_days for i in keep],
                [tte[i].event for i in keep],
                {k: [v[i] for i in keep] for k, v in cov.items()},
                s.level,
            )
            out["cox_os"] = {
                "model": "Cox PH (lifelines, Efron ties)",
                "n": len(keep),
                "terms": [t.__dict__ for t in terms],
            }
        except Exception as exc:  # lifelines convergence problems are data, not bugs
            out["cox_os"] = {"note": f"Cox model not estimable: {exc.__class__.__name__}"}
    return out
