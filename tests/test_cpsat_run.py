"""Ctrl-C around CP-SAT searches (``solver/cpsat_run.py``), in child processes: CP-SAT's own
SIGINT handling must neither swallow an interrupt nor leave the next Ctrl-C to kill Python."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HARD_MODEL = """
from ortools.sat.python import cp_model
m = cp_model.CpModel()
xs = [m.new_int_var(0, 100, f"x{i}") for i in range(60)]
for i in range(59):
    m.add(xs[i] != xs[i + 1])
m.add_all_different(xs[:50])
m.maximize(sum((i % 7) * x for i, x in enumerate(xs)))
s = cp_model.CpSolver()
s.parameters.num_workers = 1
"""


def child(body: str) -> str:
    code = textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    return done.stdout.strip()


def test_ctrl_c_after_a_search_is_a_keyboard_interrupt() -> None:
    # Without putting Python's handler back, the SIGINT kills the child silently (no output).
    out = child("""
        import os, signal, time
        from ortools.sat.python import cp_model
        from solver import cpsat_run
        m = cp_model.CpModel()
        x = m.new_int_var(0, 10, "x")
        m.maximize(x)
        assert cpsat_run.solve(cp_model.CpSolver(), m) == cp_model.OPTIMAL
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("no interrupt")
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        """)
    assert out == "KeyboardInterrupt"


def test_ctrl_c_during_a_search_is_a_keyboard_interrupt() -> None:
    # CP-SAT stops at the signal with a feasible solution; that is an interrupt, not an answer.
    out = child(HARD_MODEL + textwrap.dedent("""
        import os, signal, threading
        from solver import cpsat_run
        s.parameters.max_time_in_seconds = 60
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            print("status", cpsat_run.solve(s, m))
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        """))
    assert out == "KeyboardInterrupt"


def test_a_search_that_reaches_its_time_limit_is_an_answer() -> None:
    out = child(HARD_MODEL + textwrap.dedent("""
        from solver import cpsat_run
        s.parameters.max_time_in_seconds = 0.5
        print(s.status_name(cpsat_run.solve(s, m)))
        """))
    assert out == "FEASIBLE"
