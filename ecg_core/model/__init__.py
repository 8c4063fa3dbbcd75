"""Architectures, augmentation, training, evaluation, prediction, explanation, offsets and ensembles."""
