"""scikit-learn's tree constants and the shape of a depth-3 tree (compile-time constants of the kernels)."""

from __future__ import annotations

import numpy as np

# sklearn/tree/_splitter.pyx: a cut only between values more than this apart (float32 arithmetic).
FEATURE_THRESHOLD = np.float32(1e-7)
# sklearn/tree/_tree.pyx: a node whose impurity is at most this stays a leaf.
EPSILON = float(np.finfo(np.float64).eps)
MAX_DEPTH = 3  # GradientBoostingClassifier's default max_depth
HEAP_SIZE = 2 ** (MAX_DEPTH + 1) - 1  # 15 slots: a full binary tree of depth 3 in heap order
N_INTERNAL = 2**MAX_DEPTH - 1  # 7 splits of a complete depth-3 tree (8 leaves)
# Relative gap under which two features' best splits count as tied (sums of the same numbers taken in
# different orders differ by a few ulp).
TIE_TOLERANCE = 1e-12
# Cuts per block of the pruned split scan: small enough for tight bounds, large enough that a bound
# costs little next to the block's sums.
BLOCK = 32
# Samples per block of the softmax gradients (loops along samples vectorise).
GRADIENT_BLOCK = 256
