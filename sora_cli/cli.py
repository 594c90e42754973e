"""The `sora` command line: parses arguments, calls library functions, prints results.

Nothing heavy is imported at module level (torch and open_clip load inside the commands that
need them), so `sora --help` stays instant. Errors are one `error: ...` line on stderr with
exit code 1 (2 for usage errors); `--debug` or SORA_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from sora_cli import __version__
from sora_cli import console
from sora_cli.errors import SoraError, SoraUsageError

app = typer.Typer(
    name="sora",
    help="Make videos from text or images on your own machine, extend and stitch them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options shared by every command.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or logs on stderr.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", "-y",
                                            help="Replace the output file if it exists.")]


def _version(value: bool) -> None:
    if value:
        console.result(f"sora-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show full tracebacks on errors (or set SORA_DEBUG=1).")] = False,
) -> None:
    if debug:
        os.environ["SORA_DEBUG"] = "1"


def _setup(quiet: bool = False, json_out: bool = False) -> None:
    # --json keeps stdout clean for scripts; progress still goes to stderr unless --quiet.
    console.set_quiet(quiet)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the `sora` script: maps every failure to one line and an exit code."""
    try:  # Typer >= 0.20 carries its own copy of click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older Typer on plain click
        from click import exceptions as cx
    import click

    args = sys.argv[1:] if argv is None else argv
    try:
        rv = app(args=args, prog_name="sora", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except cx.NoArgsIsHelpError as exc:
        # `sora` or `sora world` alone: show that level's help, as a person expects.
        if exc.ctx is not None:
            print(exc.ctx.get_help())
        code = 0
    except (cx.UsageError, click.exceptions.UsageError) as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        console.err.print(f"error: {exc.format_message()}{hint}", markup=False)
        code = 2
    except (typer.Abort, click.exceptions.Abort):
        console.err.print("error: interrupted", markup=False)
        code = 130
    except (typer.Exit, click.exceptions.Exit) as exc:
        code = exc.exit_code
    except SoraError as exc:
        if console.debug_enabled():
            console.err.print_exception()
        console.err.print(f"error: {exc}", markup=False)
        code = exc.exit_code
    except KeyboardInterrupt:
        console.err.print("error: interrupted", markup=False)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug or an environment problem: still one line by default
        if console.debug_enabled():
            console.err.print_exception()
        console.err.print(f"error: {type(exc).__name__}: {exc} "
                          "(run with --debug for the traceback)", markup=False)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
