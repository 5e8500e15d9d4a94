"""SpineWatch on the clinic's imaging network (Django side).

- :mod:`.scp` -- the DICOM storage SCP (pynetdicom) behind ``spinewatch dicom-listen`` and
  ``spinewatch serve --dicom``;
- :mod:`.dicomweb` -- the PACS over DICOMweb (QIDO/WADO/STOW) with retries and back-off;
- :mod:`.pull` -- pulling a study, and the watch for patients whose scan is due;
- :mod:`.receive` -- storing a received study, choosing its series (:mod:`.series`), matching
  the patient (:mod:`.matching`; unmatched studies wait for reconciliation) and queueing the
  analysis;
- :mod:`.push` -- the results (SR, SEG, secondary capture) back into the study.
"""

__all__: list[str] = []
