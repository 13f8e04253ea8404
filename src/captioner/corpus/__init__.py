"""Building datasets: prepare (import into a manifest and vocabulary), the open corpus, the held-out-style check,
synthetic scenes."""
