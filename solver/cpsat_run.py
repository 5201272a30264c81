"""Running a CP-SAT search with Ctrl-C behaving as everywhere else in gpuplan.

CP-SAT catches SIGINT during its search (its ``catch_sigint_signal`` parameter, on by
default): the search stops and returns the best solution so far, and the process's C-level
SIGINT handler is left at the default, under which the next Ctrl-C kills Python without a word
(no ``KeyboardInterrupt``, no exit code 130, a half-finished sweep or Pareto sweep gone
silently). Turning the parameter off is no cure: the signal then waits for the search's time
limit. So the search keeps catching it, and afterwards ``solve`` puts Python's own handler back
and turns a search that stopped early without proving anything into ``KeyboardInterrupt``:
CP-SAT ends before its time limit only with a proof (optimal, infeasible) or when interrupted.
"""

from __future__ import annotations

import signal
import threading

from ortools.sat.python import cp_model

#: A search that used less than this share of its time limit without a proof was interrupted.
EARLY = 0.95


def solve(s: cp_model.CpSolver, model: cp_model.CpModel) -> cp_model.CpSolverStatus:
    """``s.solve(model)``'s status code; ``KeyboardInterrupt`` if Ctrl-C stopped it."""
    code = s.solve(model)
    if threading.current_thread() is threading.main_thread():
        handler = signal.getsignal(signal.SIGINT)
        if handler is not None:
            signal.signal(signal.SIGINT, handler)  # re-installs Python's C-level handler
    limit_s = s.parameters.max_time_in_seconds
    if code in (cp_model.FEASIBLE, cp_model.UNKNOWN) and s.wall_time < EARLY * limit_s:
        raise KeyboardInterrupt
    return code


__all__ = ["solve"]
