"""XGBoost's in-place margin prediction, called through its C API with the arguments
prepared once.

`Booster.inplace_predict(X, predict_type="margin")` spends longer in Python (argument
and array-interface JSON, output wrapping: about 100 µs a call on these machines) than
XGBoost spends predicting one record. `margin_predictor` calls the same C function
(`XGBoosterPredictFromDense`) with the same arguments, so the numbers are the same bit
for bit (tested against `inplace_predict`). It reads XGBoost's private `_LIB` (the
version is pinned in requirements); where that is missing it uses `inplace_predict`.
"""

from __future__ import annotations

import ctypes
import json
import logging
from collections.abc import Callable

import numpy as np
from xgboost import Booster

logger = logging.getLogger(__name__)

# inplace_predict's own arguments for predict_type="margin", all else at its defaults
_MARGIN_ARGS = json.dumps(
    {
        "type": 1,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": float("nan"),
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()
_DENSE = b'{"data": [%d, true], "shape": [%d, %d], "strides": null, "typestr": "<f8", "version": 3}'


def margin_predictor(booster: Booster) -> Callable[[np.ndarray], np.ndarray]:
    """X (rows x features) -> the margin of each row, float32, as inplace_predict gives."""
    try:
        from xgboost.core import _LIB, _check_call, c_bst_ulong
    except ImportError as err:  # another XGBoost than the pinned one
        logger.warning("XGBoost's C API not found (%s): using inplace_predict", err)
        return lambda X: booster.inplace_predict(X, predict_type="margin")
    no_proxy = ctypes.c_void_p()

    def predict(X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        rows, columns = X.shape
        if rows == 0:
            return np.empty(0, dtype=np.float32)
        shape, dims = ctypes.POINTER(c_bst_ulong)(), c_bst_ulong()
        out = ctypes.POINTER(ctypes.c_float)()
        _check_call(
            _LIB.XGBoosterPredictFromDense(
                booster.handle,
                _DENSE % (X.ctypes.data, rows, columns),
                _MARGIN_ARGS,
                no_proxy,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(out),
            )
        )
        # XGBoost owns the buffer and reuses it on the next call: copy it out now
        return np.ctypeslib.as_array(out, shape=(rows,)).copy()

    return predict
