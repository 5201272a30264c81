"""The ``gpuplan`` command: a thin adapter over the library (parse, call, render).

Errors: invalid input is one line on stderr and exit 2; tracebacks only with GPUPLAN_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import typer

from solver.cli.catalogs import hardware_app, models_app
from solver.cli.common import warn_plugin_problems
from solver.cli.compare import compare
from solver.cli.evaluate import evaluate
from solver.cli.pareto import pareto
from solver.cli.plugins import plugins_app
from solver.cli.solve import solve
from solver.errors import PluginError, SpecError

app = typer.Typer(
    name="gpuplan",
    help="How many accelerators, laid out how, for how long, at what cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("evaluate")(evaluate)
app.command("solve")(solve)
app.command("pareto")(pareto)
app.command("compare")(compare)
app.add_typer(hardware_app, name="hardware")
app.add_typer(models_app, name="models")
app.add_typer(plugins_app, name="plugins")

EXIT_INVALID = 2


def _fail(message: str, code: int = EXIT_INVALID) -> int:
    sys.stderr.write(f"gpuplan: error: {message}\n")
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (no ``SystemExit``)."""
    command = typer.main.get_command(app)
    debug = os.environ.get("GPUPLAN_DEBUG", "") not in ("", "0")
    try:
        result = command.main(args=argv, prog_name="gpuplan", standalone_mode=False)
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.Abort:
        return _fail("aborted", 130)
    except typer.TyperException as err:
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
            return 0  # the help has been printed
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        return _fail(" ".join(message.split()))
    except (SpecError, PluginError) as err:
        if debug:
            raise
        return _fail(" ".join(str(err).split()))
    finally:
        warn_plugin_problems()
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
