"""Quiz page: a student names ten real beats of unseen patients, then sees the reference, the model's answer
with its Grad-CAM, and the class guide's criteria. Nothing is kept beyond the session."""

from __future__ import annotations

import html

import streamlit as st

from ecg_core.classes import CLASS_BY_KEY, CLASS_KEYS, CLASS_NAMES
from ecg_core.io.samples import SampleError
from ecg_core.io.signal_io import SignalInputError
from ecg_core.pipeline import quiz
from ecg_core.pipeline.record_mode import reads_one_lead
from ui import components, state

ROUND_KEY = "quiz_round"  # {model, difficulty, seed, rows, answers, pos}
DIFFICULTY_KEY = "quiz_difficulty"
SEED_KEY = "quiz_seed"


@st.cache_resource(show_spinner="Preparing the quiz beats (once per model)...", max_entries=4)
def quiz_pool(model_path: str, _clf) -> quiz.QuizPool:
    return quiz.pool_from_samples(_clf)


def start_round() -> None:
    pool = st.session_state["quiz_pool_now"]
    difficulty = st.session_state.get(DIFFICULTY_KEY, "mixed")
    seed = int(st.session_state.get(SEED_KEY, 1))
    st.session_state[ROUND_KEY] = {"model": pool.model, "difficulty": difficulty, "seed": seed,
                                   "rows": quiz.draw_round(pool, difficulty, seed), "answers": [], "pos": 0}


def next_quiz() -> None:
    st.session_state[SEED_KEY] = int(st.session_state.get(SEED_KEY, 1)) + 1
    start_round()


def check_answer() -> None:
    r = st.session_state[ROUND_KEY]
    choice = st.session_state.get(f"quiz_choice_{r['seed']}_{r['difficulty']}_{r['pos']}")
    if choice is not None and len(r["answers"]) == r["pos"]:
        r["answers"].append(choice)


def next_beat() -> None:
    st.session_state[ROUND_KEY]["pos"] += 1


def chip(key: str) -> str:
    c = CLASS_BY_KEY[key]
    return (f"<span style='background:{c.colour};color:white;border-radius:0.4rem;padding:0.05rem 0.4rem;"
            f"font-weight:600'>{html.escape(c.key)}</span> {html.escape(c.name)}")


def criteria(key: str, heading: str) -> None:
    c = CLASS_BY_KEY[key]
    st.markdown(f"**{heading}** {chip(key)}", unsafe_allow_html=True)
    st.markdown("\n".join(f"- {line}" for line in c.criteria))
    st.caption(c.description)


info = components.model_or_stop()
st.title("Quiz: name that beat")
if not reads_one_lead(info.representation):
    st.warning(f"**{info.name}** reads pictures made from two leads; the quiz shows one lead. Choose a "
               "single-lead model in the sidebar.", icon=":material/info:")
    st.stop()
st.markdown(
    "Ten real beats of patients no model here was trained on (the bundled sample recordings, MIT-BIH "
    "databases). Name each one, then compare with the cardiologists' reference annotation, the model's "
    "answer and where it looked. Nothing is stored: a round lives in this browser tab only.")

clf = state.classifier_for(info)
try:
    pool = quiz_pool(str(info.path), clf)
except (SampleError, SignalInputError, ValueError) as exc:
    st.error(f"The quiz cannot be prepared: {exc}", icon=":material/error:")
    st.stop()
if pool.items.empty:
    st.error("No sample recording with reference annotations was found in `sample_records/`.",
             icon=":material/error:")
    st.stop()
st.session_state["quiz_pool_now"] = pool

c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
c1.radio("Difficulty", quiz.DIFFICULTIES, index=1, key=DIFFICULTY_KEY, horizontal=True,
         format_func=str.capitalize, help="; ".join(f"{d}: {h}" for d, h in quiz.DIFFICULTY_HELP.items()))
st.session_state.setdefault(SEED_KEY, 1)
c2.number_input("Quiz number", min_value=1, max_value=9999, step=1, key=SEED_KEY,
                help="The same number gives the same ten beats (same model): hand one number to the whole class.")
c3.button("Start this quiz", key="quiz_start", on_click=start_round, icon=":material/restart_alt:")

r = st.session_state.get(ROUND_KEY)
if r is None or r["model"] != pool.model or any(row not in pool.items.index for row in r["rows"]):
    start_round()
    r = st.session_state[ROUND_KEY]
offered = quiz.classes_offered(pool, r["difficulty"])
st.caption(f"Quiz {r['seed']}, {r['difficulty']}: {quiz.DIFFICULTY_HELP[r['difficulty']]}. Beats of the classes "
           + ", ".join(CLASS_NAMES[k] for k in offered) + f" · model `{pool.model}`."
           + ("" if r["difficulty"] != "easy" or set(offered) == set(CLASS_KEYS) else
              " The model gets no beat of the missing classes right with confidence here; try Hard for them."))

rows, answers, pos = r["rows"], r["answers"], r["pos"]
n = len(rows)
s = quiz.score(pool, rows, answers)
st.progress(min(pos, n) / n, text=f"Beat {min(pos + 1, n)} of {n} · your score so far {s['student']} / "
            f"{s['answered']}")

if pos < n:
    row = rows[pos]
    item = pool.items.loc[row]
    answered = len(answers) > pos
    what = "window" if quiz.is_vf_window(pool, row) else "beat"
    st.subheader(f"Beat {pos + 1}: what is the marked {what}?")
    st.plotly_chart(quiz.strip_figure(pool, row, reveal=answered), key=f"quiz_strip_{r['seed']}_{pos}",
                    config={"displayModeBar": False})
    st.caption("Lead MLII (vfdb: the first lead), filtered as for the model, on a 0.2 s / 0.5 mV grid. The shaded "
               "band is the 1.6 s the model sees (1.0 s before the R peak, 0.6 s after); the triangle marks the beat.")
    if not answered:
        choice = st.radio("Your answer", list(CLASS_KEYS), index=None, horizontal=True,
                          key=f"quiz_choice_{r['seed']}_{r['difficulty']}_{pos}",
                          format_func=lambda k: f"{CLASS_NAMES[k]} ({k})")
        st.button("Check my answer", key="quiz_check", on_click=check_answer, type="primary",
                  disabled=choice is None, icon=":material/check:")
    else:
        mine, ref, model = answers[pos], item["reference"], item["predicted"]
        if mine == ref:
            st.success(f"Right: the reference annotation says **{CLASS_NAMES[ref]}** ({ref}).",
                       icon=":material/check_circle:")
        else:
            st.error(f"Not quite: you said {CLASS_NAMES[mine]} ({mine}); the reference annotation says "
                     f"**{CLASS_NAMES[ref]}** ({ref}).", icon=":material/cancel:")
        st.caption(f"From {pool.where(row)}. The model said {CLASS_NAMES[model]} ({model}), "
                   f"{'right' if model == ref else 'wrong'}, with probability {item['confidence']:.0%}.")
        left, right = st.columns(2, gap="large")
        with left:
            criteria(ref, "What makes it")
        if mine != ref:
            with right:
                criteria(mine, "What you would have seen for")
        st.markdown("**The model's answer and where it looked**")
        components.prediction_panel(pool.image(row), pool.probabilities(row), key=f"quiz_{r['seed']}_{pos}",
                                    features=pool.features(row))
        last = pos + 1 == n
        st.button("See my score" if last else "Next beat", key="quiz_next", on_click=next_beat, type="primary",
                  icon=":material/flag:" if last else ":material/arrow_forward:")
else:
    st.subheader("Round complete")
    m1, m2 = st.columns(2)
    m1.metric("Your score", f"{s['student']} / {n}")
    m2.metric("The model's score on the same beats", f"{s['model']} / {n}")
    st.dataframe(quiz.round_table(pool, rows, answers), hide_index=True, width="stretch")
    st.caption("Times are in the source record (the MIT-BIH file), so a teacher can look each beat up.")
    st.button("Next quiz", key="quiz_again", on_click=next_quiz, type="primary", icon=":material/replay:")
