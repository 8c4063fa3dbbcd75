"""ECG arrhythmia dashboard: page frame, navigation and the shared sidebar (model picker).

Run with `streamlit run streamlit_app.py` (or `make run`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecg_core.model.predict import ModelError
from ui import components, serving, state

ROOT = Path(__file__).resolve().parent
PAGES = ROOT / "pages"

serving.keep_models_between_runs()  # models are built once per process; Streamlit's Keras reset would undo that
serving.limit_malloc_arenas()  # sessions' threads share two malloc arenas instead of keeping one each
st.set_page_config(page_title="ECG arrhythmia dashboard", page_icon=":material/monitor_heart:", layout="wide")

st.sidebar.markdown("### :material/monitor_heart: ECG beat classifier")
model_problem = None
if components.model_picker() is None:
    model_problem = (f"No usable model in `{state.models_dir()}`: every model needs a `.keras` file and a "
                     "`.json` model card whose classes and preprocessing version match this code.")
else:
    try:
        state.current_classifier()  # load once per process now, so that no page meets a broken model
    except ModelError as exc:
        model_problem = str(exc)
st.sidebar.caption(components.NOT_A_DEVICE)

if model_problem is None:
    model_pages = [st.Page(PAGES / "classify.py", title="Classify", icon=":material/image_search:", default=True)]
    if (PAGES / "signal.py").exists():
        model_pages.append(st.Page(PAGES / "signal.py", title="Signal", icon=":material/ecg:"))
    model_pages.append(st.Page(PAGES / "quiz.py", title="Quiz", icon=":material/school:"))
else:
    model_pages = [st.Page(lambda: components.model_error_page(model_problem), title="Model unavailable",
                           icon=":material/error:", url_path="model-unavailable", default=True)]
pages = [
    *model_pages,
    st.Page(PAGES / "class_guide.py", title="Class guide", icon=":material/menu_book:"),
    st.Page(PAGES / "comparison.py", title="Model comparison", icon=":material/leaderboard:"),
    st.Page(PAGES / "about.py", title="About", icon=":material/info:"),
]
st.navigation(pages).run()
