"""SurgiPlan: surgical planning on a structural twin of the patient.

World frame everywhere: DICOM patient LPS, millimetres.
"""

import os

# VTK's SMP tools default to the sequential backend; STDThread is ~2.4x faster on 2 cores.
# It must be set before VTK is first imported, so set it here, where every entry point passes.
os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

__version__ = "0.1.0"
