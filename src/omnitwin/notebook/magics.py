"""The ``%omnitwin`` line magic and the ``%%omnitwin`` cell magic.

``%load_ext omnitwin`` registers them. A line runs one subcommand
(``connect``, ``subnets``, ``devices``, ``drift``, ``free``, ``path``,
``blast-radius``, ``audit``, ``topology``, ``sessions``, ``help``) and
returns a result object that renders as a table or a graph and converts with
``to_pandas()`` or ``to_networkx()``. A cell sends its body to the agent
(``client.agents.command``) and renders the events in one display as they
arrive.

Arguments are split with :func:`shlex.split`, so a value with spaces can be
quoted either way: ``--site="lab A"`` and ``--site='lab A'`` both give
``lab A``. IPython's ``magic_arguments`` splits such values at the spaces.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Float, Int

from omnitwin.errors import OmniTwinError
from omnitwin.notebook.agent_view import AgentRun
from omnitwin.notebook.loaders import iter_records, last_records, load_sample_twin
from omnitwin.notebook.results import (
    GraphResult,
    TableResult,
    ValueResult,
    blast_radius_result,
    path_result,
)

__all__ = [
    "SUBCOMMANDS",
    "OmniTwinMagics",
    "ParsedLine",
    "load_ipython_extension",
    "parse_line",
    "split_line",
    "unload_ipython_extension",
    "usage",
]


class _ArgumentParser(argparse.ArgumentParser):
    """An argument parser that raises ``UsageError`` instead of exiting."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}; see %omnitwin?")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or f"{self.prog}: invalid arguments; see %omnitwin?")


@dataclass(frozen=True, slots=True)
class Option:
    """One argument of a subcommand, as given to ``add_argument``."""

    flags: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A subcommand of ``%omnitwin``: its name, help line, arguments, handler."""

    name: str
    help: str
    options: tuple[Option, ...]
    handler: Callable[[OmniTwinMagics, argparse.Namespace], Any]
    example: str

    def parser(self) -> _ArgumentParser:
        """Return the argument parser of this subcommand."""
        parser = _ArgumentParser(
            prog=f"%omnitwin {self.name}", add_help=False, allow_abbrev=False
        )
        for option in self.options:
            parser.add_argument(*option.flags, **option.settings)
        return parser


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """A parsed ``%omnitwin`` line: the subcommand and its arguments."""

    subcommand: Subcommand
    arguments: argparse.Namespace


def split_line(line: str) -> list[str]:
    """Split a magic line into words the way a POSIX shell does.

    Raises
    ------
    UsageError
        If a quote is not closed.

    Examples
    --------
    >>> split_line('--site="lab A" 10.0.0.0/8')
    ['--site=lab A', '10.0.0.0/8']
    >>> split_line("print(' ')")
    ['print( )']
    """
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(
            f"cannot split {line!r}: {exc}; close the quote or escape it with \\"
        ) from None


def _looks_like_prefix(word: str) -> bool:
    try:
        ipaddress.ip_network(word, strict=False)
    except ValueError:
        return False
    return True


def parse_line(line: str) -> ParsedLine:
    """Parse a ``%omnitwin`` line into a subcommand and its arguments.

    A line that starts with an option or a prefix lists subnets, so
    ``%omnitwin 10.0.0.0/8`` is ``%omnitwin subnets 10.0.0.0/8``.

    Raises
    ------
    UsageError
        If the subcommand is unknown or its arguments are invalid.

    Examples
    --------
    >>> parsed = parse_line("--site='lab A' 10.0.0.0/8")
    >>> parsed.subcommand.name, parsed.arguments.site, parsed.arguments.prefixes
    ('subnets', 'lab A', ['10.0.0.0/8'])
    """
    words = split_line(line)
    if not words:
        raise UsageError(f"%omnitwin needs a subcommand: {', '.join(SUBCOMMANDS)}")
    first = words[0]
    if first in SUBCOMMANDS:
        subcommand, rest = SUBCOMMANDS[first], words[1:]
    elif first.startswith("-") or _looks_like_prefix(first):
        subcommand, rest = SUBCOMMANDS["subnets"], words
    else:
        raise UsageError(
            f"unknown subcommand {first!r}; use one of {', '.join(SUBCOMMANDS)}"
        )
    return ParsedLine(subcommand, subcommand.parser().parse_args(rest))


# --- subcommand handlers -------------------------------------------------------


def _connect(magics: OmniTwinMagics, args: argparse.Namespace) -> ValueResult:
    return magics.connect(
        args.target,
        api_key=args.api_key,
        read_only=args.read_only,
        sample=args.sample,
        sites=args.sites,
    )


def _records(
    magics: OmniTwinMagics, lister: Callable[..., Any], description: str, limit: Any
) -> list[Any]:
    chosen = limit if limit is not None else magics.limit
    return list(iter_records(lister, description=description, limit=chosen or None))


def _subnets(magics: OmniTwinMagics, args: argparse.Namespace) -> TableResult:
    client = magics.require_client()
    filters = {
        "status": args.status,
        "purpose": args.purpose,
        "vrf": args.vrf,
        "owner": args.owner,
    }
    records: list[Any] = []
    seen: set[str] = set()
    for prefix in args.prefixes or [None]:
        lister = partial(client.subnets.list, within=prefix, **filters)
        for subnet in _records(magics, lister, "subnets", args.limit):
            if subnet.id not in seen:
                seen.add(subnet.id)
                records.append(subnet)
    if args.site is not None:
        records = [s for s in records if s.tags.get("site") == args.site]
    where = f" within {', '.join(args.prefixes)}" if args.prefixes else ""
    site = f" at site {args.site}" if args.site else ""
    return TableResult(records, kind="Subnet", title=f"subnets{where}{site}")


def _devices(magics: OmniTwinMagics, args: argparse.Namespace) -> TableResult:
    client = magics.require_client()
    has_drift = True if args.drift else None
    lister = partial(
        client.devices.list, site=args.site, role=args.role, has_drift=has_drift
    )
    records = _records(magics, lister, "devices", args.limit)
    title = "devices" + "".join(
        f" {name}={value}"
        for name, value in (("site", args.site), ("role", args.role))
        if value
    )
    return TableResult(
        records, kind="Device", title=title + (" with drift" * args.drift)
    )


def _drift(magics: OmniTwinMagics, args: argparse.Namespace) -> TableResult:
    client = magics.require_client()
    status = None if args.status == "all" else args.status
    lister = partial(
        client.drift.events, device=args.device, status=status, field=args.field
    )
    records = _records(magics, lister, "drift events", args.limit)
    where = f" on {args.device}" if args.device else ""
    return TableResult(
        records, kind="DriftEvent", title=f"{args.status} drift events{where}"
    )


def _prefix_length(text: str) -> int:
    try:
        return int(text.removeprefix("/"))
    except ValueError:
        raise UsageError(
            f"invalid prefix length {text!r}; use a number such as 24 or /24"
        ) from None


def _free(magics: OmniTwinMagics, args: argparse.Namespace) -> TableResult:
    client = magics.require_client()
    if args.length is None:
        raise UsageError(
            f"%omnitwin free needs a prefix length: %omnitwin free {args.prefix} /24"
        )
    length = _prefix_length(args.length)
    blocks = client.subnets.available(
        length, cidr=args.prefix, vrf=args.vrf, limit=args.limit
    )
    rows = [
        {"cidr": cidr, "prefix_length": blocks.prefix_length, "parent": blocks.parent}
        for cidr in blocks.blocks
    ]
    title = f"free /{length} blocks in {blocks.parent}"
    return TableResult(rows, kind="FreeBlock", title=title, total=blocks.total_free)


def _path(magics: OmniTwinMagics, args: argparse.Namespace) -> GraphResult:
    client = magics.require_client()
    found = client.topology.path(
        args.source, args.target, kinds=args.kind or ["intended"]
    )
    return path_result(client, found, max_elements=magics.max_elements)


def _blast_radius(magics: OmniTwinMagics, args: argparse.Namespace) -> GraphResult:
    client = magics.require_client()
    kinds = args.kind or ["intended"]
    radius = client.topology.blast_radius(args.target, kinds=kinds)
    return blast_radius_result(
        client, radius, depth=args.depth, max_elements=magics.max_elements
    )


def _audit(magics: OmniTwinMagics, args: argparse.Namespace) -> TableResult:
    client = magics.require_client()
    lister = partial(
        client.audit.list, subject=args.subject, actor=args.actor, action=args.action
    )
    first = client.audit.list(
        subject=args.subject, actor=args.actor, action=args.action, per_page=1
    )
    limit = args.limit if args.limit is not None else magics.limit
    if limit < 0:
        setting = "--limit" if args.limit is not None else "OmniTwinMagics.limit"
        raise UsageError(
            f"invalid {setting} {limit}; use a positive number, or 0 for all"
        )
    if limit:
        records = last_records(lister, limit=limit, description="audit events")
    else:
        records = list(iter_records(lister, description="audit events"))
    return TableResult(
        records, kind="AuditEvent", title="audit events", total=first.total
    )


def _topology(magics: OmniTwinMagics, args: argparse.Namespace) -> GraphResult:
    client = magics.require_client()
    graph = client.topology.graph(
        scope=args.scope,
        depth=args.depth,
        annotate_drift=True,
        max_elements=args.max_elements or magics.max_elements,
    )
    meta = graph.meta
    summary = (
        f"{len(graph.nodes)} nodes, {len(graph.edges)} edges; pruned "
        f"{meta.get('pruned_nodes', 0)} nodes, {meta.get('pruned_edges', 0)} edges"
    )
    title = f"topology around {args.scope}" if args.scope else "topology"
    return GraphResult(graph, title=title, summary=summary)


def _sessions(magics: OmniTwinMagics, args: argparse.Namespace) -> TableResult:
    agents = magics.require_agents()
    result = agents.sessions()
    records = list(getattr(result, "data", result))
    return TableResult(records, kind="Session", title="agent sessions")


def _help(magics: OmniTwinMagics, args: argparse.Namespace) -> ValueResult:
    if args.subcommand is not None and args.subcommand not in SUBCOMMANDS:
        known = ", ".join(SUBCOMMANDS)
        raise UsageError(f"unknown subcommand {args.subcommand!r}; use one of {known}")
    names = [args.subcommand] if args.subcommand else list(SUBCOMMANDS)
    text = {name: SUBCOMMANDS[name].parser().format_usage().strip() for name in names}
    return ValueResult(text, title="%omnitwin usage")


_LIMIT = Option(("--limit",), {"type": int, "help": "maximum rows to read"})
_KIND = Option(
    ("--kind",),
    {
        "action": "append",
        "choices": ["intended", "detected"],
        "help": "link kinds to follow (repeatable; default intended)",
    },
)

_TABLE = [
    Subcommand(
        "connect",
        "connect to a DuckDB file, :memory: or a server URL",
        (
            Option(("target",), {"nargs": "?", "help": "PATH, :memory: or URL"}),
            Option(("--api-key",), {"help": "API key of a server URL"}),
            Option(
                ("--read-only",),
                {"action": "store_true", "help": "open a file without write access"},
            ),
            Option(
                ("--sample",),
                {"action": "store_true", "help": "load the generated sample network"},
            ),
            Option(("--sites",), {"type": int, "default": 3, "help": "sample sites"}),
        ),
        _connect,
        "%omnitwin connect :memory: --sample",
    ),
    Subcommand(
        "subnets",
        "list subnets, optionally within prefixes",
        (
            Option(("prefixes",), {"nargs": "*", "help": "list only within these"}),
            Option(("--site",), {"help": "keep subnets whose site tag is this"}),
            Option(("--status",), {"help": "allocated, reserved, available ..."}),
            Option(("--purpose",), {"help": "purpose substring"}),
            Option(("--vrf",), {"help": "VRF name"}),
            Option(("--owner",), {"help": "owner, e.g. team:platform"}),
            _LIMIT,
        ),
        _subnets,
        "%omnitwin subnets 10.1.0.0/16 --site nyc1",
    ),
    Subcommand(
        "devices",
        "list devices",
        (
            Option(("--site",), {"help": "site name"}),
            Option(("--role",), {"help": "switch, router, server ..."}),
            Option(("--drift",), {"action": "store_true", "help": "only with drift"}),
            _LIMIT,
        ),
        _devices,
        "df = %omnitwin devices --site nyc1",
    ),
    Subcommand(
        "drift",
        "list drift events, newest first",
        (
            Option(("device",), {"nargs": "?", "help": "device id or hostname"}),
            Option(
                ("--status",),
                {
                    "default": "open",
                    "choices": ["open", "reconciled", "ignored", "all"],
                    "help": "event status (default open)",
                },
            ),
            Option(("--field",), {"help": "dotted field path"}),
            _LIMIT,
        ),
        _drift,
        "%omnitwin drift leaf-01.nyc1",
    ),
    Subcommand(
        "free",
        "list free blocks of a prefix length inside a prefix",
        (
            Option(("prefix",), {"help": "parent prefix, e.g. 10.1.128.0/17"}),
            Option(("length",), {"nargs": "?", "help": "prefix length, e.g. /24"}),
            Option(("--vrf",), {"help": "VRF name"}),
            Option(("--limit",), {"type": int, "default": 16, "help": "blocks"}),
        ),
        _free,
        "%omnitwin free 10.1.128.0/17 /24",
    ),
    Subcommand(
        "path",
        "show the cheapest path between two devices",
        (
            Option(("source",), {"help": "device id or hostname"}),
            Option(("target",), {"help": "device id or hostname"}),
            _KIND,
        ),
        _path,
        "%omnitwin path srv-01-01.nyc1 srv-01-01.sfo1",
    ),
    Subcommand(
        "blast-radius",
        "show what a failure of a device or link cuts off",
        (
            Option(("target",), {"help": "device id, hostname or link id"}),
            Option(("--depth",), {"type": int, "default": 2, "help": "hops shown"}),
            _KIND,
        ),
        _blast_radius,
        "%omnitwin blast-radius leaf-01.nyc1",
    ),
    Subcommand(
        "audit",
        "list the most recent audit events (up to --limit), oldest first",
        (
            Option(("--subject",), {"help": "object id"}),
            Option(("--actor",), {"help": "actor, e.g. user:local"}),
            Option(("--action",), {"help": "action, e.g. subnet.create"}),
            _LIMIT,
        ),
        _audit,
        "%omnitwin audit --action subnet.create --limit 20",
    ),
    Subcommand(
        "topology",
        "show the topology graph, or the part around a scope",
        (
            Option(("scope",), {"nargs": "?", "help": "device, site, subnet"}),
            Option(("--depth",), {"type": int, "default": 2, "help": "hops, 1-5"}),
            Option(("--max-elements",), {"type": int, "help": "nodes plus edges"}),
        ),
        _topology,
        "%omnitwin topology leaf-01.nyc1 --depth 2",
    ),
    Subcommand(
        "sessions",
        "list agent sessions",
        (),
        _sessions,
        "%omnitwin sessions",
    ),
    Subcommand(
        "help",
        "show the usage of one or every subcommand",
        (Option(("subcommand",), {"nargs": "?", "help": "subcommand to describe"}),),
        _help,
        "%omnitwin help free",
    ),
]

SUBCOMMANDS: dict[str, Subcommand] = {command.name: command for command in _TABLE}


def usage() -> str:
    """Return the help text of ``%omnitwin``, generated from the subcommands."""
    lines = [
        "Work with an omnitwin network twin from a notebook.",
        "",
        "Line magic: %omnitwin SUBCOMMAND [ARGUMENTS]",
        "Quote values with spaces in either style: --site='lab A'.",
        "Each line returns a result: x = %omnitwin devices; x.to_pandas().",
        "",
        "Subcommands:",
    ]
    for command in _TABLE:
        lines.append(f"  {command.name}: {command.help}")
        usage_line = command.parser().format_usage().strip()
        lines.append(f"    {usage_line}")
        for option in command.options:
            help_text = option.settings.get("help", "")
            lines.append(f"      {'/'.join(option.flags)}: {help_text}")
        lines.append(f"    example: {command.example}")
    lines += [
        "",
        "Cell magic: %%omnitwin [--var NAME] [--session ID]",
        "  Sends the cell body to the agent (client.agents.command) and shows",
        "  its status lines, tool calls, data and final result in one output",
        "  as they arrive. --var stores the run (an AgentRun) in NAME.",
        "",
        "Settings: %config OmniTwinMagics.max_elements = 500 (graph size),",
        "%config OmniTwinMagics.limit = 10000 (rows per listing).",
    ]
    return "\n".join(lines)


def _cell_parser() -> _ArgumentParser:
    parser = _ArgumentParser(prog="%%omnitwin", add_help=False, allow_abbrev=False)
    parser.add_argument("--var", help="variable to store the run in")
    parser.add_argument("--session", help="agent session to continue")
    return parser


@magics_class
class OmniTwinMagics(Magics):
    """The ``%omnitwin`` magics; the client they use is ``self.client``."""

    max_elements = Int(
        500, help="Upper bound on nodes plus edges of graph results."
    ).tag(config=True)
    limit = Int(10_000, help="Maximum rows that a listing reads.").tag(config=True)
    update_interval = Float(
        0.1, help="Minimum seconds between two refreshes of a %%omnitwin output."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.client: Any = None

    @line_cell_magic
    def omnitwin(self, line: str, cell: str | None = None) -> Any:
        if cell is None:
            parsed = parse_line(line)
            return self._run(parsed)
        self.run_agent(line, cell)
        return None

    def _run(self, parsed: ParsedLine) -> Any:
        try:
            return parsed.subcommand.handler(self, parsed.arguments)
        except OmniTwinError as exc:
            # A missing device or an invalid CIDR is a usage mistake, so it is
            # shown as one line rather than a traceback.
            raise UsageError(f"%omnitwin {parsed.subcommand.name}: {exc}") from None

    # --- connection ------------------------------------------------------------

    def connect(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        read_only: bool = False,
        sample: bool = False,
        sites: int = 3,
    ) -> ValueResult:
        """Connect to a path, ``:memory:`` or a URL and return a summary."""
        import omnitwin

        resolved = _resolve_target(target)
        options: dict[str, Any] = {"read_only": read_only}
        if api_key:
            options["api_key"] = api_key
        local = resolved.removeprefix("local:") if resolved else ""
        new_file = (
            resolved is not None
            and resolved.startswith("local:")
            and local != ":memory:"
            and not Path(local).expanduser().exists()
        )
        self.client = omnitwin.connect(resolved, **options)
        loaded = load_sample_twin(self.client, sites=sites) if sample else None
        summary = {
            "target": resolved or "default (OMNITWIN_BASE_URL or :memory:)",
            "subnets": self.client.subnets.list(per_page=1).total,
            "devices": self.client.devices.list(per_page=1).total,
        }
        if loaded is not None:
            summary["sample"] = loaded
        if new_file:
            # A mistyped path would otherwise look like an empty twin.
            summary["note"] = (
                f"{local} did not exist, so this is a new, empty twin; check the "
                "path if you meant an existing database"
            )
        result = ValueResult(summary, title="connected")
        result.client = self.client  # type: ignore[attr-defined]
        return result

    def require_client(self) -> Any:
        """Return the client, connecting to the default target on first use."""
        if self.client is None:
            self.connect(None)
        return self.client

    def require_agents(self) -> Any:
        """Return ``client.agents`` or raise ``UsageError`` if it is missing."""
        agents = getattr(self.require_client(), "agents", None)
        if agents is None:
            raise UsageError(
                "this omnitwin client has no agents namespace; upgrade omnitwin "
                "to run %%omnitwin cells"
            )
        return agents

    # --- agent cells -------------------------------------------------------------

    def run_agent(self, line: str, body: str) -> AgentRun:
        """Run ``body`` as an agent command, showing its events in one display."""
        args = _cell_parser().parse_args(split_line(line))
        command = body.strip()
        if not command:
            raise UsageError(
                "%%omnitwin needs an agent command in the cell body, e.g. "
                "'Show drift on spine-01.nyc1'"
            )
        if args.var is not None and not args.var.isidentifier():
            raise UsageError(f"--var {args.var!r} is not a valid Python name")
        agents = self.require_agents()
        options = {"session_id": args.session} if args.session else {}
        run = AgentRun(
            command,
            update_interval=self.update_interval,
            client=self.client,
            max_elements=self.max_elements,
        )
        if args.var is not None and self.shell is not None:
            self.shell.user_ns[args.var] = run
        run.show()
        run.consume(_events(agents, command, options))
        return run


def _events(agents: Any, command: str, options: dict[str, Any]) -> Iterator[Any]:
    yield from agents.command(command, **options)


def _resolve_target(target: str | None) -> str | None:
    if target is None:
        return None
    if target.startswith(("http://", "https://", "local:")):
        return target
    return f"local:{target}"


# ``%omnitwin?`` shows this docstring, so it is built from the subcommand table.
OmniTwinMagics.omnitwin.__doc__ = usage()


def load_ipython_extension(shell: Any) -> None:
    """Register the ``%omnitwin`` magics with ``shell`` (``%load_ext omnitwin``)."""
    shell.register_magics(OmniTwinMagics(shell))


def unload_ipython_extension(shell: Any) -> None:
    """Remove the ``%omnitwin`` magics from ``shell``."""
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("omnitwin", None)
