"""Insights: aggregates over the stored scores for shop owners and BI tools."""
