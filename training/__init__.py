"""Training: from a spec to a tagged model in the BentoML store and a report."""
