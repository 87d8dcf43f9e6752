"""Closed-form bounds of the paper and the constant ``c*`` that Monte Carlo implies."""

__all__: list[str] = []
