"""Runs a lesson one step at a time, with orm_inspector watching, and checks its claims.

All steps run on one thread of the runner's own (an in-memory SQLite database lives per thread in
SQLAlchemy's default pool for it), in one namespace, as the script would run under ``python``. After
each step the inspector's queue is pumped, so that the step's events are all in its ``StepResult``.

``check(result)`` compares the step's claims with SQLAlchemy itself: ``inspect(obj)`` for states,
the statements the step really sent for SQL. It is what the lessons' tests run, and what the screen
shows next to each claim.
"""

from __future__ import annotations

import ast
import queue
import re
import sys
import threading
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import inspect
from sqlalchemy.orm.base import opt_manager_of_class

from .. import signals
from .lesson import Claim, Lesson, Step, statements

STATES = ("transient", "pending", "persistent", "deleted", "detached")
# SQLAlchemy 2.0 (the newest on Python 3.10) labels the columns get(), a refresh and merge() select:
# "books.id AS books_id"; 2.1 does not. Claims name the columns as 2.1 sends them.
# Both sides are compared without such labels (a claim copied from 2.0's SQL holds too). Labels 2.0
# numbers against clashes ("AS books_id_1") and quoted names keep theirs: a claim may then fail, never
# hold wrongly.
COLUMN_LABEL = re.compile(r"\b(\w+)\.(\w+) AS \1_\2\b")


def _unlabelled(statement: str) -> str:
    return COLUMN_LABEL.sub(r"\1.\2", statement).lower()


@dataclass
class StepResult:
    step: Step
    events: list[dict[str, Any]]
    output: str
    error: str | None  # the exception the step raised, as Python prints its last line
    failures: list[str] = field(default_factory=list)  # claims that do not hold

    @property
    def statements(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == "before_cursor_execute"]


def lifecycle_state(obj: Any) -> str | None:
    """What SQLAlchemy says of a mapped instance (None for anything else). Only mapped instances are
    inspected: inspect(engine) would connect, which the lesson did not ask for."""
    if isinstance(obj, type) or opt_manager_of_class(type(obj)) is None:
        return None
    st = inspect(obj)
    return next((name for name in STATES if getattr(st, name)), None)


class Runner:
    def __init__(self, lesson: Lesson) -> None:
        import orm_inspector

        self.lesson = lesson
        self.position = 0  # index of the next step
        # A module of its own: SQLAlchemy resolves a mapped class's annotations in its module.
        self.module = types.ModuleType(f"orm_inspector_lesson_{lesson.name}")
        self.module.__file__ = str(lesson.path)
        sys.modules[self.module.__name__] = self.module
        self.namespace: dict[str, Any] = self.module.__dict__
        self.namespace["print"] = self._print  # the lesson's output, for the screen
        self._output: list[str] = []
        self._events: list[Any] = []
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._nodes = statements(ast.parse("\n".join(lesson.lines), filename=str(lesson.path)))
        orm_inspector.install()
        signals.events.connect(self._receive, weak=False)
        self._folder = str(lesson.path.resolve().parent)  # its imports of its neighbours work, as with python
        sys.path.insert(0, self._folder)
        self._thread = threading.Thread(target=self._work, name="lesson", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self.position >= len(self.lesson.steps)

    def _print(self, *args: Any, sep: str = " ", end: str = "\n", **_: Any) -> None:
        self._output.append(sep.join(str(a) for a in args) + end)

    def _receive(self, sender: Any, events: list[Any]) -> None:
        self._events.extend(events)

    def _work(self) -> None:
        while True:
            task, done = self._tasks.get()
            if task is None:
                return
            try:
                done.put((task(), None))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.put((None, exc))

    def _on_thread(self, task: Callable[[], Any]) -> Any:
        done: queue.SimpleQueue = queue.SimpleQueue()
        self._tasks.put((task, done))
        value, exc = done.get()
        if exc is not None:
            raise exc
        return value

    def run_next(self) -> StepResult:
        """Run the next step; its events, output, error and failed claims."""
        from ..transports.dispatcher import dispatcher

        step = self.lesson.steps[self.position]
        self.position += 1
        node = self._nodes[self.position - 1]
        code = compile(ast.Module(body=[node], type_ignores=[]), str(self.lesson.path), "exec")
        dispatcher.pump()  # what happened before this step is not this step's
        self._events.clear()
        self._output.clear()

        def run() -> str | None:
            try:
                exec(code, self.namespace)  # noqa: S102 - a lesson is a script the learner asked to run
            except BaseException as exc:  # noqa: BLE001 - sys.exit() too: shown, the lesson goes on
                return traceback.format_exception_only(type(exc), exc)[-1].strip()
            return None

        error = self._on_thread(run)
        dispatcher.pump()
        events = [msgspec.to_builtins(e, enc_hook=str) for e in self._events]
        self._events.clear()
        result = StepResult(step, events, "".join(self._output), error)
        result.failures = [f"{claim}: {why}" for claim in step.claims if (why := self.check(claim, result))]
        return result

    def names(self) -> dict[int, str]:
        """id(object) -> the variable naming it, for the mapped objects of the lesson's namespace."""
        return {id(v): k for k, v in self.namespace.items()
                if not k.startswith("_") and lifecycle_state(v) is not None}

    def objects(self) -> dict[str, Any]:
        """Variable -> mapped object, in the order the lesson made them."""
        return {k: v for k, v in self.namespace.items() if not k.startswith("_") and lifecycle_state(v) is not None}

    # ---- the claims, against SQLAlchemy ---------------------------------------------------------
    def check(self, claim: Claim, result: StepResult) -> str | None:
        """None when the claim holds, else why not."""
        if claim.kind == "state":
            if claim.subject not in self.namespace:
                return f"there is no {claim.subject!r}"
            actual = lifecycle_state(self.namespace[claim.subject])
            return None if actual == claim.value else f"SQLAlchemy says {actual}"
        if claim.kind == "same":
            a, b = self.namespace.get(claim.subject), self.namespace.get(claim.value)
            return None if a is not None and a is b else "they are different objects"
        if claim.kind == "sql":
            sent = [" ".join(e["statement"].split()) for e in result.statements]
            if claim.value == "none":
                return None if not sent else f"sent {len(sent)} statement(s): {sent[0][:60]}"
            wanted = [_unlabelled(" ".join(c.value.split())) for c in result.step.claims if c.kind == "sql"]
            return None if _in_order(wanted, [_unlabelled(s) for s in sent]) else f"sent: {sent}"
        if claim.kind == "cause":
            causes = {(e.get("cause") or {}).get("kind") for e in result.statements}
            return None if claim.value in causes else f"causes were {sorted(c for c in causes if c)}"
        if claim.kind == "event":
            kinds = {e["kind"] for e in result.events}
            return None if claim.value in kinds else "it did not fire"
        if claim.kind == "output":
            return None if claim.value in result.output else f"printed {result.output.strip()!r}"
        return f"unknown claim {claim.kind!r}"

    def close(self) -> None:
        """Let go of the lesson. Never waits: a step still running (a long sleep, a pool timeout) ends
        on its own thread, and its result goes nowhere."""
        sys.modules.pop(self.module.__name__, None)
        if self._folder in sys.path:
            sys.path.remove(self._folder)
        signals.events.disconnect(self._receive)
        self._tasks.put((None, None))


def _in_order(wanted: list[str], sent: list[str]) -> bool:
    """Each wanted text in a statement of its own, in the order given."""
    i = 0
    for text in wanted:
        while i < len(sent) and text not in sent[i]:
            i += 1
        if i == len(sent):
            return False
        i += 1
    return True
