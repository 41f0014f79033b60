"""Differentially private city analytics with OpenDP: budgets, releases and the dashboard."""

__all__: list[str] = []
