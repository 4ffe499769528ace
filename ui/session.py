"""What a page needs from the router: the logged-in actor and database sessions."""

from __future__ import annotations

import streamlit as st

from core.services.permissions import Actor

ACTOR_KEY = "actor"
ROUTER_SCRIPT = "app.py"


def set_current_actor(actor: Actor | None) -> None:
    st.session_state[ACTOR_KEY] = actor


def current_actor() -> Actor:
    """The actor the router checked against the database on this run."""
    actor = st.session_state.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        # Only a page run without the router gets here: a fresh server process
        # runs a requested pages/ file directly until its first st.navigation
        # call. The router checks the login and shows the form when needed.
        st.switch_page(ROUTER_SCRIPT)
    return actor
