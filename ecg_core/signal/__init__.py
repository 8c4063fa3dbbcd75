"""Samples -> beats: filters, R peaks, beat windows, beat features and rhythm segments."""
