"""Class guide: what each of the six classes means, real examples, and where the model is weak."""

from __future__ import annotations

import streamlit as st

from ecg_core.classes import CLASSES
from ecg_core.data.results import (
    class_recall,
    class_recall_by_record,
    crossval_of,
    crossval_recall_by_record,
    load_crossval,
)
from ecg_core.figures import charts
from ecg_core.model.predict import ModelError
from ui import components, state

WEAK_RECALL = 0.5
SAMPLES_SHOWN = 6
SHOWN_AS = {"waveform": "white trace on black: the form the model sees",
            "overlay": "the beat in white over the patient's usual beat in grey: the form the model sees"}

st.title("Class guide")
st.markdown("The six beat classes the models tell apart, how a cardiologist recognises them on a lead-II-like "
            "ECG, why they matter, and real beats from MIT-BIH test patients (never used for training).")

try:
    info = state.current_model_info()
except ModelError:
    info = None
crossval = crossval_of(info.card, load_crossval(state.results_dir())[0]) if info else None
if crossval:  # patient-wise cross-validation of the model's recipe: every patient tested once
    recall = class_recall(info.card, None, "crossval") or crossval["pooled"]["recall"]
    by_patient = crossval_recall_by_record(crossval)
    protocol = info.card["metrics"].get("crossval_protocol", crossval["protocol_text"])
else:
    recall = class_recall(info.card, state.stored_results()) if info else None
    by_patient = class_recall_by_record(state.stored_results(), info.name) if info else None
    protocol = info.card.get("metrics", {}).get("recordwise_protocol", "record-wise test split") if info else ""
if recall:
    st.subheader(f"How often `{info.name}` finds each class in new patients")
    st.plotly_chart(charts.recall_bars(recall), key="guide_recall", config={"displayModeBar": False})
    st.caption(f"Recall = share of the beats of a class that the model labels correctly, measured on patients "
               f"it never saw in training ({protocol}). Bars below {WEAK_RECALL:.0%} mark classes where the "
               "model misses most beats: do not trust it there.")
else:
    st.info("The selected model has no record-wise evaluation yet, so its per-class recall cannot be shown.")

representation = info.representation if info and len(state.sample_manifest(info.representation)) else "waveform"
manifest = state.sample_manifest(representation)
tabs = st.tabs([f"{c.name} ({c.key})" for c in CLASSES])
for cls, tab in zip(CLASSES, tabs):
    with tab:
        st.markdown(f"### {components.class_badge(cls.key)} &nbsp;{cls.name}", unsafe_allow_html=True)
        text, numbers = st.columns([3, 1])
        with text:
            st.markdown(f"**What it is.** {cls.description}")
            st.markdown("**ECG criteria**\n" + "\n".join(f"- {c}" for c in cls.criteria))
            st.markdown(f"**Clinical significance.** {cls.significance}")
            st.caption("MIT-BIH annotation symbol(s): " + ", ".join(f"`{s}`" for s in cls.symbols))
        with numbers:
            if recall and cls.key in recall:
                r = recall[cls.key]
                st.metric(f"Recall of {info.name}", f"{r:.0%}", help="Share of this class's beats in unseen "
                          f"patients that the model labels correctly ({protocol}).")
                if r < WEAK_RECALL:
                    st.warning(f"Weak spot: the model misses {1 - r:.0%} of {cls.name.lower()} beats in new "
                               "patients.", icon=":material/warning:")
        if by_patient and by_patient[cls.key]:
            st.caption(f"Found by {info.name} in each test patient (record: beats found of beats of this class): "
                       + " · ".join(f"{record}: {found:,} of {total:,}" for record, found, total in
                                    by_patient[cls.key]))
        rows = manifest[manifest["label"] == cls.key].head(SAMPLES_SHOWN)
        if len(rows):
            st.markdown(f"**Real examples** ({SHOWN_AS.get(representation, SHOWN_AS['waveform'])})")
            cols = st.columns(SAMPLES_SHOWN)
            for col, (_, row) in zip(cols, rows.iterrows()):
                col.image(str(state.samples_dir(representation) / row["file"]), caption=state.sample_source(row),
                          width="stretch")
            st.caption("Each image spans 1 s before the R peak (for VF: the window centre) to 0.6 s after it. "
                       "Captions give the PhysioNet database and record (ODC-By 1.0) and the time from the "
                       "record's start.")
        else:
            st.caption("No bundled sample images for this class.")
