"""``wfm-pipeline sandbox`` / ``python -m wfm_pipeline.sandbox``: run the Genesys Cloud sandbox."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wfm_pipeline import wire
from wfm_pipeline.sandbox.config import (
    PROFILES,
    Behaviours,
    ClientSpec,
    Limits,
    SandboxConfig,
    default_clients,
)
from wfm_pipeline.sandbox.loopback import is_loopback_address


def parse_client(text: str) -> tuple[str, ClientSpec]:
    """``id:secret`` or ``id:secret:perm1,perm2`` (permissions restrict the client to that set)."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError("--client needs id:secret[:permission,permission...]")
    permissions = frozenset(p for p in parts[2].split(",") if p) if len(parts) == 3 else None
    return parts[0], ClientSpec(parts[1], permissions)


def parse_limit(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or name not in Limits.__dataclass_fields__:
        raise argparse.ArgumentTypeError(
            f"--limit needs name=value with name in: {', '.join(Limits.__dataclass_fields__)}"
        )
    return name, value


def time_zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IANA time zone, e.g. 'Europe/Berlin'") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wfm-pipeline sandbox", description="Local Genesys Cloud emulator.")
    parser.add_argument("--host", default=wire.SANDBOX_DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=wire.SANDBOX_DEFAULT_PORT)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="realistic")
    parser.add_argument("--time-scale", type=float, default=1.0, help="divide every window/latency/TTL by K")
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--history-start", type=date.fromisoformat, default=date(2023, 1, 1))
    parser.add_argument(
        "--departed-agents",
        type=int,
        help="agents who left (deleted, in no unit, history until they left); default 2 %% of --agents, "
        "at least 1 from 20 agents on",
    )
    parser.add_argument(
        "--default-time-zone",
        type=time_zone,
        help="IANA zone of the local days of users in no unit; default the first business unit's",
    )
    parser.add_argument("--retention-days", type=int, default=1825, help="analytics data retention")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=Behaviours.names(),
        metavar="BEHAVIOUR",
        help=f"switch off a real-org behaviour (repeatable): {', '.join(Behaviours.names())}",
    )
    parser.add_argument("--token-ttl", type=float, help="token lifetime in sandbox seconds (default 86400)")
    parser.add_argument("--limit", type=parse_limit, action="append", default=[], help="override: name=value")
    parser.add_argument(
        "--client",
        type=parse_client,
        action="append",
        default=[],
        help="extra OAuth client id:secret[:perms]",
    )
    parser.add_argument("--exit-with-parent", type=int, help="exit when this pid is gone")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    overrides: dict[str, str | float] = dict(args.limit)
    if args.token_ttl is not None:
        overrides["token_ttl_seconds"] = args.token_ttl
    clients = default_clients()
    clients.update(dict(args.client))
    return SandboxConfig(
        host=args.host,
        port=args.port,
        profile=args.profile,
        time_scale=args.time_scale,
        agents=args.agents,
        seed=args.seed,
        history_start=args.history_start,
        departed_agents=args.departed_agents,
        default_time_zone=args.default_time_zone,
        retention_days=args.retention_days,
        behaviours=Behaviours().without(args.without),
        limit_overrides=overrides,
        clients=clients,
        exit_with_parent=args.exit_with_parent,
        log_level=args.log_level,
    )


def bind_warning(host: str) -> str | None:
    """The warning for a ``--host`` that is not loopback (None when it is): the sandbox is for local use."""
    if is_loopback_address(host):
        return None
    return (
        f"WARNING: --host {host!r} is not a loopback address (localhost, 127.x.y.z, ::1): other "
        "machines may reach this sandbox. It is for local use only: its default OAuth client credentials "
        "are public, and its admin and truth routes (/sandbox/...) have no authentication at all (they "
        "answer only a Host header naming localhost, 127.x.y.z or [::1], which stops browsers but not "
        "other clients). Starting anyway."
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.time_scale <= 0 or args.agents < 1:
        parser.error("--time-scale must be > 0 and --agents >= 1")
    if (args.departed_agents is not None and args.departed_agents < 0) or args.retention_days < 1:
        parser.error("--departed-agents must be >= 0 and --retention-days >= 1")
    try:
        config = config_from_args(args)
        config.limits()  # validate overrides before binding the port
    except ValueError as exc:
        parser.error(str(exc))
    from wfm_pipeline.sandbox.app import run_sandbox

    # --log-level info logs every request (method, path, status, token tag, correlation id).
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )

    warning = bind_warning(config.host)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    print(
        f"Genesys Cloud sandbox on http://{config.host}:{config.port} (profile {config.profile}, "
        f"time scale {config.time_scale:g}, {config.agents} agents, seed {config.seed})",
        file=sys.stderr,
        flush=True,
    )
    run_sandbox(config)
    return 0
