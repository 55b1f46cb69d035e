"""History: raw journal → Parquet archive (reprocess), and queries over it (DuckDB),
seamlessly merged with the JetStream stream for the recent window (DESIGN.md §2, §7)."""
