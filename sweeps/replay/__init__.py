"""Replay benchmarks: real trials recorded once (`table`), a surrogate fitted on them
(`surrogate`), and simulated sweeps that run the service's own search code on it (`simulate`),
compared by hypervolume over many seeds (`compare`); random search's expected curve for reports
(`reference`). `sweeps simulate` is the command line."""

from .table import ReplayTable, TableError, load_table
from .surrogate import Fidelity, Surrogate, fit_surrogate, holdout
from .simulate import SimResult, SimTrial, simulate

__all__ = ["ReplayTable", "TableError", "load_table", "Fidelity", "Surrogate", "fit_surrogate", "holdout",
           "SimResult", "SimTrial", "simulate"]
