"""Pseudonymous patient references and de-identified DICOM export.

Patient reference
    ``patient_pseudonym(patient_id)`` is ``"P-"`` + the first 10 characters of the base32 form of
    HMAC-SHA256(secret, patient_id). The secret is 32 random bytes created on first use in the
    platform user-data folder (``platformdirs.user_data_dir("surgiplan")/pseudonym.key``,
    owner-only). The same patient therefore gets the same reference on the same installation,
    while the reference cannot be turned back into the ID, nor matched across installations,
    without that file. Back it up with the case files if references must stay stable.

De-identified export
    ``deidentify_series(files, out_dir)`` applies the DICOM PS3.15 Annex E Basic Application
    Level Confidentiality Profile through dicognito (one ``Anonymizer`` per call, so every UID,
    name, ID and shifted date is remapped consistently across the series; the seed defaults to
    ``installation_dicom_seed()``, so the same source always maps to the same UIDs on this
    installation and matches SurgiPlan's de-identified SEGs), removes private
    attributes (the profile's default, no "retain safe private" option), and records the
    method: PatientIdentityRemoved = YES, DeidentificationMethod and
    DeidentificationMethodCodeSequence = (113100, DCM, "Basic Application Confidentiality
    Profile"). Pixel data is not scrubbed: files whose BurnedInAnnotation is YES are refused.
    Files are written atomically, owner-only (0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from surgiplan.errors import BadInputError
from surgiplan.progress import CancelToken, ProgressCallback, check, report

_KEY_FILE = "pseudonym.key"
_KEY_BYTES = 32
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
METHOD_TEXT = "DICOM PS3.15 Basic Application Confidentiality Profile"  # LO: <= 64 chars


# ---------------------------------------------------------------------------- pseudonyms
def installation_secret_path() -> Path:
    """Where this installation's pseudonym secret lives (platform user-data folder)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("surgiplan", appauthor=False)) / _KEY_FILE


def installation_secret(path: Path | None = None) -> bytes:
    """This installation's 32-byte pseudonym secret, created (owner-only) on first use."""
    path = path or installation_secret_path()
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: if two processes race, exactly one creates it and both read the same
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return installation_secret(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        key = path.read_bytes()
    if len(key) != _KEY_BYTES:
        raise BadInputError(f"the pseudonym secret has {len(key)} bytes, expected {_KEY_BYTES}",
                            path=path, action="Restore it from a backup (or delete it to start "
                            "a new series of patient references)")
    return key


def patient_pseudonym(patient_id: str, *, secret: bytes | None = None) -> str:
    """Pseudonymous patient reference ``"P-XXXXXXXXXX"`` (stable per installation).

    ``secret`` overrides the installation secret (tests, or a site-wide shared key). An empty
    or blank ``patient_id`` has no reference: returns ``""``.
    """
    patient_id = patient_id.strip()
    if not patient_id:
        return ""
    key = installation_secret() if secret is None else secret
    digest = hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).digest()
    return "P-" + base64.b32encode(digest).decode("ascii")[:10]


def installation_dicom_seed(secret: bytes | None = None) -> str:
    """The dicognito seed of this installation: HMAC-SHA256(secret, purpose) in hex.

    Derived from the pseudonym secret, so it is as private as that file: whoever holds it can
    re-link de-identified UIDs to the originals.
    """
    key = installation_secret() if secret is None else secret
    return hmac.new(key, b"surgiplan dicognito seed v1", hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- DICOM export
# PS3.15 Table E.1-1 (Basic Profile) attributes with action X (remove) that dicognito 0.19 leaves
# in place (free-text descriptions and comments, device and station identifiers, history...).
# Found by the PHI canary test; removed after dicognito, in nested sequences too.
BASIC_PROFILE_REMOVE = (
    "AcquisitionComments", "AcquisitionDeviceProcessingDescription",
    "AcquisitionProtocolDescription", "AdditionalPatientHistory", "AdmissionID",
    "AdmittingDiagnosesDescription", "Allergies", "BranchOfService", "CassetteID",
    "CommentsOnThePerformedProcedureStep", "ContributionDescription", "CountryOfResidence",
    "CurrentPatientLocation", "DerivationDescription", "DetectorID", "DeviceSerialNumber",
    "DeviceUID", "DischargeDiagnosisDescription", "DistributionAddress", "DistributionName",
    "EthnicGroup", "FrameComments", "GantryID", "GeneratorID", "IdentifyingComments",
    "ImageComments", "ImagePresentationComments", "ImagingServiceRequestComments",
    "Impressions", "InstitutionAddress", "InstitutionalDepartmentName",
    "InsurancePlanIdentification", "InterpretationDiagnosisDescription", "InterpretationText",
    "IssuerOfAdmissionID", "IssuerOfPatientID", "MedicalAlerts", "MedicalRecordLocator",
    "MilitaryRank", "ModifiedAttributesSequence", "ModifyingDeviceID", "Occupation",
    "OriginalAttributesSequence", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientAddress", "PatientAge", "PatientBirthName",
    "PatientBirthTime", "PatientComments", "PatientMotherBirthName",
    "PatientReligiousPreference", "PatientSize", "PatientState", "PatientTelephoneNumbers",
    "PatientTransportArrangements", "PatientWeight", "PerformedLocation",
    "PerformedProcedureStepDescription", "PerformedProcedureStepID", "PlateID",
    "PreMedication", "PregnancyStatus", "ProtocolName", "ReasonForStudy",
    "ReasonForTheImagingServiceRequest", "ReferencedPatientPhotoSequence",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "RegionOfResidence",
    "RequestAttributesSequence", "RequestedContrastAgent", "RequestedProcedureComments",
    "RequestedProcedureDescription", "RequestedProcedureID", "RequestedProcedureLocation",
    "RequestingService", "ResultsComments", "ScheduledPatientInstitutionResidence",
    "ScheduledProcedureStepDescription", "ScheduledProcedureStepLocation", "SeriesDescription",
    "ServiceEpisodeDescription", "ServiceEpisodeID", "SmokingStatus", "SpecialNeeds",
    "StationName", "StudyComments", "StudyDescription", "StudyIDIssuer", "TextComments",
    "TextString", "TopicAuthor", "TopicKeywords", "TopicSubject", "TopicTitle",
    "VisitComments",
)


def remove_profile_attributes(dataset) -> None:
    """Delete the ``BASIC_PROFILE_REMOVE`` attributes from ``dataset`` and its sequences."""
    from pydicom.datadict import tag_for_keyword

    tags = {tag_for_keyword(k) for k in BASIC_PROFILE_REMOVE}
    for tag in list(dataset.keys()):
        element = dataset[tag]
        if tag in tags:
            del dataset[tag]
        elif element.VR == "SQ":
            for item in element.value or []:
                remove_profile_attributes(item)


def add_deidentification_method(dataset) -> None:
    """Record the Basic Profile as PS3.15 E.1.1 requires (on top of dicognito's entries)."""
    from pydicom.dataset import Dataset

    dataset.PatientIdentityRemoved = "YES"
    methods = dataset.get("DeidentificationMethod", [])
    methods = [methods] if isinstance(methods, str) else list(methods)
    methods = [m for m in methods if m and m != METHOD_TEXT] + [METHOD_TEXT]
    dataset.DeidentificationMethod = methods
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
    dataset.DeidentificationMethodCodeSequence = [code]


def _read(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise BadInputError(f"not a readable DICOM file ({exc})", path=path,
                            action="Give only the DICOM files of one series") from exc


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BadInputError("the output folder is not empty", path=out_dir,
                            action="Choose a new or empty folder for the de-identified series")
    out_dir.mkdir(parents=True, exist_ok=True)


def deidentify_series(
    files: Iterable[str | Path],
    out_dir: str | Path,
    *,
    seed: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write de-identified copies of DICOM ``files`` as ``out_dir/IM00001.dcm`` ...

    UIDs are remapped consistently, so a series stays one series. ``seed`` (default: this
    installation's, see :func:`installation_dicom_seed`) makes the remapping reproducible
    (keep it secret: it can re-link the output). Returns the
    written paths in input order. ``out_dir`` must be new or empty.
    """
    from dicognito.anonymizer import Anonymizer

    paths = [Path(f) for f in files]
    if not paths:
        raise BadInputError("no DICOM files to de-identify", path=out_dir,
                            action="Give the files of one series")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    anonymizer = Anonymizer(seed=installation_dicom_seed() if seed is None else seed)
    written: list[Path] = []
    for n, path in enumerate(paths):
        check(cancel)
        dataset = _read(path)
        if str(dataset.get("BurnedInAnnotation", "NO")).upper() == "YES":
            raise BadInputError("its pixels carry burned-in annotation that may show who the "
                                "patient is", path=path,
                                action="De-identify this series with a tool that scrubs pixels")
        anonymizer.anonymize(dataset)
        remove_profile_attributes(dataset)
        dataset.remove_private_tags()
        add_deidentification_method(dataset)
        written.append(save_dataset(dataset, out_dir / f"IM{n + 1:05d}.dcm", durable=False))
        report(progress, (n + 1) / len(paths), f"de-identified {n + 1}/{len(paths)} files")
    sync_folder(written)
    return written


def save_dataset(dataset, path: str | Path, *, durable: bool = True) -> Path:
    """Write a DICOM dataset as a Part 10 file, atomically (temporary file + rename: readers
    never see half a file) and owner-only (0600).

    ``durable=False`` skips the per-file fsync (a series writer syncs its folder once at the
    end with :func:`sync_folder`); a single object keeps the default.
    """
    import contextlib
    import io
    import tempfile

    from surgiplan.io.atomic import os_error_to_bad_input, write_bytes_atomic

    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    if durable:
        return write_bytes_atomic(path, buffer.getvalue())
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise (os_error_to_bad_input(exc, path) or exc) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def sync_folder(paths: Iterable[Path]) -> None:
    """fsync written files and their folder (durability after ``durable=False`` writes)."""
    from surgiplan.io.atomic import fsync_folder

    folders = set()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders.add(Path(path).parent)
    for folder in folders:
        fsync_folder(folder)
