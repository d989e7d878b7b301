"""Each event in plain words, with the SQLAlchemy documentation section that explains it.

``explain(event, names)`` gives one sentence for the events a learner should notice (lifecycle
transitions, flushes, commits, rollbacks, statements and why they ran, connections taken from and
returned to the pool), or None for the bookkeeping ones. ``names`` maps object keys to the variable
names of the lesson, so that the sentence says ``book``, not ``Book(1)``.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://docs.sqlalchemy.org/en/20/"
STATES_DOC = DOCS + "orm/session_state_management.html#quickie-intro-to-object-states"
LINKS = {
    "states": STATES_DOC,
    "flush": DOCS + "orm/session_basics.html#flushing",
    "commit": DOCS + "orm/session_basics.html#committing",
    "rollback": DOCS + "orm/session_basics.html#rolling-back",
    "expire": DOCS + "orm/session_state_management.html#refreshing-expiring",
    "lazy": DOCS + "orm/queryguide/relationships.html#lazy-loading",
    "pool": DOCS + "core/pooling.html",
    "savepoint": DOCS + "orm/session_transaction.html#using-savepoint",
    "autobegin": DOCS + "orm/session_basics.html#auto-begin",
    "events": DOCS + "orm/session_events.html#object-lifecycle-events",
}

TRANSITIONS = {  # kind -> (what happened, to whom, in plain words; doc)
    "transient_to_pending": ("{obj} is now pending: in the session, its INSERT waits for the next flush", "states"),
    "pending_to_persistent": ("{obj} is now persistent: the flush INSERTed it, it has a primary key and a place "
                              "in the identity map", "flush"),
    "loaded_as_persistent": ("{obj} was loaded from a row: persistent, in the identity map", "states"),
    "persistent_to_deleted": ("{obj} is now deleted: the flush DELETEd its row; the commit will make it final",
                              "states"),
    "deleted_to_detached": ("{obj} is now detached: its delete was committed, it belongs to no session", "states"),
    "persistent_to_detached": ("{obj} is now detached: its session let go of it (close, expunge); it keeps its "
                               "identity but cannot load anything", "states"),
    "detached_to_persistent": ("{obj} is persistent again: a session took it back", "states"),
    "deleted_to_persistent": ("{obj} is persistent again: the rollback undid its DELETE", "rollback"),
    "pending_to_transient": ("{obj} is transient again: it left the session before any INSERT (rollback or "
                             "expunge)", "rollback"),
    "persistent_to_transient": ("{obj} is transient again: the rollback undid its INSERT", "rollback"),
}
OTHERS = {
    "deleted_mark": ("{obj} is marked for deletion: the DELETE waits for the next flush", "states"),
    "identity_changed": ("{obj}'s primary key changed: the identity map holds it under its new identity",
                         "states"),
    "after_commit": ("the transaction is committed; every object of the session is expired: its next read "
                     "loads it again", "commit"),
    "after_rollback": ("the transaction is rolled back: pending objects leave the session, deleted ones come back, "
                       "the others are expired", "rollback"),
    "expire": ("{obj}: {attrs} expired: the next read loads them from the database", "expire"),
    "refresh": ("{obj}: {attrs} loaded again from the database", "expire"),
    "checkout": ("connection {connection} taken from the pool", "pool"),
    "checkin": ("connection {connection} returned to the pool", "pool"),
    "connect": ("the pool opened a new database connection, {connection}", "pool"),
    "savepoint": ("a SAVEPOINT: a transaction inside the transaction, that can roll back alone", "savepoint"),
    "rollback_savepoint": ("rolled back to the SAVEPOINT: only what happened since it is undone", "savepoint"),
    "release_savepoint": ("the SAVEPOINT is released: its work joins the enclosing transaction", "savepoint"),
    "after_begin": ("the session began a transaction on connection {connection}", "autobegin"),
}
CAUSES = {
    "flush": "sent by session.flush()",
    "autoflush": "sent by an autoflush: the session flushed its pending changes before running a query, so that "
                 "the query sees them",
    "commit": "sent by the flush inside commit()",
    "lazy_load": "a lazy load: reading {attribute} of {obj} loaded it now",
    "refresh": "a refresh: {obj} was expired, reading it loaded it again",
    "execute": "a statement the code ran itself",
}


def object_key(obj: Any) -> str | None:
    """The key orm_inspector gave a mapped object (None while it has been in no event)."""
    from sqlalchemy import inspect

    from ..hooks import runtime

    cached = inspect(obj).__dict__.get(getattr(runtime, "ATTR", ""))
    return getattr(cached, "key", None)


def _obj(ref: dict[str, Any] | None, names: dict[str, str]) -> str:
    from ..state.journal import describe

    if not ref:
        return "?"
    return names.get(ref.get("key", ""), describe(ref))


def explain(e: dict[str, Any], names: dict[str, str]) -> tuple[str, str] | None:
    """(sentence, documentation link) for an event worth telling, else None."""
    kind = e.get("kind", "")
    obj = _obj(e.get("obj"), names)
    if kind in TRANSITIONS:
        text, doc = TRANSITIONS[kind]
        return text.format(obj=obj), LINKS[doc]
    if kind == "after_flush":
        counts = ", ".join(f"{len(e.get(n) or ())} {n}" for n in ("new", "dirty", "deleted"))
        return f"flush: the unit of work wrote {counts}", LINKS["flush"]
    if kind == "before_cursor_execute":
        cause = e.get("cause") or {}
        why = CAUSES.get(cause.get("kind", ""), "sent")
        why = why.format(attribute=cause.get("attribute", "?"), obj=_obj(cause.get("obj"), names))
        statement = " ".join((e.get("statement") or "").split())
        doc = {"lazy_load": "lazy", "refresh": "expire", "autoflush": "flush", "commit": "commit"}.get(
            cause.get("kind", ""), "flush")
        return f"SQL {statement[:80]}: {why}", LINKS[doc]
    if kind in OTHERS:
        text, doc = OTHERS[kind]
        if kind == "expire" and e.get("attrs") is None:
            text = "{obj} expired as a whole: the next read loads it from the database"
        attrs = ", ".join(e.get("attrs") or ()) or "all attributes"
        return text.format(obj=obj, attrs=attrs, connection=e.get("connection", "?")), LINKS[doc]
    return None
