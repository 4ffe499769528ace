"""Campaign: one campaign's daily KPIs per source, charts and a KPI table."""

from __future__ import annotations

import streamlit as st

from core.db import read_session
from core.errors import DomainError
from core.metrics import CATALOGUE
from core.services import campaigns
from ui.charts import over_time, sources_side_by_side
from ui.format import money
from ui.session import current_actor
from ui.tables import kpi_summary
from ui.text import escape, plain_heading

actor = current_actor()

with read_session() as session:
    listing = campaigns.list_campaigns(session, actor=actor)
if listing.empty:
    st.title("Campaign")
    st.info("There are no campaigns you can see yet.")
    st.stop()

labels = {
    int(row.id): f"{row.name} ({row.start} – {row.end})" for row in listing.itertuples()
}
requested = st.query_params.get("id") or st.session_state.get("campaign_id")
try:
    preselected = int(requested) if requested is not None else None
except ValueError:
    preselected = None
ids = list(labels)
index = ids.index(preselected) if preselected in labels else 0
campaign_id = st.selectbox(
    "Campaign", ids, index=index, format_func=labels.get, key="campaign_select"
)
st.session_state["campaign_id"] = campaign_id
st.query_params["id"] = str(campaign_id)

try:
    with read_session() as session:
        info = campaigns.get_campaign(session, actor=actor, campaign_id=campaign_id)
        kpis = campaigns.campaign_kpis(session, actor=actor, campaign_id=campaign_id)
except DomainError as exc:
    st.error(str(exc))
    st.stop()

plain_heading(info.name, level=1)
st.caption(
    escape(
        f"Owner {info.owner_name} · {info.start_date} – {info.end_date} · "
        f"status {info.status} · budget {money(info.budget, info.currency)}"
    )
)
if kpis.empty:
    st.info("No KPI data has been imported for this campaign yet.")
    st.stop()

period = (
    st.segmented_control(
        "Group by", ["day", "week"], default="day", key="campaign_period"
    )
    or "day"
)
st.plotly_chart(over_time(kpis, period=period), width="stretch", key="campaign_time")

st.subheader("Sources side by side", anchor=False)
st.plotly_chart(sources_side_by_side(kpis), width="stretch", key="campaign_sources")

st.subheader("KPI summary", anchor=False)
st.caption(
    "Totals are ratios of sums over the whole period. ROAS is revenue per unit of "
    "spend (1.0 = spend earned back); ROI is profit per unit of spend."
)
summary = kpi_summary(kpis)
money_format = f"%.2f {info.currency}"
config = {
    "source": st.column_config.TextColumn("Source"),
    "impressions": st.column_config.NumberColumn("Impressions", format="%d"),
    "clicks": st.column_config.NumberColumn("Clicks", format="%d"),
    "spend": st.column_config.NumberColumn("Spend", format=money_format),
    "conversions": st.column_config.NumberColumn("Conversions", format="%.0f"),
    "revenue": st.column_config.NumberColumn("Revenue", format=money_format),
}
for key, spec in CATALOGUE.items():
    fmt = {"percent": "percent", "money": money_format}.get(spec.kind, "%.2f")
    config[key] = st.column_config.NumberColumn(
        spec.label, format=fmt, help=spec.description
    )
st.dataframe(summary, hide_index=True, column_config=config, key="campaign_summary")

with st.expander("Daily rows"):
    st.dataframe(
        kpis.drop(columns=["campaign_id"]), hide_index=True, key="campaign_daily"
    )
