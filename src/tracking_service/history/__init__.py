"""Delivery history at the edge: files, the table, the served snapshot, the backtest run."""
