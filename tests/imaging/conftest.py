"""Small phantoms and a DICOM CT series shared by the imaging tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hepablate.case.model import Case
from hepablate.core.volume import Volume
from hepablate.phantoms import PhantomSpec, build_phantom

#: A rotation about all three axes: no grid axis is parallel to an LPS axis.
OBLIQUE = Rotation.from_euler("xyz", [12.0, -7.0, 25.0], degrees=True).as_matrix()


def _spec() -> PhantomSpec:
    # Anisotropic voxels and a field of view cropped to the liver keep the files small.
    return PhantomSpec(case_id="imaging-test", spacing_mm=(1.5, 1.5, 2.5), fov_mm=(150, 130, 110))


@pytest.fixture(scope="session")
def aniso_case() -> Case:
    return build_phantom(_spec())


@pytest.fixture(scope="session")
def oblique_case(aniso_case: Case) -> Case:
    """The phantom's arrays on an oblique grid (a rotated patient: same voxels, new frame)."""
    ct = aniso_case.ct
    assert ct is not None
    grid = Volume(ct.array, ct.spacing_mm, (12.5, -30.25, 101.0), OBLIQUE)
    return replace(aniso_case, grid=grid, ct=grid)


@pytest.fixture(scope="session")
def small_ct() -> Volume:
    """A small CT (HU) with in-plane spacing i != j to catch PixelSpacing order errors."""
    rng = np.random.default_rng(7)
    arr = rng.integers(-1000, 1500, size=(6, 20, 24)).astype(np.int16)
    return Volume(arr, (0.8, 1.1, 2.0), (-10.0, 20.0, -5.0))


@pytest.fixture(scope="session")
def ct_dir(tmp_path_factory: pytest.TempPathFactory, small_ct: Volume) -> Path:
    from hepablate.imaging.dicom_ct import write_dicom_ct_series

    folder = tmp_path_factory.mktemp("ct") / "series"
    write_dicom_ct_series(small_ct, folder, patient_id="TEST01")
    return folder


@pytest.fixture(scope="session")
def oblique() -> np.ndarray:
    return OBLIQUE.copy()
