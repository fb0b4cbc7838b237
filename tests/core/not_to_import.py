"""A module no test imports: importing it is the bug that test_exception_rebuild looks for."""

raise RuntimeError("tests.core.not_to_import was imported because a result named it")


class Boom(Exception):
    pass
