"""The model runtime: artifacts, registry, ONNX sessions and explanations (no training code)."""
