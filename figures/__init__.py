"""Bound-versus-empirical plots and the verification report (reads stored results only)."""

__all__: list[str] = []
