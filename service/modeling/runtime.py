"""ONNX sessions of the served models, and a model version as serving holds it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import onnxruntime as ort

from service.modeling.artifacts import Artifact, Manifest
from service.modeling.explainer import TreeExplainer
from service.modeling.pcltv import Probabilistic, ValueInterval

# The input name of every exported graph: one float32 matrix of model features.
INPUT = "features"


def session(model) -> ort.InferenceSession:
    """A session of an ONNX model (`onnx.ModelProto` or its bytes)."""
    options = ort.SessionOptions()
    # Scoring requests are tiny: thread pools would only add wake-up latency.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, X: np.ndarray) -> np.ndarray:
    (output,) = sess.run(None, {_input_name(sess): X.astype(np.float32, copy=False)})
    return np.asarray(output).reshape(len(X), -1)


def _input_name(sess: ort.InferenceSession) -> str:
    """`get_inputs()` builds Python objects on every call; a session's inputs never change."""
    name = getattr(sess, "scorer_input_name", None)
    if name is None:
        name = sess.scorer_input_name = sess.get_inputs()[0].name
    return name


@dataclass
class LoadedModel:
    """An artifact with what serving derives from it, each built once on first use."""

    artifact: Artifact

    @property
    def manifest(self) -> Manifest:
        return self.artifact.manifest

    @property
    def graph(self) -> bytes:
        return self.artifact.graph

    @cached_property
    def session(self) -> ort.InferenceSession:
        """A session of this model alone (the NBO model; the others run in one graph)."""
        return session(self.graph)

    @cached_property
    def explainer(self) -> TreeExplainer | None:
        text = self.artifact.explainer
        return TreeExplainer(text) if text else None

    @cached_property
    def probabilistic(self) -> Probabilistic | None:
        if "bgnbd" not in self.manifest.parameters:
            return None
        return Probabilistic.from_parameters(self.manifest.parameters)

    @cached_property
    def value_interval(self) -> ValueInterval:
        return ValueInterval.from_parameters(self.manifest.parameters)

    def model_input(self, X: np.ndarray) -> np.ndarray:
        """The matrix this model's graph takes (pCLTV adds the probabilistic columns)."""
        return self.probabilistic.augment(X) if self.probabilistic else X
