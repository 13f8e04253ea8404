"""The HTTP service: `captioner serve`."""
