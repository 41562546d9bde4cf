"""Feature building shared by training and serving, one code path for both. Imports core only."""
