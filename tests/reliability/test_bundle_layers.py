"""Label layers are decoded straight from the bundle's gzip stream into one array per layer;
the result equals pynrrd's decoding of the same entry, whatever the piece boundaries."""

from __future__ import annotations

import io
import zipfile

import nrrd
import numpy as np

from surgiplan.io.bundle import SEGMENTATION_ENTRY, load_bundle, save_bundle
from surgiplan.io.bundle_guard import read_nrrd_layers
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import Twin


def _twin(rng) -> Twin:
    geometry = ImageGeometry((211, 97, 53), (0.9, 0.9, 1.7), (5.0, -3.0, 11.0))  # odd sizes
    twin = Twin(ImageVolume(rng.integers(-100, 100, geometry.shape_zyx).astype(np.int16),
                            geometry, modality="CT"))
    for n in range(3):  # overlapping noise masks: three layers
        twin.add_structure(f"s{n}", rng.random(geometry.shape_zyx) < 0.3, role="organ")
    return twin


def test_layers_match_pynrrd_and_round_trip(tmp_path):
    twin = _twin(np.random.default_rng(5))
    assert len(twin.segmentation.layers) == 3
    path = save_bundle(twin, tmp_path / "layers.surgiplan")
    with zipfile.ZipFile(path) as archive:
        data = archive.read(SEGMENTATION_ENTRY)
    reference = nrrd.read_data(nrrd.read_header(io.BytesIO(data)), io.BytesIO(data.split(
        b"\n\n", 1)[1]), index_order="C")
    layers, _ = read_nrrd_layers(io.BytesIO(data), max_bytes=1 << 30, where="test")
    assert len(layers) == reference.shape[-1] == 3
    for k, layer in enumerate(layers):
        assert layer.data.flags.c_contiguous  # a LabelLayer: its crop
        np.testing.assert_array_equal(layer, reference[..., k])
    loaded = load_bundle(path)
    for name in ("s0", "s1", "s2"):
        np.testing.assert_array_equal(loaded.segmentation.mask(name),
                                      twin.segmentation.mask(name))
