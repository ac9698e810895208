"""What the service shows, read-only: `forecaster status` (status.py), the newest forecast
(forecast_view.py), the PNG chart (plot.py), the accuracy figures as words (figures.py), and the
daemon's HTML pages (web/). Nothing here writes to the database."""
