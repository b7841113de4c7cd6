"""The `edgekit` command line: thin Click shells over library functions.

Each command parses its options into a frozen config, calls one library function, and
lets `main` map `EdgekitError` subclasses to the documented exit codes. Heavy modules
are imported inside the commands, so ``edgekit --help`` stays fast and light.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click

from edgekit import __version__
from edgekit.errors import EdgekitError, ExitCode, GateError, IntegrityError


class _State:
    verbose = 0
    quiet = False


STATE = _State()

_EPILOG = (
    "Exit codes: 0 success, 1 error in input or environment, 2 usage, "
    "3 refused for integrity or safety, 4 a gate failed."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=_EPILOG)
@click.version_option(__version__, "--version", prog_name="edgekit")
@click.option("-v", "--verbose", count=True, help="More detail; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only results and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """edgekit: carry a deep-learning model from training to a small device, and prove it works there."""
    STATE.verbose = verbose
    STATE.quiet = quiet


def info(message: str) -> None:
    """Progress text on stderr, silenced by --quiet."""
    if not STATE.quiet:
        click.echo(message, err=True)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (documented in the README).")
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds a parser may run before it is killed.")
def inspect(path: Path, as_json: bool, timeout: float) -> None:
    """Describe a model file or bundle: tensors, operators, parameters, MACs.

    PATH is a .tflite, .onnx, .keras or .h5 file, a SavedModel directory, or a
    .edgekit bundle (verified before anything in it is parsed). Keras files are never
    executed: a model that carries code is described from its configuration.
    """
    from edgekit.inspection import InspectConfig, inspect_path, render_report

    report = inspect_path(InspectConfig(path=path, timeout_s=timeout))
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(render_report(report))


@cli.command()
@click.option("-o", "--output", "output_dir", type=click.Path(path_type=Path), default=Path("out/demo"),
              show_default=True, help="Directory for the demo's artifacts.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="Training epochs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for data and training.")
def demo(output_dir: Path, epochs: int, seed: int) -> None:
    """Run the pipeline end to end on built-in synthetic data (no download, no network).

    Generates a shapes image dataset, trains a small CNN, exports TFLite and ONNX,
    checks each against the Keras model on held-out images, packs a verified bundle
    and inspects it.
    """
    from edgekit.build.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(output_dir=output_dir, epochs=epochs, seed=seed), log=info)
    click.echo(result.summary())


def _print_error(exc: EdgekitError) -> None:
    label = {IntegrityError: "refused", GateError: "gate failed"}
    prefix = next((v for k, v in label.items() if isinstance(exc, k)), "error")
    click.echo(f"edgekit: {prefix}: {exc}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes. Returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="edgekit", standalone_mode=False)
        return ExitCode.OK
    except click.exceptions.Abort:
        click.echo("edgekit: interrupted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except EdgekitError as exc:
        if STATE.verbose:
            traceback.print_exc()
        _print_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("edgekit: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # a bug in edgekit: one line unless --verbose
        if STATE.verbose or "-v" in args or "--verbose" in args:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        click.echo(f"edgekit: internal error: {type(exc).__name__}: {first} "
                   "(this is a bug; rerun with --verbose and report the traceback)", err=True)
        return ExitCode.ERROR


def entry() -> None:
    sys.exit(main())
