"""Registration of a patient's series to the twin's reference (Qt-free; LPS mm throughout).

* :mod:`~surgiplan.registration.engine`: rigid / affine, Mattes mutual information, moments
  initialisation, multi-resolution, progress and cancel (SimpleITK);
* :mod:`~surgiplan.registration.deformable`: B-spline refinement for follow-ups;
* :mod:`~surgiplan.registration.quality`: landmark TRE, distance between two transforms;
* :mod:`~surgiplan.registration.resample` / :mod:`~surgiplan.registration.carry`: images and
  structures moved between series through their transforms;
* :mod:`~surgiplan.registration.longitudinal`: volume change and surface growth map;
* :mod:`~surgiplan.registration.dicom_reg`: DICOM Spatial Registration objects;
* :mod:`~surgiplan.registration.synthetic`: CT + MR-like phantom pairs with a known transform.

The transform itself is :class:`surgiplan.model.series_transform.SeriesTransform` (series LPS
-> reference LPS); a twin's further series are :class:`surgiplan.twin.TwinSeries`.
"""
