"""Model comparison, built only from stored evaluation results (models/results/*.json): nothing runs here."""

from __future__ import annotations

import streamlit as st

from ecg_core.data.results import SPLIT_LABELS, comparison_table, per_class_f1, per_record_table
from ecg_core.figures import charts
from ui import state

SPLIT_HELP = {
    "recordwise": "**Record-wise (inter-patient):** the test patients never appear in training (MIT-BIH DS1/DS2 "
    "protocol, separate VFDB records). This is how a model meets a new patient.",
    "beatwise": "**Beat-wise (intra-patient):** beats are split at random, so every test patient also gave "
    "training beats. Beats of one patient look alike, so the model partly recognises the patient: the score "
    "leaks and is much higher than on new patients.",
}

st.title("Model comparison")
results = state.stored_results()
for problem in results.problems:
    st.warning(f"Skipped a stored result: {problem}")
if not results.evaluated:
    st.info(f"No stored evaluation results in `{state.results_dir()}` yet. Create one with "
            "`python -m ecg_core evaluate --model models/<name>.keras --dataset data/waveform --split recordwise "
            "--out models/results/<name>__recordwise.json`.")
    st.stop()

splits = list(dict.fromkeys(["recordwise", "beatwise", *results.splits()]))
split = st.radio("Test split", splits, format_func=lambda s: SPLIT_LABELS.get(s, s), horizontal=True,
                 key="comparison_split")
st.markdown(SPLIT_HELP.get(split, ""))
rows = results.for_split(split)
reference = next((r for r in results.reported if r.get("split") == split), None)
ref_f1 = float(reference["metrics"]["macro_f1"]) if reference else None

if not rows:
    st.info(f"No model has been evaluated on the {SPLIT_LABELS.get(split, split)} split yet. Evaluate one with "
            f"`python -m ecg_core evaluate --model models/<name>.keras --dataset data/waveform --split {split} "
            f"--out models/results/<name>__{split}.json`.")
    for ref in results.reported:
        if ref.get("split") == split:
            st.metric(f"{ref.get('model', 'reported')} — reported, not reproduced",
                      f"macro F1 {float(ref['metrics']['macro_f1']):.3f}")
            st.caption(ref.get("note") or "")
    st.stop()

table = comparison_table(rows)
st.subheader(f"{len(rows)} model(s) evaluated on the {SPLIT_LABELS.get(split, split)} test split")
pct = st.column_config.NumberColumn(format="%.3f")
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "accuracy": pct, "macro F1": pct, **{c: pct for c in table.columns if c.startswith("F1 ")},
    "params": st.column_config.NumberColumn(format="localized"),
    "size (MB)": st.column_config.NumberColumn(format="%.2f"),
    "latency (ms)": st.column_config.NumberColumn(format="%.1f", help="median single-image prediction time"),
})
st.caption("Macro F1 averages the six per-class F1 scores, so rare classes count as much as normal beats. "
           "Latency: one image on the CPU that ran the evaluation. 'Protocol' says which test beats were used.")

for ref in results.reported:
    same = ref.get("split") == split
    st.metric(f"{ref.get('model', 'reported')} — reported, not reproduced "
              f"({SPLIT_LABELS.get(ref.get('split'), ref.get('split'))})",
              f"macro F1 {float(ref['metrics']['macro_f1']):.3f}")
    st.caption((ref.get("note") or "") + ("" if same else " It is shown for reference only: it was measured on "
                                           "a different split than the one selected."))

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Per-class F1")
    st.plotly_chart(charts.per_class_f1_bars(per_class_f1(rows), ref_f1), key="comparison_f1")
    st.caption("F1 of each class for each model (higher is better). "
               + ("The dashed line is the reported, not reproduced, macro F1 of the seed report." if ref_f1
                  else ""))
with right:
    st.subheader("Size against macro F1")
    scatter = [{"model": r["model"], "architecture": r.get("architecture"), "size_mb": r["file_bytes"] / 1e6,
                "macro_f1": r["metrics"]["macro_f1"], "latency_ms": r.get("latency_ms_single")}
               for r in rows if r.get("file_bytes")]
    st.plotly_chart(charts.size_vs_f1_scatter(scatter, ref_f1), key="comparison_scatter")
    st.caption("Model file size (log scale) against macro F1; hover for latency. Up and left is better."
               + (" Dashed line: reported, not reproduced." if ref_f1 else ""))

st.subheader("Confusion matrix")
names = list(table["model"])
model = st.selectbox("Model", names, key=f"comparison_cm_{split}")
row = results.find(model, split)
st.plotly_chart(charts.confusion_heatmap(row["metrics"]["confusion_matrix"]), key="comparison_cm")
st.caption(f"Rows: true class; columns: predicted class. Each cell shows the count and the share of the true "
           f"class. The diagonal is correct. Protocol: {row.get('protocol', '?')}.")

st.subheader(f"`{model}` in each test patient")
try:
    by_record, problem = per_record_table(row), None
except ValueError as exc:
    by_record, problem = None, str(exc)
if problem:
    st.warning(f"The stored per-patient counts of `{model}` could not be read ({problem}).")
elif by_record is None:
    st.info("This stored result has no per-patient counts: it was written before they were recorded. "
            f"Regenerate it with `{row.get('command', 'python -m ecg_core evaluate ...')}`.")
else:
    st.dataframe(by_record, hide_index=True, width="stretch", key="comparison_records", column_config={
        "accuracy": pct, **{c: pct for c in by_record.columns if c.startswith("recall ")},
        "test windows": st.column_config.NumberColumn(format="localized"),
    })
    st.caption("Database: mitdb = MIT-BIH Arrhythmia, vfdb = MIT-BIH Malignant Ventricular Ectopy (PhysioNet). "
               "Recall: the share of that patient's windows of the class that the model labels correctly (None: "
               "the patient has none). A class found in one patient and missed in another is a class the model "
               f"has not learned in general. Click a column header to sort. Protocol: {row.get('protocol', '?')}.")
with st.expander("How to regenerate these numbers"):
    st.markdown("Each row was written by `python -m ecg_core evaluate`; the exact commands:")
    st.code("\n".join(r.get("command", "") for r in rows), language="bash")
