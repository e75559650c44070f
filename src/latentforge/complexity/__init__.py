"""Generator complexity versus latent choice ("Complexity Matters", Hu et al. 2023).

``ceps``: C_eps and the AUC of quality-vs-size curves (pure numpy, re-exported here). ``toy``: deterministic 1-D/2-D
toy experiments that produce such curves (torch, scikit-learn and POT); import it as
``from latentforge.complexity import toy`` when needed, so reading curves needs neither POT nor scikit-learn.
"""
from latentforge.complexity.ceps import CurvePoint, aggregate, area_under_curve, c_eps, rank_latents

__all__ = ["CurvePoint", "aggregate", "area_under_curve", "c_eps", "rank_latents"]
