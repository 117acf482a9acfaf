"""RECIST 1.1 (Eisenhauer 2009) and mRECIST (Lencioni & Llovet 2010) worked cases, including
values exactly on the thresholds."""

from decimal import Decimal
from fractions import Fraction

import pytest

from hepablate.outcomes.recist import (
    Assessment,
    Lesion,
    ResponseInputError,
    evaluate_response,
    overall_response,
)


def T(i, d, organ="liver", node=False, sa=None, viable=None):
    return Lesion(
        i,
        "target",
        organ=organ,
        is_lymph_node=node,
        longest_diameter_mm=d,
        short_axis_mm=sa,
        viable_longest_diameter_mm=viable,
    )


def NT(i, status, **kw):
    return Lesion(i, "non_target", non_target_status=status, **kw)


def base(*targets, nts=()):
    return Assessment("baseline", tuple(targets) + tuple(nts))


def one(baseline, lesions, criteria="recist1.1"):
    return evaluate_response(baseline, [Assessment("fu", tuple(lesions))], criteria)[0]


B = base(T("a", "60.0"), T("b", "40.0"))  # sum 100 mm


def test_exactly_minus_30_percent_is_pr():
    r = one(B, [T("a", "42.0"), T("b", "28.0")])  # 70 mm = -30.0 %
    assert r.target == "pr" and r.overall == "pr"
    assert r.change_from_baseline == Fraction(-3, 10)


def test_minus_29_99_percent_is_sd():
    r = one(B, [T("a", "42.01"), T("b", "28.0")])
    assert r.target == "sd"


def test_plus_20_percent_with_5_mm_is_pd_and_with_4_9_mm_is_not():
    small = base(T("a", "15.0"), T("b", "10.0"))  # 25 mm: +20 % = +5 mm
    assert one(small, [T("a", "20.0"), T("b", "10.0")]).target == "pd"  # +5.0 mm, +20 %
    # baseline 24.5: +20 % is +4.9 mm, below the 5 mm absolute floor -> not PD
    b2 = base(T("a", "14.5"), T("b", "10.0"))
    r = one(b2, [T("a", "19.4"), T("b", "10.0")])
    assert r.change_from_nadir == Fraction(1, 5) and r.target == "sd"
    assert one(b2, [T("a", "19.5"), T("b", "10.0")]).target == "pd"  # +5.0 mm (+20.4 %)


def test_pd_is_measured_from_the_nadir_not_baseline():
    fus = [
        Assessment("1", (T("a", "30.0"), T("b", "20.0"))),  # 50: PR, nadir 50
        Assessment("2", (T("a", "36.0"), T("b", "24.0"))),  # 60: +20 %, +10 mm vs nadir
    ]
    r = evaluate_response(B, fus)
    assert [x.target for x in r] == ["pr", "pd"]
    assert r[1].nadir_mm == 50 and r[1].change_from_baseline == Fraction(-2, 5)


def test_cr_needs_every_node_below_10_mm_short_axis():
    b = base(T("a", "20.0"), T("n", None, organ="node", node=True, sa="18.0"))
    assert one(b, [T("a", "0"), T("n", None, organ="node", node=True, sa="9.9")]).target == "cr"
    r = one(b, [T("a", "0"), T("n", None, organ="node", node=True, sa="10.0")])
    assert r.target == "pr"  # sum 10 vs 38: -73.7 %, node not normal


def test_new_lesion_is_pd_even_with_cr_targets():
    r = one(B, [T("a", "0"), T("b", "0"), Lesion("x", "new", longest_diameter_mm="4")])
    assert r.target == "cr" and r.overall == "pd"


def test_overall_table_1():
    assert overall_response("cr", "cr", False) == "cr"
    assert overall_response("cr", "non_cr_non_pd", False) == "pr"
    assert overall_response("cr", "ne", False) == "pr"
    assert overall_response("pr", "ne", False) == "pr"
    assert overall_response("sd", "non_cr_non_pd", False) == "sd"
    assert overall_response("ne", "non_cr_non_pd", False) == "ne"
    assert overall_response("sd", "pd", False) == "pd"
    assert overall_response("pr", "cr", True) == "pd"


def test_overall_table_2_non_target_only():
    assert overall_response(None, "cr", False) == "cr"
    assert overall_response(None, "non_cr_non_pd", False) == "non_cr_non_pd"
    assert overall_response(None, "ne", False) == "ne"
    assert overall_response(None, "pd", False) == "pd"
    b = base(nts=[NT("m", "present")])
    assert one(b, [NT("m", "absent")]).overall == "cr"
    assert one(b, [NT("m", "unequivocal_progression")]).overall == "pd"


def test_missing_target_is_ne_unless_measured_sum_already_progresses():
    assert one(B, [T("a", "60.0")]).target == "ne"
    assert one(B, [T("a", "125.0")]).target == "pd"


def test_target_selection_rules():
    with pytest.raises(ResponseInputError, match="at most 5"):
        evaluate_response(base(*[T(str(i), "20", organ=f"o{i}") for i in range(6)]), [])
    with pytest.raises(ResponseInputError, match="at most 2"):
        evaluate_response(base(T("a", "20"), T("b", "20"), T("c", "20")), [])
    with pytest.raises(ResponseInputError, match=">= 10 mm"):
        evaluate_response(base(T("a", "9.9")), [])
    with pytest.raises(ResponseInputError, match="short axis"):
        evaluate_response(base(T("n", None, organ="node", node=True, sa="14.9")), [])
    with pytest.raises(TypeError):
        evaluate_response(base(T("a", 20.5)), [])  # floats refused


def test_decimal_inputs_accepted():
    r = one(base(T("a", Decimal("50.00"))), [T("a", Decimal("35.00"))])
    assert r.target == "pr"


# --- mRECIST ---------------------------------------------------------------------------

MB = base(T("h1", "40", viable="30"), T("h2", "30", viable="20"))  # viable sum 50


def test_mrecist_cr_is_no_enhancement_even_if_the_scar_remains():
    r = one(MB, [T("h1", "40", viable="0"), T("h2", "28", viable="0")], "mrecist")
    assert r.target == "cr" and r.overall == "cr"
    assert one(MB, [T("h1", "40", viable="0"), T("h2", "28", viable="0")]).target == "sd"


def test_mrecist_exact_thresholds():
    assert (
        one(MB, [T("h1", "40", viable="21"), T("h2", "30", viable="14")], "mrecist").target == "pr"
    )  # 35 = -30 %
    # +20 % from nadir with only +2 mm absolute: PD in mRECIST (no 5 mm rule), SD in RECIST
    small = base(T("h", "12", viable="10"))
    r = one(small, [T("h", "12", viable="12")], "mrecist")
    assert r.target == "pd"
    assert one(small, [T("h", "12", viable="11.99")], "mrecist").target == "sd"


def test_mrecist_reappearing_enhancement_after_cr_is_pd_and_zero_stays_cr():
    fus = [
        Assessment("1", (T("h1", "35", viable="0"), T("h2", "25", viable="0"))),
        Assessment("2", (T("h1", "35", viable="0"), T("h2", "25", viable="0"))),
        Assessment("3", (T("h1", "35", viable="3"), T("h2", "25", viable="0"))),
    ]
    assert [r.target for r in evaluate_response(MB, fus, "mrecist")] == ["cr", "cr", "pd"]


def test_mrecist_new_lesion_rules():
    cr = [T("h1", "40", viable="0"), T("h2", "30", viable="0")]
    typical = Lesion("n", "new", longest_diameter_mm="10", typical_hcc_pattern=True)
    small = Lesion("n", "new", longest_diameter_mm="9.9", typical_hcc_pattern=True)
    atypical = Lesion("n", "new", longest_diameter_mm="15", typical_hcc_pattern=False)
    confirmed = Lesion("n", "new", longest_diameter_mm="8", confirmed_hcc=True)
    assert one(MB, cr + [typical], "mrecist").overall == "pd"
    assert one(MB, cr + [small], "mrecist").overall == "cr"
    assert one(MB, cr + [atypical], "mrecist").overall == "cr"
    assert one(MB, cr + [confirmed], "mrecist").overall == "pd"
    assert one(MB, cr + [small]).overall == "pd"  # RECIST 1.1: any new lesion


def test_mrecist_effusion_needs_cytology_and_pvt_is_non_target():
    b = Assessment(
        "b", MB.lesions + (NT("pvt", "present", non_target_kind="portal_vein_thrombosis"),)
    )
    cr = [
        T("h1", "40", viable="0"),
        T("h2", "30", viable="0"),
        NT("pvt", "present", non_target_kind="portal_vein_thrombosis"),
    ]
    eff = NT("e", "unequivocal_progression", non_target_kind="effusion")
    eff_pos = NT(
        "e", "unequivocal_progression", non_target_kind="effusion", cytology_malignant=True
    )
    assert one(b, cr, "mrecist").overall == "pr"  # CR targets, PVT still present
    assert one(b, cr + [eff], "mrecist").overall == "pr"
    assert one(b, cr + [eff_pos], "mrecist").overall == "pd"
    assert one(b, cr + [eff]).overall == "pd"  # RECIST 1.1 has no cytology rule
