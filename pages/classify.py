"""Classify page: any ECG picture (a beat, a strip, a printout, a photo) -> digitized -> every beat classified."""

from __future__ import annotations

import streamlit as st

from ecg_core.picture.digitize import SPAN_PRESETS
from ecg_core.picture.imaging import MAX_FILE_BYTES, display_name
from ecg_core.pipeline import record_mode
from ui import components, pictures, serving, state

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "gif"]
SOURCES = {"upload": "Upload pictures", "samples": "Bundled samples"}
LAYOUTS = {"auto": "Find out", "beat": "One beat", "strip": "A strip"}
SCALE_AUTO = "From the ECG grid (else guessed from the shape)"
SCALE_CUSTOM = "Another span (seconds)"
RESULTS_KEY = "classify_results"

info = components.model_or_stop()
st.title("Classify an ECG picture")
if not record_mode.reads_one_lead(info.representation):
    st.info(f"**{info.name}** reads two leads (MLII above V1) at once: it reads pictures of two stacked strips "
            "(the top one as MLII, the one below as V1). Choose a one-lead model for any other picture.",
            icon=":material/info:")
st.markdown(
    "Upload a picture of an ECG: a single beat, a rhythm strip, a scan or phone photo of paper, a monitor "
    "screenshot, a plot, or a 12-lead page (its lead-II rhythm strip is read). The trace is **digitized** into a "
    "signal, calibrated from the ECG grid (25 mm/s, 10 mm/mV) or from the span you state, and then goes through "
    "the same beat detection and model as a recording on the **Signal** page. Pictures stay in memory for this "
    f"session only (at most {MAX_FILE_BYTES // 2**20} MB and {pictures.MAX_FILES} pictures at a time; file names "
    "are shown shortened).")

with st.expander("How to read the pictures", expanded=False, icon=":material/tune:"):
    c1, c2 = st.columns(2)
    layout = c1.radio("Each picture holds", list(LAYOUTS), format_func=LAYOUTS.get, horizontal=True,
                      key="classify_layout",
                      help="Find out: a trace shorter than 2.5 s (as calibrated) is one beat, else a strip.")
    scale = c2.selectbox("Time scale of pictures without an ECG grid", [SCALE_AUTO, *SPAN_PRESETS, SCALE_CUSTOM],
                         key="classify_scale",
                         help="Seconds across the trace. A picture with a grid is read at 25 mm/s unless you "
                         "state a span here. Without grid or span, a wide picture is taken for a 10 s strip and a "
                         "narrow one for a beat picture whose span is estimated from the beat's shape (0.5-2.4 s; "
                         "read at the 0.8 s or 1.6 s preset when within 25 % of it); "
                         "each beat is then also classified at 0.8x and "
                         "1.25x the span, and marked uncertain where its class changes.")
    span = None
    if scale == SCALE_CUSTOM:
        span = float(c2.number_input("Seconds across the trace", 0.2, 60.0, 10.0, 0.1, key="classify_span"))
    elif scale in SPAN_PRESETS:
        span = SPAN_PRESETS[scale]

source = st.radio("Pictures", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="classify_source",
                  label_visibility="collapsed")
files: list[tuple[str, bytes]] = []
labels: dict[str, tuple[str, str]] = {}
if source == "upload":
    uploaded = components.open_uploader(
        "Upload one or many pictures (PNG, JPEG, BMP, WebP, TIFF, GIF)", UPLOAD_TYPES, accept_multiple_files=True,
        key="classify_upload", help="Files stay in memory for this session only; nothing is written to disk. "
        f"At most {MAX_FILE_BYTES // 2**20} MB a picture.")
    files = [(f.name, f.getvalue()) for f in uploaded or []]
    if not files:
        st.info("Upload pictures above, or switch to **Bundled samples** to try pictures drawn from MIT-BIH test "
                "patients.", icon=":material/upload:")
else:
    manifest = state.picture_manifest()
    if manifest.empty:
        st.info("No bundled sample pictures are installed.", icon=":material/info:")
    else:
        chosen = st.multiselect("Sample pictures (drawn from test-split patients' recordings, never trained on)",
                                list(manifest["file"]), default=list(manifest["file"])[:1], key="sample_pictures",
                                format_func=lambda f: state.picture_caption(manifest.set_index("file").loc[f]))
        for f in chosen:
            row = manifest.set_index("file").loc[f]
            files.append((f, (state.pictures_dir() / f).read_bytes()))
            labels[display_name(f)] = (str(row.get("labels", "")), state.picture_caption(row))

if files:
    clf = state.classifier_for(info)
    key = pictures.digest(files, str(info.path), layout, span)
    cached = st.session_state.get(RESULTS_KEY)
    if cached and cached[0] == key:
        outcomes = cached[1]
    else:
        bar = st.progress(0.0, text="Digitizing...")

        def report(i: int, name: str) -> None:
            bar.progress(i / max(len(files), 1), text=f"Digitizing and classifying {name} ({i + 1} of {len(files)})")

        def waiting(ahead: int) -> None:
            bar.progress(0.0, text=f"The server is busy with other users' pictures: yours are number {ahead} in "
                         "the queue.")

        outcomes = pictures.process(files, clf, span, layout, report, serving.pipeline_slots(), waiting)
        bar.empty()
        for o in outcomes:
            o.label, o.source = labels.get(o.name, (None, ""))
        st.session_state[RESULTS_KEY] = (key, outcomes)  # this session only, in memory

    failed = [o for o in outcomes if not o.ok]
    if failed:
        st.error("**Not read:**\n" + "\n".join(f"- {components.code_name(o.name)}: {o.error}" for o in failed),
                 icon=":material/broken_image:")
    done = [o for o in outcomes if o.ok]
    if len(outcomes) > 1:
        st.dataframe(pictures.summary_frame(outcomes), hide_index=True, width="stretch")
    st.download_button("Download every beat (CSV)", lambda: pictures.results_csv(outcomes),  # built on click
                       file_name="ecg_picture_beats.csv", mime="text/csv", icon=":material/download:",
                       key=f"classify_csv_{key[:10]}", on_click="ignore")
    if done:
        pick = 0
        if len(done) > 1:
            pick = st.selectbox("Show", range(len(done)), key=f"classify_pick_{key[:10]}",
                                format_func=lambda j: f"{j + 1}. {done[j].name}")
        components.picture_result(done[pick], key=f"pic_{key[:8]}_{pick}")
