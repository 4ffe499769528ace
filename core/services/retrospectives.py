"""Retrospectives: create one per campaign, generate its insights, read it back.

Every status change goes through `change_status`, which asks the state machine
of `core.workflow` for the next status; the review workflow uses it too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from core import metrics
from core import rules as engine
from core.errors import InvalidTransition, NotFound, StaleVersion, ValidationFailed
from core.models import (
    Campaign,
    Insight,
    KpiDaily,
    Retrospective,
    RetroStatus,
    User,
    utcnow,
)
from core.services import audit, campaigns, evaluation
from core.services.permissions import Action, Actor, require
from core.workflow import StateContext, Step, next_status

logger = logging.getLogger(__name__)

# Called with a percentage (0-100) and a short message while generating.
Progress = Callable[[int, str], None]

S = RetroStatus
# Longest error text kept on a failed retrospective.
MAX_ERROR_LENGTH = 2000


# -- plain values for pages and the CLI ---------------------------------------


@dataclass(frozen=True)
class RetroRow:
    """A retrospective in a list: plain values, counts of its open insights."""

    id: int
    campaign_id: int
    campaign: str
    currency: str
    status: str
    title: str
    period_start: date
    period_end: date
    created_at: datetime
    created_by: str
    version: int
    error: str | None
    problems: int = 0
    not_enough_data: int = 0
    top_severity: str | None = None
    summary: str = ""
    no_findings_note: str = ""
    submitted_by: str | None = None
    submitted_by_id: int | None = None
    submitted_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_comment: str = ""
    # SHA-256 of the stored PDF of an approved retrospective.
    report_sha256: str | None = None


@dataclass(frozen=True)
class InsightRow:
    """One insight with its evidence."""

    id: int
    rule_key: str | None
    rule_version: int | None
    source: str | None
    metric: str | None
    finding: str
    severity: str
    observed: float | None
    threshold: float | None
    interval: tuple[float, float] | None
    sample_size: float | None
    title: str
    text: str
    actions: tuple[str, ...]
    origin: str
    dismissed: bool
    dismissed_reason: str
    edited_at: datetime | None
    edited_by: str | None = None


@dataclass(frozen=True)
class RetroDetail:
    """A retrospective with its KPI summary and insights, for one page or command."""

    retro: RetroRow
    # One row per source plus the whole campaign (source missing); facts and metrics.
    kpis: pd.DataFrame
    insights: tuple[InsightRow, ...]
    # True when read from the snapshot frozen at approval, not from live data.
    frozen: bool = False


@dataclass(frozen=True)
class GenerationResult:
    retrospective_id: int
    status: str
    problems: int = 0
    not_enough_data: int = 0
    manual_kept: int = 0
    error: str | None = None


# -- status -------------------------------------------------------------------


def state_context(session: Session, retro: Retrospective) -> StateContext:
    """Who decided and when, for refusal messages."""

    def name(user_id: int | None) -> str | None:
        user = session.get(User, user_id) if user_id else None
        return user.name if user else None

    return StateContext(
        approved_by=name(retro.approved_by_id),
        approved_at=retro.approved_at,
        submitted_by=name(retro.submitted_by_id),
        submitted_at=retro.submitted_at,
    )


STALE_MESSAGE = (
    "Someone else changed this retrospective first; reload to see their change."
)


def check_version(retro: Retrospective, expected_version: int | None) -> None:
    """StaleVersion unless the retrospective is still at the version shown."""
    if expected_version is not None and retro.version != expected_version:
        raise StaleVersion(STALE_MESSAGE)


def change_status(
    session: Session,
    *,
    retro: Retrospective,
    step: Step,
    actor: Actor | None,
    error: str | None = None,
    expected_version: int | None = None,
    fields: Mapping[str, Any] | None = None,
    audit_action: str | None = "retrospective.status",
    details: Mapping[str, Any] | None = None,
) -> RetroStatus:
    """Take one workflow step: check it, write the new status, audit it.

    `expected_version` is the version the user saw (None: the one just read).
    The UPDATE only matches that version, so of two people acting at once
    exactly one succeeds; the other gets StaleVersion. `fields` are written in
    the same UPDATE; `details` go into the audit event's after values.
    """
    check_version(retro, expected_version)
    to = next_status(retro.status, step, state_context(session, retro))
    before = {"status": retro.status, "version": retro.version}
    values: dict[str, Any] = {
        "status": to.value,
        "version": retro.version + 1,
        "updated_at": utcnow(),
        "error": error,
        **(fields or {}),
    }
    result = session.execute(
        update(Retrospective)
        .where(
            col(Retrospective.id) == retro.id,
            col(Retrospective.version) == retro.version,
        )
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    if getattr(result, "rowcount", 0) != 1:
        raise StaleVersion(STALE_MESSAGE)
    session.refresh(retro)
    if audit_action is not None:
        audit.record(
            session,
            actor=actor,
            action=audit_action,
            target_type="retrospective",
            target_id=retro.id,
            before=before,
            after={
                "status": to.value,
                "version": retro.version,
                "error": error,
                **(details or {}),
            },
        )
    return to


# -- reading ------------------------------------------------------------------


def visible_retrospective(
    session: Session, *, actor: Actor, retro_id: int
) -> Retrospective:
    retro = session.get(Retrospective, retro_id)
    if retro is None:
        raise NotFound(f"Retrospective {retro_id} does not exist.")
    campaigns.visible_campaign(session, actor=actor, campaign_id=retro.campaign_id)
    return retro


def _insight_counts(
    session: Session, retro_ids: list[int]
) -> dict[int, tuple[int, int, str | None]]:
    """Per retrospective: open problems, not-enough-data findings, top severity."""
    if not retro_ids:
        return {}
    query = (
        select(
            Insight.retrospective_id, Insight.finding, Insight.severity, func.count()
        )
        .where(col(Insight.retrospective_id).in_(retro_ids), ~col(Insight.dismissed))
        .group_by(
            col(Insight.retrospective_id), col(Insight.finding), col(Insight.severity)
        )
    )
    counts: dict[int, tuple[int, int, str | None]] = {}
    for retro_id, finding, severity, number in session.execute(query).all():
        problems, thin, top = counts.get(retro_id, (0, 0, None))
        if finding == engine.Finding.NOT_ENOUGH_DATA:
            thin += number
        else:
            problems += number
            if top is None or engine.severity_rank(severity) > engine.severity_rank(
                top
            ):
                top = severity
        counts[retro_id] = (problems, thin, top)
    return counts


def _user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in user_ids if i is not None}
    if not wanted:
        return {}
    query = select(User.id, User.name).where(col(User.id).in_(wanted))
    return {int(uid): name for uid, name in session.execute(query).all()}


def rows_of(
    session: Session, pairs: Iterable[tuple[Retrospective, Campaign, str | None]]
) -> list[RetroRow]:
    pairs = list(pairs)
    counts = _insight_counts(session, [int(r.id or 0) for r, _, _ in pairs])
    names = _user_names(
        session,
        [
            uid
            for r, _, _ in pairs
            for uid in (r.submitted_by_id, r.approved_by_id, r.decided_by_id)
        ],
    )
    out = []
    for retro, campaign, creator in pairs:
        assert retro.id is not None
        problems, thin, top = counts.get(retro.id, (0, 0, None))
        out.append(
            RetroRow(
                id=retro.id,
                campaign_id=retro.campaign_id,
                campaign=campaign.name,
                currency=campaign.currency,
                status=retro.status,
                title=retro.title,
                period_start=retro.period_start,
                period_end=retro.period_end,
                created_at=retro.created_at,
                created_by=creator or "",
                version=retro.version,
                error=retro.error,
                problems=problems,
                not_enough_data=thin,
                top_severity=top,
                summary=retro.summary,
                no_findings_note=retro.no_findings_note,
                submitted_by=names.get(retro.submitted_by_id or 0),
                submitted_by_id=retro.submitted_by_id,
                submitted_at=retro.submitted_at,
                approved_by=names.get(retro.approved_by_id or 0),
                approved_at=retro.approved_at,
                decided_by=names.get(retro.decided_by_id or 0),
                decided_at=retro.decided_at,
                decision_comment=retro.decision_comment,
                report_sha256=retro.report_sha256,
            )
        )
    return out


def list_retrospectives(
    session: Session, *, actor: Actor, statuses: Iterable[str] = ()
) -> list[RetroRow]:
    """Retrospectives the actor may see, newest first; viewers see their own."""
    query = (
        select(Retrospective, Campaign, User.name)
        .join(Campaign, col(Campaign.id) == col(Retrospective.campaign_id))
        .outerjoin(User, col(User.id) == col(Retrospective.created_by_id))
        .order_by(col(Retrospective.created_at).desc(), col(Retrospective.id).desc())
    )
    if not actor.can(Action.SEE_ALL):
        query = query.where(col(Campaign.owner_id) == actor.id)
    wanted = list(statuses)
    if wanted:
        query = query.where(col(Retrospective.status).in_(wanted))
    return rows_of(session, [tuple(row) for row in session.execute(query).all()])


def row_of(session: Session, retro: Retrospective) -> RetroRow:
    campaign = session.get(Campaign, retro.campaign_id)
    assert campaign is not None
    creator = session.get(User, retro.created_by_id) if retro.created_by_id else None
    return rows_of(session, [(retro, campaign, creator.name if creator else None)])[0]


def _insight_row(
    insight: Insight, editors: Mapping[int, str] | None = None
) -> InsightRow:
    assert insight.id is not None
    interval = None
    if insight.interval_low is not None and insight.interval_high is not None:
        interval = (insight.interval_low, insight.interval_high)
    return InsightRow(
        id=insight.id,
        rule_key=insight.rule_key,
        rule_version=insight.rule_version,
        source=insight.source,
        metric=insight.metric,
        finding=insight.finding,
        severity=insight.severity,
        observed=insight.observed,
        threshold=insight.threshold,
        interval=interval,
        sample_size=insight.sample_size,
        title=insight.title,
        text=insight.text,
        actions=tuple(insight.actions or ()),
        origin=insight.origin,
        dismissed=insight.dismissed,
        dismissed_reason=insight.dismissed_reason,
        edited_at=insight.edited_at,
        edited_by=(editors or {}).get(insight.edited_by_id or 0),
    )


def _sorted_insights(insights: Iterable[Insight]) -> list[Insight]:
    """Problems first, most severe first; whole campaign before its sources."""
    return sorted(
        insights,
        key=lambda i: (
            i.finding == engine.Finding.NOT_ENOUGH_DATA,
            -engine.severity_rank(i.severity),
            i.source is not None,
            i.source or "",
            i.metric or "",
            i.id or 0,
        ),
    )


def period_kpis(
    session: Session, *, campaign_id: int, start: date, end: date
) -> pd.DataFrame:
    """Facts and metrics per source plus the whole campaign, over a period."""
    sums = evaluation.campaign_sums(
        session, campaign_ids=[campaign_id], start=start, end=end
    )
    frame = metrics.add_metrics(sums.drop(columns=["campaign_id"]))
    order = frame["source"].isna().map({True: 1, False: 0})
    return (
        frame.assign(_order=order)
        .sort_values(["_order", "source"], na_position="last")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def get_retrospective(
    session: Session, *, actor: Actor, retrospective_id: int
) -> RetroDetail:
    """One retrospective with KPIs per source and overall, and its insights.

    Once approved it is read from the snapshot frozen at approval, so later
    imports and rule changes do not change what it shows.
    """
    retro = visible_retrospective(session, actor=actor, retro_id=retrospective_id)
    row = row_of(session, retro)
    if retro.status == S.APPROVED and retro.snapshot:
        return RetroDetail(
            retro=row,
            kpis=snapshot_kpis(retro.snapshot),
            insights=snapshot_insights(retro.snapshot),
            frozen=True,
        )
    return RetroDetail(
        retro=row,
        kpis=live_kpis(session, retro),
        insights=tuple(live_insights(session, retro)),
    )


def live_kpis(session: Session, retro: Retrospective) -> pd.DataFrame:
    return period_kpis(
        session,
        campaign_id=retro.campaign_id,
        start=retro.period_start,
        end=retro.period_end,
    )


def live_insights(session: Session, retro: Retrospective) -> list[InsightRow]:
    insights = session.scalars(
        select(Insight).where(Insight.retrospective_id == retro.id)
    ).all()
    editors = _user_names(session, [i.edited_by_id for i in insights])
    return [_insight_row(i, editors) for i in _sorted_insights(insights)]


# Facts the report's daily chart needs, per source and day (ROAS is derived).
DAILY_FACTS = ("spend", "revenue")


def daily_kpis(session: Session, retro: Retrospective) -> pd.DataFrame:
    """Spend and revenue per source and day over the retrospective's period."""
    by = ("source", "day")
    statement = metrics.aggregate_statement(
        by=by,
        campaign_ids=[retro.campaign_id],
        start=retro.period_start,
        end=retro.period_end,
    )
    frame = metrics.frame_of_rows(session.execute(statement).all(), by)
    return frame[[*by, *DAILY_FACTS]].sort_values(list(by)).reset_index(drop=True)


# -- snapshot -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-ready value: no NaN, dates as ISO text."""
    number = metrics.as_number(value) if isinstance(value, float) else value
    if isinstance(number, datetime | date):
        return number.isoformat()
    return number


def make_snapshot(
    kpis: pd.DataFrame,
    insights: Iterable[InsightRow],
    daily: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """What approval freezes: the KPI rows (per source and overall), the insights,
    and the daily facts the report charts."""
    kpi_rows = [
        {key: _plain(value) for key, value in record.items()}
        for record in kpis.to_dict("records")
    ]
    insight_rows = []
    for insight in insights:
        record = {key: _plain(value) for key, value in asdict(insight).items()}
        record["actions"] = list(insight.actions)
        record["interval"] = list(insight.interval) if insight.interval else None
        insight_rows.append(record)
    snapshot: dict[str, Any] = {"kpis": kpi_rows, "insights": insight_rows}
    if daily is not None:
        snapshot["daily"] = [
            {key: _plain(value) for key, value in record.items()}
            for record in daily.to_dict("records")
        ]
    return snapshot


def snapshot_hash(snapshot: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of the snapshot's canonical JSON: names an approval in the history."""
    if not snapshot:
        return None
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def snapshot_kpis(snapshot: Mapping[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(list(snapshot.get("kpis") or []))
    # JSON has no NaN: "no value" came back as None; numbers become floats again.
    return frame.astype({c: "float64" for c in frame.columns if c != "source"})


def snapshot_daily(snapshot: Mapping[str, Any]) -> pd.DataFrame:
    """The daily facts frozen at approval; empty for snapshots taken before."""
    frame = pd.DataFrame(
        list(snapshot.get("daily") or []), columns=["source", "day", *DAILY_FACTS]
    )
    frame["day"] = [date.fromisoformat(str(day)) for day in frame["day"]]
    return frame.astype(dict.fromkeys(DAILY_FACTS, "float64"))


def snapshot_insights(snapshot: Mapping[str, Any]) -> tuple[InsightRow, ...]:
    out = []
    for record in snapshot.get("insights") or []:
        values = dict(record)
        values["actions"] = tuple(values.get("actions") or ())
        interval = values.get("interval")
        values["interval"] = tuple(interval) if interval else None
        edited = values.get("edited_at")
        values["edited_at"] = datetime.fromisoformat(edited) if edited else None
        out.append(InsightRow(**values))
    return tuple(out)


# -- creating -----------------------------------------------------------------


def _kpi_days(session: Session, campaign_id: int, start: date, end: date) -> int:
    query = select(func.count()).where(
        KpiDaily.campaign_id == campaign_id,
        col(KpiDaily.day) >= start,
        col(KpiDaily.day) <= end,
    )
    return int(session.execute(query).scalar_one())


def create_retrospective(
    session: Session,
    *,
    actor: Actor,
    campaign_id: int,
    period_start: date | None = None,
    period_end: date | None = None,
) -> RetroRow:
    """Open the retrospective of a campaign, over its run unless told otherwise.

    Refused when the campaign has one already, or has no KPI data in the period.
    """
    require(actor, Action.CREATE)
    campaigns.visible_campaign(session, actor=actor, campaign_id=campaign_id)
    # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises
    # writers): two people creating at once cannot both pass the check below.
    campaign = session.get(Campaign, campaign_id, with_for_update=True)
    assert campaign is not None
    existing = session.scalars(
        select(Retrospective).where(Retrospective.campaign_id == campaign_id)
    ).first()
    if existing is not None:
        raise ValidationFailed(
            f"Campaign {campaign.name!r} already has retrospective #{existing.id} "
            f"({existing.status}); open that one instead."
        )
    start = period_start or campaign.start_date
    end = period_end or campaign.end_date
    if start > end:
        raise ValidationFailed(f"period: the start {start} is after the end {end}.")
    if not _kpi_days(session, campaign_id, start, end):
        raise ValidationFailed(
            f"Campaign {campaign.name!r} has no KPI data from {start} to {end}; "
            "import its platform exports first."
        )

    retro = Retrospective(
        campaign_id=campaign_id,
        status=S.PENDING.value,
        title=f"Retrospective: {campaign.name}",
        period_start=start,
        period_end=end,
        created_by_id=actor.id,
    )
    session.add(retro)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="retrospective.create",
        target_type="retrospective",
        target_id=retro.id,
        after={"campaign_id": campaign_id, "period": [str(start), str(end)]},
    )
    logger.info("retrospective %s created for campaign %s", retro.id, campaign_id)
    return row_of(session, retro)


# -- generating ---------------------------------------------------------------


def _check_can_generate(
    session: Session, retro: Retrospective, *, regenerate: bool
) -> None:
    # Refuses approved, in-review and running ones with a message to act on.
    next_status(retro.status, Step.GENERATE, state_context(session, retro))
    has_insights = session.scalars(
        select(Insight.id).where(Insight.retrospective_id == retro.id)
    ).first()
    if has_insights is not None and not regenerate:
        raise InvalidTransition(
            f"Retrospective #{retro.id} has insights already; regenerate to replace "
            "the rule insights (manual ones are kept)."
        )


def _report(progress: Progress | None, percent: int, message: str) -> None:
    if progress is not None:
        progress(percent, message)


def generate_insights(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    regenerate: bool = False,
    progress: Progress | None = None,
    expected_version: int | None = None,
) -> GenerationResult:
    """Evaluate every enabled rule on the retrospective's KPIs and store insights.

    Refusals (permission, status, existing insights, no KPI data) raise and
    write nothing. An unexpected error while evaluating or writing leaves the
    retrospective `failed` with the error, keeps its previous insights, and is
    returned in the result rather than raised, so the failure is recorded.
    """
    require(actor, Action.CREATE)
    retro = visible_retrospective(session, actor=actor, retro_id=retrospective_id)
    check_version(retro, expected_version)
    _check_can_generate(session, retro, regenerate=regenerate)
    _report(progress, 5, "Summing KPIs")
    kpis = _period_sums(session, retro)

    change_status(session, retro=retro, step=Step.GENERATE, actor=actor)
    try:
        with session.begin_nested():
            result = _evaluate_and_write(
                session, retro, kpis, regenerate=regenerate, progress=progress
            )
    except Exception as exc:
        logger.exception("generating retrospective %s failed", retro.id)
        return _record_failure(session, retro, actor, exc)

    change_status(session, retro=retro, step=Step.FINISH_GENERATION, actor=actor)
    _record_success(session, retro, actor, result, regenerate=regenerate)
    _report(progress, 100, "Done")
    return result


def _period_sums(session: Session, retro: Retrospective) -> pd.DataFrame:
    kpis = evaluation.campaign_sums(
        session,
        campaign_ids=[retro.campaign_id],
        start=retro.period_start,
        end=retro.period_end,
    )
    if kpis["source"].notna().sum() == 0:
        raise ValidationFailed(
            f"Retrospective #{retro.id} has no KPI data from {retro.period_start} "
            f"to {retro.period_end}; import the platform exports first."
        )
    return kpis


def _record_failure(
    session: Session, retro: Retrospective, actor: Actor, exc: Exception
) -> GenerationResult:
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    # The savepoint was rolled back: read the status and version as stored.
    session.refresh(retro)
    change_status(session, retro=retro, step=Step.FAIL, actor=actor, error=error)
    assert retro.id is not None
    return GenerationResult(retrospective_id=retro.id, status=S.FAILED, error=error)


def _record_success(
    session: Session,
    retro: Retrospective,
    actor: Actor,
    result: GenerationResult,
    *,
    regenerate: bool,
) -> None:
    audit.record(
        session,
        actor=actor,
        action="retrospective.generate",
        target_type="retrospective",
        target_id=retro.id,
        after={
            "regenerate": regenerate,
            "problems": result.problems,
            "not_enough_data": result.not_enough_data,
            "manual_kept": result.manual_kept,
        },
    )
    logger.info(
        "retrospective %s generated: %s problems, %s without enough data",
        retro.id,
        result.problems,
        result.not_enough_data,
    )


@dataclass(frozen=True)
class Evaluation:
    """The findings of every enabled rule on a retrospective's KPIs, not yet stored."""

    findings: pd.DataFrame
    actions: Mapping[str, tuple[str, ...]]


def _evaluate(
    session: Session,
    retro: Retrospective,
    kpis: pd.DataFrame,
    progress: Progress | None,
) -> Evaluation:
    specs = evaluation.stored_rules(session)
    _report(progress, 30, f"Evaluating {len(specs)} rules")
    findings = engine.evaluate(kpis, specs, keys=evaluation.CAMPAIGN_KEYS)
    return Evaluation(findings, {spec.key: tuple(spec.actions) for spec in specs})


def _evaluate_and_write(
    session: Session,
    retro: Retrospective,
    kpis: pd.DataFrame,
    *,
    regenerate: bool,
    progress: Progress | None,
) -> GenerationResult:
    result = _evaluate(session, retro, kpis, progress)
    _report(progress, 60, f"Writing {len(result.findings)} insights")
    return _write_findings(session, retro, result, regenerate=regenerate)


def _write_findings(
    session: Session, retro: Retrospective, result: Evaluation, *, regenerate: bool
) -> GenerationResult:
    assert retro.id is not None
    dismissed = _forget_rule_insights(session, retro.id) if regenerate else {}
    campaign = session.get(Campaign, retro.campaign_id)
    currency = campaign.currency if campaign else ""
    period = (retro.period_start, retro.period_end)
    records = [r._asdict() for r in result.findings.itertuples(index=False)]
    for record in records:
        record["actions"] = result.actions.get(str(record["rule_key"]), ())
    session.add_all(
        _insight(retro.id, record, currency, period, dismissed) for record in records
    )
    session.flush()
    manual = session.scalars(
        select(func.count()).where(
            Insight.retrospective_id == retro.id, Insight.origin == "manual"
        )
    ).one()
    problems = sum(r["finding"] == engine.Finding.TRIGGERED for r in records)
    return GenerationResult(
        retrospective_id=retro.id,
        status=S.DRAFT,
        problems=problems,
        not_enough_data=len(records) - problems,
        manual_kept=int(manual),
    )


# -- generating in steps (background jobs) ------------------------------------
#
# A job generates in three transactions, so that no write lock is held while
# the rules are evaluated: on SQLite that lock would also block the job's own
# progress updates, which other sessions must be able to read meanwhile. The
# status `generating` keeps everyone else's edits out between the steps.


def check_can_generate(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    regenerate: bool = True,
    expected_version: int | None = None,
) -> None:
    """Refuse now what generating would refuse, before a job is queued for it.

    With the version a page showed, a click on a retrospective someone changed
    since is refused too: regenerating would replace what they just edited.
    """
    require(actor, Action.CREATE)
    retro = visible_retrospective(session, actor=actor, retro_id=retrospective_id)
    check_version(retro, expected_version)
    _check_can_generate(session, retro, regenerate=regenerate)


def start_generation(
    session: Session, *, actor: Actor, retrospective_id: int, regenerate: bool
) -> None:
    """Step 1: check everything generating needs, then mark it `generating`."""
    require(actor, Action.CREATE)
    retro = visible_retrospective(session, actor=actor, retro_id=retrospective_id)
    _check_can_generate(session, retro, regenerate=regenerate)
    _period_sums(session, retro)
    change_status(session, retro=retro, step=Step.GENERATE, actor=actor)


def evaluate_generation(
    session: Session, *, retrospective_id: int, progress: Progress | None = None
) -> Evaluation:
    """Step 2, read-only: sum the KPIs and evaluate the rules."""
    retro = session.get(Retrospective, retrospective_id)
    if retro is None:
        raise NotFound(f"Retrospective {retrospective_id} does not exist.")
    _report(progress, 5, "Summing KPIs")
    return _evaluate(session, retro, _period_sums(session, retro), progress)


def finish_generation(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    result: Evaluation,
    regenerate: bool,
) -> GenerationResult:
    """Step 3: store the findings and make the retrospective a draft."""
    retro = session.get(Retrospective, retrospective_id, with_for_update=True)
    if retro is None:
        raise NotFound(f"Retrospective {retrospective_id} does not exist.")
    next_status(retro.status, Step.FINISH_GENERATION, state_context(session, retro))
    generated = _write_findings(session, retro, result, regenerate=regenerate)
    change_status(session, retro=retro, step=Step.FINISH_GENERATION, actor=actor)
    _record_success(session, retro, actor, generated, regenerate=regenerate)
    return generated


def fail_generation(
    session: Session, *, actor: Actor | None, retrospective_id: int, error: str
) -> bool:
    """Mark a retrospective stuck in `generating` failed; False if it is not."""
    retro = session.get(Retrospective, retrospective_id, with_for_update=True)
    if retro is None or retro.status != S.GENERATING:
        return False
    change_status(
        session,
        retro=retro,
        step=Step.FAIL,
        actor=actor,
        error=error[:MAX_ERROR_LENGTH],
    )
    return True


def _forget_rule_insights(
    session: Session, retro_id: int
) -> dict[tuple[str | None, str | None], str]:
    """Delete the rule insights; return the dismissals to carry over, by rule+source."""
    old = session.scalars(
        select(Insight).where(
            Insight.retrospective_id == retro_id, Insight.origin == "rule"
        )
    ).all()
    dismissed = {(i.rule_key, i.source): i.dismissed_reason for i in old if i.dismissed}
    session.execute(
        delete(Insight).where(
            col(Insight.retrospective_id) == retro_id, col(Insight.origin) == "rule"
        )
    )
    return dismissed


def _insight(
    retro_id: int,
    row: Mapping[str, Any],
    currency: str,
    period: tuple[date, date],
    dismissed: Mapping[tuple[str | None, str | None], str],
) -> Insight:
    source = row["source"] if isinstance(row["source"], str) else None
    key = (str(row["rule_key"]), source)
    return Insight(
        retrospective_id=retro_id,
        rule_key=str(row["rule_key"]),
        rule_version=int(row["rule_version"]),
        source=source,
        metric=str(row["metric"]),
        finding=str(row["finding"]),
        observed=metrics.as_number(row["observed"]),
        threshold=float(row["threshold"]),
        interval_low=metrics.as_number(row["interval_low"]),
        interval_high=metrics.as_number(row["interval_high"]),
        sample_size=metrics.as_number(row["sample_size"]),
        severity=str(row["severity"]),
        title=engine.title_for(
            str(row["rule_name"]),
            str(row["metric"]),
            str(row["finding"]),
            metrics.as_number(row["observed"]),
            source,
            currency,
        )[:300],
        text=engine.text_for(row, currency=currency, period=period),
        actions=list(row["actions"]),
        origin="rule",
        dismissed=key in dismissed,
        dismissed_reason=dismissed.get(key, ""),
    )


# -- export -------------------------------------------------------------------


def kpis_as_dict(kpis: pd.DataFrame) -> dict[str, Any]:
    """The KPI summary as JSON-ready values: overall and per source, None for none."""
    out: dict[str, Any] = {"overall": None, "sources": {}}
    for record in kpis.to_dict("records"):
        values = metrics.row_values(record)
        source = record.get("source")
        if isinstance(source, str):
            out["sources"][source] = values
        else:
            out["overall"] = values
    return out


def detail_as_dict(detail: RetroDetail) -> dict[str, Any]:
    """A retrospective as one JSON-ready object (the CLI's `show --json`)."""
    retro = detail.retro
    return {
        "id": retro.id,
        "status": retro.status,
        "title": retro.title,
        "campaign": {
            "id": retro.campaign_id,
            "name": retro.campaign,
            "currency": retro.currency,
        },
        "period": {"start": str(retro.period_start), "end": str(retro.period_end)},
        "error": retro.error,
        "version": retro.version,
        "frozen": detail.frozen,
        "summary": retro.summary,
        "no_findings_note": retro.no_findings_note,
        "submitted": _decision(retro.submitted_by, retro.submitted_at),
        "approved": _decision(retro.approved_by, retro.approved_at),
        "decision": {
            **_decision(retro.decided_by, retro.decided_at),
            "comment": retro.decision_comment,
        },
        "kpis": kpis_as_dict(detail.kpis),
        "insights": [_insight_as_dict(i) for i in detail.insights],
    }


def _decision(by: str | None, at: datetime | None) -> dict[str, Any]:
    return {"by": by, "at": at.isoformat() if at else None}


def _insight_as_dict(insight: InsightRow) -> dict[str, Any]:
    return {
        "id": insight.id,
        "rule_key": insight.rule_key,
        "rule_version": insight.rule_version,
        "source": insight.source,
        "metric": insight.metric,
        "severity": insight.severity,
        "finding": insight.finding,
        "observed": insight.observed,
        "threshold": insight.threshold,
        "interval": list(insight.interval) if insight.interval else None,
        "sample_size": insight.sample_size,
        "origin": insight.origin,
        "dismissed": insight.dismissed,
        "dismissed_reason": insight.dismissed_reason,
        "edited_by": insight.edited_by,
        "edited_at": insight.edited_at.isoformat() if insight.edited_at else None,
        "title": insight.title,
        "text": insight.text,
        "actions": list(insight.actions),
    }
