"""Market analytics: per-pair candles fed by CSV or a simulated feed, hourly buckets, top coins."""
