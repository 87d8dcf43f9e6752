"""Monte Carlo estimation of gradient confusion over random data and networks."""

__all__: list[str] = []

# --- samplers ---

# --- engine, store, sweeps ---
