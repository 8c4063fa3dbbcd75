"""Model comparison, built only from stored evaluation results (models/results/*.json): nothing runs here."""

from __future__ import annotations

import streamlit as st

from ecg_core.data.results import (
    SPLIT_LABELS,
    comparison_table,
    crossval_by_patient,
    crossval_table,
    headline_and_singles,
    load_crossval,
    load_rhythm_crossval,
    per_record_table,
    recipe_per_class_f1,
    recipe_table,
    rhythm_by_record,
    rhythm_table,
)
from ecg_core.figures import charts
from ui import state

SECTIONS = {
    "recordwise": ("Patient-wise test (record-wise): patients never seen in training",
                   "**Protocol:** trained on the MIT-BIH Arrhythmia DS1 patients, tested on the DS2 patients (de "
                   "Chazal 2004, paced records excluded), VF on separate MIT-BIH Malignant Ventricular Ectopy "
                   "patients. This is how a model meets a new patient."),
    "beatwise": ("Beat-wise test: the same patients in training and test (the score leaks)",
                 "**Protocol:** beats split at random, 70 % to training and 30 % to test, so every test patient also "
                 "gave training beats. Beats of one patient look alike, so the model partly recognises the patient: "
                 "the score leaks and is much higher than on new patients. A benchmark, not a promise."),
}
EVALUATE = ("python -m ecg_core evaluate --model models/<name>.keras --dataset data/waveform --split {split} "
            "--out models/results/<name>__{split}.json")
F3 = st.column_config.NumberColumn(format="%.3f")


def recipe_columns(table) -> dict:
    return {
        "recipe": st.column_config.TextColumn(pinned=True),
        "shipped": st.column_config.TextColumn(help="The model file ships in models/ (default: preselected)."),
        "tested on": st.column_config.TextColumn(help="Every test window, or a seeded subsample per class (used "
                                                 "for the slow architectures; its class mix is not the natural "
                                                 "one, so its macro F1 is not comparable)."),
        "macro F1": st.column_config.NumberColumn(format="%.3f", help="mean over the recipe's runs (seeds)"),
        "± sd": st.column_config.NumberColumn(format="%.3f", help="standard deviation over seeds (empty: one run)"),
        "best macro F1": F3, "accuracy": F3, **{c: F3 for c in table.columns if c.startswith("recall ")},
        "params": st.column_config.NumberColumn(format="localized"),
        "test windows": st.column_config.NumberColumn(format="localized"),
        "size (MB)": st.column_config.NumberColumn(format="%.2f"),
        "latency (ms)": st.column_config.NumberColumn(format="%.1f", help="median single-image prediction time"),
    }


st.title("Model comparison")
results = state.stored_results()
for problem in results.problems:
    st.warning(f"Skipped a stored result: {problem}")
if not results.evaluated:
    st.info(f"No stored evaluation results in `{state.results_dir()}` yet. Create one with "
            f"`{EVALUATE.format(split='recordwise')}`.")
    st.stop()

crossval_rows, crossval_problems = load_crossval(state.results_dir())
for problem in crossval_problems:
    st.warning(f"Skipped a stored result: {problem}")
if crossval_rows:
    st.header("Patients never seen: patient-wise cross-validation")
    st.markdown("**Protocol:** " + crossval_rows[0]["protocol_text"] + ". All windows of the test patients, "
                "natural class mix. Probabilities calibrated by temperature scaling on the validation patients; "
                "a beat below the threshold chosen there is answered *uncertain*.")
    table = crossval_table(crossval_rows)
    st.dataframe(table, hide_index=True, width="stretch", key="comparison_crossval", column_config={
        "recipe": st.column_config.TextColumn(pinned=True), "macro F1": F3, "ECE": F3,
        **{c: F3 for c in table.columns if c.startswith("recall ")},
        "one lead macro F1": st.column_config.NumberColumn(format="%.3f", help="V1's features removed: what a "
                                                           "one-lead recording or picture gets"),
        "answered": st.column_config.NumberColumn(format="percent", help="share of beats given a class, not "
                                                  "'uncertain'"),
        "error when answered": st.column_config.NumberColumn(format="percent"),
        "windows": st.column_config.NumberColumn(format="localized")})
    kfold = [r for r in crossval_rows if r.get("protocol") == "kfold"]
    if kfold:
        pick = st.selectbox("Recipe, patient by patient", range(len(kfold)), key="comparison_crossval_recipe",
                            format_func=lambda i: crossval_table([kfold[i]])["recipe"][0])
        st.dataframe(crossval_by_patient(kfold[pick]), hide_index=True, width="stretch",
                     key="comparison_crossval_patients")
        st.caption("Each patient was tested by the fold that never saw it. A class found in one patient and "
                   "missed in another has not been learned in general.")
    with st.expander("The commands"):
        st.code("\n".join(r.get("command", "") for r in crossval_rows), language="bash")

rhythm_result, rhythm_problems = load_rhythm_crossval(state.results_dir())
for problem in rhythm_problems:
    st.warning(f"Skipped a stored result: {problem}")
if rhythm_result:
    st.header("Ventricular fibrillation: the rhythm detector against the classic detectors")
    st.markdown("**Protocol:** " + str(rhythm_result.get("protocol", "")) + ". Every second of every vfdb and "
                "mitdb recording judged by a detector that never saw its recording, scored in the style of "
                "ANSI/AAMI EC57 (TCSC, VF filter leakage and SPEC as compared by Amann et al. 2005).")
    table = rhythm_table(rhythm_result)
    share = st.column_config.NumberColumn(format="percent")
    st.dataframe(table, hide_index=True, width="stretch", key="comparison_rhythm", column_config={
        "detector": st.column_config.TextColumn(pinned=True),
        **{c: F3 for c in ("VF duration Se", "VF episode Se", "VF episode +P", "sinus specificity")},
        **{c: share for c in ("organised s called VF", "noise s called VF", "noise s called unreadable",
                              "VT s called VF")},
        "false VF s per hour": st.column_config.NumberColumn(format="%.1f")})
    with st.expander("The rhythm detector, recording by recording"):
        st.dataframe(rhythm_by_record(rhythm_result), hide_index=True, width="stretch",
                     key="comparison_rhythm_records", column_config={
                         "VF duration Se": F3, "organised s called VF": share, "VT s called VF": share})
        st.caption("Only 7 recordings hold VF; every VF number rests on these patients.")
        st.code(str(rhythm_result.get("command", "")), language="bash")

shipped = {p.stem for p in state.models_dir().glob("*.keras")}
default = next((m.name for m in state.available_models() if m.is_default), None)
st.caption("Runs of one recipe (the same training command with another `--seed`) are grouped: the mean macro F1 "
           "over the seeds, its spread and the best seed. Macro F1 averages the six per-class F1 scores, so rare "
           "classes count as much as normal beats; recall is the share of each class's test windows labelled "
           "correctly. Latency: one image on the CPU that ran the evaluation.")

tables = {}
for split in dict.fromkeys(["recordwise", "beatwise", *results.splits()]):
    title, protocol = SECTIONS.get(split, (f"{SPLIT_LABELS.get(split, split)} test", ""))
    st.header(title)
    st.markdown(protocol)
    rows = results.for_split(split)
    if rows:
        table = recipe_table(rows, shipped, default)
        headline, singles = headline_and_singles(table)
        tables[split] = (rows, headline if len(headline) else table)
        if len(headline):
            st.dataframe(headline, hide_index=True, width="stretch", key=f"comparison_recipes_{split}",
                         column_config=recipe_columns(headline))
            st.caption("Recipes run over several seeds, and every shipped model. Rows tested on '≤ 300 per class' "
                       "saw a seeded subsample of the test windows, so their class mix, and their macro F1, differ "
                       "from the rows tested on every test window.")
        else:
            st.caption("No recipe of this split was run over several seeds and none of its models ships: every "
                       "run is a single experiment.")
        if len(singles):
            with st.expander(f"{len(singles)} single {SPLIT_LABELS.get(split, split)} experiment(s): one run each, "
                             "not shipped"):
                st.dataframe(singles, hide_index=True, width="stretch", key=f"comparison_singles_{split}",
                             column_config=recipe_columns(singles))
    else:
        st.info(f"No model has been evaluated on the {SPLIT_LABELS.get(split, split)} split yet. Evaluate one with "
                f"`{EVALUATE.format(split=split)}`.")
    for ref in results.reported:
        if ref.get("split") == split:
            st.metric(f"{ref.get('model', 'reported')} — reported, not reproduced",
                      f"macro F1 {float(ref['metrics']['macro_f1']):.3f}")
            st.caption(ref.get("note") or "")

if not tables:
    st.stop()
st.header("A closer look")
split = st.radio("Test split", list(tables), format_func=lambda s: SPLIT_LABELS.get(s, s), horizontal=True,
                 key="comparison_split")
rows, headline = tables[split]
reference = next((r for r in results.reported if r.get("split") == split), None)
ref_f1 = float(reference["metrics"]["macro_f1"]) if reference else None

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Per-class F1")
    st.plotly_chart(charts.per_class_f1_bars(recipe_per_class_f1(rows, headline), ref_f1), key="comparison_f1")
    st.caption("F1 of each class for each recipe of the table above, averaged over its seeds (higher is better). "
               + ("The dashed line is the reported, not reproduced, macro F1 of the seed report." if ref_f1
                  else ""))
with right:
    st.subheader("Size against macro F1")
    scatter = [{"model": line["recipe"], "architecture": line["architecture"], "size_mb": line["size (MB)"],
                "macro_f1": line["macro F1"], "latency_ms": line["latency (ms)"]}
               for _, line in headline.iterrows() if line["size (MB)"]]
    st.plotly_chart(charts.size_vs_f1_scatter(scatter, ref_f1), key="comparison_scatter")
    st.caption("Model file size (log scale) against mean macro F1; hover for latency. Up and left is better."
               + (" Dashed line: reported, not reproduced." if ref_f1 else ""))

runs = comparison_table(rows)
st.subheader("Confusion matrix")
model = st.selectbox("Run", list(dict.fromkeys(runs["model"])), key=f"comparison_cm_{split}",
                     help="Every evaluated run of this split, highest macro F1 first.")
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
        "accuracy": F3, **{c: F3 for c in by_record.columns if c.startswith("recall ")},
        "test windows": st.column_config.NumberColumn(format="localized"),
    })
    st.caption("Database: mitdb = MIT-BIH Arrhythmia, vfdb = MIT-BIH Malignant Ventricular Ectopy (PhysioNet). "
               "Recall: the share of that patient's windows of the class that the model labels correctly (None: "
               "the patient has none). A class found in one patient and missed in another is a class the model "
               f"has not learned in general. Click a column header to sort. Protocol: {row.get('protocol', '?')}.")

with st.expander(f"Every run on the {SPLIT_LABELS.get(split, split)} split ({len(runs)})"):
    st.dataframe(runs, hide_index=True, width="stretch", key=f"comparison_runs_{split}", column_config={
        "model": st.column_config.TextColumn(pinned=True), "accuracy": F3, "macro F1": F3,
        **{c: F3 for c in runs.columns if c.startswith("F1 ")},
        "params": st.column_config.NumberColumn(format="localized"),
        "size (MB)": st.column_config.NumberColumn(format="%.2f"),
        "latency (ms)": st.column_config.NumberColumn(format="%.1f"),
    })
    st.markdown("Each row was written by `python -m ecg_core evaluate`; the exact commands:")
    st.code("\n".join(r.get("command", "") for r in rows), language="bash")
