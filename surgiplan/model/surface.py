"""Triangle surface meshes in LPS millimetres (a plain container, no VTK objects)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SurfaceMesh:
    """A triangle mesh: ``vertices_lps`` (N, 3) float mm, ``faces`` (M, 3) int vertex indices.

    Faces are oriented so that their normals point out of the structure.
    """

    vertices_lps: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        self.vertices_lps = np.asarray(self.vertices_lps, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int64).reshape(-1, 3)

    @property
    def n_triangles(self) -> int:
        return int(self.faces.shape[0])

    def is_empty(self) -> bool:
        return self.faces.shape[0] == 0
