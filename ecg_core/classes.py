"""The six classes: the one definition used by training, evaluation, the CLI and the app."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EcgClass:
    """One output class of every model, with what a reader of the app needs to know about it."""

    key: str
    name: str
    symbols: tuple[str, ...]
    colour: str
    description: str
    criteria: tuple[str, ...]
    significance: str


CLASSES: tuple[EcgClass, ...] = (
    EcgClass(
        key="N",
        name="Normal",
        symbols=("N",),
        colour="#2ca02c",
        description="A beat started by the sinus node and conducted normally through the ventricles.",
        criteria=(
            "Upright P wave before every QRS in lead II, constant PR interval 120-200 ms",
            "Narrow QRS complex (< 120 ms)",
            "Regular RR intervals (rate 60-100 /min at rest)",
        ),
        significance="The reference beat; its RR interval is what prematurity is measured against.",
    ),
    EcgClass(
        key="L",
        name="Left bundle branch block",
        symbols=("L",),
        colour="#1f77b4",
        description="The left bundle conducts no impulse, so the left ventricle is activated late, "
        "cell to cell from the right.",
        criteria=(
            "QRS duration >= 120 ms",
            "Broad, notched or slurred R wave in I, aVL, V5-V6 ('M' shape); deep broad S in V1",
            "Discordant ST-T: ST and T wave point opposite to the main QRS deflection",
        ),
        significance="New LBBB can signal acute myocardial infarction or heart failure; it masks "
        "ischaemia on the ECG and is an indication for cardiac work-up.",
    ),
    EcgClass(
        key="R",
        name="Right bundle branch block",
        symbols=("R",),
        colour="#9467bd",
        description="The right bundle conducts no impulse, so the right ventricle is activated late.",
        criteria=(
            "QRS duration >= 120 ms",
            "rSR' ('rabbit ears') in V1-V2",
            "Wide, slurred S wave in I and V5-V6",
        ),
        significance="Often benign in healthy people; new RBBB may accompany pulmonary embolism, "
        "right heart strain or ischaemia.",
    ),
    EcgClass(
        key="A",
        name="Premature atrial contraction",
        symbols=("A",),
        colour="#ff7f0e",
        description="An early beat started by an ectopic focus in the atria instead of the sinus node.",
        criteria=(
            "Beat comes early: RR interval shorter than the preceding ones",
            "P wave present but with a different shape (may hide in the preceding T wave)",
            "Narrow QRS like the normal beats; usually a non-compensatory pause",
        ),
        significance="Common and usually benign; frequent PACs can herald atrial fibrillation.",
    ),
    EcgClass(
        key="V",
        name="Premature ventricular contraction",
        symbols=("V",),
        colour="#d62728",
        description="An early beat started by an ectopic focus in the ventricles.",
        criteria=(
            "Premature, wide (>= 120 ms) and bizarre QRS complex",
            "No preceding P wave",
            "T wave opposite to the QRS; usually a full compensatory pause",
        ),
        significance="Frequent PVCs (high burden) or runs can cause cardiomyopathy or herald "
        "ventricular tachycardia; the PVC burden is a standard monitoring figure.",
    ),
    EcgClass(
        key="VF",
        name="Ventricular flutter/fibrillation",
        symbols=("!",),
        colour="#8c564b",
        description="Chaotic (fibrillation) or very fast sine-wave-like (flutter) ventricular "
        "activity with no effective contraction.",
        criteria=(
            "No identifiable P waves, QRS complexes or T waves",
            "Flutter: regular sine-wave undulation at about 250-350 /min",
            "Fibrillation: irregular undulation of varying amplitude and shape",
        ),
        significance="Cardiac arrest rhythm: fatal within minutes without defibrillation.",
    ),
)

CLASS_KEYS: tuple[str, ...] = tuple(c.key for c in CLASSES)
CLASS_NAMES: dict[str, str] = {c.key: c.name for c in CLASSES}
CLASS_INDEX: dict[str, int] = {c.key: i for i, c in enumerate(CLASSES)}
CLASS_BY_KEY: dict[str, EcgClass] = {c.key: c for c in CLASSES}

# MIT-BIH beat annotation symbol -> class key. Other symbols (paced, fusion, escape...) are not used.
SYMBOL_TO_KEY: dict[str, str] = {s: c.key for c in CLASSES for s in c.symbols}

# Every MIT-BIH annotation code that marks a beat (the others mark rhythm changes, noise, comments);
# '!' marks each wave of ventricular flutter (the VF class's beats in mitdb).
BEAT_SYMBOLS: frozenset[str] = frozenset("NLRBAaJSVrFejnE/fQ?!")
FLUTTER_WAVE = "!"

# Rhythm annotations (aux notes) whose episodes are cut into ventricular flutter/fibrillation windows.
VF_RHYTHMS: frozenset[str] = frozenset({"(VF", "(VFL", "(VFIB"})
