"""Model core, shared by training and serving: the estimators that are pickled, the
BentoML store (save / verify / load), the numpy fast path and the one scorer every
answer comes from. Imports core and features only."""
