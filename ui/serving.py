"""Serving many sessions from one process: what the server does between reruns, and how many pipelines run at once.

Streamlit runs every session's script in a thread of one process, so whatever one rerun holds the GIL for, every
other session waits for. Two of Streamlit's defaults cost more than this app's own work once TensorFlow is loaded
(400,000 Python objects):

- after *every* rerun of every session it calls `keras.backend.clear_session()` (meant for scripts that build
  models on each run): a full garbage collection (~0.2 s) and TensorFlow's kernel cache thrown away, so the next
  model call of any session is ~6x slower. This app builds its models once per process (`st.cache_resource`), so
  that reset is skipped (`keep_models_between_runs`);
- the full garbage collection after each rerun (`runner.postScriptGC`) scans the model's objects too: they are
  moved out of the collector's sight once loaded (`gc.freeze`, in `settle_heap`), so it only scans what sessions
  made.

Every thread that allocates gets its own glibc malloc arena by default (up to 8 per core), and each arena keeps
what its thread freed: 50 sessions' threads held ~40 % more memory than they used. The process limits itself to
MALLOC_ARENAS arenas (`limit_malloc_arenas`, as if started with MALLOC_ARENA_MAX=2) and hands freed pages back
after each turn of heavy work (`release_free_memory`).

Heavy work (digitizing and classifying a picture or a recording) runs at most PIPELINE_SLOTS at a time: 50
sessions doing it all at once in 50 threads finish *together*, late; taken in turn, the first users get their
result early and the last no later.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator

import streamlit as st

PIPELINE_SLOTS = max(1, min(4, os.cpu_count() or 1))
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(n: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads that allocate from now on; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, int(n)))
    except (OSError, AttributeError):
        return False


def release_free_memory() -> None:
    """Hand the pages malloc holds free back to the system (glibc's malloc_trim; a few ms)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _clean_without_keras() -> None:
    """Streamlit's post-run cleanup minus the Keras reset (pyplot figures are still closed)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        with contextlib.suppress(Exception):
            plt.close("all")


def keep_models_between_runs() -> bool:
    """Stop Streamlit from resetting Keras after every rerun; True when its cleanup hook was found and replaced."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False
    if current is not _clean_without_keras:
        _replaced.append(current)
    script_runner._clean_problem_modules = _clean_without_keras
    return True


def streamlit_cleanup() -> Callable[[], None]:
    """Streamlit's own post-run cleanup (as it was before `keep_models_between_runs`)."""
    from streamlit.runtime.scriptrunner import script_runner

    return _replaced[0] if _replaced else script_runner._clean_problem_modules


_replaced: list[Callable[[], None]] = []  # Streamlit's function, kept for tests and for putting it back


def settle_heap() -> None:
    """Collect once, then exempt every object alive now (a loaded model's) from later collections."""
    gc.collect()
    gc.freeze()


class Slots:
    """A counting semaphore that also says how many callers wait, for the page's progress text."""

    def __init__(self, n: int):
        self._sem = threading.BoundedSemaphore(n)
        self._lock = threading.Lock()
        self.waiting = 0

    @contextlib.contextmanager
    def hold(self, on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
        if not self._sem.acquire(blocking=False):
            with self._lock:
                self.waiting += 1
                ahead = self.waiting
            if on_wait:
                on_wait(ahead)
            try:
                self._sem.acquire()
            finally:
                with self._lock:
                    self.waiting -= 1
        try:
            yield
        finally:
            release_free_memory()  # a digitized photo's working copies are freed: give their pages back
            self._sem.release()


@st.cache_resource(show_spinner=False)
def pipeline_slots() -> Slots:
    """The process's one set of slots for heavy work (shared by every session)."""
    return Slots(PIPELINE_SLOTS)
