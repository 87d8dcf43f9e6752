"""Chunks of trials as Dask tasks on a cluster (loads distributed).

Public ``montecarlo.dask`` API; see ``montecarlo/_dask.py``.
"""

from montecarlo._dask import DaskExecutor, dask_client

__all__ = ["DaskExecutor", "dask_client"]
