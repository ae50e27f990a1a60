"""Estimators (returns, expected returns, covariance) and allocation models.

Imports ``optimizer`` but never ``scenarios``.
"""
