"""SQL definitions of features (DuckDB dialect; transpiled to Spark SQL by SQLGlot)."""
