"""Runtimes behind api.Runtime (PyTorch, onnxruntime), ONNX export and the browser page's builder."""
