"""The bottom layer: what every other package shares, importing no other project package.

Names, errors, settings, the spec schema and loader, reading a spec's data files,
metrics, stats and the model card type. Nothing here trains, serves or writes."""
