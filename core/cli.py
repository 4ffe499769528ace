"""Command line over the same services as the pages: `python -m core.cli --help`.

Exit codes: 0 done, 1 refused (one line on stderr says why), 2 usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core import importers, jobs
from core.config import ConfigError
from core.db import read_session, session_scope, upgrade_schema
from core.errors import DomainError, NotFound, ValidationFailed
from core.models import Role
from core.services import (
    audit,
    campaigns,
    demo,
    imports,
    reports,
    retrospectives,
    review,
    users,
)
from core.services import rules as rule_service
from core.services.permissions import Actor

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
DEFAULT_DEMO_CAMPAIGNS = 12

Command = Callable[[argparse.Namespace], int]


def _actor(session: Session, args: argparse.Namespace) -> Actor:
    return users.actor_for(session, args.as_user)


def _add_as(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USERNAME",
        required=required,
        help="act as this user, with that user's permissions",
    )


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))


# -- commands ---------------------------------------------------------------


def cmd_init_db(args: argparse.Namespace) -> int:
    upgrade_schema()
    with session_scope() as session:
        added = rule_service.ensure_builtin_rules(session)
    print("Database schema is up to date.")
    if added:
        print(f"Added {len(added)} built-in rules.")
    if not args.demo:
        return EXIT_OK
    with session_scope() as session:
        if users.count_users(session):
            print("Users exist already; demo data left as it is.")
            return EXIT_OK
        logins = demo.create_demo_users(session)
        owner = demo.demo_owner_id(session, None)
        demo.seed_campaigns(
            session, actor=None, count=DEFAULT_DEMO_CAMPAIGNS, owner_id=owner
        )
    _print_logins(logins)
    return EXIT_OK


def _print_logins(logins: Sequence[demo.DemoLogin]) -> None:
    print("\nDemo logins (shown once; reset them on the Users page):")
    for login in logins:
        print(f"  {login.role:<9} {login.username:<10} password: {login.password}")
    print()


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise ValidationFailed("password: the two entries differ.")
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with session_scope() as session:
        # The very first user needs no one to vouch for them: it bootstraps a
        # fresh installation. After that only an admin creates users.
        actor = None
        if users.count_users(session):
            if not args.as_user:
                raise ValidationFailed("--as: users exist already; name an admin.")
            actor = _actor(session, args)
        row = users.create_user(
            session,
            actor=actor,
            username=args.username,
            name=args.name,
            email=args.email,
            role=args.role,
            password=password,
        )
    print(f"Created user {row.username} ({row.role}) with id {row.id}.")
    return EXIT_OK


def cmd_seed_demo(args: argparse.Namespace) -> int:
    removed, ids = 0, []
    with session_scope() as session:
        actor = _actor(session, args)
        if args.clear:
            removed = demo.clear_demo_data(session, actor=actor)
        if args.count:
            owner = demo.demo_owner_id(session, args.user)
            ids = demo.seed_campaigns(
                session, actor=actor, count=args.count, owner_id=owner, seed=args.seed
            )
    # Reported only once committed: a refusal above rolls the removal back too.
    if args.clear:
        print(f"Removed {removed} demo campaigns.")
    print(f"Created {len(ids)} demo campaigns.")
    return EXIT_OK


def cmd_list_campaigns(args: argparse.Namespace) -> int:
    with read_session() as session:
        actor = _actor(session, args)
        frame = campaigns.list_campaigns(session, actor=actor)
    records = [
        {
            "id": int(row.id),
            "name": row.name,
            "status": row.status,
            "start": row.start.isoformat(),
            "end": row.end.isoformat(),
            "owner": row.owner,
            "currency": row.currency,
            "spend": _number(row.spend),
            "revenue": _number(row.revenue),
            "roas": _number(row.roas),
            "retrospective": row.retrospective
            if isinstance(row.retrospective, str)
            else None,
        }
        for row in frame.itertuples()
    ]
    if args.json:
        _print_json(records)
        return EXIT_OK
    for rec in records:
        print(
            f"{rec['id']:>5}  {rec['status']:<10} {rec['start']} - {rec['end']}  "
            f"{rec['name']}"
        )
    return EXIT_OK


def _campaign_id(session: Session, actor: Actor, ref: str) -> int:
    """A campaign named by id or by its exact name, among those the actor sees."""
    if ref.strip().isdigit():
        return int(ref)
    frame = campaigns.list_campaigns(session, actor=actor)
    matches = [int(i) for i in frame.loc[frame["name"] == ref.strip(), "id"]]
    if not matches:
        raise NotFound(f"No campaign named {ref!r} that you can see.")
    if len(matches) > 1:
        ids = ", ".join(str(i) for i in matches)
        raise ValidationFailed(
            f"{len(matches)} campaigns are named {ref!r}: ids {ids}."
        )
    return matches[0]


def cmd_create_retrospective(args: argparse.Namespace) -> int:
    with session_scope() as session:
        actor = _actor(session, args)
        row = retrospectives.create_retrospective(
            session,
            actor=actor,
            campaign_id=_campaign_id(session, actor, args.campaign),
        )
    print(row.id)
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    with session_scope() as session:
        actor = _actor(session, args)
        result = retrospectives.generate_insights(
            session,
            actor=actor,
            retrospective_id=args.retrospective,
            regenerate=args.regenerate,
        )
    if result.error:
        print(
            f"error: generating retrospective {result.retrospective_id} failed: "
            f"{result.error}",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    print(
        f"Retrospective {result.retrospective_id} is {result.status}: "
        f"{result.problems} insights, {result.not_enough_data} without enough data, "
        f"{result.manual_kept} manual kept."
    )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    with read_session() as session:
        actor = _actor(session, args)
        detail = retrospectives.get_retrospective(
            session, actor=actor, retrospective_id=args.retrospective
        )
    data = retrospectives.detail_as_dict(detail)
    if args.json:
        _print_json(data)
        return EXIT_OK
    print(f"#{data['id']} {data['campaign']['name']} ({data['status']})")
    print(f"period {data['period']['start']} - {data['period']['end']}")
    for insight in data["insights"]:
        mark = " (dismissed)" if insight["dismissed"] else ""
        print(f"  [{insight['severity']:<8}] {insight['title']}{mark}")
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    with session_scope() as session:
        row = review.submit(
            session,
            actor=_actor(session, args),
            retrospective_id=args.retrospective,
            summary=args.summary,
            no_findings_note=args.no_findings,
        )
    print(f"Retrospective {row.id} submitted for approval.")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    with session_scope() as session:
        actor = _actor(session, args)
        row = review.approve(
            session,
            actor=actor,
            retrospective_id=args.retrospective,
            comment=args.comment or "",
        )
    print(f"Retrospective {row.id} approved.")
    # A large report is left to a job; the command line has no scheduler to run it.
    with read_session() as session:
        render = jobs.latest_job(
            session, actor=actor, kind=reports.RENDER_JOB_KIND, target=str(row.id)
        )
    if render is not None and render.status == "queued":
        for done in jobs.run_in_foreground(render.id):
            print(done.error or done.message)
    return EXIT_OK


def cmd_request_changes(args: argparse.Namespace) -> int:
    with session_scope() as session:
        row = review.request_changes(
            session,
            actor=_actor(session, args),
            retrospective_id=args.retrospective,
            comment=args.comment,
        )
    print(f"Retrospective {row.id} sent back to the analyst.")
    return EXIT_OK


def cmd_reopen(args: argparse.Namespace) -> int:
    with session_scope() as session:
        row = review.reopen(
            session,
            actor=_actor(session, args),
            retrospective_id=args.retrospective,
            reason=args.reason,
        )
    print(f"Retrospective {row.id} reopened; it is a draft again.")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    # A write session: an approved report missing its stored file is stored again.
    with session_scope() as session:
        report = reports.report_pdf(
            session, actor=_actor(session, args), retrospective_id=args.retrospective
        )
    output = Path(args.output)
    if output.is_dir():
        output = output / report.file_name
    output.write_bytes(report.data)
    kind = "approved report" if report.approved else "DRAFT report"
    print(f"Wrote {kind} of retrospective {args.retrospective} to {output}")
    print(f"  file SHA-256:    {report.sha256}")
    if report.fingerprint:
        print(f"  content SHA-256: {report.fingerprint} (printed in its footer)")
    return EXIT_OK


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else round(number, 6)


def cmd_audit(args: argparse.Namespace) -> int:
    with read_session() as session:
        actor = _actor(session, args)
        frame = audit.list_events(
            session,
            actor=actor,
            filters=audit.AuditFilter(user=args.user or "", action=args.action or ""),
        )
    if args.json:
        _print_json(frame.to_dict(orient="records"))
        return EXIT_OK
    for row in frame.itertuples():
        print(
            f"{row.at:%Y-%m-%d %H:%M:%S}  {row.username:<12} {row.action:<22} "
            f"{row.target_type} {row.target_id}"
        )
    return EXIT_OK


IMPORT_ERRORS_SHOWN = 10


def cmd_import_kpis(args: argparse.Namespace) -> int:
    paths = [Path(name) for name in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValidationFailed(f"FILE: no such file: {', '.join(missing)}")
    options = imports.ImportOptions(
        format=args.format,
        create_campaigns=args.create_campaigns,
        keep_valid=args.keep_valid,
        currency=args.currency,
    )
    summaries = []
    for path in paths:
        # One transaction per file: a rejected file leaves the others imported.
        with session_scope() as session:
            summaries.append(
                imports.import_file(
                    session,
                    actor=_actor(session, args),
                    file_name=path.name,
                    data=path.read_bytes(),
                    options=options,
                )
            )
    if args.json:
        _print_json([summary.to_dict() for summary in summaries])
    else:
        for summary in summaries:
            _print_import(summary)
    rejected = [s for s in summaries if not s.ok]
    for summary in rejected:
        _print_rejection(summary)
    return EXIT_REFUSED if rejected else EXIT_OK


def _print_import(summary: imports.ImportSummary) -> None:
    print(
        f"{summary.file_name} ({summary.format or 'unknown format'}): "
        f"{summary.status}; {summary.rows_read} rows read, {summary.inserted} "
        f"inserted, {summary.updated} updated, {summary.rejected} rejected"
    )
    for campaign in summary.unknown_campaigns:
        state = (
            f"created with id {campaign.created_id}"
            if campaign.created_id
            else "not in the database"
        )
        print(f"  campaign {campaign.name or campaign.external_id!r}: {state}")
    for line in summary.messages("warning", limit=IMPORT_ERRORS_SHOWN):
        print(f"  warning: {line}")


def _print_rejection(summary: imports.ImportSummary) -> None:
    errors = summary.report.get("errors", 0)
    print(
        f"error: {summary.file_name} was rejected ({errors} errors); "
        "no KPI rows were written.",
        file=sys.stderr,
    )
    for line in summary.messages("error", limit=IMPORT_ERRORS_SHOWN):
        print(f"  {line}", file=sys.stderr)
    if any(not c.created_id for c in summary.unknown_campaigns):
        print(
            "  Unknown campaigns can be created with --create-campaigns; "
            "--keep-valid imports the rows without errors.",
            file=sys.stderr,
        )


# -- background jobs ------------------------------------------------------------

FOREGROUND_KINDS = (
    "generate",
    "render-report",
    "create-due-retrospectives",
    "cleanup",
    "import-inbox",
)


def cmd_run_job(args: argparse.Namespace) -> int:
    with session_scope() as session:
        actor = _actor(session, args)
        row, queued = jobs.enqueue(
            session, actor=actor, kind=args.kind, target=args.target
        )
    if not queued and row.status == "running":
        raise ValidationFailed(
            f"job {row.id} ({row.kind} {row.target or ''}) is running already; "
            "not started again."
        )
    runs = jobs.run_in_foreground(row.id)
    if not runs:
        raise ValidationFailed(f"job {row.id} was started by another process.")
    for run in runs:
        _print_job(run)
    failed = [run for run in runs if run.status != "succeeded"]
    for run in failed:
        print(f"error: job {run.id} ({run.kind}) failed: {run.error}", file=sys.stderr)
    return EXIT_REFUSED if failed else EXIT_OK


def _print_job(job: jobs.JobRow) -> None:
    seconds = f" in {job.seconds:.1f} s" if job.seconds is not None else ""
    target = f" {job.target}" if job.target else ""
    print(f"job {job.id} {job.kind}{target}: {job.status}{seconds}. {job.message}")


def cmd_jobs(args: argparse.Namespace) -> int:
    with read_session() as session:
        rows = jobs.list_jobs(session, actor=_actor(session, args))
    if args.json:
        _print_json([row.to_dict() for row in rows])
        return EXIT_OK
    for row in rows:
        started = f"{row.started_at:%Y-%m-%d %H:%M:%S}" if row.started_at else "-"
        print(
            f"{row.id:>5}  {row.status:<9} {row.kind:<26} {row.target or '':<10} "
            f"{started}  {row.error or row.message}"
        )
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    # The worker is the scheduling process whatever RETRO_SCHEDULER_ENABLED
    # says: that setting is what the app processes beside it run with.
    logging.getLogger("core").setLevel(logging.INFO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    scheduler = jobs.start_scheduler(even_if_disabled=True)
    print("Worker running the scheduler; Ctrl-C stops it.", flush=True)
    try:
        stop.wait(args.stop_after)
    finally:
        jobs.stop_scheduler(scheduler)
    print("Worker stopped.")
    return EXIT_OK


def _add_job_commands(commands: Any) -> None:
    p = commands.add_parser("run-job", help="run a background job here and now")
    p.add_argument(
        "kind",
        metavar="KIND",
        choices=FOREGROUND_KINDS,
        help=", ".join(FOREGROUND_KINDS),
    )
    p.add_argument(
        "--target", metavar="ID", help="retrospective id (generate, render-report)"
    )
    _add_as(p)
    p.set_defaults(func=cmd_run_job)

    p = commands.add_parser("jobs", help="background jobs, failed first (admin only)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    _add_as(p)
    p.set_defaults(func=cmd_jobs)

    p = commands.add_parser(
        "worker", help="run the scheduler without the UI (one process only)"
    )
    p.add_argument(
        "--stop-after",
        type=float,
        metavar="SECONDS",
        help="stop after this many seconds (smoke tests); default: run until stopped",
    )
    p.set_defaults(func=cmd_worker)


# -- parser -----------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.cli",
        description="Retrospective Engine from the command line.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("init-db", help="create or upgrade the database schema")
    p.add_argument(
        "--demo",
        action="store_true",
        help="on an empty database also create demo users and demo campaigns",
    )
    p.set_defaults(func=cmd_init_db)

    p = commands.add_parser("create-user", help="create a user (admin only)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--email", required=True)
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    _add_as(p, required=False)
    p.set_defaults(func=cmd_create_user)

    p = commands.add_parser("seed-demo", help="create demo campaigns (admin only)")
    p.add_argument(
        "--count",
        type=_count,
        required=True,
        help="how many campaigns (0 with --clear only removes demo data)",
    )
    p.add_argument("--user", help="owner of the campaigns (default: the demo viewer)")
    p.add_argument("--clear", action="store_true", help="remove demo data first")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    _add_as(p)
    p.set_defaults(func=cmd_seed_demo)

    p = commands.add_parser("list-campaigns", help="campaigns you may see")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    _add_as(p)
    p.set_defaults(func=cmd_list_campaigns)

    p = commands.add_parser(
        "import-kpis", help="import KPI exports (Google Ads, Meta, TikTok, internal)"
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV or XLSX exports")
    p.add_argument(
        "--format",
        choices=importers.FORMATS,
        help="the files' format (default: detected from the header row)",
    )
    p.add_argument(
        "--create-campaigns",
        action="store_true",
        help="create campaigns the files name but the database lacks",
    )
    p.add_argument(
        "--currency",
        metavar="CODE",
        help="currency of created campaigns when a file names none, e.g. EUR",
    )
    p.add_argument(
        "--keep-valid",
        action="store_true",
        help="import the rows without errors even when others have errors",
    )
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    _add_as(p)
    p.set_defaults(func=cmd_import_kpis)

    p = commands.add_parser(
        "create-retrospective", help="open the retrospective of a campaign"
    )
    p.add_argument("campaign", metavar="CAMPAIGN", help="campaign id or exact name")
    _add_as(p)
    p.set_defaults(func=cmd_create_retrospective)

    p = commands.add_parser("generate", help="generate a retrospective's insights")
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument(
        "--regenerate",
        action="store_true",
        help="replace the rule insights (manual insights and dismissals are kept)",
    )
    _add_as(p)
    p.set_defaults(func=cmd_generate)

    p = commands.add_parser("show", help="a retrospective with KPIs and insights")
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_as(p)
    p.set_defaults(func=cmd_show)

    p = commands.add_parser("submit", help="submit a retrospective for approval")
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument("--summary", required=True, help="the analyst's summary")
    p.add_argument(
        "--no-findings",
        metavar="NOTE",
        help="why there is nothing to report, when no finding is left open",
    )
    _add_as(p)
    p.set_defaults(func=cmd_submit)

    p = commands.add_parser("approve", help="approve a submitted retrospective")
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument("--comment", help="an optional note with the approval")
    _add_as(p)
    p.set_defaults(func=cmd_approve)

    p = commands.add_parser(
        "request-changes", help="send a submitted retrospective back with a comment"
    )
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument("--comment", required=True, help="what the analyst should change")
    _add_as(p)
    p.set_defaults(func=cmd_request_changes)

    p = commands.add_parser(
        "reopen", help="return an approved retrospective to draft (admin only)"
    )
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument("--reason", required=True, help="why it is reopened (audited)")
    _add_as(p)
    p.set_defaults(func=cmd_reopen)

    p = commands.add_parser(
        "report", help="write the PDF of a retrospective (drafts carry a DRAFT mark)"
    )
    p.add_argument("retrospective", metavar="RETRO", type=int, help="retrospective id")
    p.add_argument(
        "--output",
        required=True,
        metavar="FILE.pdf",
        help="where to write it (a folder: under the download name)",
    )
    _add_as(p)
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("audit", help="the audit log (admin only)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--user", help="only events of users whose name contains this")
    p.add_argument("--action", help="only actions containing this, e.g. login.failed")
    _add_as(p)
    p.set_defaults(func=cmd_audit)

    _add_job_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (DomainError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return result


if __name__ == "__main__":
    sys.exit(main())
