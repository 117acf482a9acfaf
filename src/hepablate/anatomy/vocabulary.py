"""The standard structure vocabulary of a case.

Names are lower-case identifiers. `tumour` may occur several times, each with an id (e.g. T1);
in a Case the key of such a structure is ``tumour:<id>``. `body` is the skin surface/outline.
"""

from __future__ import annotations

from typing import Literal

StructureName = Literal[
    "liver",
    "tumour",
    "portal_vein",
    "hepatic_vein",
    "hepatic_artery",
    "ivc",
    "bile_duct",
    "gallbladder",
    "stomach",
    "bowel",
    "kidney",
    "diaphragm",
    "bone",
    "body",
    "aorta",
    "spleen",
    "lung",
    "pleura",
    "heart",
    "pericardium",
    "colon",
    "duodenum",
    "pancreas",
    "cartilage",
    "muscle",
    "fat",
]

STRUCTURE_NAMES: tuple[str, ...] = StructureName.__args__  # type: ignore[attr-defined]

#: Blood vessels (conductive, heat sinks).
VESSELS: frozenset[str] = frozenset(
    {"portal_vein", "hepatic_vein", "hepatic_artery", "ivc", "aorta"}
)
#: Bile ducts (IRE spares them; thermal damage to them is a complication).
BILE_DUCTS: frozenset[str] = frozenset({"bile_duct"})
#: Hollow organs (a needle through them risks perforation, leak or infection).
BOWEL: frozenset[str] = frozenset({"bowel", "colon", "duodenum", "stomach"})
#: Structures a needle path must not cross (other tumours are added per case). `pleura` is the
#: pleural recess below the lung edge (a transpleural path risks pneumothorax); `cartilage` is
#: costal cartilage (a needle does not pass it). Muscle, fat, the diaphragm and the liver are
#: passable: percutaneous paths cross them (intercostal paths cross the diaphragm).
NO_GO: frozenset[str] = frozenset(
    VESSELS
    | BILE_DUCTS
    | BOWEL
    | {
        "gallbladder",
        "kidney",
        "bone",
        "cartilage",
        "spleen",
        "pancreas",
        "lung",
        "pleura",
        "heart",
        "pericardium",
    }
)

#: Label values used by hepablate's own phantoms and label maps it writes.
DEFAULT_LABELS: dict[str, int] = {
    "body": 1,
    "liver": 2,
    "portal_vein": 3,
    "hepatic_vein": 4,
    "hepatic_artery": 5,
    "ivc": 6,
    "bile_duct": 7,
    "gallbladder": 8,
    "stomach": 9,
    "bowel": 10,
    "kidney": 11,
    "diaphragm": 12,
    "bone": 13,
    "aorta": 14,
    "spleen": 15,
    "lung": 16,
    "pleura": 17,
    "heart": 18,
    "pericardium": 19,
    "colon": 20,
    "duodenum": 21,
    "pancreas": 22,
    "cartilage": 23,
    "muscle": 24,
    "fat": 25,
}
#: Tumours get labels 100, 101, ... in order of their ids.
TUMOUR_LABEL_BASE = 100


def structure_key(name: str, tumour_id: str | None = None) -> str:
    """Key of a structure in a Case: the name, or ``tumour:<id>`` for tumours."""
    if name == "tumour":
        if not tumour_id:
            raise ValueError("a tumour needs an id")
        return f"tumour:{tumour_id}"
    return name


def base_name(key: str) -> str:
    return key.split(":", 1)[0]
