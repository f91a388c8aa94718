"""Market analytics: per-pair candles fed by CSV or a simulated feed, hourly buckets, top coins.

Candles go through the event store, in batches: ``RecordCandles`` on stream ``market-<pair>``
records one ``market.CandlesRecorded`` event per batch (up to 1,000 candles), so the feed has a
history, ingestion is idempotent (a stream only ever extends forward in time) and the read
models can be rebuilt. Batching keeps the store's cost per candle small; market data is not a
user's decision, so no per-candle event is worth its row.

The ``market.candles`` projection writes ``Candle`` rows and folds each candle into its pair's
``PairHourBucket``. Top coins reads only buckets (at most 168 per pair for ``7d``), never raw
candles, so it stays fast as the candle table grows. Other contexts call
``market.queries.latest_price`` / ``known_pairs`` or ask ``GetLatestPrice``.
"""
