"""Streamlit widgets shared by the pages: model picker, prediction panel, picture results, error page."""

from __future__ import annotations

import html

import cv2
import numpy as np
import streamlit as st

from ecg_core import report
from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS, CLASS_NAMES, CLASSES
from ecg_core.figures import charts, measurements
from ecg_core.figures.picture import annotated_png, input_png, picture_figure, trace_heat
from ecg_core.model.explain import METHODS, colormap_legend, mass_near_trace, overlay, time_profile
from ecg_core.model.predict import ModelError, ModelInfo
from ecg_core.picture.imaging import encode_png, to_model_input
from ecg_core.pipeline.picture import PictureResult
from ecg_core.pipeline.record_mode import RecordResult, leads_line
from ui import state
from ui.pictures import PictureOutcome, beats_frame

HEATMAP_PX = 384  # the 128-pixel image upscaled 3x
METHOD_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++"}
NOT_A_DEVICE = "Research and teaching tool, **not a medical device**: never use it to diagnose or treat anyone."


def code_name(name: str, limit: int = 120) -> str:
    """A user-supplied file name as inline code, safe in Markdown (no backticks, control characters)."""
    clean = "".join(ch if ch.isprintable() and ch != "`" else "'" if ch == "`" else " " for ch in name)
    return f"`{clean[:limit]}{'...' if len(clean) > limit else ''}`"


def class_badge(key: str) -> str:
    """HTML chip in the class colour (class keys and names come from ecg_core.classes, not from users)."""
    c = CLASS_BY_KEY[key]
    return (f"<span style='background:{c.colour};color:white;border-radius:0.4rem;padding:0.1rem 0.45rem;"
            f"font-weight:600'>{html.escape(c.key)}</span>")


def model_label(info: ModelInfo) -> str:
    """What a model is for, in plain words from its card, then its name, for the picker: e.g. 'default · one lead
    · beat over the patient's usual beat · F1 0.467 on unseen patients · <name>'. A model trained and tested on
    the beat-wise split is called a benchmark: its test patients also gave training beats."""
    from ecg_core.settings import LEADS_PER_REPRESENTATION

    drawn = {"waveform": "the beat's trace", "overlay": "beat over the patient's usual beat",
             "spectral": "the beat's spectrogram", "twolead": "MLII above V1",
             "twolead_overlay": "each lead's beat over its usual beat"}
    leads = LEADS_PER_REPRESENTATION.get(info.representation, 1)
    parts = ["default"] if info.is_default else []
    if info.card.get("split") == "beatwise":
        parts.append("beat-wise benchmark model (patients seen in training)")
    lone = info.card.get("context") == "lone"
    if lone:
        parts.append("for single-beat pictures (trained on beats alone, baseline-padded)")
    parts += [{1: "one lead", 2: "two leads"}.get(leads, f"{leads} leads"),
              drawn.get(info.representation, info.representation)]
    f1, beat_f1 = info.metric("recordwise_macro_f1"), info.metric("beatwise_macro_f1")
    cv_f1 = info.metric("crossval_macro_f1")
    if cv_f1 is not None and info.card.get("split") == "all":  # trained on every patient: only CV speaks for it
        parts.append(f"F1 {cv_f1:.3f} on unseen patients (5-fold cross-validation)")
    elif f1 is not None:
        subsample = "subsample" in str(info.metric("recordwise_protocol") or "")
        parts.append(f"F1 {f1:.3f} on unseen patients" + (" (subsample)" if subsample else "")
                     + (", beats alone" if lone else ""))
    elif beat_f1 is not None:
        parts.append(f"beat-wise F1 {beat_f1:.3f}")
    else:
        parts.append("not evaluated yet")
    return " · ".join([*parts, info.name])


def model_picker() -> ModelInfo | None:
    """Sidebar selectbox over every model with a card (default preselected); None when there is none."""
    models = state.available_models()
    if not models:
        return None
    paths = [str(m.path) for m in models]
    if st.session_state.get(state.MODEL_KEY) not in paths:
        st.session_state[state.MODEL_KEY] = paths[0]
    by_path = {str(m.path): m for m in models}
    chosen = st.sidebar.selectbox("Model", paths, key=state.MODEL_KEY, format_func=lambda p: model_label(by_path[p]),
                                  help="Every model in the models folder that has a model card, described from its "
                                  "card: the default, how many leads it reads, how a beat is drawn for it, and its "
                                  "macro F1 on patients it never saw in training (record-wise test). A beat-wise "
                                  "benchmark model was tested on beats of patients it also trained on.")
    info = by_path[chosen]
    card = info.card
    f1, beat_f1 = info.metric("recordwise_macro_f1"), info.metric("beatwise_macro_f1")
    if card.get("split") == "beatwise":
        score = " ".join([
            "**A benchmark model.** Its beats were split at random, so its test patients also gave training beats:",
            f"beat-wise macro F1 **{beat_f1:.3f}** says" if beat_f1 is not None else "a beat-wise score would say",
            "how well it tells beats apart in patients it knows, not how it does on a new patient."])
    elif card.get("split") == "all" and info.metric("crossval_macro_f1") is not None:
        score = (("**The default.** " if info.is_default else "") + "For new patients: macro F1 "
                 f"**{info.metric('crossval_macro_f1'):.3f}** in patient-wise cross-validation (each patient "
                 "tested by a model that never saw it); this model itself was then trained on every patient, "
                 "and beats below its confidence threshold are marked uncertain.")
    elif f1 is not None:
        subsample = "subsample" in str(info.metric("recordwise_protocol") or "")
        score = (("**The default.** " if info.is_default else "") + "For new patients: macro F1 "
                 f"**{f1:.3f}** on patients it never saw in training (record-wise test"
                 + (", at most 300 test windows per class)." if subsample else ")."))
    else:
        score = "No record-wise evaluation yet."
    if "twolead" in info.representation:
        score += " Reads two leads (MLII above V1); pages that take one lead say so instead of classifying."
    st.sidebar.caption(
        f"{score} " + (f"A blend of a network ({int(card.get('params', 0)):,} parameters) and shallow trees"
                       if card.get("blend") else f"{card.get('architecture', '?')}, {int(card.get('params', 0)):,} "
                       "parameters") + f" · {info.representation} "
        f"pictures" + (" and beat features (RR, QRS width)" if card.get("features") else "") + " · trained on "
        + ("every patient" if card.get("split") == "all" else
           f"the {str(card.get('split', '?')).replace('wise', '-wise')} split"))
    return info


def model_error_page(message: str) -> None:
    """What to do when no model can be used (shown instead of the pages that need one)."""
    st.title("The model cannot be loaded")
    st.error(message, icon=":material/error:")
    st.markdown(
        f"""
The classifier needs a model file (`.keras`) with its model card (`.json`) in
`{state.models_dir()}`. To restore the committed models, run in the project folder:

```bash
git checkout -- models/
```

or train a new one (hours on a CPU; see the About page for the whole recipe):

```bash
python -m ecg_core build-dataset --out data/waveform
python -m ecg_core train --arch ecgnet --dataset data/waveform --split recordwise --out models
```

then mark one card `"default": true` and reload this page. If another model is listed in the sidebar,
you can also pick it there. The Class guide, Model comparison and About pages work without a model.
""")


def probability_caption(threshold: float) -> str:
    return (f"Probabilities of all six classes, highest on top; the predicted class is outlined. Dotted line: "
            f"this model's low-confidence threshold ({threshold:.0%}).")


def prediction_panel(image: np.ndarray, probs: np.ndarray, key: str, features: np.ndarray | None = None) -> None:
    """Prediction, probability chart and Grad-CAM overlay for one normalised uint8 128x128 image.

    Uses the model chosen in the sidebar (`ui.state`); `key` must be unique per image on the page.
    """
    info = state.current_model_info()
    probs = np.asarray(probs, dtype=float)
    top = int(np.argmax(probs))
    top_key = CLASS_KEYS[top]
    threshold = info.low_confidence_threshold
    st.markdown(f"{class_badge(top_key)} &nbsp;**{html.escape(CLASS_NAMES[top_key])}** &nbsp;·&nbsp; "
                f"probability **{probs[top]:.1%}** &nbsp;·&nbsp; model `{html.escape(info.name)}`",
                unsafe_allow_html=True)
    if probs[top] < threshold:
        second = CLASS_KEYS[int(np.argsort(probs)[-2])]
        st.warning(f"Low confidence: {probs[top]:.0%} is below this model's threshold of {threshold:.0%}. "
                   f"Treat the result as uncertain; the runner-up is {CLASS_NAMES[second]} "
                   f"({probs[CLASS_KEYS.index(second)]:.0%}).", icon=":material/help:")
    chart, cam = st.columns([1.25, 1], gap="large")
    with chart:
        st.plotly_chart(charts.probability_bars(probs, top, threshold), key=f"{key}_bars",
                        config={"displayModeBar": False})
        st.caption(probability_caption(threshold))
    with cam:
        gradcam_view(image, top, f"{key}_{info.name}", features)
    if features is not None:
        beat_measurements(features)
        two_readers(image, top, features, f"{key}_{info.name}")


def beat_measurements(features: np.ndarray) -> None:
    """The beat's measurements (RR, QRS width, height, shape, V1) as a table with what each means."""
    with st.expander("Beat measurements", expanded=True, icon=":material/straighten:"):
        try:
            table = measurements.measurements_table(features)
        except ValueError as exc:
            st.caption(f"The beat's measurements cannot be shown ({exc}).")
            return
        st.table(table, hide_index=True, border="horizontal")
        try:
            clf = state.current_classifier()
            reads = clf.reads_features
            held = clf.holds_patient_rr
        except ModelError:
            reads = held = False
        if not reads:
            use = " This model reads the picture only; the measurements are shown for reading the beat."
        elif held:
            use = (" This model reads them besides the beat's picture, RR before and after only as ratios (in ms "
                   "they tell patients apart more than beat classes).")
        else:
            use = " This model reads them besides the beat's picture."
        st.caption("Measured by the app on the signal around this beat, from the R peaks it detected (not from "
                   "reference annotations)." + use)


def two_readers(image: np.ndarray, top: int, features: np.ndarray, key: str) -> None:
    """For a blend model: the picture network's and the measurement trees' probability of the predicted class,
    their shares, and what each group of measurements says for that class (nothing for other models)."""
    try:
        reading = state.blend_reading(image, features, top)
        if reading is None:
            return
        table = measurements.readers_table(reading, top, reading["weight_network"],
                                           blended=float(reading["blend"][top]))
    except (ModelError, ValueError) as exc:
        st.caption(f"The blend's two readers cannot be shown for this beat ({exc}).")
        return
    cls_key = CLASS_KEYS[top]
    name = CLASS_NAMES[cls_key]
    w = float(reading["weight_network"])
    with st.expander("Two readers: the picture and the measurements", expanded=True, icon=":material/groups:"):
        st.dataframe(table, hide_index=True, width="stretch", key=f"{key}_readers", column_config={
            "probability": st.column_config.ProgressColumn(f"probability of {cls_key}", format="percent",
                                                           min_value=0.0, max_value=1.0),
            "share": st.column_config.TextColumn("share in the blend")})
        st.caption(f"This model is a blend of two readers. A neural network looks at the beat's picture (with its "
                   f"measurements); a set of decision trees reads the measurements alone. Each gives its own "
                   f"probability of {name}; the blend takes {w:.0%} of the network's and {1 - w:.0%} of the trees', "
                   "then calibrates the mix. When the two readers disagree, look at the beat yourself.")
        if reading["effects"] is None:
            st.caption("These trees carry no typical normal beat to compare with, so what each measurement says "
                       "cannot be shown.")
            return
        effects, left_out = measurements.finite_effects(reading["effects"])
        st.markdown(f"**What the measurements say for {html.escape(name)}**")
        if effects:
            st.plotly_chart(charts.measurement_effect_bars(effects, cls_key), key=f"{key}_effects",
                            config={"displayModeBar": False})
        st.caption(f"How much the trees' probability of {name} changes when one group of this beat's measurements "
                   "is replaced by that of a typical normal beat, in percentage points. Bars to the right (in the "
                   f"class colour) speak for {name}, bars to the left (grey) against it. The trees' view only: "
                   "the picture network is not included.")
        if left_out:
            st.caption("Not shown, not measured on this beat: "
                       + "; ".join(measurements.group_label(g) for g in left_out) + ".")


def gradcam_view(image: np.ndarray, predicted: int, key: str, features: np.ndarray | None = None) -> None:
    """Grad-CAM overlay with its controls: class to explain, method, opacity, and a colour legend."""
    c1, c2 = st.columns(2)
    cls = c1.selectbox("Explain class", range(len(CLASSES)), index=predicted, key=f"{key}_cam_class",
                       format_func=lambda i: CLASS_NAMES[CLASS_KEYS[i]] + (" (predicted)" if i == predicted else ""))
    method = c2.radio("Method", METHODS, key=f"{key}_cam_method", horizontal=True,
                      format_func=METHOD_LABELS.get,
                      help="Grad-CAM weights the last convolutional feature maps by their mean gradient; "
                      "Grad-CAM++ weights positive gradients per location and often covers more of the beat.")
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key=f"{key}_cam_opacity")
    heat = state.heatmap(image, cls, method, features)
    st.image(overlay(image, heat, opacity, upscale=3), width=HEATMAP_PX,
             caption=f"{METHOD_LABELS[method]} for {CLASS_NAMES[CLASS_KEYS[cls]]}: where the model looked "
             f"({mass_near_trace(image, heat):.0%} of the heat lies on or near the trace).")
    st.image(colormap_legend(HEATMAP_PX, 10), width=HEATMAP_PX)
    st.caption("Colour scale: blue = little influence on this class's score, red = the most.")


VIEWS = {"trace": "Extracted trace", "explain": "Explanation along the trace"}
LAYOUT_WORDS = {"strip": "one strip", "stacked": "stacked strips", "twelve_lead": "a 12-lead page"}


def _beat_heat(result: PictureResult, method: str, key: str) -> np.ndarray:
    """Each beat's Grad-CAM for its predicted class along its window's time axis (cached in the session)."""
    store = st.session_state.setdefault("picture_heat", {})
    if (key, method) not in store:
        images = np.stack([result.image(i) for i in range(len(result.beats))])
        classes = [CLASS_KEYS.index(k) for k in result.beats["predicted"]]
        maps = state.current_gradcam().heatmaps(to_model_input(images), classes, method,
                                                features=result.features(np.arange(len(result.beats))))
        store.clear()  # one picture's maps at a time: bounded memory
        store[(key, method)] = np.stack([time_profile(im, m) for im, m in zip(images, maps)])
    return store[(key, method)]


@st.fragment  # a click on a beat, the view or the heatmap controls reruns this part of the page only
def picture_result(outcome: PictureOutcome, key: str) -> None:
    """One digitized picture: how it was read, the picture with trace, beats and explanation, the beat table
    and the selected beat's probabilities and Grad-CAM."""
    r = outcome.result
    d = r.digitized
    cal = d.calibration
    parts = [code_name(outcome.name)]
    if outcome.source:
        parts.append(outcome.source)
    if outcome.label:
        parts.append(f"reference beats: {outcome.label}")
    st.caption(" · ".join(parts))
    kind = "a single beat" if r.kind == "beat" else LAYOUT_WORDS.get(d.layout, d.layout)
    counts = r.beats["predicted"].value_counts()
    c1, c2, c3 = st.columns(3)
    c1.metric("Beats", len(r.beats), help="; ".join(f"{CLASS_NAMES[k]}: {int(counts[k])}" for k in CLASS_KEYS
                                                     if k in counts) or None)
    c2.metric("Read as", kind)
    c3.metric("Digitization quality", f"{d.quality:.0%}",
              help="Share of the trace followed without breaks or jumps, weighed by how sure the time scale is.")
    st.markdown(f"**Time scale:** {html.escape(cal.description)} (confidence {cal.confidence:.0%}).")
    for note in [*r.notes]:
        st.caption(note)
    if cal.method == "assumed":
        st.warning("No ECG grid was found and no span was stated, so the time scale is a guess: state the span "
                   "under **How to read the pictures** if it is wrong.", icon=":material/straighten:")
    n_unsure = int(r.beats["uncertain"].sum())
    if n_unsure:
        st.warning(f"{n_unsure} beat(s) are marked **?** (uncertain): the model's confidence is below its "
                   "threshold, their class changes within +-25 % of the time scale, or their window reaches "
                   "beyond the picture's edge (see the table's reason).",
                   icon=":material/help:")
    pick_key = f"{key}_beat"
    if st.session_state.get(pick_key, 0) >= len(r.beats):
        st.session_state[pick_key] = 0
    view = st.radio("Show on the picture", list(VIEWS), format_func=VIEWS.get, horizontal=True, key=f"{key}_view")
    method = "gradcam"
    heat = None
    if view == "explain":
        method = st.radio("Attribution", METHODS, format_func=METHOD_LABELS.get, horizontal=True,
                          key=f"{key}_method")
        heat = trace_heat(r, _beat_heat(r, method, key))
    selected = int(st.session_state.get(pick_key, 0))
    st.plotly_chart(picture_figure(outcome.display, r, selected, heat), key=f"{key}_fig",
                    config={"displayModeBar": True, "displaylogo": False})
    st.caption("Magenta line: the trace as digitized, drawn over your picture; check that it follows the ECG. Dots: "
               "detected beats in their predicted class colour, with confidence (? = uncertain)."
               + (" Colour along the trace: where the model looked for each beat's class (Grad-CAM mapped from the "
                  "model's time axis onto the picture)." if heat is not None else ""))
    table_key = f"{key}_table"

    def follow_table() -> None:
        rows = st.session_state[table_key].selection.rows
        if rows:
            st.session_state[pick_key] = int(rows[0])

    st.dataframe(beats_frame(r), key=table_key, on_select=follow_table, selection_mode="single-row",
                 hide_index=True, width="stretch", column_config={
                     "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0,
                                                                   max_value=1.0)})
    i = st.selectbox("Beat", range(len(r.beats)), key=pick_key,
                     format_func=lambda j: f"{j + 1} at {r.beats['time_s'].iloc[j]:.2f} s -> "
                     f"{CLASS_NAMES[r.beats['predicted'].iloc[j]]}")
    st.download_button("Download the report (HTML)", _picture_report_maker(outcome, i),
                       file_name=report.report_file_name(outcome.name), mime="text/html",
                       icon=":material/description:", key=f"{key}_report", on_click="ignore",
                       help="One self-contained page for reviewers: your picture, the extracted trace and labels, "
                       "every beat, this beat's probabilities and heatmap, the model and its numbers on patients "
                       "never seen. Built in memory when you click.")
    st.caption("The model's own picture of this beat (1 s before the R peak to 0.6 s after it, drawn over the "
               "patient's usual beat) with its 2-D heatmap, for reviewers:")
    prediction_panel(r.image(i), r.probabilities(i), f"{key}_b{i}", r.features(i))


def _picture_report_maker(outcome: PictureOutcome, i: int):
    """The Classify report's deferred data: built (with the beat's Grad-CAM) only when the button is clicked."""
    info = state.current_model_info()
    gradcam = state.current_gradcam()
    try:
        stored = state.stored_results().find(info.name, "recordwise")
    except Exception:  # noqa: BLE001 - stored results are optional in the report
        stored = None

    def make() -> bytes:
        r = outcome.result
        image = r.image(i)
        top = int(np.argmax(r.probabilities(i)))
        heat = gradcam.heatmaps(to_model_input(image), [top], "gradcam", features=r.features(i))[0]
        beat_png = encode_png(cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
        cam_png = encode_png(cv2.cvtColor(overlay(image, heat, 0.45, upscale=2), cv2.COLOR_RGB2BGR))
        return report.picture_report(r, info.card, input_png=input_png(outcome.display),
                                     annotated_png=annotated_png(outcome.display, r), selected=i, beat_png=beat_png,
                                     gradcam_png=cam_png, source=outcome.source, stored_result=stored)

    return make


def leads_caption(result: RecordResult) -> None:
    """One line under a classified recording: which leads were read (MLII, and V1 or another lead where the
    recording has it)."""
    icon = ":material/check_circle:" if result.v1_state == "read" else ":material/info:"
    st.caption(f"{icon} {leads_line(result)}.")


def open_uploader(label: str, types: list[str], **kw):
    """st.file_uploader that takes any file and leaves the checking to the page's own readers.

    Streamlit refuses a file whose extension is not in `type` while it restores widget state, before the page
    runs, and shows its generic error page instead of the app (a client that skips the browser's own filter can
    send one). Without `type` every file reaches the readers, which name what is wrong in one line (an SVG
    drawing, a PDF, a text file, an unknown format). `types` are named in the label and help instead, with the
    one refusal the app never sees: the web server answers HTTP 400 to a file name thousands of characters long.
    """
    kw["help"] = (kw.get("help", "") + f" Files read: {', '.join(t.upper() for t in types)}. A file name "
                  "thousands of characters long is refused by the web server itself (HTTP 400): rename such a file "
                  "first.").strip()
    return st.file_uploader(label, type=None, **kw)


def model_or_stop() -> ModelInfo:
    """The current model's card, or a clear error page and stop (pages that need a model call this)."""
    try:
        info = state.current_model_info()
        state.classifier_for(info)
    except ModelError as exc:
        model_error_page(str(exc))
        st.stop()
    return info
