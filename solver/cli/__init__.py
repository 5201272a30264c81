"""The ``gpuplan`` command: a thin adapter over the library (parse, call, render).

Errors: invalid input is one line on stderr and exit 2; tracebacks only with GPUPLAN_DEBUG=1.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated

import typer

from solver.cli.catalogs import hardware_app, models_app
from solver.cli.common import warn_plugin_problems
from solver.cli.compare import compare
from solver.cli.design import design
from solver.cli.evaluate import evaluate
from solver.cli.fleet import fleet
from solver.cli.pareto import pareto
from solver.cli.plugins import plugins_app
from solver.cli.solve import solve
from solver.cli.sweep import sweep
from solver.errors import PluginError, SpecError

app = typer.Typer(
    name="gpuplan",
    help="How many accelerators, laid out how, for how long, at what cost.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("gpuplan")
        except PackageNotFoundError:  # run from a source tree that is not installed
            text = "unknown"
        sys.stdout.write(f"gpuplan {text}\n")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_version,
        is_eager=True)] = False) -> None:
    """How many accelerators, laid out how, for how long, at what cost."""


app.command("evaluate")(evaluate)
app.command("solve")(solve)
app.command("pareto")(pareto)
app.command("compare")(compare)
app.command("fleet")(fleet)
app.command("sweep")(sweep)
app.command("design")(design)
app.add_typer(hardware_app, name="hardware")
app.add_typer(models_app, name="models")
app.add_typer(plugins_app, name="plugins")

EXIT_INVALID = 2
#: A bug in gpuplan or a plugin (sysexits.h EX_SOFTWARE): never 1, which means "infeasible".
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_INVALID) -> int:
    sys.stderr.write(f"gpuplan: error: {message}\n")
    return code


def _bad_parameter(err: Exception, argv: list[str]) -> str | None:
    """``--tp: expected an integer, got 'abc'`` for an option whose text did not parse."""
    param = getattr(err, "param", None)
    opts = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
    message = str(getattr(err, "message", "") or "")
    if not opts or not message:
        return None
    expected = ("an integer" if "integer" in message else "a number" if "number" in message
                else None)
    if expected is None:
        return None
    given = None
    for i, arg in enumerate(argv):  # the last occurrence wins, as for the parser
        if arg in opts and i + 1 < len(argv):
            given = argv[i + 1]
        elif arg.startswith(tuple(f"{o}=" for o in opts)):
            given = arg.partition("=")[2]
    shown = f", got {given[:60]!r}" if given is not None else ""
    return f"{opts[0]}: expected {expected}{shown}"


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (no ``SystemExit``).

    Exit codes: 0 a result, 1 proven infeasible, 2 invalid input (one line on stderr), 3 no plan
    within the time limit, 70 a bug (one line; ``GPUPLAN_DEBUG=1`` shows the traceback), 130
    interrupted.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    debug = os.environ.get("GPUPLAN_DEBUG", "") not in ("", "0")
    try:
        result = command.main(args=args, prog_name="gpuplan", standalone_mode=False)
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.Abort:
        return _fail("aborted", EXIT_INTERRUPTED)
    except typer.TyperException as err:
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
            return 0  # the help has been printed
        message = _bad_parameter(err, args) or (
            err.format_message() if hasattr(err, "format_message") else str(err))
        return _fail(" ".join(message.split()))
    except (SpecError, PluginError) as err:
        if debug:
            raise
        return _fail(" ".join(str(err).split()))
    except KeyboardInterrupt:
        if debug:
            raise
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader went away (gpuplan ... | head): nothing to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL if debug else 0
    except Exception as err:
        if debug:
            raise
        what = "out of memory" if isinstance(err, MemoryError) else \
            f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        return _fail(f"internal error ({what}); this is a bug, please report it with the "
                     "command line (GPUPLAN_DEBUG=1 shows the traceback)", EXIT_INTERNAL)
    finally:
        warn_plugin_problems()
    if result == EXIT_INTERRUPTED:  # click >= 8.2 returns Ctrl-C's code instead of raising
        return _fail("interrupted", EXIT_INTERRUPTED)
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
