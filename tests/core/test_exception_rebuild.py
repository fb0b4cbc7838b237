"""A stored failure is rebuilt only from classes already imported or registered (DESIGN 8)."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from django_taskq import AsyncResult, states
from django_taskq.broker import keys
from django_taskq.exceptions import TaskError, TaskRevokedError, register_exception
from django_taskq.messages import dumps
from django_taskq.result import rebuild_exception

TRAP = "tests.core.not_to_import"


def _info(exc_type: str, message: str = "it failed", args: Any = None) -> dict[str, Any]:
    return {"exc_type": exc_type, "exc_message": message, "exc_args": args}


class PaymentDeclined(Exception):
    pass


def test_builtins_are_rebuilt() -> None:
    exc = rebuild_exception(_info("ValueError", "bad", ["bad"]))
    assert type(exc) is ValueError and exc.args == ("bad",)
    assert type(rebuild_exception(_info("builtins.KeyError", "k", ["k"]))) is KeyError


def test_a_class_of_an_imported_module_is_rebuilt() -> None:
    exc = rebuild_exception(_info(f"{__name__}.PaymentDeclined", "no funds", ["no funds"]))
    assert type(exc) is PaymentDeclined and str(exc) == "no funds"
    exc = rebuild_exception(_info("django_taskq.exceptions.TaskRevokedError", "revoked"))
    assert type(exc) is TaskRevokedError


def test_a_module_that_is_not_imported_is_not_imported() -> None:
    assert TRAP not in sys.modules
    exc = rebuild_exception(_info(f"{TRAP}.Boom", "it failed", ["it failed"]))
    assert TRAP not in sys.modules
    assert isinstance(exc, TaskError)
    assert exc.remote_type == f"{TRAP}.Boom"
    assert str(exc) == f"{TRAP}.Boom: it failed"


def test_a_stored_result_naming_an_unimported_module(broker: Any) -> None:
    task_id = str(uuid.uuid4())
    record = {
        "status": states.FAILURE,
        "result": _info(f"{TRAP}.Boom", "card declined", ["card declined"]),
        "traceback": None,
        "date_done": 1.0,
    }
    broker.set(keys.result(task_id), dumps(record))
    result = AsyncResult(task_id)
    assert isinstance(result.result, TaskError)
    with pytest.raises(TaskError, match=f"{TRAP}.Boom: card declined"):
        result.get(timeout=1)
    assert TRAP not in sys.modules


@pytest.mark.parametrize(
    "name",
    [
        "os.system",  # imported, callable, not an exception
        "collections.OrderedDict",
        "builtins.SystemExit",  # would end the caller
        "KeyboardInterrupt",
        "json.nosuchthing",
        ".ValueError",
    ],
)
def test_names_that_are_not_rebuilt(name: str) -> None:
    exc = rebuild_exception(_info(name, "x"))
    assert isinstance(exc, TaskError)


@pytest.fixture
def lazy_module() -> Iterator[list[str]]:
    """An imported module whose __getattr__ would import on demand (PEP 562)."""
    asked: list[str] = []
    module = types.ModuleType("taskq_lazy_module")

    def __getattr__(name: str) -> Any:
        asked.append(name)
        return ValueError

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[module.__name__] = module
    yield asked
    del sys.modules[module.__name__]


def test_a_module_getattr_is_not_called(lazy_module: list[str]) -> None:
    exc = rebuild_exception(_info("taskq_lazy_module.Anything", "x"))
    assert isinstance(exc, TaskError)
    assert lazy_module == []


def test_registered_classes_are_rebuilt_by_their_name_or_an_alias() -> None:
    def make() -> type[Exception]:
        class Local(Exception):
            pass

        return Local

    local = register_exception(make())
    assert type(rebuild_exception(_info(f"{__name__}.{local.__qualname__}", "x"))) is local

    @register_exception
    class Moved(Exception):
        pass

    register_exception(Moved, name="oldapp.errors.Moved")
    assert type(rebuild_exception(_info("oldapp.errors.Moved", "x", ["x"]))) is Moved
    assert "oldapp" not in sys.modules


def test_only_exception_classes_can_be_registered() -> None:
    with pytest.raises(TypeError, match="needs an Exception subclass"):
        register_exception(SystemExit)  # type: ignore[type-var]
    with pytest.raises(TypeError):
        register_exception(dict)  # type: ignore[type-var]
