"""Large batches on one machine, Dask or Spark: the one-machine feature code and Scorer,
called unchanged on buckets of customers (`buckets`), driven by an engine (`engines`)."""

ENGINES = ("local", "dask", "spark")  # here, so a command line can list them cheaply
