"""The state as plain text, for ``orm-inspector state``."""

from __future__ import annotations

from .model import State


def _obj(ref: dict) -> str:
    identity = ",".join(str(v) for v in ref["identity"]) if ref.get("identity") else "pending"
    return f'{ref["cls"]}({identity}) {ref["key"]}'


def render_state(state: State) -> str:
    data = state.to_json()
    live = [s for s in data["sessions"] if not s["closed"] or s["transaction"]]
    closed = data["counters"]["closed_sessions"]
    out = [f"state just after seq {data['seq']}: {len(live)} open session(s), {closed} closed, "
           f"{len(data['connections'])} pooled connection(s)"]
    for s in live:
        status = "closed" if s["closed"] else ("in transaction" if s["transaction"] else "idle")
        out.append("")
        out.append(f"session {s['id']}: {status}")
        t = s["transaction"]
        if t:
            nested = f", savepoints {', '.join(t['nested'])}" if t["nested"] else ""
            conns = ", ".join(t["connections"]) or "none yet"
            out.append(f"  transaction {t['id']}{nested}; connections: {conns}")
        out.append(f"  identity map: {len(s['identity_map'])} object(s)")
        for o in s["identity_map"][:50]:
            marks = []
            if o["modified"]:
                marks.append("modified: " + ", ".join(o["modified"]))
            if o["expired"]:
                marks.append("expired")
            out.append(f"    {_obj(o):<40} {o['state']:<10} {'; '.join(marks)}")
        if len(s["identity_map"]) > 50:
            out.append(f"    ... and {len(s['identity_map']) - 50} more")
        for name in ("new", "dirty", "deleted", "flushed_deleted"):
            if s[name]:
                shown = ", ".join(_obj(o) for o in s[name][:10])
                more = f" ... and {len(s[name]) - 10} more" if len(s[name]) > 10 else ""
                out.append(f"  {name}: {shown}{more}")
    if data["connections"]:
        out.append("")
        out.append("connections:")
        for c in data["connections"]:
            holder = f" held by {c['session']}" if c["session"] else ""
            out.append(f"  {c['id']:<6} pool {c['pool']:<4} {c['status']:<12}{holder}  ({c['checkouts']} checkouts)")
    counters = data["counters"]
    if counters["dropped"] or counters["inspector_errors"]:
        out.append("")
        out.append(f"warning: {counters['dropped']} events dropped, {counters['inspector_errors']} inspector errors: "
                   "this state may be incomplete")
    return "\n".join(out) + "\n"
