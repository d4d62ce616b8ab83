"""The fake sweep store lives with the benchmarks that time it (`benchmarks.fake_store`); the tests use the same one."""

from benchmarks.fake_store import PARENT_RUN_ATTR, build_store  # noqa: F401
