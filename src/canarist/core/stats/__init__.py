"""Anytime-valid statistics for judging a candidate version against its baseline.

Every interval here is a *confidence sequence*: it covers the true value at every sample size
simultaneously with the stated probability, so an experiment may look again after each loop
without inflating its error rates (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Annals of Statistics 2021).
"""
