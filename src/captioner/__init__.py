"""captioner: Show-and-Tell image captioning on cached CNN features."""

from captioner.api import Captioner, Result, Tag

__all__ = ["Captioner", "Result", "Tag"]
