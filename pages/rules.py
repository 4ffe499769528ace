"""Rules: everyone reads them; admins edit, preview the impact, add new ones."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from core import metrics
from core import rules as engine
from core.db import read_session, session_scope
from core.errors import DomainError
from core.rules import RuleSpec
from core.services import rules as rule_service
from core.services.permissions import Action
from ui.session import current_actor
from ui.text import escape

NOTICE_KEY = "rules_notice"
SCOPES = {
    engine.Scope.SOURCE.value: "Whole campaign and each source",
    engine.Scope.CAMPAIGN.value: "Whole campaign only",
}
SEVERITIES = list(engine.SEVERITY_RANK)
COMPARISONS = list(engine.COMPARISONS)

actor = current_actor()
st.title("Rules")
st.caption(
    "Each rule compares one metric, summed over a retrospective's period, with a "
    "threshold. Below its evidence floor a rule reports 'not enough data'; rules "
    "on rates fire only when the whole 95% interval lies beyond the threshold."
)
notice = st.session_state.pop(NOTICE_KEY, None)
if notice:
    st.success(escape(notice))

with read_session() as session:
    stored = rule_service.list_rules(session, actor=actor)


def floor_text(rule: rule_service.RuleRow | RuleSpec) -> str:
    denominator = metrics.CATALOGUE[rule.metric].denominator
    return metrics.describe_amount(denominator, rule.evidence_floor)


st.dataframe(
    pd.DataFrame(
        [
            {
                "Key": r.key,
                "Name": r.name,
                "Condition": r.spec.condition,
                "Severity": r.severity,
                "Evidence floor": floor_text(r),
                "Applies to": SCOPES.get(r.scope, r.scope),
                "Enabled": r.enabled,
                "Version": r.version,
            }
            for r in stored
        ]
    ),
    hide_index=True,
    key="rules_table",
)


def percent_kind(metric: str) -> bool:
    return metrics.CATALOGUE[metric].kind == "percent"


def threshold_input(metric: str, value: float, key: str) -> float:
    """Percent metrics are typed as percent (0.5 for 0.5%) and stored as fractions."""
    spec = metrics.CATALOGUE[metric]
    if percent_kind(metric):
        typed = st.number_input(
            "Threshold (%)", value=value * 100, step=0.1, format="%.2f", key=key
        )
        # Rounded so an untouched 110% reads back as exactly 1.1, not 1.1000000001.
        return round(float(typed) / 100, 10)
    unit = " (campaign currency)" if spec.kind == "money" else ""
    typed = st.number_input(
        f"Threshold{unit}", value=value, step=0.05, format="%.2f", key=key
    )
    return float(typed)


def rule_fields(prefix: str, base: RuleSpec) -> RuleSpec:
    """Widgets for every editable field, filled from `base`; the edited rule."""
    name = st.text_input("Name", value=base.name, key=f"{prefix}_name")
    description = st.text_area(
        "Description", value=base.description, key=f"{prefix}_description"
    )
    left, middle, right = st.columns(3)
    with left:
        comparison = st.selectbox(
            "Comparison",
            COMPARISONS,
            index=COMPARISONS.index(base.comparison),
            key=f"{prefix}_comparison",
        )
    with middle:
        threshold = threshold_input(base.metric, base.threshold, f"{prefix}_threshold")
    with right:
        severity = st.selectbox(
            "Severity",
            SEVERITIES,
            index=SEVERITIES.index(base.severity),
            key=f"{prefix}_severity",
        )
    denominator = metrics.CATALOGUE[base.metric].denominator
    floor = st.number_input(
        f"Evidence floor ({metrics.FACT_LABELS[denominator]})",
        min_value=0.0,
        value=float(base.evidence_floor),
        step=100.0,
        key=f"{prefix}_floor",
        help="Below this the rule reports 'not enough data', never a problem.",
    )
    scope = st.radio(
        "Applies to",
        list(SCOPES),
        index=list(SCOPES).index(base.scope),
        format_func=SCOPES.get,
        horizontal=True,
        key=f"{prefix}_scope",
    )
    actions = st.text_area(
        "Suggested actions (one per line)",
        value="\n".join(base.actions),
        key=f"{prefix}_actions",
    )
    enabled = st.checkbox("Enabled", value=base.enabled, key=f"{prefix}_enabled")
    return RuleSpec(
        key=base.key,
        name=name,
        description=description,
        metric=base.metric,
        comparison=str(comparison),
        threshold=threshold,
        severity=str(severity),
        scope=str(scope),
        evidence_floor=float(floor),
        actions=tuple(actions.splitlines()),
        enabled=enabled,
        version=base.version,
    )


def show_preview(spec: RuleSpec, key: str) -> None:
    """Before saving: what the new values would add and remove, with examples."""
    try:
        with read_session() as session:
            preview = rule_service.preview_rule(session, actor=actor, spec=spec)
    except DomainError as exc:
        st.warning(escape(str(exc)))
        return
    if preview.unchanged:
        st.info(
            f"No change across {preview.retrospectives} retrospectives: the same "
            "insights would be found."
        )
        return
    st.warning(
        f"Across {preview.retrospectives} retrospectives this would add "
        f"{preview.added} and remove {preview.removed} insights "
        f"(not enough data: +{preview.added_not_enough_data} / "
        f"-{preview.removed_not_enough_data}). Existing insights change only when "
        "a retrospective is regenerated."
    )
    if preview.in_approved:
        st.caption(
            f"{preview.in_approved} of these changes fall in approved "
            "retrospectives, which keep their insights."
        )
    examples = pd.DataFrame(
        [
            {
                "Change": e.change,
                "Retrospective": f"#{e.retrospective_id} ({e.retrospective_status})",
                "Campaign": e.campaign,
                "Insight": e.title,
                "Severity": e.severity,
                "Finding": e.finding.replace("_", " "),
            }
            for e in preview.examples
        ]
    )
    st.dataframe(examples, hide_index=True, key=key)


def save(write: Callable[..., rule_service.RuleRow], **kwargs: object) -> None:
    try:
        with session_scope() as session:
            row = write(session, actor=actor, **kwargs)
    except DomainError as exc:
        st.error(escape(str(exc)))
        return
    st.session_state[NOTICE_KEY] = f"Saved rule {row.key} (version {row.version})."
    st.rerun()


if not actor.can(Action.ADMINISTER):
    st.caption("Only admins change rules.")
    for rule in stored:
        with st.expander(escape(f"{rule.name}: {rule.spec.condition}")):
            st.text(rule.description)
            for action in rule.actions:
                st.text(f"• {action}")
    st.stop()

edit_tab, new_tab = st.tabs(["Edit a rule", "Add a rule"])

with edit_tab:
    by_key = {r.key: r for r in stored}
    if by_key:
        picked = st.selectbox(
            "Rule",
            list(by_key),
            format_func=lambda k: f"{by_key[k].name} ({k})",
            key="rules_pick",
        )
        current = by_key[str(picked)]
        st.caption(
            f"Metric: {metrics.CATALOGUE[current.metric].label} "
            f"({metrics.CATALOGUE[current.metric].description}) · version "
            f"{current.version}"
        )
        # Keys carry the version, so a saved rule shows its stored values afresh.
        edited = rule_fields(f"rules_{current.key}_v{current.version}", current.spec)
        if edited != current.spec:
            show_preview(edited, "rules_preview_edit")
        if st.button("Save rule", type="primary", key="rules_save"):
            save(
                rule_service.update_rule, spec=edited, expected_version=current.version
            )

with new_tab:
    new_key = st.text_input("Key (lowercase, e.g. high_cpa)", key="rules_new_key")
    metric = st.selectbox(
        "Metric",
        list(metrics.CATALOGUE),
        format_func=lambda m: metrics.CATALOGUE[m].label,
        key="rules_new_metric",
    )
    template = RuleSpec(
        key=new_key.strip(),
        name="",
        metric=str(metric),
        comparison="<",
        threshold=0.0,
        severity="medium",
    )
    proposed = rule_fields(f"rules_new_{metric}", template)
    if proposed.key and proposed.name.strip():
        show_preview(proposed, "rules_preview_new")
    if st.button("Add rule", type="primary", key="rules_create"):
        save(rule_service.create_rule, spec=proposed)
