"""The SMS service: queues broadcasts, hands the messages to the gateway at the site's
rate inside the sending window, and files the replies (docs/sms.md).

The rules are pure (:mod:`callcenter.sms.compose`, :mod:`callcenter.sms.gateway`,
:mod:`callcenter.sms.text`); the rows live in SQL (:mod:`callcenter.storage.sms`),
read and written in the repository's thread pool. This class moves the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from callcenter.ami import actions
from callcenter.ami.client import AmiActionFailed, AmiNotConnected, AmiResult
from callcenter.ami.codec import Message
from callcenter.sms.compose import Contact, compose
from callcenter.sms.gateway import (
    ReplyError,
    Tokens,
    destination,
    in_window,
    parse_reply,
    sender_uri,
)
from callcenter.sms.text import SmsPolicy
from callcenter.storage import sms as store

__all__ = ["SmsService"]

_log = Logger(namespace="callcenter.sms")

TICK_SECONDS = 0.5
"""How often the queue is looked at (and the rate's tokens spent)."""


class SmsService(Service):
    """SMS broadcast through ``gateway`` (``host[:port]``, see
    :func:`callcenter.asterisk.render.sms_gateway`).

    ``ami`` gives ``send`` and ``subscribe``; ``repository`` ``run``; ``clock`` is the
    reactor's clock. At start, messages a stopped daemon left half-sent are marked
    failed (whether they went out is not known), then the queue is worked through.
    """

    def __init__(self, settings: Any, ami: Any, repository: Any, clock: Any, *, gateway: str,
                 metrics: Any = None) -> None:
        self.settings = settings
        self.sms = settings.sms
        self.ami = ami
        self.repository = repository
        self.clock = clock
        self.gateway = gateway
        self.metrics = metrics
        self.policy = SmsPolicy(signature=self.sms.signature, opt_out_note=self.sms.opt_out_note,
                                max_parts=self.sms.max_parts)
        self.zone = ZoneInfo(settings.site.timezone)
        self.in_flight = 0
        """Messages handed to Asterisk and not yet answered."""
        self._tokens = Tokens(self.sms.rate_per_second, clock.seconds())
        self._taking = False
        self._maybe_queued = True
        """False once a take found fewer messages than it asked for, until a broadcast or a
        requeue adds some: an idle queue costs no SQL."""
        self._additions = 0
        """How many times a broadcast or a requeue has added messages to the queue. A take
        that found fewer messages than it asked for clears :attr:`_maybe_queued` only when
        this has not moved since the take began: messages committed while the read was
        under way may be missing from its answer."""
        self._loop: LoopingCall | None = None
        self._subscription: Any = None
        self.ready: Deferred[int] = Deferred()
        """Fires (with the number of interrupted messages failed) once start-up is done."""
        self.reply_listeners: list[Callable[[store.SmsReply], object]] = []
        """Called with each reply filed that is not an opt-out (the composition root hands
        them to the dialer as call-back requests)."""

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self._subscription = self.ami.subscribe(self.on_event, "UserEvent")

        def started(failed: int) -> int:
            if failed:
                _log.warn("sms.interrupted {count} message(s) were being sent when the daemon stopped: "
                          "marked failed", count=failed)
            if self.running:
                self._loop = LoopingCall(self.pump)
                self._loop.clock = self.clock
                self._loop.start(TICK_SECONDS, now=True).addErrback(
                    lambda f: _log.failure("sms.pump_stopped", f))
            return failed

        self.repository.run(store.fail_interrupted, now=self._now()).addCallback(started).chainDeferred(self.ready)

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    # --- broadcasts -------------------------------------------------------------------------

    def broadcast(self, *, name: str, template: str, actor: str, campaign_id: int | None = None,
                  team: str | None = None, agent_id: str | None = None,
                  phones: Sequence[str] | None = None, contacts: Sequence[Contact] | None = None,
                  kind: str = "marketing") -> Deferred[store.BroadcastCreated]:
        """Queue a broadcast to a campaign's leads (optionally those a team or an agent
        holds), to ``phones``, or to ``contacts`` (with their own fields). The template is
        checked and every text measured before anything is queued
        (:class:`~callcenter.sms.text.TemplateError` fails the Deferred); invalid, repeated
        and do-not-call numbers are kept as skipped rows, and so are numbers texted within
        ``sms.min_days_between`` days for a ``marketing`` broadcast. A ``notice`` is not
        capped, and gets the signature but no opt-out note."""
        policy = self.policy if kind == "marketing" else replace(self.policy, opt_out_note="")
        given = list(contacts or ()) + [Contact(phone=p) for p in phones or ()]

        def queue(session: Any) -> store.BroadcastCreated:
            if campaign_id is not None:
                contacts = store.campaign_contacts(session, campaign_id, team=team, agent_id=agent_id)
            else:
                contacts = given
            texts = compose(template, policy, contacts)
            recipients = [store.SmsRecipient(phone=t.phone, body=t.body, parts=t.parts, lead_id=t.lead_id)
                          for t in texts]
            return store.create_broadcast(session, name=name, template=template, recipients=recipients,
                                          actor=actor, now=self._now(), campaign_id=campaign_id, kind=kind,
                                          min_days_between=self.sms.min_days_between)

        def queued(created: store.BroadcastCreated) -> store.BroadcastCreated:
            self._queue_grew()
            _log.info("sms.broadcast id={id} name={name} by={actor} queued={queued} skipped={skipped}",
                      id=created.broadcast_id, name=name, actor=actor, queued=created.queued,
                      skipped=created.skipped)
            self.clock.callLater(0, self.pump)
            return created

        result: Deferred[store.BroadcastCreated] = self.repository.run(queue).addCallback(queued)
        return result

    def text_ticket(self, *, ticket: str, phone: str, name: str | None, agent: str
                    ) -> Deferred[store.BroadcastCreated]:
        """Text a caller their call's ticket number (``sms.ticket_template``), from the agent:
        a notice, so the signature is put first but no opt-out note is added; a number on
        the do-not-call list is still skipped."""
        contact = Contact(phone=phone, name=name, extra={"ticket": ticket, "agent": agent})
        return self.broadcast(name=f"ticket {ticket}", template=self.sms.ticket_template, actor=agent,
                              contacts=[contact], kind="notice")

    def progress(self, broadcast_id: int) -> Deferred[store.BroadcastProgress]:
        result: Deferred[store.BroadcastProgress] = self.repository.run(store.broadcast_progress, broadcast_id)
        return result

    def recent(self, limit: int = 20) -> Deferred[list[store.BroadcastProgress]]:
        result: Deferred[list[store.BroadcastProgress]] = self.repository.run(store.list_broadcasts, limit=limit)
        return result

    def replies(self, limit: int = 50) -> Deferred[list[store.SmsReply]]:
        result: Deferred[list[store.SmsReply]] = self.repository.run(store.list_replies, limit=limit)
        return result

    # --- sending ----------------------------------------------------------------------------

    def _queue_grew(self) -> None:
        """Messages were added to the queue (a broadcast, a requeue): the next turn reads it."""
        self._additions += 1
        self._maybe_queued = True

    def pump(self) -> None:
        """Hand the gateway as many queued messages as the rate allows now (one read at a
        time; nothing outside the sending window, or while AMI is down)."""
        if self._taking or not self.running or not self._maybe_queued:
            return  # tokens are spent only on a turn that can send: a slow read costs no rate
        if not in_window(self.sms.hours, self.zone, self._now()) or not self.ami.connected:
            return
        allowed = self._tokens.take(self.clock.seconds())
        if allowed <= 0:
            return
        self._taking = True
        additions = self._additions

        def send_all(messages: list[store.QueuedSms]) -> None:
            self._taking = False
            # The queue is drained only if nothing was added while the read was under way: a
            # broadcast committed after the read began is missing from its answer, and its
            # own call to pump() was turned away because this read was in flight.
            if len(messages) < allowed and self._additions == additions:
                self._maybe_queued = False
            for message in messages:
                self._send(message)

        def failed(failure: Failure) -> None:
            self._taking = False
            _log.failure("sms.take_failed", failure)

        self.repository.run(store.take_queued, limit=allowed, now=self._now()).addCallbacks(send_all, failed)

    def _send(self, message: store.QueuedSms) -> None:
        action = actions.message_send(destination(message.phone, self.gateway),
                                      sender_uri(self.sms.sender, self.gateway), message.body)
        self.in_flight += 1

        def answered(result: AmiResult) -> None:
            self._finish(message, ok=True, reason="")

        def refused(failure: Failure) -> None:
            error = failure.value
            if isinstance(error, AmiNotConnected):  # never reached Asterisk: it waits for the next turn
                self.in_flight -= 1

                def requeued(_: None) -> None:
                    self._queue_grew()

                self.repository.run(store.requeue_sms, message.message_id, now=self._now()).addCallbacks(
                    requeued, lambda f: _log.failure("sms.requeue_failed id={id}", f, id=message.message_id))
                return
            if isinstance(error, AmiActionFailed):
                reason = f"refused by Asterisk: {error.message.get('Message') or 'Error'}"
            else:  # lost connection, timeout: whether it went out is not known
                reason = f"not known whether it went out: {failure.getErrorMessage()}"
            self._finish(message, ok=False, reason=reason)

        self.ami.send(action).addCallbacks(answered, refused)

    def _finish(self, message: store.QueuedSms, *, ok: bool, reason: str) -> None:
        self.in_flight -= 1
        if self.metrics is not None:
            self.metrics.sms_sent.labels("sent" if ok else "failed").inc()
        if not ok:
            _log.warn("sms.failed id={id} to={phone}: {reason}", id=message.message_id, phone=message.phone,
                      reason=reason)
        self.repository.run(store.finish_sms, message.message_id, ok=ok, reason=reason, now=self._now()).addErrback(
            lambda f: _log.failure("sms.store_failed id={id}", f, id=message.message_id))

    # --- replies ----------------------------------------------------------------------------

    def on_event(self, msg: Message) -> None:
        """File the reply a ``SmsReceived`` event reports (an opt-out goes on the DNC list)."""
        try:
            reply = parse_reply(msg)
        except ReplyError as exc:
            _log.warn("sms.bad_event {error}: {event}", error=str(exc), event=msg.headers)
            return
        if reply is None:
            return
        if self.metrics is not None:
            self.metrics.sms_replies.labels("opt_out" if reply.opt_out else "reply").inc()

        def filed(saved: store.SmsReply) -> None:
            _log.info("sms.reply from={phone} opt_out={opt_out} added_to_dnc={dnc}", phone=saved.phone,
                      opt_out=saved.opt_out, dnc=saved.added_to_dnc)
            if not saved.opt_out:
                for listener in self.reply_listeners:
                    listener(saved)

        self.repository.run(store.record_reply, phone=reply.phone, to_number=reply.to, body=reply.body,
                            opt_out=reply.opt_out, now=self._now()).addCallbacks(
            filed, lambda f: _log.failure("sms.reply_store_failed from={phone}", f, phone=reply.phone))
