"""Classify page: upload beat images or pick bundled samples; prediction, probabilities and Grad-CAM."""

from __future__ import annotations

import streamlit as st

from ecg_core.classes import CLASS_KEYS, CLASS_NAMES
from ecg_core.picture.imaging import display_name
from ecg_core.settings import LEADS_PER_REPRESENTATION, TEMPLATE_SPAN_S
from ui import batch, components, state

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "gif"]
SOURCES = {"upload": "Upload images", "samples": "Bundled samples"}
PICTURE_FORMS = {
    "waveform": "One image per beat: about 1 s before the R peak to 0.6 s after it, single lead. Dark trace on "
                "light paper or light on dark, any size: images are brought to the training form first.",
    "overlay": "One image per beat, made from a recording: the beat (bright, 1 s before the R peak to 0.6 s after "
               f"it) drawn over the patient's usual beat around it (grey: the median of the beats within "
               f"{TEMPLATE_SPAN_S:g} s), on "
               "one amplitude scale. Where the curves part, the beat differs from the patient's own rhythm. The "
               "**Signal** page makes these pictures from a recording (each beat's picture can be downloaded) "
               "and the bundled samples are such pictures. For a picture of a single trace, choose a waveform "
               "model in the sidebar.",
}

info = components.model_or_stop()
st.title("Classify ECG beat images")
if LEADS_PER_REPRESENTATION.get(info.representation, 1) == 2:
    st.warning(f"**{info.name}** reads two-lead beat pictures (MLII above V1) rendered from a two-lead recording; "
               "this page takes single-lead pictures. Choose a waveform model in the sidebar to classify beat "
               "images; this model's results are on the **Model comparison** page.", icon=":material/info:")
    st.stop()
if info.representation not in PICTURE_FORMS:
    st.warning(f"**{info.name}** reads {info.representation} (time-frequency) images computed from a signal, not "
               "pictures of an ECG trace. Classify a recording with it on the **Signal** page, or choose a waveform "
               "model in the sidebar to classify beat images.", icon=":material/info:")
    st.stop()
st.markdown(PICTURE_FORMS[info.representation])

source = st.radio("Images", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="classify_source",
                  label_visibility="collapsed")
files: list[tuple[str, bytes]] = []
labels: dict[str, tuple[str, str]] = {}  # sample name -> (reference class, provenance)
if source == "upload":
    uploaded = st.file_uploader("Upload one or many images (PNG, JPEG, BMP, WebP, TIFF)", type=UPLOAD_TYPES,
                                accept_multiple_files=True, key="classify_upload",
                                help="Files stay in memory for this session only; nothing is written to disk.")
    files = [(f.name, f.getvalue()) for f in uploaded or []]
    if not files:
        st.info("Upload images above, or switch to **Bundled samples** to try real beats from MIT-BIH test "
                "patients.", icon=":material/upload:")
else:
    manifest = state.sample_manifest(info.representation)
    col_class, col_files = st.columns([1, 3])
    present = [k for k in CLASS_KEYS if (manifest["label"] == k).any()]
    key = col_class.selectbox("Class", present, format_func=lambda k: f"{CLASS_NAMES[k]} ({k})",
                              key="sample_class")
    rows = manifest[manifest["label"] == key]
    chosen = col_files.multiselect("Samples (real beats of test-split patients)", list(rows["file"]),
                                   default=list(rows["file"])[:1], key=f"samples_{key}",
                                   format_func=lambda f: state.sample_source(rows.set_index("file").loc[f]))
    for f in chosen:
        row = rows.set_index("file").loc[f]
        files.append((f, (state.samples_dir(info.representation) / f).read_bytes()))
        labels[display_name(f)] = (str(row["label"]), state.sample_source(row))

if len(files) > batch.MAX_FILES:
    st.warning(f"Only the first {batch.MAX_FILES} of {len(files)} images are classified.")
    files = files[: batch.MAX_FILES]

if files:
    anyway = st.checkbox("Classify images anyway when they do not look like an ECG beat", key="classify_anyway",
                         help="The guard flags photos, blank or noisy images and text; the model was never trained "
                         "on those, so its answer for them means nothing.")
    clf = state.classifier_for(info)
    digest = batch.batch_digest(files, str(info.path), id(clf), anyway)
    cached = st.session_state.get("classify_results")
    if cached and cached[0] == digest:
        results = cached[1]
    else:
        with st.spinner(f"Classifying {len(files)} image(s)..."):
            results = batch.process(files, clf, include_flagged=anyway)
        for r in results:
            r.label, r.source = labels.get(r.name, (None, ""))
        st.session_state["classify_results"] = (digest, results)  # this session only, in memory
    components.batch_results(results, key=f"classify_{digest[:10]}")
