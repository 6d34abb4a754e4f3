"""Challenge-style submissions, scored without ever trusting them (docs/security.md, docs/submissions.md).

Scorer side: :mod:`~dbench.submissions.scoring` (the per-submission flow and failure records),
:mod:`~dbench.submissions.sandbox` (bubblewrap, limits, deadlines), :mod:`~dbench.submissions.seccomp`,
:mod:`~dbench.submissions.cgroups`, :mod:`~dbench.submissions.limits`, :mod:`~dbench.submissions.records`
(result names, no overwrite),
:mod:`~dbench.submissions.signing`, :mod:`~dbench.submissions.progress`, :mod:`~dbench.submissions.queries`.

Sandbox side (run only by ``python -m dbench.submissions.worker`` inside the sandbox):
:mod:`~dbench.submissions.unpack`, :mod:`~dbench.submissions.metadata`, :mod:`~dbench.submissions.npz`,
:mod:`~dbench.submissions.torchscript_check`, :mod:`~dbench.submissions.onnx_check`.

Both sides: :mod:`~dbench.submissions.wire`, the one format that crosses the boundary.
"""
