"""Analytics over the canonical schema: indicators, statistics, disclosure control."""
