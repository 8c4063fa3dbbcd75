"""About: data provenance and licences, how images are made, intended use and limits, how to retrain."""

from __future__ import annotations

import json

import streamlit as st

from ecg_core.classes import CLASS_BY_KEY, CLASSES
from ecg_core.figures import charts
from ecg_core.model.predict import ModelError
from ecg_core.settings import IMAGE_SIZE, PREPROCESSING_VERSION, TEMPLATE_SPAN_S, WINDOW_AFTER_S, WINDOW_BEFORE_S
from ui import components, state

EXAMPLE_RECORD = state.ROOT / "tests" / "data" / "mitdb" / "208"


@st.cache_data(show_spinner="Rendering an example beat...")
def example_beat(path: str) -> charts.PipelineExample:
    try:
        return charts.pipeline_example(path, "V")
    except ValueError:
        return charts.pipeline_example(path)


st.title("About this dashboard")
st.markdown(components.NOT_A_DEVICE)

st.header("Data and licences")
st.markdown("""
Every training and test beat comes from two public PhysioNet databases, used under the
**Open Data Commons Attribution License v1.0 (ODC-By 1.0)**:

- **MIT-BIH Arrhythmia Database** (mitdb 1.0.0): 48 half-hour two-lead ambulatory recordings, 360 Hz,
  with beat labels by two cardiologists. https://physionet.org/content/mitdb/1.0.0/ (DOI 10.13026/C2F305).
  *Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng in Med and Biol 20(3):45-50 (2001).*
- **MIT-BIH Malignant Ventricular Ectopy Database** (vfdb 1.0.0): 35-minute recordings at 250 Hz with rhythm
  annotations, the source of the ventricular flutter/fibrillation windows.
  https://physionet.org/content/vfdb/1.0.0/ . *Greenwald SD. The development and analysis of a ventricular
  fibrillation detector. M.S. thesis, MIT Dept. of Electrical Engineering and Computer Science, 1986.*
- Both via PhysioNet: *Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet: components of a new
  research resource for complex physiologic signals. Circulation 101(23):e215-e220 (2000).*

The paced records 102, 104, 107 and 217 are left out. The bundled sample images are real beats of test-split
patients; `sample_images/<representation>/manifest.csv` names the record and sample of each.
""")

st.header("How a beat becomes an image")
st.markdown(f"""
1. **Read** one lead (MLII where present) and, where the recording has it, V1 for the measurements of step 6
   (else another ECG lead, for its QRS width; a picture of a strip gives one lead); resample to 360 Hz.
2. **Filter**: zero-phase band-pass removes baseline wander and high-frequency noise.
3. **Window**: cut {WINDOW_BEFORE_S:g} s before the annotated R peak (shows the preceding beat: prematurity,
   P wave) to {WINDOW_AFTER_S:g} s after it (QRS, ST segment, T wave). VF/flutter episodes are cut every 0.5 s.
4. **Render** the window as an anti-aliased white trace on black, {IMAGE_SIZE} x {IMAGE_SIZE} pixels, then
   **normalise** it with the same function that prepares your uploads (polarity, grid removal, crop, resize).
   Preprocessing version: `{PREPROCESSING_VERSION}` (a model trained with another version is refused).
5. **Overlay** (the pictures of `overlay` models, the default among them): the beat is drawn over the
   patient's own usual beat, in grey: the sample-wise median of the windows at the R peaks detected within
   {TEMPLATE_SPAN_S:g} s on either side, on one amplitude scale. Where the white curve leaves the grey one the
   beat differs from the patient's rhythm: a wide early QRS (ventricular), an early beat (atrial). Over five
   training seeds each, it found ventricular beats and fibrillation in new patients better than the single
   trace (fewer normal beats called ventricular) but atrial beats worse; its macro F1 was a little higher on
   average, within the seed-to-seed spread (see Model comparison and the README).
6. **Measure** the beat on the signal: RR before and after and their ratios to the local and recording means,
   QRS width (onset and offset above each lead's noise floor), height, polarity and late QRS, the same in V1 where
   the recording has it (a second lead other than V1 gives its QRS width alone), and the neighbours' QRS width and
   shape. Each beat's panel shows them.
7. **Two readers** (the default, a blend): a small network reads the picture with the measurements, shallow
   gradient-boosted trees read the measurements alone; each is calibrated, and their probabilities are mixed with
   a share of the network chosen on validation patients for beats with V1, one-lead beats and lone beats. A
   beat whose mixed top probability falls below the threshold chosen on validation patients is marked uncertain.

A picture (a strip, stacked strips, a 12-lead page, a photo of paper) is first digitized into a signal: the grid
gives the time and voltage scale, the trace is followed column by column, and every beat found goes through the
steps above.
""")
if (EXAMPLE_RECORD.with_suffix(".dat")).exists():
    ex = example_beat(str(EXAMPLE_RECORD))
    st.plotly_chart(charts.pipeline_figure(ex), key="about_pipeline", config={"displayModeBar": False})
    st.caption(f"One real {CLASS_BY_KEY[ex.label].name.lower()} beat of MIT-BIH record {ex.record} at "
               f"{ex.r_peak_s:.2f} s (committed test excerpt): raw lead, filtered lead with the beat window shaded, "
               "the window around the R peak (dotted), and the image the model sees.")
else:
    st.caption("The test excerpt (tests/data/mitdb) is not present, so the example beat cannot be drawn.")

st.header("Intended use and limitations")
st.markdown(f"""
- **Teaching and research only.** It is not a medical device, has no regulatory clearance, and must not be
  used to diagnose, triage or treat anyone.
- **{len(CLASSES)} classes only:** {", ".join(f"{c.name} ({c.key})" for c in CLASSES)}. Anything else
  (paced beats, fusion or escape beats, atrial fibrillation, artefacts...) is forced into one of them.
- **One lead is read from pictures.** A 12-lead page is read through its lead II rhythm strip (or lead II),
  its V1 panel giving the one to three beats beside it their V1 measurements (standard 3 x 4 layout assumed);
  bundle-branch blocks, read in V1, are found less often from one lead. A picture without a grid needs its
  time span (stated or guessed), and a single beat lacks its neighbours, which costs accuracy.
- **Few patients for some classes.** The two databases hold four patients with left and six with right bundle
  branch block; in patient-wise cross-validation the default finds about two thirds of LBBB and a third of RBBB
  beats in patients it never saw. The Class guide shows the selected model's recall per class, and Model
  comparison shows it test patient by test patient.
- **Two databases from the 1970s-80s** (ambulatory Holter recordings); other devices and populations differ.
- Scores on the **beat-wise** split overstate real performance: the same patients are on both sides.
""")

st.header("Reproduce and retrain")
st.markdown("Everything the app shows can be regenerated from the command line (`python -m ecg_core --help`):")
st.code("""# 1. build the image dataset (reads the PhysioNet records)
python -m ecg_core build-dataset --mitdb ../shared/data/mitdb --vfdb ../shared/data/vfdb --out data/waveform
# 2. train one architecture on a split (writes models/<name>.keras + its model card <name>.json)
python -m ecg_core train --arch ecgnet --dataset data/waveform --split recordwise --out models
# 3. evaluate it on the held-out test patients (stored result the comparison page reads)
python -m ecg_core evaluate --model models/<name>.keras --dataset data/waveform --split recordwise \\
    --out models/results/<name>__recordwise.json
# 4. the default's recipe: patient-wise cross-validation, then the model trained on every patient
python -m ecg_core build-dataset --representation overlay --out data/overlay
python -m ecg_core crossval --recipe blend --dataset data/overlay
python -m ecg_core train-final --recipe blend --dataset data/overlay
# 5. classify pictures or folders (one CSV row per beat to stdout), and benchmark speed and memory
python -m ecg_core predict sample_images/waveform/V
python -m ecg_core bench""", language="bash")
st.markdown("A new model dropped into `models/` with its card appears in the sidebar without code changes; "
            "set `\"default\": true` in one card to preselect it.")

try:
    info = state.current_model_info()
except ModelError:
    info = None
if info is not None:
    with st.expander(f"Model card of `{info.name}`"):
        st.code(json.dumps({k: v for k, v in info.card.items() if k != "training"}, indent=2), language="json")
        st.caption("Training command: `" + str(info.card.get("training", {}).get("command", "?")) + "`")
