"""Offline jobs over a stored model and the data: batch scoring, drift of logged traffic
(and traffic to try it on), the data-quality report. Run from the command line."""
