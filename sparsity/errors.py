"""The one base class of errors a user can fix by changing a setting.

Its message is one line naming the setting and the fix. The `sweeps` CLI catches every
``UserError`` (from `sparsity` or `sweeps`), prints that line and exits 2; anything else is a bug
and keeps its traceback. It derives from ``ValueError`` so library callers that catch bad values
keep working.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """A user-fixable problem: a bad spec or setting, a missing dataset, an unreachable store."""
