"""Getting events out of the app: the dispatcher (the inspector's thread), sinks (the recorder) and
sources (the trace reader)."""
