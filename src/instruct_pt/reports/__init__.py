"""The paper's tables, figures and claims, regenerated from a run's result files.

A registry of report specs and one renderer (``registry``), the cell computations of the tables
and figures, the claims scorecard, the multi-seed aggregate, timing and the README's results.
"""
