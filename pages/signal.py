"""Signal page: upload a whole recording (WFDB, CSV or EDF) or try a bundled sample; every beat classified,
VF episodes found, a report for reviewers to download."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from ecg_core import report
from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS, CLASS_NAMES
from ecg_core.figures import charts, record_figures
from ecg_core.io import samples
from ecg_core.io.signal_io import DEFAULT_ADC_GAIN, MAX_FS, MIN_FS, SignalInputError, read_upload
from ecg_core.model.explain import overlay
from ecg_core.picture.imaging import encode_png, to_model_input
from ecg_core.pipeline import record_mode
from ecg_core.settings import WORKING_FS
from ui import components, state

UPLOAD_TYPES = ["hea", "dat", "atr", "csv", "txt", "tsv", "edf"]
RESULT_KEY = "signal_result"
BEAT_KEY = "signal_beat"
START_KEY = "signal_start"
STRIP_KEY = "signal_strip"
LENGTH_KEY = "signal_length"
CLICK_KEY = "signal_last_click"
JUMP_KEY = "signal_jump_class"
NO_JUMP_KEY = "signal_jump_none"
SAMPLE_KEY = "signal_sample"  # the bundled sample being shown (None: the upload)
SAMPLE_PICK_KEY = "signal_sample_pick"


def show_beat(i: int) -> None:
    """Select beat i (0-based); move the strip window to it when it lies outside (widget callbacks only)."""
    res: record_mode.RecordResult = st.session_state[RESULT_KEY][1]
    st.session_state[BEAT_KEY] = i + 1
    t = float(res.centres[i]) / WORKING_FS
    start, length = float(st.session_state.get(START_KEY, 0.0)), float(st.session_state.get(LENGTH_KEY, 20))
    if not start <= t < start + length:
        st.session_state[START_KEY] = float(max(0, min(int(t - length / 2), int(res.duration_s - length))))


def jump_to_next_of_class() -> None:
    res: record_mode.RecordResult = st.session_state[RESULT_KEY][1]
    key = st.session_state[JUMP_KEY]
    rows = np.flatnonzero(res.beats["predicted"].to_numpy() == key)
    if rows.size == 0:
        st.session_state[NO_JUMP_KEY] = f"No beat was classified {CLASS_NAMES[key]}."
        return
    current = int(st.session_state.get(BEAT_KEY, 1)) - 1
    later = rows[rows > current]
    show_beat(int(later[0] if later.size else rows[0]))


def use_sample() -> None:
    st.session_state[SAMPLE_KEY] = st.session_state[SAMPLE_PICK_KEY]


def use_upload() -> None:
    st.session_state.pop(SAMPLE_KEY, None)


def report_maker(result: record_mode.RecordResult, info, i: int | None, source: str):
    """The report download's deferred data: built (with the beat's Grad-CAM) only when the button is clicked."""
    gradcam = state.current_gradcam()
    try:
        stored = state.stored_results().find(info.name, "recordwise")
    except Exception:  # stored results are optional in the report
        stored = None

    def make() -> bytes:
        beat_png = cam_png = None
        if i is not None:
            image = result.image(i)
            top = int(np.argmax(result.probabilities(i)))
            heat = gradcam.heatmaps(to_model_input(image), [top], "gradcam", features=result.features(i))[0]
            beat_png = encode_png(cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
            cam_png = encode_png(cv2.cvtColor(overlay(image, heat, 0.45, upscale=2), cv2.COLOR_RGB2BGR))
        return report.record_report(result, info.card, selected=i, beat_png=beat_png, gradcam_png=cam_png,
                                    source=source, stored_result=stored)

    return make


def clicked_beat() -> int | None:
    """Row of the beat marker selected on the rhythm strip (Plotly selection event), if any."""
    try:
        points = st.session_state[STRIP_KEY]["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points:
        c = p.get("customdata")
        c = c[0] if isinstance(c, list | tuple) and c else c
        if isinstance(c, int | float):
            return int(c)
    return None


info = components.model_or_stop()
st.title("Classify a whole recording")
if not record_mode.reads_one_lead(info.representation):
    st.warning(f"**{info.name}** reads {info.representation} pictures made from two leads; this page classifies "
               "one lead. Choose a single-lead model in the sidebar.", icon=":material/info:")
    st.stop()
st.markdown(
    "Upload a recording, or try a sample: every beat is found, cut and classified exactly like the training "
    "beats (MLII where present, and V1 for the bundle-branch-block measurements where the recording has it, else "
    "another ECG lead's QRS width), and "
    "ventricular fibrillation is searched for with windows every 0.5 s. Files stay in memory for this session "
    "only; nothing is written to disk.")

try:
    bundled = {s.key: s for s in samples.list_samples()}
except samples.SampleError as exc:
    bundled = {}
    st.caption(f":material/info: {exc}")
if bundled:
    with st.container(border=True):
        st.markdown("**Try a sample recording**: three minutes of a patient no model here was trained on, with "
                    "the cardiologists' reference annotations (MIT-BIH databases, PhysioNet).")
        c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
        c1.selectbox("Sample recording", list(bundled), key=SAMPLE_PICK_KEY, format_func=lambda k: bundled[k].label(),
                     help="Excerpts of test-split records (mitdb DS2, vfdb test list); see sample_records/README.md.")
        c2.button("Classify the sample", key="signal_sample_run", on_click=use_sample, type="primary",
                  icon=":material/play_arrow:")

uploaded = components.open_uploader(
    "WFDB record (.hea + .dat, optionally .atr reference annotations), or one CSV or EDF file",
    UPLOAD_TYPES, accept_multiple_files=True, key="signal_upload", on_change=use_upload,
    help="WFDB: select the header, the signal file and (optionally) the .atr file together. "
    "CSV: one column of samples, or time (s) and value columns; an optional header row, where a further "
    "column headed V1 is read as the V1 lead (else a second column headed as an ECG lead, such as V5, for its QRS "
    "width).")
with st.expander("CSV options (sampling rate and units)", expanded=False):
    c1, c2, c3, c4 = st.columns(4)
    fs_in = c1.number_input("Sampling rate (Hz)", min_value=0.0, max_value=MAX_FS, value=0.0, step=1.0,
                            key="signal_fs", help=f"{MIN_FS:g}-{MAX_FS:g} Hz. Leave 0 when the CSV has a time column.")
    units = c2.radio("Units", ["mV", "adc"], key="signal_units", horizontal=True,
                     format_func=lambda u: "millivolts" if u == "mV" else "ADC units")
    gain = c3.number_input("ADC gain (units per mV)", min_value=0.001, value=DEFAULT_ADC_GAIN, key="signal_gain",
                           disabled=units != "adc")
    baseline = c4.number_input("ADC baseline", value=0.0, key="signal_baseline", disabled=units != "adc")

sample = bundled.get(st.session_state.get(SAMPLE_KEY) or "")
source = ""
if sample is not None:
    try:
        files = samples.sample_files(sample)
    except samples.SampleError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    source = f"bundled sample: {sample.source} ({sample.title})"
    st.info(f"**Sample recording: {sample.title}** ({sample.source}). {sample.shows} Upload a file to classify "
            "your own recording instead.", icon=":material/ecg:")
else:
    files = {f.name: f.getvalue() for f in uploaded or []}
if not files:
    st.info("Upload a recording above, or try a sample recording. Any record of the MIT-BIH Arrhythmia Database "
            "works too (e.g. `208.hea`, `208.dat` and `208.atr`).", icon=":material/upload:")
    st.stop()

clf = state.classifier_for(info)
h = hashlib.sha256()
for name in sorted(files):
    h.update(name.encode() + hashlib.sha256(files[name]).digest())
digest = (h.hexdigest(), fs_in, units, gain, baseline, str(info.path))
cached = st.session_state.get(RESULT_KEY)
if cached and cached[0] == digest:
    result: record_mode.RecordResult = cached[1]
else:
    bar = st.progress(0.0, text="Reading the recording")
    try:
        sig = read_upload(files, fs=fs_in or None, units=units, adc_gain=gain, adc_baseline=baseline)
    except SignalInputError as exc:
        bar.empty()
        st.error(str(exc), icon=":material/error:")
        st.stop()
    result = record_mode.classify_signal(sig, clf, progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
    bar.empty()
    st.session_state[RESULT_KEY] = (digest, result)
    st.session_state[BEAT_KEY] = 1
    st.session_state[START_KEY] = 0.0

summary = record_mode.summary(result)
st.caption(f"`{result.name}` · lead {result.lead} · {result.fs:g} Hz · {summary['duration_s']:.0f} s · "
           f"model `{result.model}` · classified in {result.seconds.get('total', 0):.1f} s")
components.leads_caption(result)
for note in result.notes:
    st.caption(f":material/info: {note}")

m = st.columns(6)
m[0].metric("Beats", f"{summary['beats']:,}")
m[1].metric("Heart rate (median)", f"{summary['heart_rate_bpm']:.0f} /min" if summary["heart_rate_bpm"] else "n/a")
m[2].metric("PVC burden", f"{summary['percent']['V']:.1f} %")
m[3].metric("VF episodes", summary["vf_episodes"])
m[4].metric("VF / flutter", f"{summary['vf_total_s']:.0f} s",
            help=f"Seconds inside VF episodes; the longest lasts {summary['longest_vf_s']:.1f} s.")
m[5].metric("Noise (unreadable)", f"{summary.get('noise_total_s', 0.0):.0f} s",
            help=f"{summary.get('noise_segments', 0)} segment(s) where no rhythm is readable; the "
            f"{summary.get('beats_in_noise', 0)} beats there are not classified.")
counts = pd.DataFrame({"class": [f"{CLASS_NAMES[k]} ({k})" for k in CLASS_KEYS],
                       "beats": [summary["counts"][k] for k in CLASS_KEYS],
                       "percent": [summary["percent"][k] for k in CLASS_KEYS]})
st.dataframe(counts, hide_index=True, width="stretch", column_config={
    "percent": st.column_config.ProgressColumn("percent of beats", format="%.1f %%", min_value=0.0, max_value=100.0)})

# ---------------------------------------------------------------- rhythm strip
st.subheader("Rhythm strip")
n_beats = len(result.beats)
length = st.select_slider("Window length (s)", [10, 20, 30, 60], value=20, key=LENGTH_KEY)
max_start = max(0.0, float(int(result.duration_s - length)))
if st.session_state.get(START_KEY, 0.0) > max_start:
    st.session_state[START_KEY] = max_start
start = st.slider("Window start (s)", 0.0, max(max_start, 1.0), step=1.0, key=START_KEY,
                  disabled=max_start == 0.0)
st.plotly_chart(record_figures.overview(result, (start, start + length)), key="signal_overview",
                config={"displayModeBar": False})
clicked = clicked_beat()
if clicked is not None and clicked != st.session_state.get(CLICK_KEY) and 0 <= clicked < n_beats:
    st.session_state[BEAT_KEY] = clicked + 1  # a new click on a beat marker selects that beat
st.session_state[CLICK_KEY] = clicked
selected = int(st.session_state.get(BEAT_KEY, 1)) - 1 if n_beats else None
st.plotly_chart(record_figures.rhythm_strip(result, start, length, selected), key=STRIP_KEY,
                on_select="rerun", selection_mode="points")
st.caption("Markers: beats in their predicted class colour (click one to inspect it; grey crosses: beats "
           "inside noise, not classified). Shaded: ventricular fibrillation episodes (brown) and noise "
           "(grey). Drag to zoom; the slider below the strip pans within the window.")

# ---------------------------------------------------------------- one beat
if n_beats:
    st.subheader("Inspect a beat")
    c1, c2, c3 = st.columns([2, 1, 2], vertical_alignment="bottom")
    c1.selectbox("Class", list(CLASS_KEYS), key=JUMP_KEY, format_func=lambda k: f"{CLASS_NAMES[k]} ({k})")
    c2.button("Next beat of this class", key="signal_jump", on_click=jump_to_next_of_class)
    i = int(c3.number_input("Beat number", min_value=1, max_value=n_beats, step=1, key=BEAT_KEY,
                            on_change=lambda: show_beat(int(st.session_state[BEAT_KEY]) - 1))) - 1
    if st.session_state.get(NO_JUMP_KEY):
        c1.caption(st.session_state.pop(NO_JUMP_KEY))
    row = result.beats.iloc[i]
    st.caption(f"Beat {i + 1} of {n_beats} at {row['time_s']:.2f} s (sample {int(row['sample'])})"
               + (" · inside a VF episode: reported as VF (confidence: the rhythm detector's P(VF) + P(VT))"
                  if row["in_vf_episode"] else "")
               + (" · inside noise: not classified" if row.get("in_noise", False) else ""))
    image = result.image(i)
    if row.get("in_noise", False):
        st.image(image, caption="The beat's picture (not classified: no readable rhythm around it)", width=256)
    else:
        components.prediction_panel(image, result.probabilities(i), key=f"signal_beat_{i}",
                                    features=result.features(i))
    st.download_button("Download this beat's picture (PNG)", encode_png(image),
                       file_name=f"{result.name}_beat{i + 1}_{info.representation}.png", mime="image/png",
                       icon=":material/download:", key=f"signal_beat_png_{i}",
                       help="The exact picture the model classified: the Classify page takes it back.")

selected_beat = i if n_beats else None  # the report describes the beat inspected above

# ---------------------------------------------------------------- tables
st.subheader("All beats")
table = result.beats[[c for c in record_mode.CSV_COLUMNS if c in result.beats]]
if "uncertain" in table and table["uncertain"].any():
    st.caption(f"{int(table['uncertain'].sum())} beat(s) are **uncertain**: the model's top probability is below "
               f"its threshold of {info.low_confidence_threshold:.0%} (chosen on patients it never trained on). "
               "Their class is shown as a guess, marked in the `uncertain` column.")
st.dataframe(table, hide_index=True, width="stretch", height=280)
d1, d2, d3 = st.columns(3)
d1.download_button("Download beats (CSV)", lambda: record_mode.beats_csv(result),  # built on click, not each rerun
                   file_name=f"{result.name}_beats.csv", mime="text/csv", icon=":material/download:",
                   key="signal_beats_csv", on_click="ignore")
d2.download_button("Download VF episodes (CSV)", lambda: record_mode.episodes_csv(result), on_click="ignore",
                   file_name=f"{result.name}_episodes.csv", mime="text/csv", icon=":material/download:",
                   key="signal_episodes_csv")
d3.download_button("Download the report (HTML)", report_maker(result, info, selected_beat, source),
                   file_name=report.report_file_name(result.name), mime="text/html", icon=":material/description:",
                   key="signal_report", on_click="ignore",
                   help="One self-contained page for reviewers: the strip, every beat's label, counts, VF episodes, "
                   "the selected beat's probabilities and Grad-CAM, the model card and its numbers on unseen patients.")
if len(result.episodes):
    st.markdown("**Ventricular fibrillation / flutter episodes**")
    st.dataframe(result.episodes, hide_index=True, width="content")
noise = getattr(result, "noise", None)
if noise is not None and len(noise):
    st.markdown("**Noise / unreadable segments** (beats there are not classified)")
    st.dataframe(noise, hide_index=True, width="content")
    st.download_button("Download noise segments (CSV)", record_mode.noise_csv(result),
                       file_name=f"{result.name}_noise.csv", mime="text/csv", icon=":material/download:",
                       key="signal_noise_csv")

if result.comparison is not None:
    c = result.comparison
    st.subheader("Agreement with the reference annotations")
    k = st.columns(4)
    k[0].metric("Detection sensitivity", f"{c.sensitivity:.1%}" if c.sensitivity is not None else "n/a",
                help="Reference beats (all beat symbols) with a detected beat within 150 ms.")
    k[1].metric("Positive predictivity", f"{c.positive_predictivity:.1%}" if c.positive_predictivity is not None
                else "n/a", help="Detected beats with a reference beat within 150 ms.")
    k[2].metric("Class agreement", f"{c.agreement:.1%}" if c.agreement is not None else "n/a",
                help="Matched beats of the six classes whose predicted class equals the reference class.")
    k[3].metric("Reference VF covered", f"{c.detected_vf_overlap_s:.0f} of {c.reference_vf_s:.0f} s"
                if c.reference_vf_s else "no VF in reference")
    per_class = c.per_class.reset_index()
    per_class["class"] = [f"{CLASS_BY_KEY[k].name} ({k})" for k in per_class["class"]]
    st.dataframe(per_class, hide_index=True, width="stretch", column_config={
        "agreement": st.column_config.NumberColumn(format="percent"),
        "precision": st.column_config.NumberColumn(format="percent")})
    st.plotly_chart(charts.confusion_heatmap(c.confusion.to_numpy(), "Reference (rows) vs predicted (columns)"),
                    key="signal_confusion")
