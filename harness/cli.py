"""The ``k8s-ai-bench`` command line.

Exit codes: 0 success, 1 a check failed, 2 usage or configuration error (one line naming the file or option, no
traceback), 3 the target was unreachable or lost, 4 a file could not be written for lack of space, 5 no test ran,
130 interrupted (``run`` documents them in :mod:`harness.suite_run`).

Each leaf command's parser carries its handler (:func:`_command`; :mod:`harness.images.cli` sets ``handler``
likewise), so a command and what runs it are declared together and :func:`main` only maps exceptions to exit codes.
Handlers import their work lazily: ``k8s-ai-bench --help`` does not load the embedded target or the reporting stack.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from harness import __version__
from harness.errors import ConfigError, HarnessError, RecordWriteError

#: What runs a leaf command: its parsed arguments in, the exit code out.
Handler = Callable[[argparse.Namespace], int]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_WRITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _add_harness_options(parser: argparse.ArgumentParser) -> None:
    """Every harness option (:data:`harness.config.OPTIONS`), so ``run`` and ``doctor`` accept what pytest does."""
    from harness.config import OPTIONS

    for option in OPTIONS:
        if option.is_flag:
            parser.add_argument(option.flag, dest=f"opt_{option.name}", action="store_true", help=option.help)
        else:
            metavar = option.name.upper()
            parser.add_argument(option.flag, dest=f"opt_{option.name}", default=None, metavar=metavar, help=option.help)


def _command(commands: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """A leaf command's parser, carrying the handler :func:`main` calls for it."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help)
    parser.set_defaults(handler=handler)
    return parser


def _group(commands: Any, name: str, help: str) -> Any:
    """A command of sub-commands (``report render``, ...): one of them must be given (``<name>_command``)."""
    group = commands.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)


def _harness_values(args: argparse.Namespace) -> dict[str, Any]:
    return {key[4:]: value for key, value in vars(args).items() if key.startswith("opt_")}


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="k8s-ai-bench", description="Benchmark and conformance suite for Kubernetes AI platforms.")
    parser.add_argument("--version", action="version", version=f"k8s-ai-bench {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="library log level (default WARNING)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cluster_commands = _group(
        commands, "cluster", help="a one-machine target: the embedded one or a real control plane"
    )
    up = _command(cluster_commands, "up", _cluster_up, help="run a one-machine target in the foreground until Ctrl-C")
    up.add_argument(
        "--control-plane",
        choices=["embedded", "real"],
        default="embedded",
        help="embedded (built in) or real: etcd, kube-apiserver, controller-manager, scheduler, kwok nodes and the "
        "real operators, built by `bash deploy/local-kube/build.sh`",
    )
    up.add_argument(
        "--kubeconfig", type=Path, default=None, help="where to write the kubeconfig (default: <state dir>/kubeconfig)"
    )
    up.add_argument("--spec", type=Path, default=None, help="cluster spec YAML adding emulated nodes")
    up.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="directory for pod logs and volumes (default: a private temporary directory)",
    )
    up.add_argument("--no-host-node", action="store_true", help="do not mirror this machine as a node")
    up.add_argument(
        "--host-network",
        action="store_true",
        help="keep every pod on the host network (loopback addresses) even where a pod network could be built",
    )

    node_commands = _group(commands, "node", help="this machine as a node of a Kubernetes API server")
    join = _command(
        node_commands,
        "join",
        _node_join,
        help="register this machine as a node and run the pods bound to it as processes, until Ctrl-C",
    )
    join.add_argument("--kube-context", required=True, help="the cluster to join (never taken implicitly)")
    join.add_argument("--kubeconfig", type=Path, default=None, help="default: $KUBECONFIG or ~/.kube/config")
    join.add_argument("--node-name", default=None, help="default: this machine's hostname, sanitised")
    join.add_argument(
        "--node-ip", default="127.0.0.1", help="the address the API server reaches the kubelet endpoints at"
    )
    join.add_argument(
        "--client-ca",
        type=Path,
        default=None,
        help="CA of kube-apiserver's --kubelet-client-certificate: required of callers of the kubelet endpoints",
    )
    join.add_argument("--state-dir", type=Path, default=None, help="pod directories and logs (default: private)")
    join.add_argument(
        "--pod-cidr", default=None, help="this node's pod CIDR, inside 198.18.0.0/15 (default: the Node's)"
    )
    join.add_argument(
        "--service-cidr", default=None, help="the cluster's Service CIDR (default: its ServiceCIDR 'kubernetes')"
    )
    join.add_argument("--host-network", action="store_true", help="pods share the host network (no network namespaces)")

    run = _command(commands, "run", _run, help="run the suites and write the run record and reports (the main job)")
    _add_harness_options(run)
    run.add_argument("-m", dest="markexpr", default=None, metavar="MARKEXPR", help="select tests by marker")
    run.add_argument("-k", dest="keyword", default=None, metavar="EXPR", help="select tests by name")
    run.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    run.add_argument("suites", nargs="*", help="suite files or directories (default: all suites)")

    report_commands = _group(commands, "report", help="render, compare and trend run records")
    render = _command(
        report_commands, "render", _report_render, help="rebuild report.html, junit.xml and results.csv of a run"
    )
    render.add_argument("run_dir", type=Path)
    compare = _command(report_commands, "compare", _report_compare, help="per-metric deltas between two runs")
    compare.add_argument("base", type=Path)
    compare.add_argument("new", type=Path)
    compare.add_argument(
        "--fail-on-regression",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 when a metric regressed by more than PCT percent",
    )
    compare.add_argument("--allow-mismatch", action="store_true", help="compare runs of different targets/profiles")
    compare.add_argument("--all", action="store_true", help="also list unchanged metrics")
    hist = _command(report_commands, "history", _report_history, help="trend of every metric across runs")
    hist.add_argument("run_dirs", type=Path, nargs="+")
    hist.add_argument("--html", type=Path, default=None, help="also write an HTML page with one chart per metric")
    imp = _command(
        report_commands,
        "import",
        _report_import,
        help="judge other tools' outputs (nccl-tests, fio, perftest, vLLM, inference-perf, ...) as a run",
    )
    imp.add_argument("src", type=Path, help="a directory of tool outputs (formats detected by content)")
    imp.add_argument("--profile", required=True, help="the threshold profile that judges them (name or file)")
    imp.add_argument("--out", type=Path, default=None, help="record directory (default: reports/<run-id>)")
    imp.add_argument("--run-id", default=None, help="run id of the record (default: import-<UTC time>)")
    evidence = _command(
        report_commands, "evidence", _report_evidence, help="CNCF AI conformance evidence files of a run"
    )
    evidence.add_argument("run_dir", type=Path)
    evidence.add_argument("--out", type=Path, default=None, help="directory (default: <run_dir>/evidence)")

    workloads_commands = _group(commands, "workloads", help="the workload catalog")
    _command(workloads_commands, "list", _workloads, help="each workload with its kind and requirements")

    from harness.images.cli import add_parser as add_images_parser

    add_images_parser(commands, _Parser)

    doctor = _command(commands, "doctor", _doctor, help="what the target offers and which tests will run or skip")
    _add_harness_options(doctor)
    doctor.add_argument("suites", nargs="*", help="suite files or directories (default: all suites)")

    profile_commands = _group(commands, "profile", help="threshold profiles")
    validate = _command(
        profile_commands, "validate", _profile_validate, help="check a profile file strictly (exit 0 valid, 2 not)"
    )
    validate.add_argument("file", type=Path)
    _command(profile_commands, "list", _profile_list, help="list the shipped profiles")

    from harness.loadgen.command import add_load_arguments, run_load_command

    load = _command(
        commands, "load", run_load_command, help="load an OpenAI-compatible endpoint and write a run record"
    )
    add_load_arguments(load)
    sweep = _command(
        commands, "sweep", _sweep, help="delete namespaces left behind by dead runs (label aibench.io/run-id)"
    )
    sweep.add_argument("--kube-context", required=True, help="the cluster to clean (never taken implicitly)")
    sweep.add_argument("--kubeconfig", type=Path, default=None)
    sweep.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports"),
        help="where live runs keep their .alive files (default: reports)",
    )
    sweep.add_argument("--all", action="store_true", help="also delete namespaces of runs that look alive")
    return parser


def _check_outputs(*named: tuple[str, Path | None, bool]) -> None:
    """Output paths (option, path, is a directory) that cannot be written are refused before anything starts."""
    from harness.config import unwritable

    for option, path, directory in named:
        if path is not None and (problem := unwritable(path, directory=directory)):
            raise ConfigError(f"{option} {path}: {problem}")


def _cluster_up(args: argparse.Namespace) -> int:
    from harness.embedded.cluster import EmbeddedCluster, EmbeddedOptions

    _check_outputs(("--kubeconfig", args.kubeconfig, False), ("--state-dir", args.state_dir, True))
    if args.spec is not None:
        from harness.embedded.clusterspec import load_cluster_spec

        load_cluster_spec(args.spec)  # a bad spec is one line before a port is opened
    if args.control_plane == "real":
        return _real_cluster_up(args)
    options = EmbeddedOptions(
        state_dir=args.state_dir,
        kubeconfig_path=args.kubeconfig,
        spec_path=args.spec,
        include_host=not args.no_host_node,
        pod_network=not args.host_network,
    )
    cluster = EmbeddedCluster(options)

    def start() -> None:
        cluster.start()
        nodes = cluster.store.count(("", "nodes"))
        print(
            f"embedded cluster ready: kubeconfig={cluster.kubeconfig_path} server={cluster.server_url} nodes={nodes}",
            flush=True,
        )
        print(f"  try: kubectl --kubeconfig {cluster.kubeconfig_path} get nodes", flush=True)

    _in_foreground(start, lambda: None, cluster.stop)
    print("embedded cluster stopped", flush=True)
    return EXIT_OK


def _in_foreground(start: Callable[[], None], poll: Callable[[], None], stop: Callable[[], None]) -> None:
    """Run a one-machine target until SIGINT/SIGTERM: ``start`` (which prints the ready line), ``poll`` twice a
    second, ``stop`` always; the previous signal handlers come back afterwards."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        start()
        while not stopping.wait(0.5):
            poll()
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _node_join(args: argparse.Namespace) -> int:
    """``node join``: the node agent in the foreground; the Node (and its Lease) is removed again on Ctrl-C."""
    from harness.node.agent import NodeAgent, NodeAgentOptions

    if args.client_ca is not None and not args.client_ca.is_file():
        raise ConfigError(f"--client-ca {args.client_ca}: no such file")
    agent = NodeAgent(
        NodeAgentOptions(
            kubeconfig=args.kubeconfig,
            context=args.kube_context,
            node_name=args.node_name,
            node_ip=args.node_ip,
            client_ca=args.client_ca,
            state_dir=args.state_dir,
            pod_network=not args.host_network,
            pod_cidr=args.pod_cidr,
            service_cidr=args.service_cidr,
        )
    )

    def start() -> None:
        agent.start()
        print(
            f"node {agent.name} joined {args.kube_context}: kubelet endpoints on {args.node_ip}:{agent.kubelet_port}",
            flush=True,
        )

    _in_foreground(start, lambda: None, agent.stop)
    print(f"node {agent.name} left", flush=True)
    return 0


def _real_cluster_up(args: argparse.Namespace) -> int:
    """``cluster up --control-plane real``: admin context first, the suite's ServiceAccount context beside it."""
    from harness.localkube.controlplane import LocalKube, LocalKubeOptions
    from harness.localkube.identity import add_suite_context

    cluster = LocalKube(
        LocalKubeOptions(
            state_dir=args.state_dir,
            kubeconfig_path=args.kubeconfig,
            spec_path=args.spec,
            include_host=not args.no_host_node,
        )
    )

    def start() -> None:
        cluster.start()
        context = add_suite_context(cluster)
        print(
            f"real control plane ready: kubeconfig={cluster.kubeconfig_path} server={cluster.server_url} "
            f"nodes={len(cluster.node_names)} operators={','.join(cluster.options.operators)} "
            f"in {cluster.timings.marks['ready']:.1f} s ({cluster.describe_nodes()})",
            flush=True,
        )
        print(f"  try: kubectl --kubeconfig {cluster.kubeconfig_path} get nodes", flush=True)
        print(
            f"  suite as its ServiceAccount: k8s-ai-bench run --target kube --kubeconfig {cluster.kubeconfig_path} "
            f"--kube-context {context}",
            flush=True,
        )

    _in_foreground(start, cluster.supervisor.check_alive, cluster.stop)
    print("real control plane stopped", flush=True)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from harness.suite_run import RunOptions, run_suites

    return run_suites(
        RunOptions(
            harness=_harness_values(args),
            markexpr=args.markexpr,
            keyword=args.keyword,
            suites=tuple(args.suites),
            verbose=args.verbose,
        )
    )


def _report_render(args: argparse.Namespace) -> int:
    from harness.reporting.render import render_all

    for path in render_all(args.run_dir):
        print(path)
    return EXIT_OK


def _report_compare(args: argparse.Namespace) -> int:
    from harness.reporting.compare import compare, format_comparison
    from harness.reporting.load import load_record

    result = compare(
        load_record(args.base),
        load_record(args.new),
        fail_on_regression_pct=args.fail_on_regression,
        allow_mismatch=args.allow_mismatch,
    )
    print(format_comparison(result, include_same=args.all))
    for reason in result.gate_failures:
        sys.stderr.write(f"k8s-ai-bench: regression gate failed: {reason}\n")
    return result.exit_code


def _report_history(args: argparse.Namespace) -> int:
    from harness.reporting.history import format_history, history, render_history_svg

    _check_outputs(("--html", args.html, False))
    trend = history(args.run_dirs)
    print(format_history(trend))
    if args.html is not None:
        print(render_history_svg(trend, args.html))
    return EXIT_OK


def _report_evidence(args: argparse.Namespace) -> int:
    from harness.reporting.evidence import write_evidence
    from harness.reporting.load import load_record

    _check_outputs(("--out", args.out, True))
    record = load_record(args.run_dir)
    for name, path in write_evidence(record, args.out or args.run_dir / "evidence").items():
        print(f"{name}: {path}")
    return EXIT_OK


def _report_import(args: argparse.Namespace) -> int:
    """Import, judge and render; exit 1 when a file failed its bars or could not be read (listed on stderr)."""
    import time

    from harness.reporting.importer import import_results
    from harness.reporting.render import render_all
    from harness.thresholds import load_profile

    profile = load_profile(args.profile)
    run_id = args.run_id or time.strftime("import-%Y%m%dT%H%M%SZ", time.gmtime())
    summary = import_results(args.src, profile, args.out or Path("reports") / run_id, run_id=run_id)
    for path in render_all(summary.run_dir):
        print(path)
    for name, reason in summary.unreadable:
        sys.stderr.write(f"k8s-ai-bench: not imported: {name}: {reason}\n")
    print(
        f"imported {summary.files} file(s) against profile {profile.name}: {summary.passed} passed, "
        f"{summary.failed} failed, {summary.not_judged} not judged, {len(summary.unreadable)} unreadable"
    )
    return summary.exit_code


def _workloads(args: argparse.Namespace) -> int:
    from harness.catalog.spec import catalog_root, load_spec

    root = catalog_root()
    specs = [load_spec(p) for p in sorted(root.glob("*/workload.yaml"))]
    if not specs:
        print(f"no workloads in {root}")
    for spec in specs:
        requires = ", ".join(spec.requires) or "-"
        print(f"{spec.name:24s} {spec.kind:8s} requires: {requires:24s} {spec.description}")
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from harness.suite_run import RunOptions, doctor

    values = _harness_values(args)
    values["reports_dir"] = values.get("reports_dir") or str(Path(tempfile.gettempdir()) / "aibench-doctor")
    return doctor(RunOptions(harness=values, suites=tuple(args.suites)))


def _profile_validate(args: argparse.Namespace) -> int:
    from harness.thresholds.loader import load_profile, validate_profile_file

    validate_profile_file(args.file)
    profile = load_profile(args.file)
    count = len(profile.all_thresholds())
    print(f"{args.file}: valid profile {profile.name} ({count} thresholds)")
    return EXIT_OK


def _profile_list(args: argparse.Namespace) -> int:
    from harness.thresholds.loader import available_profiles

    for name in available_profiles():
        print(name)
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    from harness.cluster.sweep import sweep
    from harness.cluster.target import check_context
    from harness.config import resolve
    from harness.targets import connect

    cfg = resolve(
        {
            "target": "kube",
            "kube_context": args.kube_context,
            "kubeconfig": str(args.kubeconfig) if args.kubeconfig else None,
        },
        {},
        {},
    )
    if args.reports_dir.exists() and not args.reports_dir.is_dir():
        raise ConfigError(f"--reports-dir {args.reports_dir}: is a file, expected the directory of run records")
    check_context(cfg)  # a bad kubeconfig is one line before any connection
    target = connect(cfg)
    try:
        result = sweep(target.api_client, args.reports_dir, everything=args.all)
    finally:
        target.stop()
    for name in result.deleted:
        print(f"deleted namespace {name}")
    for name in result.kept:
        print(f"kept namespace {name} (its run is still alive; --all deletes it too)")
    print(f"sweep: {len(result.deleted)} deleted, {len(result.kept)} kept")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":  # each retry is counted in the run record; a line per retry is noise on stderr
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    handler: Handler = args.handler  # every leaf command has one (_command)
    try:
        return handler(args)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except RecordWriteError as exc:  # a full disk is the environment's fault, an unwritable path the caller's
        return _fail(str(exc), EXIT_WRITE if exc.disk_full else EXIT_USAGE)
    except HarnessError as exc:
        return _fail(str(exc), EXIT_UNREACHABLE)
    except OSError as exc:  # a file named on the command line that a reader above did not guard: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{(exc.strerror or str(exc)).lower()}", EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"k8s-ai-bench: error: {' '.join(message.split())}\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
