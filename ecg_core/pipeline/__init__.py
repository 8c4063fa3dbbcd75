"""Whole jobs: a recording or a picture in, beats, episodes and quality out."""
