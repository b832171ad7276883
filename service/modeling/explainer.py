"""TreeSHAP feature contributions from LightGBM's C library, without the `lightgbm` package.

`import lightgbm` imports scikit-learn eagerly (lightgbm/compat.py) and scipy (basic.py); the
serving process must not load them (start-up time, memory, and a serving path that cannot
come to depend on the training stack). `Booster.predict(pred_contrib=True)` is a thin wrapper
around one C call, so calling lib_lightgbm (shipped inside the lightgbm wheel) through ctypes
gives the same numbers while importing nothing but numpy.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys
import weakref
from pathlib import Path

import numpy as np

# Constants of LightGBM's c_api.h, as lightgbm/basic.py spells them.
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}  # C_API_DTYPE_FLOAT32 / _FLOAT64
_ROW_MAJOR = 1
_PREDICT_CONTRIB = 3
# What Booster(model_str=...).predict() passes: such a booster has best_iteration -1, so
# num_iteration=None becomes -1, i.e. every tree in the text from the first one on.
_START_ITERATION, _NUM_ITERATION = 0, -1
# Requests are single rows and LightGBM only parallelises across rows, so waking an OpenMP
# team only adds latency (milliseconds on a busy host); each row is computed alone, so the
# numbers do not change. lib_lightgbm keeps it as its process-wide default until a call
# passes another value.
_PARAMETERS = b"num_threads=1"

_LIBRARY_NAME = {"win32": "lib_lightgbm.dll", "darwin": "lib_lightgbm.dylib"}.get(
    sys.platform, "lib_lightgbm.so"
)


class LightGBMError(RuntimeError):
    """A LightGBM C API call failed; the message is the library's own (LGBM_GetLastError)."""


def _library_path() -> Path:
    """Where the lightgbm wheel put lib_lightgbm, found the way lightgbm/libpath.py looks.

    `find_spec` of a top-level name only locates the package: its `__init__` (which would
    import scikit-learn) does not run.
    """
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{_LIBRARY_NAME} not found: the lightgbm package, which ships it, is not installed"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    candidates = [
        folder / _LIBRARY_NAME for folder in (package.parent, package / "bin", package / "lib")
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{_LIBRARY_NAME} not found in the lightgbm package; looked at: "
        + ", ".join(map(str, candidates))
    )


@functools.cache
def _library() -> ctypes.CDLL:
    """Loaded on first use, so importing this module never fails where explanations are off.

    Declared signatures make ctypes check arguments and pass 64-bit addresses intact (an
    undeclared Python int argument is passed as a 32-bit C int). Every function returns the
    C int ctypes assumes by default.
    """
    lib = ctypes.CDLL(str(_library_path()))
    handle, c_int, out_int = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)
    lib.LGBM_GetLastError.restype = ctypes.c_char_p
    lib.LGBM_BoosterLoadModelFromString.argtypes = [
        ctypes.c_char_p,
        out_int,
        ctypes.POINTER(handle),
    ]
    lib.LGBM_BoosterGetNumFeature.argtypes = [handle, out_int]
    lib.LGBM_BoosterCalcNumPredict.argtypes = [
        handle,
        c_int,  # num_row
        c_int,  # predict_type
        c_int,  # start_iteration
        c_int,  # num_iteration
        ctypes.POINTER(ctypes.c_int64),
    ]
    lib.LGBM_BoosterPredictForMat.argtypes = [
        handle,
        ctypes.c_void_p,  # data
        c_int,  # data_type
        ctypes.c_int32,  # nrow
        ctypes.c_int32,  # ncol
        c_int,  # is_row_major
        c_int,  # predict_type
        c_int,  # start_iteration
        c_int,  # num_iteration
        ctypes.c_char_p,  # parameter
        ctypes.POINTER(ctypes.c_int64),  # out_len
        ctypes.c_void_p,  # out_result (double*)
    ]
    lib.LGBM_BoosterFree.argtypes = [handle]
    return lib


def _check(return_code: int) -> None:
    if return_code != 0:
        raise LightGBMError(_library().LGBM_GetLastError().decode("utf-8", "replace"))


def _free(handle: ctypes.c_void_p) -> None:
    _check(_library().LGBM_BoosterFree(handle))


class TreeExplainer:
    """Per-row TreeSHAP contributions of one LightGBM model, given its model string.

    Equal to `lightgbm.Booster(model_str=text).predict(X, pred_contrib=True)`: the same C
    function with the same iteration range and input dtype. Sums of a row are raw scores
    (log-odds for a binary model), not the probabilities the ONNX graph outputs.
    """

    def __init__(self, model_text: str) -> None:
        lib = _library()
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int()
        _check(
            lib.LGBM_BoosterLoadModelFromString(
                model_text.encode("utf-8"), ctypes.byref(iterations), ctypes.byref(self._handle)
            )
        )
        # A finalizer (unlike __del__) also runs if the rest of __init__ raises.
        weakref.finalize(self, _free, self._handle)
        features = ctypes.c_int()
        _check(lib.LGBM_BoosterGetNumFeature(self._handle, ctypes.byref(features)))
        self.n_features: int = features.value
        per_row = ctypes.c_int64()
        _check(
            lib.LGBM_BoosterCalcNumPredict(
                self._handle,
                1,
                _PREDICT_CONTRIB,
                _START_ITERATION,
                _NUM_ITERATION,
                ctypes.byref(per_row),
            )
        )
        # n_features + 1 (the expected value last), times the classes of a multiclass model.
        self.n_outputs: int = per_row.value

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """[n_rows, n_outputs] float64 contributions, the expected value in the last column.

        float32 and float64 rows are passed as they are: a value near a split threshold can
        route differently in the two precisions, so this must see the dtype the caller (and
        lightgbm) would. Other dtypes become float32, as lightgbm converts them.
        """
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"expected a 2-D matrix with {self.n_features} columns, got shape {X.shape}"
            )
        dtype = X.dtype if X.dtype in _DTYPES else np.dtype(np.float32)
        rows = np.ascontiguousarray(X, dtype=dtype)
        out = np.empty((rows.shape[0], self.n_outputs), dtype=np.float64)
        written = ctypes.c_int64()
        _check(
            _library().LGBM_BoosterPredictForMat(
                self._handle,
                rows.ctypes.data,
                _DTYPES[dtype],
                rows.shape[0],
                rows.shape[1],
                _ROW_MAJOR,
                _PREDICT_CONTRIB,
                _START_ITERATION,
                _NUM_ITERATION,
                _PARAMETERS,
                ctypes.byref(written),
                out.ctypes.data,
            )
        )
        if written.value != out.size:
            raise LightGBMError(f"LightGBM wrote {written.value} values, expected {out.size}")
        return out
