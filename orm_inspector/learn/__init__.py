"""Lessons: plain scripts in demo/lessons/ run one statement at a time with the inspector watching
(lesson.py says how a lesson is written, runner.py runs and checks one, explain.py says each event
in plain words). No UI here: tui/learn.py shows it."""
