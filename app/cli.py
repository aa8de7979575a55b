"""The `telemetry-collector` command: serve, migrate, keys, apply, export, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import sys
import tempfile
from typing import Any

from app.config import get_settings
from app.telemetry import MULTIPROC_ENV, configure_logging


def _database_url() -> str:
    from app.main import database_url

    url = database_url(get_settings())
    # Worker processes and later steps must reach the same server, not start their own.
    os.environ["TELEMETRY_DATABASE_URL"] = url
    get_settings.cache_clear()
    return url


def cmd_migrate(_: argparse.Namespace) -> int:
    from app.db.migrate import upgrade_to_head

    upgrade_to_head(_database_url())
    print("database is at the latest schema")
    return 0


def _exit_cleanly(signum: int, _: object) -> None:
    sys.exit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade_to_head
    from app.server import serve

    settings = get_settings()
    configure_logging(settings.log_level)
    # Until the server takes over SIGTERM, exiting through SystemExit lets exit hooks run,
    # such as stopping an embedded PostgreSQL; once serving, SIGTERM is a clean shutdown.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    upgrade_to_head(_database_url())
    workers = max(1, args.workers)
    multiproc_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # prometheus_client sums every process's samples from files in this directory.
        multiproc_dir = tempfile.mkdtemp(prefix="telemetry-metrics-")
        os.environ[MULTIPROC_ENV] = multiproc_dir
    if workers > 1 and not settings.ui_secret:
        # The workers inherit one signing key, so a UI sign-in holds on whichever worker a
        # connection lands on; replicas still need TELEMETRY_UI_SECRET set alike.
        os.environ["TELEMETRY_UI_SECRET"] = secrets.token_urlsafe(32)
    try:
        return serve(args.host or settings.host, args.port or settings.port, workers)
    finally:
        if multiproc_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.auth import create_key

    try:
        new = _with_engine(
            lambda engine: create_key(engine, args.project, args.scope, args.name or "")
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(new.key)
    print(
        f"# project {args.project!r}, scopes {','.join(args.scope)}; "
        "shown once, stored only as a hash",
        file=sys.stderr,
    )
    return 0


def _with_engine(work: Any) -> Any:
    from app.db.engine import create_engine
    from app.db.migrate import upgrade_to_head

    url = _database_url()
    upgrade_to_head(url)

    async def run() -> Any:
        engine = create_engine(get_settings(), url, pool_size=1)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_keys_list(args: argparse.Namespace) -> int:
    from app.auth import list_keys

    keys = _with_engine(lambda engine: list_keys(engine, args.project))
    print(f"{'prefix':12} {'project':20} {'scopes':20} {'created':20} {'revoked':20} name")
    for key in keys:
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-"
        print(
            f"{key.prefix:12} {key.project:20} {','.join(key.scopes):20} "
            f"{key.created_at:%Y-%m-%d %H:%M:%S}  {revoked:20} {key.name}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from app.auth import revoke_key

    try:
        key = _with_engine(lambda engine: revoke_key(engine, args.prefix))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"revoked {key.prefix} of project {key.project!r}; running collectors stop accepting "
        f"it within their TELEMETRY_KEY_CACHE_TTL ({get_settings().key_cache_ttl} here)"
    )
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from app.config_commands import apply_file

    return _with_engine(
        lambda engine: apply_file(
            engine, args.file, args.project, prune=args.prune, dry_run=args.dry_run
        )
    )


def cmd_export(args: argparse.Namespace) -> int:
    from app.config_commands import export_project

    return _with_engine(
        lambda engine: export_project(engine, args.project, show_secrets=args.show_secrets)
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(args.url or f"http://127.0.0.1:{get_settings().port}", args.key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telemetry-collector", description="Telemetry collector for AI assistants."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the collector (migrates first)")
    serve.add_argument("--host", default=None, help="listen address (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 4318)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema to the latest")
    migrate.set_defaults(handler=cmd_migrate)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--project", required=True, help="project name (created if new)")
    create.add_argument(
        "--scope",
        required=True,
        action="append",
        choices=["ingest", "read", "admin"],
        help="repeatable: ingest, read, admin",
    )
    create.add_argument("--name", default="", help="a label for the key")
    create.set_defaults(handler=cmd_keys_create)
    listing = key_commands.add_parser("list", help="list keys (their first characters only)")
    listing.add_argument("--project", default=None, help="only this project's keys")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its first characters")
    revoke.add_argument("prefix", help="the key's prefix as `keys list` shows it, or the key")
    revoke.set_defaults(handler=cmd_keys_revoke)

    apply = commands.add_parser(
        "apply", help="create or update alert rules, channels, silences and SLOs from a file"
    )
    apply.add_argument("-f", "--file", required=True, help="the YAML file (- for stdin)")
    apply.add_argument("--project", required=True, help="project name (created if new)")
    apply.add_argument("--prune", action="store_true", help="delete what the file no longer names")
    apply.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    apply.set_defaults(handler=cmd_apply)
    export = commands.add_parser("export", help="print a project's alerting configuration")
    export.add_argument("--project", required=True, help="project name")
    export.add_argument(
        "--show-secrets", action="store_true", help="print channel URLs and headers unmasked"
    )
    export.set_defaults(handler=cmd_export)

    demo = commands.add_parser("demo", help="send an hour of realistic assistant telemetry")
    demo.add_argument(
        "--url", default=None, help="collector base URL (default http://127.0.0.1:TELEMETRY_PORT)"
    )
    demo.add_argument("--key", default=os.environ.get("TELEMETRY_API_KEY"), help="ingest key")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from app.db.embedded import EmbeddedPostgresError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except EmbeddedPostgresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
