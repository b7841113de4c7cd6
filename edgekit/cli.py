"""The `edgekit` command line: thin Click shells over library functions.

Each command parses its options into a frozen config, calls one library function, and
lets `main` map `EdgekitError` subclasses to the documented exit codes. Heavy modules
are imported inside the commands, so ``edgekit --help`` stays fast and light.
"""

from __future__ import annotations

import enum
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from edgekit import __version__
from edgekit.bench import meters
from edgekit.bench.harness import BenchMode
from edgekit.bench.report import ReportFormat
from edgekit.convert.options import (
    DEFAULT_FALLBACK_PRECISIONS,
    FallbackPrecision,
    Int8IO,
    OnnxInt8Mode,
)
from edgekit.errors import EdgekitError, ExitCode, GateError, InputError, IntegrityError
from edgekit.prune.options import Importance, Scope
from edgekit.train.config import Precision


def _choice(choices: Iterable[enum.Enum]) -> click.Choice:
    """A Click choice of an Enum's values (the registries and enums own the names, not the CLI)."""
    return click.Choice([str(member.value) for member in choices])


def _described(title: str, choices: Iterable[Any] | Mapping[str, str]) -> str:
    """``TITLE: name: help; name: help.`` from an Enum with ``.help`` or a name -> help mapping."""
    items = choices.items() if isinstance(choices, Mapping) else ((c.value, c.help) for c in choices)
    return f"{title}: " + "; ".join(f"{name}: {text}" for name, text in items) + "."


class _LazyChoice(click.Choice):
    """A choice whose names come from a registry when they are first needed (parsing a value,
    or --help), so that importing the command line does not import the runtime."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:  # noqa: D107
        self._names = names
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._choices is None:
            self._choices = tuple(self._names())
        return self._choices

    @choices.setter
    def choices(self, value: Iterable[str]) -> None:
        self._choices = tuple(value)


class _LazyHelpOption(click.Option):
    """An option whose help text is made from a registry when --help shows it."""

    def __init__(self, *args: Any, lazy_help: Callable[[], str], **kwargs: Any) -> None:  # noqa: D107
        super().__init__(*args, **kwargs)
        self._lazy_help = lazy_help

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self._lazy_help is not None:
            self.help, self._lazy_help = self._lazy_help(), None
        return super().get_help_record(ctx)


def _backend_names() -> list[str]:
    from edgekit.runtime.backends import BACKENDS

    return list(BACKENDS)


def _backend_help() -> str:
    from edgekit.runtime.backends import BACKENDS

    return _described("Force an interpreter", {name: plugin.help for name, plugin in BACKENDS.items()})


def _preprocess_help() -> str:
    from edgekit.presets import preset_help

    return ("Preprocessing spec YAML (docs/preprocess.md), or a preset name (default: MODEL's .preprocess.yaml "
            "sidecar from edgekit train, if any), or none for a model that takes ready tensors (without a front "
            f"end, convert warns). Presets: {preset_help()}.")


def _variants_help() -> str:
    from edgekit.convert.variants import DEFAULT_VARIANTS, VARIANTS

    return (f"Comma list of variants, or 'all'. Default: {','.join(DEFAULT_VARIANTS)}. "
            + _described("Variants", {name: kind.description for name, kind in VARIANTS.items()}))


def _source_help() -> str:
    from edgekit.runtime.sources import SOURCES

    plugins = list(dict.fromkeys(SOURCES.values()))  # https shares http's plugin
    return _described("Where inputs come from", {plugin.form: plugin.help for plugin in plugins})


def _sink_help() -> str:
    from edgekit.runtime.sinks import SINKS

    plugins = list(dict.fromkeys(SINKS.values()))
    return _described("Where results go", {plugin.form: plugin.help for plugin in plugins})


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
    if verbose:
        os.environ["EDGEKIT_VERBOSE"] = str(verbose)  # library code replays captured native logs


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


_HOP_HELP = ("Audio streams: run the model every MS milliseconds (default 250; above the model's window, the audio "
             "between windows goes unheard).")


def _bars() -> bool:
    """Whether progress bars are drawn: not with --quiet, and only on a terminal (elsewhere
    Click prints a bar's label alone on a line, into a log or a pipe)."""
    return not STATE.quiet and sys.stderr.isatty()


def progress(items, label, total):  # noqa: ANN001, ANN201 - the loaders' Progress protocol
    """A progress bar on stderr (`_bars`)."""
    if not _bars():
        yield from items
        return
    with click.progressbar(items, length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield from bar


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise InputError("--input-shape", expected="positive integers without the batch, e.g. 49,10,1",
                         found=repr(text))
    return dims


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The bundle to write (NAME.edgekit).")
@click.option("--variants", cls=_LazyHelpOption, lazy_help=_variants_help)
@click.option("--data", type=click.Path(path_type=Path), help="Calibration/validation data: image or WAV folders "
              "(one subfolder per class) or .npy/.npz (x, optional y).")
@click.option("--labels", type=click.Path(path_type=Path), help="Labels file, one per line, in output order.")
@click.option("--preprocess", type=click.Path(path_type=Path), metavar="SPEC.yaml|PRESET", cls=_LazyHelpOption,
              lazy_help=_preprocess_help)
@click.option("--max-accuracy-drop", type=float, metavar="PTS",
              help="Exit 4 when a quantized variant loses more than PTS points.")
@click.option("--auto-fallback", is_flag=True, help="Keep the layers of tflite-int8/onnx-int8 that cost the most "
              "at float or int16 (chosen by measured effect) until within PTS.")
@click.option("--fallback-precision", default=",".join(DEFAULT_FALLBACK_PRECISIONS), show_default=True,
              metavar="LIST", help=_described("What --auto-fallback keeps layers at, a comma list tried in order",
                                              FallbackPrecision))
@click.option("--allow-random-calibration", is_flag=True, help="Calibrate on random inputs when there is no --data.")
@click.option("--trust-model-code", is_flag=True, help="Allow models that carry code (Lambda layers).")
@click.option("--input-shape", help="Input shape without the batch (for models with undefined dimensions).")
@click.option("--int8-io", type=_choice(Int8IO), default=Int8IO.INT8.value, show_default=True,
              help=_described("Input/output type of tflite-int8", Int8IO))
@click.option("--opset", type=click.IntRange(9, 23), default=17, show_default=True, help="ONNX opset.")
@click.option("--onnx-int8", "onnx_int8", type=_choice(OnnxInt8Mode), default=OnnxInt8Mode.STATIC.value,
              show_default=True, help=_described("How onnx-int8 is quantized", OnnxInt8Mode))
@click.option("--per-channel/--per-tensor", default=True, show_default=True,
              help="Weight quantization of tflite-int8 and onnx-int8.")
@click.option("--calibration-samples", type=click.IntRange(1), default=200, show_default=True)
@click.option("--validation-samples", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (documented in the README).")
def convert(model: Path, output: Path, variants: str | None, data: Path | None, labels: Path | None,
            preprocess: Path | None, max_accuracy_drop: float | None, auto_fallback: bool, fallback_precision: str,
            allow_random_calibration: bool, trust_model_code: bool, input_shape: str | None, int8_io: str,
            opset: int, onnx_int8: str, per_channel: bool, calibration_samples: int, validation_samples: int,
            as_json: bool) -> None:
    """Convert a model into a verified bundle of TFLite and ONNX variants.

    MODEL is a trained .keras/.h5/SavedModel, or a .tflite/.onnx someone else exported:
    that one is verified, packed as it is with --preprocess (its front end), --labels
    and its postprocessing, and, with --data, quantized variants are derived from it
    (ai-edge-quantizer for .tflite, onnxruntime.quantization for .onnx). Every variant
    is measured against the reference model on the validation split of --data (top-1
    agreement, task metric, max/mean abs error, SNR) before the bundle is written
    atomically.
    """
    from edgekit.convert.run import ConvertConfig
    from edgekit.convert.run import convert as run_convert
    from edgekit.convert.variants import ConversionOptions, parse_variants

    config = ConvertConfig(
        model=model, output=output, variants=parse_variants(variants) if variants is not None else None, data=data,
        labels=labels,
        preprocess=preprocess, max_accuracy_drop=max_accuracy_drop, auto_fallback=auto_fallback,
        fallback_precisions=tuple(p.strip() for p in fallback_precision.split(",") if p.strip()),
        allow_random_calibration=allow_random_calibration, trust_model_code=trust_model_code,
        input_shape=_shape(input_shape),
        options=ConversionOptions(int8_io=int8_io, opset=opset, onnx_int8=onnx_int8, per_channel=per_channel),
        calibration_samples=calibration_samples, validation_samples=validation_samples,
        command=" ".join(["edgekit", *sys.argv[1:]]) if "convert" in sys.argv[1:] else None,  # flags too
    )
    report = run_convert(config, progress=progress, log=info)
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else report.render())
    if not report.gate_passed:
        from edgekit.convert.run import gate_error

        raise gate_error(report, "; bundle not written")  # its hint never suggests a flag that was given


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--source", required=True, cls=_LazyHelpOption, lazy_help=_source_help)
@click.option("--sink", default="stdout", show_default=True, cls=_LazyHelpOption, lazy_help=_sink_help)
@click.option("--variant", help="Force a variant (default: picked for this machine).")
@click.option("--backend", type=_LazyChoice(_backend_names), cls=_LazyHelpOption, lazy_help=_backend_help)
@click.option("--threads", type=click.IntRange(1),
              help="Interpreter threads; the front end's numpy/BLAS threads follow (1 when not given).")
@click.option("--limit", type=click.IntRange(1), help="Stop after N results.")
@click.option("--hop-ms", type=click.FloatRange(min=1), metavar="MS", help=_HOP_HELP)
@click.option("--public-key", type=click.Path(path_type=Path), metavar="KEY.pub",
              help="Refuse (exit 3) a bundle that is not signed by this key (see edgekit sign).")
def run(bundle: Path, source: str, sink: str, variant: str | None, backend: str | None, threads: int | None,
        limit: int | None, hop_ms: float | None, public_key: Path | None) -> None:
    """Run a bundle on a source: results to the sink, a summary on stderr at the end (or on Ctrl-C)."""
    from edgekit.runtime.process import own_process
    from edgekit.runtime.run import RunConfig
    from edgekit.runtime.run import run as run_stream

    own_process(threads)  # the process is the runtime's: its BLAS threads and its heap
    summary = run_stream(RunConfig(bundle=bundle, source=source, sink=sink, variant=variant, backend=backend,
                                   threads=threads, limit=limit, hop_ms=hop_ms, public_key=public_key))
    info(f"model: {summary.reason}" + (f"; signature by key {summary.signed_by} verified" if summary.signed_by else ""))
    info(summary.render())


@cli.command()
@click.argument("target", metavar="BUNDLE|APP_DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--source", required=True, cls=_LazyHelpOption, lazy_help=_source_help)
@click.option("--sink", default="stdout", show_default=True, cls=_LazyHelpOption, lazy_help=_sink_help)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of /healthz and /metrics.")
@click.option("--port", type=click.IntRange(0, 65535), default=8780, show_default=True,
              help="Port of /healthz and /metrics (0: any free port; serve.json says which).")
@click.option("--variant", help="Force a variant (default: picked for this machine).")
@click.option("--backend", type=_LazyChoice(_backend_names), cls=_LazyHelpOption, lazy_help=_backend_help)
@click.option("--threads", type=click.IntRange(1),
              help="Interpreter threads; the front end's numpy/BLAS threads follow (1 when not given).")
@click.option("--hop-ms", type=click.FloatRange(min=1), metavar="MS", help=_HOP_HELP)
@click.option("--public-key", type=click.Path(path_type=Path), metavar="KEY.pub",
              help="Refuse (exit 3 at start; not taken as an update) a bundle not signed by this key.")
@click.option("--skip-self-check", is_flag=True,
              help="Serve without running the bundle's self-check (bundles built before self-checks).")
@click.option("--state", "state_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the service's state here (default: APP_DIR/serve.json; none for a BUNDLE).")
def serve(target: Path, source: str, sink: str, host: str, port: int, variant: str | None, backend: str | None,
          threads: int | None, hop_ms: float | None, public_key: Path | None, skip_self_check: bool,
          state_file: Path | None) -> None:
    """Run a bundle as a service: systemd notify and watchdog, /healthz and /metrics, hot model updates.

    BUNDLE is served until SIGTERM (SIGHUP reloads it); APP_DIR (from edgekit deploy) serves
    APP_DIR/current/bundle.edgekit and takes a new release when the 'current' link changes.
    """
    from edgekit.runtime.process import own_process
    from edgekit.runtime.service import ServeConfig
    from edgekit.runtime.service import serve as run_service

    own_process(threads)  # the process is the runtime's: its BLAS threads and its heap
    summary = run_service(ServeConfig(target=target, source=source, sink=sink, host=host, port=port, variant=variant,
                                      backend=backend, threads=threads, hop_ms=hop_ms, public_key=public_key,
                                      skip_self_check=skip_self_check, state_file=state_file))
    if summary is not None:
        info(summary.render())


@cli.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, metavar="KEY",
              help="The private key to write; the public key goes to KEY.pub.")
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keygen(output: Path, force: bool) -> None:
    """Make an Ed25519 key pair for signing bundles.

    Writes the private key KEY (PEM, mode 0600; keep it on the signing machine) and the
    public key KEY.pub (PEM; copy it to the devices). Prints the key's fingerprint, the
    sha256 of its 32 raw public-key bytes.
    """
    from edgekit.bundle.signing import generate_keypair

    pair = generate_keypair(output, force=force)
    click.echo(f"wrote private key {pair.private} (mode 600, keep it secret) and public key {pair.public}; "
               f"fingerprint {pair.fingerprint}")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", type=click.Path(path_type=Path), required=True, metavar="KEY",
              help="The private key (from edgekit keygen -o KEY).")
def sign(bundle: Path, key: Path) -> None:
    """Sign a bundle in place with an Ed25519 private key.

    The bundle is verified first, then rewritten atomically with signature.json: an
    Ed25519 signature over the exact bytes of manifest.json, which holds the sha256 of
    every other file. Signing again replaces the signature; a failed sign leaves the
    bundle as it was.
    """
    from edgekit.bundle.signing import sign_bundle

    signed = sign_bundle(bundle, key)
    replaced = f" (replacing a signature by {signed.replaced})" if signed.replaced else ""
    click.echo(f"signed {signed.bundle} with key {signed.fingerprint}{replaced}")


@cli.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--public-key", type=click.Path(path_type=Path), metavar="KEY.pub",
              help="The public key the bundle must be signed by (without it the signature is not checked).")
@click.option("--run", "run_check", is_flag=True,
              help="Then run the bundle's self-check sample through each variant that runs here and compare with "
              "the outputs the workstation computed (exit 3 on a mismatch, 1 for a bundle without a sample).")
@click.option("--variant", help="With --run: check this variant only.")
@click.option("--backend", type=_LazyChoice(_backend_names), cls=_LazyHelpOption, lazy_help=_backend_help)
def verify(bundle: Path, public_key: Path | None, run_check: bool, variant: str | None, backend: str | None) -> None:
    """Check a bundle's schema, member list, sizes and hashes, and with --public-key its
    signature (exit 3 if any fails); with --run, its self-check on this machine."""
    from edgekit.bundle import open_bundle

    if (variant or backend) and not run_check:
        raise click.UsageError("--variant and --backend go with --run")
    verified = open_bundle(bundle, public_key=public_key)
    files = len(verified.manifest.files)
    if public_key is not None:
        click.echo(f"{verified.path}: good signature by key {verified.signed_by}; "
                   f"{files} file(s) match the signed manifest")
    else:
        signature = ("signed, signature not checked (pass --public-key KEY.pub to check it)"
                     if verified.signature_raw is not None else "unsigned")
        click.echo(f"{verified.path}: integrity verified, {files} file(s) match the manifest (sizes and sha256); "
                   f"{signature}")
    if run_check:
        from edgekit.runtime.selfcheck import check_bundle

        checked = check_bundle(verified, variant=variant, backend=backend)
        for line in checked.lines():
            click.echo(line)
        checked.raise_for_failure()


def _int_list(text: str | None, option: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise InputError(option, expected="positive integers separated by commas, e.g. 1,2,4", found=repr(text))
    return values


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--variants", help="Bundle variants to run, comma-separated (default: all that run here).")
@click.option("--threads", "threads_text", help="Thread counts to sweep, e.g. 1,2,4 (default: the device "
              "profile's recommendation, else 1).")
@click.option("--warmup", "warmup_runs", type=click.IntRange(0), default=10, show_default=True,
              help="Warm-up runs (at least), per variant and mode.")
@click.option("--warmup-seconds", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Warm-up seconds (at least), per variant and mode.")
@click.option("--runs", type=click.IntRange(1), help="Measured runs per variant and mode (instead of --duration).")
@click.option("--duration", type=click.FloatRange(min=0.001), help="Measured seconds per variant and mode "
              "[default: 2].")
@click.option("--windows", type=click.IntRange(1), default=5, show_default=True,
              help="Measurement windows, interleaved across variants.")
@click.option("--mode", type=_choice(BenchMode), default=BenchMode.BOTH.value, show_default=True,
              help=_described("What the windows time", BenchMode))
@click.option("--baseline", help="Variant the ratios refer to (default: the fp32 variant).")
@click.option("--format", "fmt", type=_choice(ReportFormat), default=ReportFormat.TABLE.value, show_default=True,
              help=_described("Report format", ReportFormat))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report here (written atomically).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Latency plot (PNG; needs the plot extra).")
@click.option("--meter", default=meters.AUTO, show_default=True, type=click.Choice(meters.METER_NAMES),
              help=_described("Energy meter", {name: meters.meter_help(name) for name in meters.METER_NAMES}))
@click.option("--device", help="Device profile, by name, alias (see edgekit devices list) or .yaml path: its threads "
              "(capped at this host's cores), power figures, budgets. A run on another host says so in its first "
              "line; the device's budgets and energy are then not measured.")
@click.option("--budget", "budget_text", help="Limits, e.g. latency_ms=20,size_kb=300,memory_mb=80,energy_mj=5; "
              "exit code 4 when a variant is over.")
@click.option("--idle-seconds", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Idle-power measurement before the windows (measured meters only).")
@click.option("--backend", type=_LazyChoice(_backend_names), cls=_LazyHelpOption, lazy_help=_backend_help)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the inputs and the window order.")
@click.option("--remote", "remotes", multiple=True, metavar="USER@HOST",
              help="Run on this host over SSH (repeatable; hosts run concurrently).")
@click.option("--remote-python", default="edgekit", show_default=True,
              help="The edgekit command on the remote hosts (e.g. ~/venv/bin/edgekit).")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPT",
              help="Passed to ssh and scp as -o OPT for --remote (repeatable), e.g. Port=2222.")
@click.option("--ssh-config", type=click.Path(dir_okay=False), metavar="FILE",
              help="ssh configuration file for --remote, used instead of ~/.ssh/config (ssh -F FILE).")
def bench(targets: tuple[str, ...], variants: str | None, threads_text: str | None, warmup_runs: int,
          warmup_seconds: float, runs: int | None, duration: float | None, windows: int, mode: str,
          baseline: str | None, fmt: str, output: Path | None, plot_path: Path | None, meter: str,
          device: str | None, budget_text: str | None, idle_seconds: float, backend: str | None, seed: int,
          remotes: tuple[str, ...], remote_python: str, ssh_options: tuple[str, ...],
          ssh_config: str | None) -> None:
    """Benchmark latency, memory and energy of bundles, .tflite or .onnx files.

    Every variant runs in its own worker process; variants are measured in interleaved
    windows in shuffled order on identical inputs. Exit code 4 when a variant is over
    budget (naming it); 1 when a variant failed (the report keeps what was measured and
    says it is partial).
    """
    from edgekit.bench.harness import BenchConfig
    from edgekit.bench.run import bench_main
    from edgekit.devices import Budgets

    config = BenchConfig(
        targets=targets, variants=tuple(v.strip() for v in (variants or "").split(",") if v.strip()),
        threads=_int_list(threads_text, "--threads"), warmup_runs=warmup_runs, warmup_seconds=warmup_seconds,
        windows=windows, runs=runs, duration=duration, modes=BenchMode(mode).modes,
        baseline=baseline, meter=meter, device=device,
        budgets=Budgets.parse(budget_text) if budget_text else None, seed=seed, idle_seconds=idle_seconds,
        backend=backend)
    try:
        text, table = bench_main(config, fmt=fmt, output=output, plot_path=plot_path, remotes=remotes,
                                 remote_command=remote_python, progress=_bench_progress() if _bars() else None,
                                 log=info, ssh_options=ssh_options, ssh_config=ssh_config)
    except EdgekitError as exc:
        if hasattr(exc, "report"):  # partial or over budget: the report first, then the error line
            _show_bench(*exc.report, output, fmt)
        raise
    _show_bench(text, table, output, fmt)


def _show_bench(text: str, table: str, output: Path | None, fmt: str) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    if not STATE.quiet:
        click.echo(table, nl=False)
    info(f"report: {output}")


def _bench_progress():  # noqa: ANN202 - a closure over one progress bar
    state: dict = {}

    def update(step: int, total: int, label: str) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = click.progressbar(length=total, label="bench", file=sys.stderr, show_pos=True,
                                    item_show_func=lambda item: item)
            bar.__enter__()
            state["bar"] = bar
        bar.update(step - bar.pos, label)
        if step >= total:
            bar.__exit__(None, None, None)
            state.pop("bar")

    return update


@cli.group()
def devices() -> None:
    """Device profiles: CPU, cores, recommended threads and variants, power figures, budgets."""


@devices.command("list")
def devices_list() -> None:
    """List the device profiles."""
    from edgekit.devices import list_profiles

    for profile in list_profiles():
        click.echo(profile.summary())


@devices.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The profile as JSON.")
def devices_show(name: str, as_json: bool) -> None:
    """Show one device profile (NAME or an alias), with the sources of its power figures."""
    from edgekit.devices import load_profile

    profile = load_profile(name)
    click.echo(json.dumps(profile.to_dict(), indent=2, sort_keys=True) if as_json else profile.describe())


@cli.group()
def datasets() -> None:
    """Offline synthetic datasets for the recipes (no download, no network)."""


@datasets.command("synth")
@click.argument("task")
@click.option("-o", "--output", "output_dir", type=click.Path(path_type=Path), required=True,
              help="Dataset folder: new or empty; a complete one with the same options is reused.")
@click.option("--samples", type=click.IntRange(min=1), help="Samples per class (see below; default: the task's).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed: the same options and seed give the same files.")
@click.option("--force", is_flag=True, help="Rebuild a dataset edgekit made earlier in that folder.")
@click.option("--json", "as_json", is_flag=True, help="Print dataset.json instead of the summary.")
def datasets_synth(task: str, output_dir: Path, samples: int | None, seed: int, force: bool, as_json: bool) -> None:
    """Make the synthetic dataset TASK in the formats the loaders read.

    \b
    kws      spoken keywords (espeak-ng, or its library from espeakng-loader; else tones), WAV folders
    shapes   images of shapes, PNG folders
    har      IMU windows (idle/walk/run/stairs), windows.npz + stream.csv
    anomaly  machine-vibration features: train.npz (normal), test.npz (with faults)
    tabular  per-window IMU features (44 columns), features.npz
    demand   hourly demand forecasting (regression), windows.npz + series.csv
    defects  textured parts with surface defects, PNG folders normal/ anomaly/

    --samples is per class, except: demand (at most this many windows per site) and
    defects (normal images; anomalies are added in proportion). Every dataset has
    dataset.json (task, seed, classes, counts, generator); the classified ones labels.txt.
    """
    from edgekit.datasets.synth import make_config, synthesize

    result = synthesize(task, output_dir, make_config(task, samples=samples, seed=seed), force=force,
                        log=info, progress=progress)
    click.echo(json.dumps(result.manifest, indent=2) if as_json else result.summary())


@cli.command("train")
@click.argument("recipe", required=False)
@click.option("--data", type=click.Path(path_type=Path),
              help="Data: class folders (WAV, images), .npz (x, y), CSV sensor recordings with a label column. "
              "Default: the recipe's synthetic dataset, made in OUT/data.")
@click.option("--test-data", type=click.Path(path_type=Path),
              help="Your own test set (the --data layout): the held-out figures, heldout.npz and the --export "
              "check use it, and --data is split only into training and validation (early stopping).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output folder (default: out/train/RECIPE).")
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override train.batch_size (per replica).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="Override train.learning_rate.")
@click.option("--seed", type=click.IntRange(min=0), help="Override train.seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any recipe key, e.g. --set architecture.filters=32 (repeatable).")
@click.option("--export", type=click.Path(path_type=Path), metavar="OUT.edgekit",
              help="Also convert to a bundle with the recipe's variants and accuracy gate.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option("--samples", type=click.IntRange(min=1), help="Samples per class when synthesizing the data.")
@click.option("--precision", type=_choice(Precision), default=Precision.AUTO.value, show_default=True,
              help="auto: mixed float16 on GPUs, float32 on CPUs. The saved model is float32 either way.")
@click.option("--qat", is_flag=True, help="Then fine-tune with quantization-aware training (the recipe's qat "
              "section, as edgekit qat): OUT/RECIPE-qat; --export bundles its int8 variants, or post-training int8 "
              "where QAT does no better on the validation split.")
@click.option("--list", "list_only", is_flag=True, help="List the recipes and exit.")
@click.option("--show", is_flag=True, help="Print the recipe (overrides applied) as YAML and exit.")
def train_command(recipe: str | None, data: Path | None, test_data: Path | None, output: Path | None,
                  epochs: int | None, batch_size: int | None, learning_rate: float | None, seed: int | None,
                  overrides: tuple[str, ...],
                  export: Path | None, resume: bool, samples: int | None, precision: str, qat: bool, list_only: bool,
                  show: bool) -> None:
    """Train RECIPE (a name from --list, or a recipe .yaml file) in TensorFlow/Keras.

    Uses every visible GPU (MirroredStrategy, mixed precision), several machines when
    TF_CONFIG is set (MultiWorkerMirroredStrategy), else the CPU. Writes OUT/RECIPE.keras,
    its contract (RECIPE.preprocess.yaml: preprocess, labels, postprocess), heldout.npz,
    report.json, report.md and plots; --export goes on through `edgekit convert`.
    """
    from edgekit.train.recipes import list_recipes, load_recipe

    if list_only:
        for item in list_recipes():
            click.echo(f"{item.name:16} {item.task:14} {item.data_kind:7} {item.architecture['name']:18} {item.title}")
        return
    if recipe is None:
        raise click.UsageError("missing RECIPE (see --list)")
    if show:
        import yaml

        click.echo(yaml.safe_dump(load_recipe(recipe, overrides).to_dict(), sort_keys=False).rstrip())
        return
    load_recipe(recipe, overrides)  # a mistyped name or key fails before TensorFlow loads
    from edgekit.train.run import TrainConfig, train

    result = train(TrainConfig(recipe=recipe, output=output, data=data, test_data=test_data, epochs=epochs,
                               batch_size=batch_size, learning_rate=learning_rate, seed=seed, overrides=overrides,
                               export=export,
                               resume=resume, synth_samples=samples, precision=precision, qat=qat,
                               progress_bar=not STATE.quiet,
                               command="edgekit " + " ".join(sys.argv[1:])),
                   log=info, progress=progress)
    click.echo(result.summary())


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The pruned model (OUT.keras).")
@click.option("--data", type=click.Path(path_type=Path),
              help="The training data, as for edgekit train --data (default: the data the training report names).")
@click.option("--sparsity", type=float, metavar="S", help="Magnitude pruning: fraction of weights set to zero, in [0, 1).")
@click.option("--channels", type=float, metavar="F",
              help="Structured pruning: fraction of every prunable layer's channels removed, in (0, 1).")
@click.option("--epochs", type=click.IntRange(min=0), help="Fine-tuning epochs; 0 prunes once (default: the recipe's "
              "prune.epochs, 20).")
@click.option("--recipe", help="The recipe the model was trained with (default: the training report next to MODEL).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Fine-tuning learning rate (default: a quarter of the recipe's).")
@click.option("--scope", type=_choice(Scope), help="Magnitude: one target per layer, or one "
              "threshold over all pruned layers (default: layer).")
@click.option("--importance", type=_choice(Importance),
              help="Channels: rank filters by L1 or L2 norm, or by BatchNorm gamma (default: l1).")
@click.option("--skip", multiple=True, metavar="LAYER", help="A layer never pruned (repeatable).")
@click.option("--prune-first", is_flag=True, default=None, help="Magnitude: prune the first layer too.")
@click.option("--prune-last", is_flag=True, default=None, help="Magnitude: prune the last layer too.")
@click.option("--prune-depthwise", is_flag=True, default=None,
              help="Magnitude: prune depthwise kernels too (a few taps per channel; kept dense by default).")
@click.option("--round-to", type=click.IntRange(min=1), help="Channels: keep channel counts a multiple of this.")
@click.option("--block", type=click.IntRange(min=1), help="Magnitude: prune runs of N consecutive input channels "
              "together (contiguous zeros in the TFLite file; default 1, element-wise).")
@click.option("--distill", type=click.FloatRange(0, 1), metavar="W", help="Classifiers: fine-tune towards "
              "(1 - W) x labels + W x the unpruned model's probabilities (default: the recipe's, 0).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the fine-tuning (default: the recipe's).")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Convert both models to TFLite fp32 and int8: sizes, gzip sizes, int8 accuracy.")
@click.option("--bench/--no-bench", default=None,
              help="Measure both models' TFLite latency with edgekit bench (default: with --channels).")
@click.option("--bench-seconds", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Measured seconds per model and variant in the bench run.")
@click.option("--trust-model-code", is_flag=True, help="Allow models that carry code (Lambda layers).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (documented in the README).")
def prune(model: Path, output: Path, data: Path | None, sparsity: float | None, channels: float | None,
          epochs: int | None, recipe: str | None, learning_rate: float | None, scope: str | None,
          importance: str | None, skip: tuple[str, ...], prune_first: bool | None, prune_last: bool | None,
          prune_depthwise: bool | None,
          round_to: int | None, block: int | None, distill: float | None, seed: int | None, measure: bool, bench: bool | None, bench_seconds: float,
          trust_model_code: bool, as_json: bool) -> None:
    """Prune a trained Keras model and fine-tune it: weights (--sparsity) or channels (--channels).

    --sparsity zeroes the smallest weights on a polynomial-decay schedule during
    fine-tuning (first and last layers stay dense unless asked): the TFLite files keep
    their size but gzip far smaller. --channels removes whole filters and units and
    rebuilds a thinner model (fewer parameters and MACs, faster everywhere). The data is
    split as in training, so the held-out figures are on unseen samples. Writes OUT.keras,
    its contract OUT.preprocess.yaml (the bundle's provenance records the pruning) and
    OUT.prune.json; nothing when a step fails.
    """
    if sparsity is not None and channels is not None:
        raise click.UsageError("--sparsity and --channels are exclusive: prune one way per run")
    if sparsity is None and channels is None:
        raise click.UsageError("one of --sparsity S (weights) or --channels F (filters) is required")
    from edgekit.prune.run import ONEDNN, PruneConfig, prune_options

    for key, value in ONEDNN.items():  # before TensorFlow loads (see ONEDNN)
        os.environ.setdefault(key, value)

    config = PruneConfig(model=model, output=output, data=data, sparsity=sparsity, channels=channels, epochs=epochs,
                         recipe=recipe, learning_rate=learning_rate, scope=scope, importance=importance,
                         skip=tuple(skip), prune_first=prune_first, prune_last=prune_last,
                         prune_depthwise=prune_depthwise, round_to=round_to,
                         block=block, distill=distill, seed=seed, measure=measure, bench=bench, bench_seconds=bench_seconds,
                         trust_model_code=trust_model_code, progress_bar=not STATE.quiet,
                         command="edgekit " + " ".join(sys.argv[1:]))
    prune_options(config, None)  # an out-of-range value fails before TensorFlow loads
    from edgekit.prune.run import prune as run_prune

    result = run_prune(config, log=info, progress=progress)
    if as_json:
        click.echo(json.dumps(result.report, indent=2, sort_keys=True, default=str))
    else:
        click.echo(result.summary())


@cli.command("qat")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path),
              help="The training data, as for edgekit train --data (default: the data the training report names).")
@click.option("--epochs", type=click.IntRange(min=1), help="Fine-tuning epochs (default: the recipe's qat.epochs, 3).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="The QAT model, a SavedModel folder (default: MODEL-qat next to MODEL).")
@click.option("--recipe", help="The recipe the model was trained with (default: the training report next to MODEL).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Fine-tuning learning rate (default: a tenth of the recipe's).")
@click.option("--export", type=click.Path(path_type=Path), metavar="OUT.edgekit",
              help="Also make the int8 bundle, behind the fidelity gate: of the QAT model, or post-training int8 of "
              "MODEL where QAT does no better on the validation split.")
@click.option("--variants", default="tflite-int8,onnx-int8", show_default=True, help="The bundle's int8 variants.")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0), default=1.0, show_default=True, metavar="PTS",
              help="The bundle's gate, against the kept model's own outputs.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the fine-tuning (default: the recipe's).")
@click.option("--trust-model-code", is_flag=True, help="Allow models that carry code (Lambda layers).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def qat_command(model: Path, data: Path | None, epochs: int | None, output: Path | None, recipe: str | None,
                learning_rate: float | None, export: Path | None, variants: str, max_accuracy_drop: float,
                seed: int | None, trust_model_code: bool, as_json: bool) -> None:
    """Quantization-aware training: fine-tune a trained Keras model with fake int8 quantization.

    BatchNorm is folded into the convolutions, weights are fake-quantized per channel
    (symmetric int8), activations per tensor with moving-average ranges; the result is a
    SavedModel whose FakeQuant ops give the converters the learnt ranges (full-int8 TFLite,
    QDQ ONNX). The data is split as in training. Writes OUT (SavedModel), its contract
    OUT.preprocess.yaml (the bundle's provenance records the QAT step) and OUT.qat.json.
    """
    from edgekit.train.config import QatConfig

    config = QatConfig(model=model, data=data, output=output, epochs=epochs, learning_rate=learning_rate,
                       recipe=recipe, export=export, variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
                       max_accuracy_drop=max_accuracy_drop, seed=seed, trust_model_code=trust_model_code,
                       progress_bar=not STATE.quiet, command="edgekit " + " ".join(sys.argv[1:]))
    from edgekit.train.qat_run import qat as run_qat

    result = run_qat(config, log=info, progress=progress)
    if as_json:
        click.echo(json.dumps(result.report, indent=2, sort_keys=True, default=str))
    else:
        click.echo(result.summary())


@cli.command()
@click.option("-o", "--output", "output_dir", type=click.Path(path_type=Path), default=Path("edgekit-demo"),
              show_default=True, help="Directory for the demo's artifacts.")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (default: the kws-dscnn recipe's).")
@click.option("--samples", type=click.IntRange(min=1), help="Synthetic clips per class (default: the recipe's).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the data, the training and the stream.")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0), metavar="PTS",
              help="Fidelity gate for the quantized variants (default: the recipe's).")
@click.option("--bench-seconds", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Measured seconds per variant and mode in the benchmark.")
@click.option("--prune-channels", type=click.FloatRange(0, 1, max_open=True), default=0.5, show_default=True,
              metavar="F", help="Fraction of the channels edgekit prune removes before conversion (0: no pruning).")
def demo(output_dir: Path, epochs: int | None, samples: int | None, seed: int, max_accuracy_drop: float | None,
         bench_seconds: float, prune_channels: float) -> None:
    """Keyword spotting end to end on synthetic speech (no data, no network).

    Synthesizes spoken keywords with espeak-ng, trains the kws-dscnn recipe, prunes half
    its channels (a thinner, faster model, fine-tuned), converts it to int8 TFLite and
    ONNX behind the fidelity gate, benchmarks the variants side by
    side, runs the runtime on a WAV stream of held-out keywords and scores its detections,
    then prints a summary table and writes OUTPUT/report.md. A re-run reuses every stage
    whose inputs are unchanged.
    """
    from edgekit.demo.run import DemoConfig, run_demo

    config = DemoConfig(output_dir=output_dir, epochs=epochs, samples=samples, seed=seed,
                        max_accuracy_drop=max_accuracy_drop, bench_seconds=bench_seconds,
                        prune_channels=prune_channels or None,
                        quiet=STATE.quiet, command="edgekit " + " ".join(sys.argv[1:]))
    result = run_demo(config, log=info, progress=progress)
    click.echo(result.summary())


@cli.command("eval")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="Labelled data, as train --data takes it: class folders of images or WAVs, an .npz (raw x and "
                   "y), or CSV recordings with the bundle's channel columns and a label (or target) column.")
@click.option("--variants", help="Comma list of the bundle's variants to measure (default: all of them).")
@click.option("--backend", type=_LazyChoice(_backend_names), cls=_LazyHelpOption, lazy_help=_backend_help)
@click.option("--threads", type=click.IntRange(1), help="Interpreter threads.")
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Write DIR/eval.json and a confusion-matrix PNG per variant (the PNGs need the plot extra).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (documented in docs/eval.md).")
def eval_command(bundle: Path, data: Path, variants: str | None, backend: str | None, threads: int | None,
                 output_dir: Path | None, as_json: bool) -> None:
    """Measure every variant of a bundle on labelled data, through the runtime.

    Each raw sample goes through the bundle's own front end, interpreter and
    postprocessing, as on the device. Classification: accuracy, per-class
    precision/recall/F1 and a confusion matrix; anomaly: ROC-AUC and the precision/recall
    of the bundle's threshold; regression: RMSE and MAE; each with a 95% confidence
    interval.
    """
    from edgekit.eval import EvalConfig, evaluate

    names = tuple(n.strip() for n in (variants or "").split(",") if n.strip())
    config = EvalConfig(bundle=bundle, data=data, variants=None if names in ((), ("all",)) else names,
                        output_dir=output_dir, backend=backend, threads=threads)
    report = evaluate(config, progress=progress)
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else report.render(), nl=as_json)


def _ssh_options(func):  # noqa: ANN001, ANN202 - a decorator of click commands
    """The options deploy and status share for reaching hosts."""
    for option in reversed([
        click.option("--inventory", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Ansible inventory (INI or YAML): its hosts, with ansible_host/ansible_port/ansible_user."),
        click.option("--limit", "limit_group", metavar="GROUP", help="Only this inventory group's hosts."),
        click.option("--app", help="App name on the device (default: the bundle manifest's name)."),
        click.option("--remote-python", default="edgekit", show_default=True,
                     help="The edgekit command on the hosts (e.g. ~/venv/bin/edgekit)."),
        click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPT",
                     help="Passed to ssh and scp as -o OPT (repeatable), e.g. Port=2222."),
        click.option("--ssh-config", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                     help="ssh configuration file, used instead of ~/.ssh/config (ssh -F FILE)."),
    ]):
        func = option(func)
    return func


def _targets(hosts: tuple[str, ...], inventory: Path | None, limit_group: str | None):  # noqa: ANN202
    from edgekit.deploy import Target, read_inventory

    if limit_group and inventory is None:
        raise click.UsageError("--limit needs --inventory")
    targets = [Target(h) for h in hosts]
    if inventory is not None:
        targets += read_inventory(inventory, limit_group)
    return targets


@cli.command()
@click.argument("bundle", required=False)
@click.argument("hosts", nargs=-1)
@_ssh_options
@click.option("--rollback", is_flag=True, help="Switch current back to the previous release (no BUNDLE).")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Require a good signature by this key, here and on the device (and in the service).")
@click.option("--source", help="Install the systemd unit running edgekit serve with this source, and start it.")
@click.option("--sink", help="The unit's --sink (with --source).")
@click.option("--system", is_flag=True, help="A system unit (/etc/systemd/system; root on the host) instead of a "
              "user unit (~/.config/systemd/user).")
@click.option("--port", type=click.IntRange(1, 65535), default=8780, show_default=True,
              help="The service's health/metrics port (with --source).")
@click.option("--keep", type=click.IntRange(min=1), default=3, show_default=True,
              help="Releases kept on the device (current and previous always are).")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds to wait for the service to serve the new release before rolling back.")
@click.option("--settle", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds the new release must keep serving (healthy, not stalled) before it counts; a failure "
              "within them rolls back.")
@click.option("--skip-self-check", is_flag=True, help="Do not run the bundle's self-check on the device.")
@click.option("--install", "install_wheel", type=click.Path(path_type=Path), metavar="WHEEL[EXTRAS]",
              help="Where edgekit is missing or too old on a host, copy this edgekit-ml wheel there and install it "
              "with its extras (default [litert]) into ~/.local/share/edgekit/venv (make wheel builds one).")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="Hosts deployed at once.")
@click.option("--canary", type=click.IntRange(min=0), default=0, show_default=True,
              help="Deploy to the first N hosts first; the rest only if they all succeed.")
@click.option("--max-failures", type=click.IntRange(min=0), help="Stop starting hosts once more than N failed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (a row per host) on stdout.")
def deploy(bundle: str | None, hosts: tuple[str, ...], inventory: Path | None, limit_group: str | None,
           app: str | None, remote_python: str, ssh_options: tuple[str, ...], ssh_config: Path | None,
           rollback: bool, public_key: Path | None, source: str | None, sink: str | None, system: bool, port: int,
           keep: int, timeout: float, settle: float, skip_self_check: bool, install_wheel: Path | None, concurrency: int, canary: int,
           max_failures: int | None, as_json: bool) -> None:
    """Put BUNDLE on HOSTs over ssh, switch to it atomically, wait for the service to serve
    it (rolled back by itself when it does not); exit 4 when any host failed."""
    import json as json_module

    from edgekit.deploy import DeployConfig, check, deploy_host, prepare, rollout, summary

    if rollback and bundle is not None:
        hosts = (str(bundle), *hosts)  # --rollback takes no bundle: the first argument is a host
        bundle = None
    elif bundle is None and not rollback:
        raise click.UsageError("missing BUNDLE (or --rollback)")
    elif bundle is not None and not Path(bundle).is_file():
        raise click.BadParameter(f"no such file: {bundle}", param_hint="BUNDLE")
    if (sink or system) and not source:
        raise click.UsageError("--sink and --system go with --source (the systemd unit)")
    targets = _targets(hosts, inventory, limit_group)
    if not targets:
        raise click.UsageError("no hosts: give HOST... or --inventory FILE")
    config = prepare(DeployConfig(bundle=Path(bundle) if bundle else None, app=app, public_key=public_key, port=port, keep=keep,
                                  timeout=timeout, settle=settle, skip_self_check=skip_self_check, source=source, sink=sink,
                                  system=system, rollback=rollback, remote_command=remote_python,
                                  ssh_options=ssh_options, ssh_config=ssh_config, install=install_wheel))
    results = rollout(targets, config, deploy_host, info, concurrency=concurrency, canary=canary,
                      max_failures=max_failures)
    if as_json:
        click.echo(json_module.dumps({"release": config.release, "app": config.app,
                                      "hosts": [r.to_dict() for r in results]}, indent=2))
    else:
        click.echo(summary(results))
    check(results, "deploy --rollback" if rollback else "deploy")


@cli.command()
@click.argument("hosts", nargs=-1)
@_ssh_options
@click.option("--json", "as_json", is_flag=True, help="The status document(s) as JSON.")
def status(hosts: tuple[str, ...], inventory: Path | None, limit_group: str | None, app: str | None,
           remote_python: str, ssh_options: tuple[str, ...], ssh_config: Path | None, as_json: bool) -> None:
    """The apps deployed on this device (or on HOSTs over ssh): current and previous release,
    the service's state and health; exit 1 when a host could not be read."""
    import concurrent.futures
    import json as json_module

    from edgekit.deploy import DeployConfig, host_status, local_status
    from edgekit.deploy.status import rows, table

    targets = _targets(hosts, inventory, limit_group)
    if not targets:
        doc = local_status(app)
        click.echo(json_module.dumps(doc, indent=2) if as_json else table(rows(doc["host"], doc)))
        return
    config = DeployConfig(app=app, remote_command=remote_python, ssh_options=ssh_options, ssh_config=ssh_config)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        found = list(pool.map(lambda t: host_status(t, config), targets))
    if as_json:
        click.echo(json_module.dumps({"hosts": [{"host": t.label, "status": d, "error": e}
                                                for t, (d, e) in zip(targets, found, strict=True)]}, indent=2))
    else:
        click.echo(table([row for t, (d, e) in zip(targets, found, strict=True) for row in rows(t.label, d, e)]))
    failed = [t.label for t, (_d, e) in zip(targets, found, strict=True) if e]
    if failed:
        raise InputError("status", expected="every host's status", found=f"no status from {', '.join(failed)}")


def _print_error(exc: EdgekitError) -> None:
    label = {IntegrityError: "refused", GateError: "gate failed"}
    prefix = next((v for k, v in label.items() if isinstance(exc, k)), "error")
    click.echo(f"edgekit: {prefix}: {exc}", err=True)


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # Click >= 8.2


def _print_usage_error(exc: click.UsageError) -> None:
    """Click's usage error in one line, as every failure: the message, the command's usage
    and where its help is (Click itself prints three lines and a blank one)."""
    text = " ".join(exc.format_message().split()).rstrip(".")
    if exc.ctx is not None:
        usage = " ".join(exc.ctx.get_usage().split()).removeprefix("Usage: ")
        text += f"; usage: {usage} (see {exc.ctx.command_path} --help)"
    else:
        text += "; see edgekit --help"
    click.echo(f"edgekit: usage error: {text}", err=True)


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
    except click.UsageError as exc:
        if isinstance(exc, _NO_ARGS_IS_HELP):  # `edgekit devices` alone: the help, as Click shows it
            exc.show()
        else:
            _print_usage_error(exc)
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
