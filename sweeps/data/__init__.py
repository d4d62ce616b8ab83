"""Datasets on every node: what a dataset needs under a data root (`catalog`), whether it is there
(`check`: checksums for `sweeps data verify`, a quick look for a trial on its node), and getting it
there (`transfer`: `sweeps data stage` to a shared folder or object store, `sweeps data fetch` from
the public sources). Import-light: no torch."""
