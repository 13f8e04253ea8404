"""Datasets: importers into one manifest format, the open corpus builder."""
