"""The domain core every room imports: the market key, intervals as time arithmetic, the candle
record and the names stored in the database. It imports nothing of ours."""
