"""Ablation end points by the standardised terminology of Ahmed et al. 2014.

Source: Ahmed M, Solbiati L, Brace CL, et al. Image-guided tumor ablation: standardization of
terminology and reporting criteria - a 10-year update. Radiology 2014;273:241-260.

- technical success: the tumour was treated per protocol and covered by the ablation zone on
  immediate post-procedure imaging (stored per treated tumour and session);
- technique efficacy: complete ablation of macroscopic tumour on follow-up imaging at a
  pre-specified time point (e.g. 1 month);
- primary efficacy: the tumour is completely ablated after the initial procedure (or defined
  protocol); secondary efficacy: completely ablated after a repeat ablation for residual
  tumour or local tumour progression (reported cumulatively, as the series do);
- residual unablated tumour: tumour seen at follow-up with no earlier imaging documenting a
  complete ablation; local tumour progression (LTP): tumour foci at the edge of the ablation
  zone AFTER at least one follow-up study documented a complete ablation. So a positive
  finding is LTP only when a complete ablation was documented before it;
- local recurrence = LTP; distant recurrence: new intrahepatic disease away from the
  ablation zone ("intrahepatic distant recurrence") or extrahepatic disease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Literal


@dataclass(frozen=True)
class TumourSession:
    """One ablation session that treated the tumour."""

    session_date: date
    technical_success: bool | None


@dataclass(frozen=True)
class TumourImaging:
    """One follow-up assessment of the treated tumour (None = not assessed)."""

    imaging_date: date
    residual_tumour: bool | None
    local_progression: bool | None

    @property
    def positive(self) -> bool:
        return bool(self.residual_tumour) or bool(self.local_progression)

    @property
    def assessed_complete(self) -> bool:
        """Assessed (at least one flag recorded) and no tumour seen."""
        return not self.positive and (
            self.residual_tumour is False or self.local_progression is False
        )


@dataclass(frozen=True)
class TumourEndpoints:
    """End points of one tumour; dates are None when the event did not happen."""

    first_ablation: date
    n_sessions: int
    technical_success: bool | None
    primary_efficacy: bool | None
    secondary_efficacy: bool | None
    complete_documented: bool
    residual_unablated: bool
    ltp_date: date | None
    last_assessment: date | None

    @property
    def ltp(self) -> bool:
        return self.ltp_date is not None


def _sorted(x: Sequence[TumourImaging]) -> list[TumourImaging]:
    return sorted(x, key=lambda i: i.imaging_date)


def tumour_endpoints(
    sessions: Sequence[TumourSession], imaging: Sequence[TumourImaging]
) -> TumourEndpoints:
    """Classify one tumour's course. Needs at least one session."""
    if not sessions:
        raise ValueError("a treated tumour needs at least one ablation session")
    ses = sorted(sessions, key=lambda s: s.session_date)
    first = ses[0].session_date
    ims = [i for i in _sorted(imaging) if i.imaging_date >= first]
    second = ses[1].session_date if len(ses) > 1 else None

    # primary efficacy: first assessment after the first session (before any repeat session)
    primary: bool | None = None
    for im in ims:
        if second is not None and im.imaging_date >= second:
            break
        if im.positive:
            primary = False
            break
        if im.assessed_complete:
            primary = True
            break

    complete_documented = False
    residual = False
    ltp_date: date | None = None
    for im in ims:
        if im.positive:
            if complete_documented:
                if ltp_date is None:
                    ltp_date = im.imaging_date
            else:
                residual = True
        elif im.assessed_complete:
            complete_documented = True

    # secondary efficacy, cumulative as the series report it (complete after the first, or a
    # repeat, session): the first assessment after the last session decides a repeat.
    assessed = [i for i in ims if i.positive or i.assessed_complete]
    secondary: bool | None = primary
    if primary is not True and len(ses) > 1:
        after_last = [i for i in assessed if i.imaging_date >= ses[-1].session_date]
        secondary = None if not after_last else after_last[0].assessed_complete
    return TumourEndpoints(
        first_ablation=first,
        n_sessions=len(ses),
        technical_success=ses[0].technical_success,
        primary_efficacy=primary,
        secondary_efficacy=secondary,
        complete_documented=complete_documented,
        residual_unablated=residual,
        ltp_date=ltp_date,
        last_assessment=assessed[-1].imaging_date if assessed else None,
    )


def technique_efficacy(
    first_ablation: date,
    imaging: Sequence[TumourImaging],
    at_days: int,
    tolerance_days: int = 0,
) -> bool | None:
    """Complete ablation on the first assessment at `at_days` (+/- tolerance) after the first
    ablation; None when no assessment falls in that window."""
    for im in _sorted(imaging):
        d = (im.imaging_date - first_ablation).days
        if d < at_days - tolerance_days:
            continue
        if d > at_days + tolerance_days:
            return None
        if im.positive:
            return False
        if im.assessed_complete:
            return True
    return None


RecurrenceKind = Literal["local", "intrahepatic_distant", "extrahepatic"]


@dataclass(frozen=True)
class PatientFollowup:
    followup_date: date
    new_intrahepatic_disease: bool | None
    distant_disease: bool | None


@dataclass(frozen=True)
class PatientRecurrence:
    """First date of each kind of recurrence for one patient (None = not seen)."""

    local: date | None
    intrahepatic_distant: date | None
    extrahepatic: date | None

    @property
    def distant(self) -> date | None:
        ds = [d for d in (self.intrahepatic_distant, self.extrahepatic) if d is not None]
        return min(ds) if ds else None

    @cached_property
    def any(self) -> date | None:
        ds = [d for d in (self.local, self.intrahepatic_distant, self.extrahepatic) if d]
        return min(ds) if ds else None


def patient_recurrence(
    tumours: Sequence[TumourEndpoints], followups: Sequence[PatientFollowup]
) -> PatientRecurrence:
    local = min((t.ltp_date for t in tumours if t.ltp_date is not None), default=None)
    fus = sorted(followups, key=lambda f: f.followup_date)
    ih = next((f.followup_date for f in fus if f.new_intrahepatic_disease), None)
    eh = next((f.followup_date for f in fus if f.distant_disease), None)
    return PatientRecurrence(local, ih, eh)
