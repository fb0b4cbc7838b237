"""Follow-ups of a finished task: link callbacks, chain steps, chord counting.

The worker calls ``after_finish`` before it acknowledges a message that
carries ``link``, ``link_error`` or ``chord``, so a crash in between re-runs
the task and its follow-ups instead of losing them (at-least-once). The
follow-ups are made safe to repeat:

- every follow-up task has a fixed id: chain steps and chord bodies were
  frozen when the workflow was sent, and a plain ``link`` callback is frozen
  here with ids derived from the finished task's id;
- each follow-up message is published with a once key on its id
  (``keys.once``, in its queue), set in the same Lua step as the publish, so a
  repeated publish is dropped;
- a chord header task records its outcome by header index in one Lua step
  (chord_part.lua) that counts distinct indexes, so a redelivered or re-run
  task is counted once, and the body (published with a once key) starts
  exactly once.

A failure stops what follows: every frozen task downstream of the failed one
gets a FAILURE record with the original exception (so the chain's final
result fails with it), a downstream task that is a chord header member is
counted as failed in its chord, and the failed task's ``link_error``
callbacks run.

Error callbacks follow Celery: one whose task function takes a single
argument (old style) is sent as a task with the failed task's id as first
argument (the failure record is stored first, so ``AsyncResult(id)`` finds
the exception); one that takes ``(request, exc, traceback)`` (new style) is
called inline in the worker with the failed task's Request, the exception
and the formatted traceback.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django_taskq import states
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import ChordError, TaskRevokedError

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.request import Request
    from django_taskq.signatures import Signature
    from django_taskq.trace import Outcome

logger = logging.getLogger("django_taskq.workflow")


def needs_after_finish(envelope: Envelope) -> bool:
    """True when the message has follow-ups (the worker skips the call otherwise)."""
    return bool(envelope.link or envelope.link_error or envelope.chord)


def after_finish(envelope: Envelope, outcome: Outcome, *, eager: bool = False) -> None:
    """Start the follow-ups of a finished task: links, errbacks, chord body.

    Called for final outcomes only (never RETRY). Raises only when Redis is
    unreachable, so the message is not acked and is redelivered.
    """
    if not needs_after_finish(envelope):
        return
    plan = FollowUps(eager=eager)
    root_id = envelope.root_id or envelope.id
    if outcome.state == states.SUCCESS:
        for index, link in enumerate(envelope.link):
            plan.start(
                link,
                (outcome.value,),
                parent_id=envelope.id,
                root_id=root_id,
                seed=f"{envelope.id}:link:{index}",
            )
    else:
        exc = outcome.exception or TaskRevokedError(outcome.reject_reason or "revoked")
        if envelope.link_error and not envelope.ignore_result and not eager:
            from django_taskq.trace import result_record

            # Stored now (the worker stores it again when it flushes) so an
            # old-style errback that reads AsyncResult(id) finds the failure.
            plan.records.append((envelope.id, result_record(envelope, outcome, None)))
        for link in envelope.link:
            plan.fail(
                link, exc, outcome.traceback, errbacks=False, parent_id=envelope.id, root_id=root_id
            )
        plan.errbacks(
            envelope.link_error, _request(envelope, eager), exc, outcome.traceback, root_id=root_id
        )
    if envelope.chord and not eager:
        ok = outcome.state == states.SUCCESS
        plan.chord_part(
            envelope.chord,
            envelope.group_index,
            envelope.id,
            root_id,
            value=outcome.value if ok else None,
            exc=None if ok else (outcome.exception or TaskRevokedError("revoked")),
        )
    plan.flush()


def _request(envelope: Envelope, eager: bool) -> Request:
    from django_taskq.request import Request

    return Request.from_envelope(envelope, hostname=None, delivery_count=1, eager=eager)


class FollowUps:
    """The follow-ups of one finished task, gathered, then written in one round trip."""

    def __init__(self, eager: bool = False) -> None:
        self.eager = eager
        self.envelopes: list[Envelope] = []
        self.records: list[tuple[str, str]] = []
        #: Chords being failed as a whole: their header members are not counted.
        self.skip_chords: set[str] = set()

    # -- success -------------------------------------------------------------
    def start(
        self, sig_data: Any, args: tuple[Any, ...], *, parent_id: str, root_id: str, seed: str
    ) -> None:
        """Start a follow-up with ``args`` prepended (unless it is immutable)."""
        from django_taskq.canvas import derived_ids, expanded, signature

        sig = expanded(signature(sig_data))
        if self.eager:
            sig.apply(args)
            return
        try:
            sig._freeze(derived_ids(seed), None)
            envelopes = sig._envelopes(args, None, parent_id, root_id)
        except Exception as exc:
            logger.error("cannot start follow-up %r of task %s: %s", sig, parent_id, exc)
            self.fail(sig, exc, None, errbacks=True, parent_id=parent_id, root_id=root_id)
            return
        self.envelopes.extend(envelopes)

    # -- failure -------------------------------------------------------------
    def fail(
        self,
        sig_data: Any,
        exc: BaseException,
        traceback: str | None,
        *,
        errbacks: bool,
        parent_id: str | None,
        root_id: str,
    ) -> None:
        """Settle a frozen signature that will never run as failed with ``exc``.

        Only tasks that have ids (were frozen) are recorded: nobody holds the
        result of an unfrozen link callback.
        """
        from django_taskq.canvas import chain, chord, expanded, group, signature

        sig = expanded(signature(sig_data))
        if isinstance(sig, chain):
            for index, step in enumerate(sig.tasks):
                self.fail(
                    step,
                    exc,
                    traceback,
                    errbacks=errbacks and index == 0,
                    parent_id=parent_id,
                    root_id=root_id,
                )
                parent_id = step.id or parent_id
            return
        if isinstance(sig, group):
            for task in sig.tasks:
                self.fail(
                    task, exc, traceback, errbacks=errbacks, parent_id=parent_id, root_id=root_id
                )
            return
        if isinstance(sig, chord):
            chord_id = sig.header.options.get("task_id")
            if chord_id:
                self.skip_chords.add(chord_id)
            for task in sig.header.tasks:
                self.fail(
                    task, exc, traceback, errbacks=False, parent_id=parent_id, root_id=root_id
                )
            if sig.body is not None:
                self.fail(
                    sig.body,
                    exc,
                    traceback,
                    errbacks=errbacks,
                    parent_id=parent_id,
                    root_id=root_id,
                )
            return
        task_id = sig.id
        if not task_id:
            return
        options = sig.options
        if not self.eager and not options.get("ignore_result"):
            self.records.append((task_id, _failure_record(sig, exc, traceback, parent_id, root_id)))
        if errbacks:
            self.errbacks(
                options.get("link_error") or [],
                _request_for(sig, parent_id, root_id),
                exc,
                traceback,
                root_id=root_id,
            )
        for link in options.get("link") or []:
            self.fail(link, exc, traceback, errbacks=False, parent_id=task_id, root_id=root_id)
        membership = options.get("chord")
        if membership and membership["id"] not in self.skip_chords and not self.eager:
            self.chord_part(membership, options.get("group_index"), task_id, root_id, exc=exc)

    def errbacks(
        self,
        errbacks: Iterable[Any],
        request: Request,
        exc: BaseException,
        traceback: str | None,
        *,
        root_id: str,
    ) -> None:
        """Run error callbacks: new style inline, old style as tasks (see the module doc)."""
        from django_taskq.canvas import signature

        for index, data in enumerate(errbacks):
            sig = signature(data)
            if _is_new_style(sig):
                try:
                    sig(request, exc, traceback)
                except Exception:
                    logger.exception("error callback %r of task %s raised", sig, request.id)
                continue
            assert request.id is not None
            self.start(
                sig,
                (request.id,),
                parent_id=request.id,
                root_id=root_id,
                seed=f"{request.id}:errback:{index}",
            )

    # -- chords ----------------------------------------------------------------
    def chord_part(
        self,
        membership: dict[str, Any],
        index: int | None,
        task_id: str,
        root_id: str,
        *,
        value: Any = None,
        exc: BaseException | None = None,
    ) -> None:
        """Count one finished header task; start or fail the body when it is the last."""
        from django_taskq.broker import keys
        from django_taskq.broker.connection import get_broker
        from django_taskq.broker.publish import with_publish_retry
        from django_taskq.broker.scripts import script
        from django_taskq.messages import dumps, loads
        from django_taskq.trace import exception_info

        chord_id, size = str(membership["id"]), int(membership["size"])
        if index is None:
            logger.error("task %s is in chord %s without a header index", task_id, chord_id)
            return
        if exc is None:
            part: dict[str, Any] = {"ok": True, "id": task_id, "v": value}
        else:
            part = {"ok": False, "id": task_id, "exc": exception_info(exc)}
        client = get_broker()
        count = script(client, "chord_part")
        reply = with_publish_retry(
            f"count chord {chord_id}",
            lambda: count(
                keys=[keys.chord_parts(chord_id)],
                args=[index, dumps(part), size, _ttl_ms()],
                client=client,
            ),
        )
        if not isinstance(reply, list):
            return
        pairs = dict(zip(reply[0::2], reply[1::2], strict=True))
        parts = [loads(pairs[str(i).encode()]) for i in range(size)]
        failed = next((p for p in parts if not p["ok"]), None)
        body = membership["body"]
        if failed is None:
            self.start(
                body,
                ([p["v"] for p in parts],),
                parent_id=task_id,
                root_id=root_id,
                seed=f"{chord_id}:body",
            )
            return
        info = failed["exc"]
        error = ChordError(
            f"Dependency {failed['id']} raised {info.get('exc_type')}: {info.get('exc_message')}"
        )
        self.fail(body, error, None, errbacks=True, parent_id=task_id, root_id=root_id)

    # -- writing -------------------------------------------------------------
    def flush(self) -> None:
        """Store failure records, then publish follow-ups.

        Records first (on the result Redis), so a follow-up that reads one
        finds it; each follow-up is published with a once key of its id in
        its queue, so a task re-run after a crash sends it once.
        """
        if self.eager or not (self.envelopes or self.records):
            return
        from django_taskq import states
        from django_taskq.broker import results
        from django_taskq.broker.connection import get_broker
        from django_taskq.broker.publish import publish, run_pipeline, with_publish_retry

        ttl = _ttl_ms() / 1000

        def send() -> None:
            # The steps in the order fail() met them; the last one (a failed
            # chain's final step, the result its caller waits on) written last.
            results.store_many(
                ((i, r, states.FAILURE) for i, r in self.records), last_after_the_rest=True
            )
            if self.envelopes:
                run_pipeline(
                    get_broker(),
                    lambda pipe: [
                        publish(e, once=f"followup:{e.id}", once_ttl=ttl, pipe=pipe)
                        for e in self.envelopes
                    ],
                )

        with_publish_retry(f"start {len(self.envelopes)} follow-up tasks", send)


def _ttl_ms() -> int:
    return int(float(taskq_settings.RESULT_EXPIRES) * 1000)


def _failure_record(
    sig: Signature, exc: BaseException, traceback: str | None, parent_id: str | None, root_id: str
) -> str:
    from django_taskq.messages import Envelope
    from django_taskq.trace import Outcome, result_record

    options = sig.options
    stub = Envelope(
        id=str(options["task_id"]),
        task=sig.task,
        parent_id=parent_id,
        root_id=root_id,
        group_id=options.get("group_id"),
        group_index=options.get("group_index"),
    )
    return result_record(stub, Outcome(states.FAILURE, exception=exc, traceback=traceback), None)


def _request_for(sig: Signature, parent_id: str | None, root_id: str) -> Request:
    """The Request a task that never ran would have had (for new-style errbacks)."""
    from django_taskq.request import Request

    options = sig.options
    return Request(
        id=options.get("task_id"),
        task=sig.task,
        args=list(sig.args),
        kwargs=dict(sig.kwargs),
        root_id=root_id,
        parent_id=parent_id,
        group_id=options.get("group_id"),
        group_index=options.get("group_index"),
        called_directly=False,
        link=list(options.get("link") or []),
        link_error=list(options.get("link_error") or []),
    )


def _is_new_style(sig: Signature) -> bool:
    """True for an errback task taking ``(request, exc, traceback)`` before its partial args.

    Like Celery, by the number of positional parameters of the function; unlike
    Celery, the signature's own partial args are not counted, so
    ``on_error(task_id, key)`` used as ``on_error.s(key)`` is old style, as
    meant. A task registered only in other workers is old style.
    """
    from django_taskq.canvas import Signature
    from django_taskq.registry import registry

    if type(sig) is not Signature or sig.task not in registry:
        return False
    task = registry.get(sig.task)
    try:
        params = list(inspect.signature(task.run).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    if task.bind:
        params = params[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) - len(sig.args) > 1
