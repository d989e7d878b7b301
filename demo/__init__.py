"""The bundled demo: a small bookshop whose clerks (threads) place, amend and cancel orders with the
SQLAlchemy ORM, so that orm_inspector has something worth showing.

    python -m demo                        # run it once, plainly
    python -m demo --record demo.jsonl    # run it under orm_inspector.record()
    orm-inspector demo                    # run it with the inspector's TUI live

``demo.models`` is the data model, ``demo.app.run()`` the app; each unit of work in ``demo.app.Clerk``
says in its docstring which ORM behaviour it demonstrates.
"""

from .app import run

__all__ = ["run"]
