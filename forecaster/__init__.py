"""Pure computation: features, the LSTM, training, inference, metrics, walk-forward. No DB, no HTTP."""
