"""What a page needs from the router: the logged-in actor and database sessions."""

from __future__ import annotations

import streamlit as st

from core.services.permissions import Actor

ACTOR_KEY = "actor"


def set_current_actor(actor: Actor | None) -> None:
    st.session_state[ACTOR_KEY] = actor


def current_actor() -> Actor:
    """The actor the router checked against the database on this run."""
    actor = st.session_state.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        st.error("Please log in.")
        st.stop()
    return actor
