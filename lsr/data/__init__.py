"""Data below the stages: readers of raw inputs (streamed JSON Lines, Parquet, CSV), ids, the run folder's layout."""
