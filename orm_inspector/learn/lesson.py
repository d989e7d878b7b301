"""A lesson is a plain Python script, cut into steps: its top-level statements, run one at a time.

The script stays an ordinary program (``python demo/lessons/03_add_and_flush.py`` runs it whole).
Around each top-level statement, comments say what the learner is about to see:

    # Adding an object to the session makes it pending: the INSERT waits for the next flush.
    session.add(ada)
    #> state ada: pending
    #> sql: none

- the comment lines just above a statement are its explanation, shown before it runs;
- ``#>`` lines just below it are claims about what it does, checked by the lessons' tests against
  SQLAlchemy itself (so the text and the behaviour cannot drift apart) and shown after it ran:
  ``state NAME: STATE`` (the object bound to NAME is transient, pending, persistent, deleted or
  detached), ``sql: none`` (no statement), ``sql: TEXT`` (a statement containing TEXT, in order,
  one claim a statement; SQLAlchemy 2.0's column labels ``t.c AS t_c`` are ignored on both sides), ``cause: KIND`` (the statements' causes include KIND: flush, autoflush,
  commit, lazy_load, refresh, execute), ``event: KIND`` (a SQLAlchemy event of that kind fired:
  checkout, checkin, after_commit, persistent_to_detached, ...), ``same: A B`` (A is B),
  ``output: TEXT`` (what it printed contains TEXT).

The module docstring's first line is the lesson's title; the rest, its introduction.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

CLAIM = re.compile(r"^\s*#>\s*(?P<what>[a-z_ ]+?)(?:\s+(?P<subject>[A-Za-z_][\w.]*))?\s*:\s*(?P<value>.*)$")
SAME = re.compile(r"^\s*#>\s*same\s*:\s*(?P<a>[A-Za-z_]\w*)\s+(?P<b>[A-Za-z_]\w*)\s*$")
CLAIM_KINDS = {"state", "sql", "cause", "event", "same", "output"}


class LessonError(ValueError):
    """A script that cannot be a lesson (a syntax error, a malformed claim); the message says where."""


@dataclass
class Claim:
    kind: str  # one of CLAIM_KINDS
    subject: str | None  # state: the variable; same: the first name
    value: str
    line: int

    def __str__(self) -> str:
        if self.kind == "state":
            return f"{self.subject} is {self.value}"
        if self.kind == "same":
            return f"{self.subject} is the very same object as {self.value}"
        if self.kind == "sql":
            return "no SQL is sent" if self.value == "none" else f"SQL: {self.value}"
        return f"{self.kind}: {self.value}"


@dataclass
class Step:
    first: int  # lines of the statement in the script (1-based, inclusive)
    last: int
    source: str
    explanation: str  # the comment lines above it, without the '#'
    claims: list[Claim] = field(default_factory=list)


@dataclass
class Lesson:
    path: Path
    title: str
    introduction: str
    lines: list[str]
    steps: list[Step]

    @property
    def name(self) -> str:
        return self.path.stem


def load(path: str | Path) -> Lesson:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LessonError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LessonError(f"{path}: not a Python script (not UTF-8 text)") from None
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        where = f"line {exc.lineno}: " if getattr(exc, "lineno", None) else ""
        raise LessonError(f"{path}: {where}{getattr(exc, 'msg', exc)}") from None
    lines = text.splitlines()
    body = statements(tree)
    title, _, introduction = (ast.get_docstring(tree) or "").strip().partition("\n")
    steps = []
    for i, node in enumerate(body):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        limit = body[i + 1].lineno - 1 if i + 1 < len(body) else len(lines)
        steps.append(Step(first, last, "\n".join(lines[first - 1:last]), _comment_above(lines, first),
                          _claims_below(path, lines, last, limit)))
    return Lesson(path, title.strip() or path.stem, introduction.strip(), lines, steps)


def statements(tree: ast.Module) -> list[ast.stmt]:
    """The script's top-level statements but its docstring: one step each. The body of a top-level
    ``if __name__ == "__main__":`` counts as top level: it is what ``python script.py`` runs."""
    body = list(tree.body)
    if ast.get_docstring(tree) is not None:
        body = body[1:]
    out: list[ast.stmt] = []
    for node in body:
        out.extend(node.body if _is_main_guard(node) else [node])
    return out


def _is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and not node.orelse and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and len(node.test.comparators) == 1 and isinstance(node.test.comparators[0], ast.Constant)
            and node.test.comparators[0].value == "__main__")


def _comment_above(lines: list[str], first: int) -> str:
    """The block of ``#`` lines right above line ``first`` (claims excluded), as text."""
    out: list[str] = []
    n = first - 2
    while n >= 0 and lines[n].lstrip().startswith("#") and not lines[n].lstrip().startswith("#>"):
        out.append(lines[n].lstrip()[1:].strip())
        n -= 1
    return " ".join(reversed(out)).strip()


def _claims_below(path: Path, lines: list[str], last: int, limit: int) -> list[Claim]:
    claims = []
    for n in range(last, limit):
        line = lines[n]
        if not line.lstrip().startswith("#>"):
            if line.strip() and not line.lstrip().startswith("#"):
                break
            continue
        same = SAME.match(line)
        if same:
            claims.append(Claim("same", same["a"], same["b"], n + 1))
            continue
        m = CLAIM.match(line)
        if m is None or m["what"].strip() not in CLAIM_KINDS:
            raise LessonError(f"{path}: line {n + 1}: not a claim: {line.strip()!r} "
                              "(see orm_inspector/learn/lesson.py)")
        kind = m["what"].strip()
        if kind == "state" and not m["subject"]:
            raise LessonError(f"{path}: line {n + 1}: 'state' needs a name: #> state book: pending")
        claims.append(Claim(kind, m["subject"], m["value"].strip(), n + 1))
    return claims


def bundled() -> list[Path]:
    """The lessons that come with orm_inspector, in order."""
    import demo.lessons

    folder = Path(demo.lessons.__file__).parent
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))
