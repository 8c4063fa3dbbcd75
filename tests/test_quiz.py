"""The teachers' quiz: beats of test patients only, seeded rounds by difficulty, and a full round in the app."""

from __future__ import annotations

import numpy as np
import pytest
from app_support import MODELS, all_text, new_app, run_ok, switch

from ecg_core.classes import CLASS_KEYS
from ecg_core.data.dataset import DS2, VFDB_TEST
from ecg_core.pipeline import quiz


@pytest.fixture(scope="module")
def pool() -> quiz.QuizPool:
    from ecg_core.model import predict

    return quiz.pool_from_samples(predict.load(predict.default_model(MODELS)))


def test_pool_holds_test_patients_of_all_six_classes(pool):
    sources = {s.source.split(",")[0] for s in pool.sources.values()}
    for src in sources:
        db, _, record = src.split()
        assert record in (DS2 if db == "mitdb" else VFDB_TEST), src
    it = pool.items
    assert set(it["reference"]) == set(CLASS_KEYS)
    assert (it.groupby(["sample", "reference"]).size() <= quiz.PER_CLASS_CAP).all()
    np.testing.assert_allclose(it[list(CLASS_KEYS)].sum(axis=1), 1.0, atol=1e-4)
    assert (it["correct"] == (it["predicted"] == it["reference"])).all()


def test_pool_beats_are_the_models_own_pictures(pool):
    from ecg_core.model import predict

    clf = predict.load(predict.default_model(MODELS))
    rows = list(pool.items.index[::97])
    images = np.stack([pool.image(r) for r in rows])
    features = np.concatenate([pool.features(r) for r in rows]) if clf.reads_features else None
    np.testing.assert_allclose(clf.predict_proba(images, features), np.stack([pool.probabilities(r) for r in rows]),
                               atol=1e-4)


def test_difficulties_pick_what_they_promise(pool):
    it = pool.items
    easy, hard = quiz.eligible(pool, "easy"), quiz.eligible(pool, "hard")
    assert easy.any() and hard.any() and not (easy & hard).any()
    assert it.loc[easy, "correct"].all() and (it.loc[easy, "confidence"] >= quiz.EASY_CONFIDENCE).all()
    assert (~it.loc[hard, "correct"] | (it.loc[hard, "confidence"] < pool.threshold)).all()
    assert quiz.eligible(pool, "mixed").all()
    with pytest.raises(ValueError, match="difficulty must be one of"):
        quiz.eligible(pool, "impossible")


@pytest.mark.parametrize("difficulty", quiz.DIFFICULTIES)
def test_rounds_are_seeded_distinct_and_spread_over_classes(pool, difficulty):
    rows = quiz.draw_round(pool, difficulty, seed=3)
    assert rows == quiz.draw_round(pool, difficulty, seed=3)  # reproducible
    assert rows != quiz.draw_round(pool, difficulty, seed=4)
    assert len(rows) == len(set(rows)) == quiz.ROUND_SIZE
    assert quiz.eligible(pool, difficulty)[pool.items.index.get_indexer(rows)].all()
    classes = pool.items.loc[rows, "reference"]
    offered = quiz.classes_offered(pool, difficulty)
    assert set(classes) == set(offered[: quiz.ROUND_SIZE])
    # spread evenly, except that a class with fewer items of this difficulty gives all it has
    ok = quiz.eligible(pool, difficulty)
    counts = classes.value_counts()
    have = {k: int((ok & (pool.items["reference"] == k).to_numpy()).sum()) for k in counts.index}
    assert all(counts[k] >= counts.max() - 1 or counts[k] == have[k] for k in counts.index), (counts, have)


def test_score_and_table(pool):
    rows = quiz.draw_round(pool, "mixed", seed=1)
    ref = list(pool.items.loc[rows, "reference"])
    answers = ref[:4] + ["VF" if k != "VF" else "N" for k in ref[4:6]]
    s = quiz.score(pool, rows, answers)
    assert s == {"answered": 6, "of": 10, "student": 4,
                 "model": int((pool.items.loc[rows[:6], "predicted"] == pool.items.loc[rows[:6], "reference"]).sum())}
    table = quiz.round_table(pool, rows, answers)
    assert list(table["your answer"]) == answers + [""] * 4
    assert len(quiz.strip_figure(pool, rows[0]).data) == 2


def test_a_full_round_in_the_app(monkeypatch):
    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    at = switch(run_ok(new_app()), "quiz")
    assert "Quiz: name that beat" in all_text(at)
    at.radio(key="quiz_difficulty").set_value("hard")
    at.number_input(key="quiz_seed").set_value(7)
    at.button(key="quiz_start").click()
    run_ok(at)
    r = at.session_state["quiz_round"]
    assert (r["difficulty"], r["seed"]) == ("hard", 7)
    pool = at.session_state["quiz_pool_now"]
    assert r["rows"] == quiz.draw_round(pool, "hard", 7)
    wanted = []
    for pos, row in enumerate(r["rows"]):
        ref = pool.items.loc[row, "reference"]
        answer = ref if pos % 2 == 0 else next(k for k in CLASS_KEYS if k != ref)  # every other answer wrong
        wanted.append(answer)
        at.radio(key=f"quiz_choice_7_hard_{pos}").set_value(answer)
        run_ok(at)
        at.button(key="quiz_check").click()
        run_ok(at)
        if answer == ref:
            assert at.success and at.success[0].value.startswith("Right")
        else:
            assert at.error and at.error[0].value.startswith("Not quite")
        text = all_text(at)
        assert "What makes it" in text and "probability" in text  # the class guide's criteria, the model's panel
        at.button(key="quiz_next").click()
        run_ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Your score"] == "5 / 10"
    model = int((pool.items.loc[r["rows"], "predicted"] == pool.items.loc[r["rows"], "reference"]).sum())
    assert metrics["The model's score on the same beats"] == f"{model} / 10"
    assert at.session_state["quiz_round"]["answers"] == wanted
    assert "Round complete" in all_text(at)
