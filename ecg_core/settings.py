"""Preprocessing constants shared by signal processing, rendering, training and the app.

Changing anything here changes what models see: bump PREPROCESSING_VERSION so that models trained
with the old settings are refused instead of silently mis-predicting.
"""

from __future__ import annotations

from pathlib import Path

PREPROCESSING_VERSION = "1"

WORKING_FS = 360  # Hz; every signal is resampled to this rate before beats are cut
BANDPASS_HZ = (0.5, 40.0)  # baseline wander and high-frequency noise removal

# Beat window around the R peak: 1.0 s before shows the preceding beat (prematurity, P wave),
# 0.6 s after shows the QRS, ST segment and T wave.
WINDOW_BEFORE_S = 1.0
WINDOW_AFTER_S = 0.6
WINDOW_BEFORE = int(round(WINDOW_BEFORE_S * WORKING_FS))
WINDOW_AFTER = int(round(WINDOW_AFTER_S * WORKING_FS))
WINDOW_LEN = WINDOW_BEFORE + WINDOW_AFTER

VF_WINDOW_STEP_S = 0.5  # windows cut from VF/VFL episodes every half second

IMAGE_SIZE = 128  # square images, pixels
# Random seed of the beat-wise 70/30 split. Fixed, not the training seed: a model trained with another
# seed must still be tested on beats it never saw (the record-wise split is fixed by record lists).
SPLIT_SEED = 0
IMAGE_MARGIN = 4  # pixels between the trace's bounding box and the image edge

# "twolead" stacks two traces: MLII in the top half, SECOND_LEAD (or the record's other lead) below.
SECOND_LEAD = "V1"  # the classic bundle-branch-block lead
# "overlay" draws each beat (white) over the patient's own usual beat around it (grey, TEMPLATE_INTENSITY):
# the sample-wise median of the windows at the R peaks detected within TEMPLATE_SPAN_S on either side, on
# the pair's shared amplitude scale, in one panel. A beat that follows its template is the patient's
# dominant rhythm; one whose QRS parts from it, or whose preceding beat sits earlier, is ectopic.
TEMPLATE_SPAN_S = 10.0
TEMPLATE_INTENSITY = 175  # about half of the beat's brightness once normalised (GRID_CONTRAST 0.35)
# "twolead_overlay": the overlay of MLII in the top half, the overlay of the second lead (V1) below.
TEMPLATE_REPRESENTATIONS = frozenset({"overlay", "twolead_overlay"})
REPRESENTATIONS: tuple[str, ...] = ("waveform", "spectral", "twolead", "overlay", "twolead_overlay")
LEADS_PER_REPRESENTATION = {"waveform": 1, "spectral": 1, "twolead": 2, "overlay": 1, "twolead_overlay": 2}

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # the shipped models, their cards and results
