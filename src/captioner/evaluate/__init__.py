"""Evaluation: pycocoevalcap metrics of a checkpoint beside retrieval baselines, reports."""
