"""The Textual screen: renders a ``View`` (state/view.py) and nothing else."""
