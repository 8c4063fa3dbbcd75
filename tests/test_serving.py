"""Serving many sessions: Keras is not reset between reruns, the model's objects leave the collector's scans,
heavy work is taken in turn (and gives the same results as without turns)."""

from __future__ import annotations

import gc
import threading
import time

from streamlit.runtime.scriptrunner import script_runner

from ui import pictures, serving


def test_keras_state_survives_the_cleanup_streamlit_runs_after_every_rerun():
    from keras.src.backend.common import global_state

    installed = script_runner._clean_problem_modules  # Streamlit's, or ours when an app test ran before
    try:
        global_state.set_global_attribute("serving_probe", 1)
        serving.streamlit_cleanup()()  # Streamlit's own cleanup resets Keras: the probe is gone
        assert global_state.get_global_attribute("serving_probe") is None
        assert serving.keep_models_between_runs()
        global_state.set_global_attribute("serving_probe", 1)
        script_runner._clean_problem_modules()
        assert global_state.get_global_attribute("serving_probe") == 1
    finally:
        script_runner._clean_problem_modules = installed
        global_state.set_global_attribute("serving_probe", None)


def test_the_app_installs_the_hook(monkeypatch):
    """The entry point itself calls it (an AppTest run of the real app), so the server gets it too."""
    from app_support import new_app, run_ok

    monkeypatch.delenv("ECG_MODELS_DIR", raising=False)
    original = script_runner._clean_problem_modules
    try:
        run_ok(new_app())
        assert script_runner._clean_problem_modules is serving._clean_without_keras
    finally:
        script_runner._clean_problem_modules = original


def test_settle_heap_freezes_what_is_alive():
    before = gc.get_freeze_count()
    keep = [[i] for i in range(1000)]  # lists are tracked by the collector (plain objects are not)
    try:
        serving.settle_heap()
        assert gc.get_freeze_count() >= before + 1000
    finally:
        gc.unfreeze()
        del keep


def test_slots_take_callers_in_turn_and_say_how_many_wait():
    slots = serving.Slots(1)
    order: list[str] = []
    told: list[int] = []
    first_in = threading.Event()

    def first() -> None:
        with slots.hold():
            first_in.set()
            time.sleep(0.3)
            order.append("first")

    def second() -> None:
        first_in.wait(5)
        with slots.hold(told.append):
            order.append("second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == ["first", "second"] and told == [1] and slots.waiting == 0
    with slots.hold(told.append):  # free again: no wait reported
        pass
    assert told == [1]


def test_process_with_slots_reads_pictures_as_without():
    from app_support import PICTURES

    from ecg_core.model import predict

    clf = predict.load()
    files = [(p.name, p.read_bytes()) for p in (PICTURES / "normal_paper_red_strip.png",
                                                PICTURES / "rbbb_paper_green_beat.png")] + [("bad.png", b"text")]
    plain = pictures.process(files, clf, None, "auto")
    turned = pictures.process(files, clf, None, "auto", slots=serving.Slots(1))
    assert [o.error for o in plain] == [o.error for o in turned] and plain[2].error
    for a, b in zip(plain[:2], turned[:2]):
        assert a.display == b.display
        assert a.result.beats[["time_s", "predicted"]].equals(b.result.beats[["time_s", "predicted"]])


def test_malloc_settings_are_accepted_by_glibc():
    import sys

    if not sys.platform.startswith("linux"):
        assert serving.limit_malloc_arenas() is False
        return
    assert serving.limit_malloc_arenas() is True
    serving.release_free_memory()  # must not raise
