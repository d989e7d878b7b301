"""A sitecustomize for `orm-inspector run`: this folder goes first on the program's PYTHONPATH."""
