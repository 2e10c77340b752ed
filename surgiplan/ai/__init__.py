"""Optional AI segmentation plug-ins, run in a separate process (never in the GUI process).

``surgiplan.ai.totalsegmentator``: runs a locally installed TotalSegmentator with its local
weights; :func:`~surgiplan.ai.totalsegmentator.availability` says why it cannot run when it
cannot. Nothing here imports torch, and no model is ever downloaded at run time.
"""
