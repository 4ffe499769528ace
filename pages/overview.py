"""Overview: every campaign the user may see, with spend, revenue, ROAS and status."""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.db import read_session
from core.models import CampaignStatus, Role, Source
from core.services import campaigns
from ui.format import metric, money
from ui.session import current_actor

actor = current_actor()
st.title("Campaigns")

with read_session() as session:
    owner_names = campaigns.owners(session, actor=actor)

columns = st.columns([2, 2, 2, 3])
statuses = columns[0].multiselect(
    "Status", [s.value for s in CampaignStatus], key="overview_status"
)
sources = columns[1].multiselect(
    "Source", [s.value for s in Source], key="overview_source"
)
owner_ids: list[int] = []
if actor.role is not Role.VIEWER:
    owner_ids = columns[2].multiselect(
        "Owner", list(owner_names), format_func=owner_names.get, key="overview_owner"
    )
period = columns[3].date_input(
    "Running between", value=(), format="YYYY-MM-DD", key="overview_period"
)
start, end = [*period, None, None][:2] if isinstance(period, tuple) else (None, None)

filters = campaigns.CampaignFilter(
    statuses=tuple(statuses),
    sources=tuple(sources),
    owner_ids=tuple(owner_ids),
    start=start if isinstance(start, date) else None,
    end=end if isinstance(end, date) else None,
)
with read_session() as session:
    frame = campaigns.list_campaigns(session, actor=actor, filters=filters)

if frame.empty:
    st.info("No campaigns match these filters.")
    st.stop()

# Money in different currencies is never added up: one row of tiles per currency.
for currency, group in frame.groupby("currency", sort=True):
    tiles = campaigns.headline(group)
    cols = st.columns(4)
    cols[0].metric(f"Campaigns ({currency})", tiles["campaigns"])
    cols[1].metric(f"Spend ({currency})", money(tiles["spend"]))
    cols[2].metric(f"Revenue ({currency})", money(tiles["revenue"]))
    cols[3].metric(
        "ROAS",
        metric("roas", tiles["roas"]),
        help="Revenue per unit of spend; 1.0 = break-even",
    )

table = frame.assign(
    retrospective=frame["retrospective"].fillna("none"),
    sources=frame["sources"].fillna(""),
)[
    [
        "id",
        "name",
        "status",
        "start",
        "end",
        "owner",
        "sources",
        "currency",
        "spend",
        "revenue",
        "roas",
        "retrospective",
    ]
]
event = st.dataframe(
    table,
    hide_index=True,
    key="overview_table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "id": None,
        "name": st.column_config.TextColumn("Campaign"),
        "spend": st.column_config.NumberColumn("Spend", format="%.2f"),
        "revenue": st.column_config.NumberColumn("Revenue", format="%.2f"),
        "roas": st.column_config.NumberColumn("ROAS", format="%.2f"),
        "start": st.column_config.DateColumn("Start"),
        "end": st.column_config.DateColumn("End"),
    },
)
st.caption("Select a row to open the campaign.")
selected = event.selection.rows if event else []
if selected:
    campaign_id = int(table.iloc[selected[0]]["id"])
    st.session_state["campaign_id"] = campaign_id
    st.switch_page("pages/campaign.py", query_params={"id": str(campaign_id)})
