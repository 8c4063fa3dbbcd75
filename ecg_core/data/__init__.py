"""Datasets built from the databases, their splits and caches, and stored evaluation results."""
