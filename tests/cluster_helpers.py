"""The loopback cluster pieces live with the cluster benchmark that runs them too (`benchmarks.cluster_helpers`)."""

from benchmarks.cluster_helpers import *  # noqa: F401,F403
from benchmarks.cluster_helpers import _listening, _wait  # noqa: F401  (the shared-nothing test waits on ports too)
