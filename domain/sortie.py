"""Sorties: the units of work of a mission, with dependencies, blocks and reviews."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import uuid4

from domain.base import PRIORITIES, FleetAggregate, Lifecycle
from domain.errors import RuleError

# The fields an update may change, in the order an update's ``changes`` lists them.
CHANGEABLE_FIELDS = (
    "title", "description", "priority", "metadata", "dependencies", "estimate_minutes"
)  # fmt: skip
CHANGEABLE = frozenset(CHANGEABLE_FIELDS)
BLOCKER_TYPES = ("sortie", "specialist", "external", "resource")
REVIEW_TYPES = ("code", "design", "security", "general")
# The verdicts that send a reviewed sortie back to work; an approval completes it instead.
REWORK_VERDICTS = ("rejected", "needs_changes")
VERDICTS = ("approved", *REWORK_VERDICTS)
# A lease ends when its holder stops: these statuses go back to pending (``Sortie.release``).
RELEASABLE = ("assigned", "in_progress", "blocked")
SORTIE_RELEASE_REASONS = ("heartbeat_timeout", "deregistered", "specialist_failed")
UNSET_AT_START = (
    "status_message", "result", "error", "cancel_reason", "blocker", "review", "started_at",
    "completed_at",
)  # fmt: skip

LIFECYCLE = Lifecycle(
    "sortie",
    {
        "pending": {"assigned", "cancelled"},
        "assigned": {"assigned", "in_progress", "failed", "cancelled"},
        "in_progress": {"blocked", "review", "completed", "failed", "cancelled"},
        "blocked": {"in_progress", "failed", "cancelled"},
        "review": {"in_progress", "completed", "failed", "cancelled"},
        "completed": set(),
        "failed": set(),
        "cancelled": set(),
    },
)
SORTIE_STATUSES = LIFECYCLE.statuses
# The statuses a PATCH may move a sortie to: all but pending, which only a lease's end
# (``Sortie.release``) goes back to.
PATCH_STATUSES = LIFECYCLE.targets
# The sorties a mission needs no more work on (its progress, and what completing it asks);
# a failed sortie is final but not settled.
SETTLED_STATUSES = ("completed", "cancelled")

# What a PATCH moving a sortie to each status may carry beside the changeable fields and
# progress, and the one field it cannot do without (with what a 422 says when it lacks it).
TRANSITION_FIELDS: dict[str, frozenset[str]] = {
    "assigned": frozenset({"assigned_to"}),
    "in_progress": frozenset({"resolution", "verdict", "feedback"}),
    "blocked": frozenset({"reason", "blocker_type", "blocker_id"}),
    "review": frozenset({"reviewer_id", "review_type"}),
    "completed": frozenset({"result", "feedback"}),
    "failed": frozenset({"error", "result"}),
    "cancelled": frozenset({"reason"}),
}
TRANSITION_REQUIRES = {
    "assigned": ("assigned_to", "required to assign a sortie"),
    "blocked": ("reason", "required to block a sortie"),
    "review": ("reviewer_id", "required to start a review"),
    "failed": ("error", "required to fail a sortie"),
}
PROGRESS_FIELDS = frozenset({"progress", "status_message"})


def patch_field_errors(status: str | None, names: Collection[str]) -> dict[str, str]:
    """Which of the fields a PATCH gives do not go with its ``status`` (None: no change),
    and the field that status needs when it is missing: one message per field.

    The web schema and the service both ask this, so a 422 names all of them at once.
    """
    allowed = CHANGEABLE | PROGRESS_FIELDS | TRANSITION_FIELDS.get(status or "", frozenset())
    if status is None:
        found = {n: "only allowed with a status change" for n in names if n not in allowed}
    else:
        found = {n: f"not allowed when moving to {status!r}" for n in names if n not in allowed}
    if "status_message" in names and "progress" not in names:
        found["progress"] = "required with status_message"
    if status in TRANSITION_REQUIRES and TRANSITION_REQUIRES[status][0] not in names:
        found[TRANSITION_REQUIRES[status][0]] = TRANSITION_REQUIRES[status][1]
    return dict(sorted(found.items()))


def unfinished_dependencies(
    dependencies: Sequence[str], status_of: Callable[[str], str | None]
) -> list[str]:
    """The dependencies that still block a sortie: every one not ``completed`` (one that
    names no sortie, ``status_of`` None, blocks too). The one definition of ``blocked_by``,
    read from aggregates by the services and from rows by the work projection."""
    return [d for d in dependencies if status_of(d) != "completed"]


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path ``[a, b, ..., a]``, or None; ids absent as keys are leaves."""
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(graph.get(root, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                node = path.pop()
                on_path.discard(node)
                done.add(node)
                continue
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(graph.get(nxt, ())))
    return None


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise RuleError(f"{name} must be one of: {', '.join(choices)}")


def _check_estimate(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise RuleError("estimate_minutes must be a whole number of minutes, 0 or more")


class Sortie(FleetAggregate):
    """Version 2 added ``estimate_minutes``, version 3 ``required_capabilities``; older
    snapshots are upcast on load."""

    TOPIC = "sortie"
    STREAM_TYPE = "sortie"
    DATETIME_FIELDS = frozenset({"started_at", "completed_at"})
    class_version = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["estimate_minutes"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["required_capabilities"] = []

    if TYPE_CHECKING:  # for the type checker only: real annotations would make fields
        mission_id: str | None
        title: str | None
        description: str
        priority: str
        metadata: dict[str, Any]
        status: str
        dependencies: list[str]
        assigned_to: str | None
        estimate_minutes: int | None
        required_capabilities: list[str]
        progress: int
        status_message: str | None
        result: dict[str, Any] | None
        error: str | None
        cancel_reason: str | None
        blocker: dict[str, Any] | None
        review: dict[str, Any] | None
        started_at: datetime | None
        completed_at: datetime | None

    class Created(FleetAggregate.Created):
        """Version 2 added ``estimate_minutes`` (older events read it as None), version 3
        ``required_capabilities`` (older events read it as none required)."""

        TOPIC = "sortie_created"
        event_type = "sortie_created"
        class_version = 3
        description: str
        priority: str
        dependencies: list[str]
        metadata: dict[str, Any]
        required_capabilities: list[str]
        mission_id: str | None = None
        title: str | None = None
        assigned_to: str | None = None
        estimate_minutes: int | None = None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["estimate_minutes"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["required_capabilities"] = []

        def apply(self, aggregate: Sortie) -> None:
            aggregate.mission_id = self.mission_id
            aggregate.title = self.title
            aggregate.estimate_minutes = self.estimate_minutes
            aggregate.required_capabilities = list(self.required_capabilities)
            aggregate.description = self.description
            aggregate.priority = self.priority
            aggregate.metadata = dict(self.metadata)
            aggregate.dependencies = list(self.dependencies)
            aggregate.assigned_to = self.assigned_to
            aggregate.status = "pending" if self.assigned_to is None else "assigned"
            aggregate.progress = 0
            for name in UNSET_AT_START:
                setattr(aggregate, name, None)

    class Updated(FleetAggregate.Event):
        TOPIC = "sortie_updated"
        event_type = "sortie_updated"
        changes: dict[str, Any]

        def apply(self, aggregate: Sortie) -> None:
            for key in sorted(CHANGEABLE & set(self.changes)):
                value = self.changes[key]
                if isinstance(value, list | dict):
                    value = type(value)(value)
                setattr(aggregate, key, value)

    class Assigned(FleetAggregate.Event):
        TOPIC = "sortie_assigned"
        event_type = "sortie_assigned"
        specialist_id: str

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "assigned"
            aggregate.assigned_to = self.specialist_id

    class Released(FleetAggregate.Event):
        """The holder stopped (inactive or failed): the sortie is back in the queue.

        The holder's progress, result and review stay as they were (the history shows
        them); only the blocker goes, since nobody works on a pending sortie.
        """

        TOPIC = "sortie_released"
        event_type = "sortie_released"
        reason: str
        previous_assignee: str
        previous_status: str

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "pending"
            aggregate.assigned_to = None
            aggregate.blocker = None

    class Started(FleetAggregate.Event):
        TOPIC = "sortie_started"
        event_type = "sortie_started"
        specialist_id: str

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "in_progress"
            aggregate.assigned_to = self.specialist_id
            aggregate.started_at = self.timestamp

    class Progressed(FleetAggregate.Event):
        TOPIC = "sortie_progress"
        event_type = "sortie_progress"
        progress: int
        status_message: str | None = None

        def apply(self, aggregate: Sortie) -> None:
            aggregate.progress = self.progress
            aggregate.status_message = self.status_message

    class Blocked(FleetAggregate.Event):
        TOPIC = "sortie_blocked"
        event_type = "sortie_blocked"
        reason: str
        blocker_type: str
        blocker_id: str | None = None

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "blocked"
            aggregate.blocker = {
                "reason": self.reason,
                "blocker_type": self.blocker_type,
                "blocker_id": self.blocker_id,
            }

    class Unblocked(FleetAggregate.Event):
        TOPIC = "sortie_unblocked"
        event_type = "sortie_unblocked"
        resolution: str | None = None

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "in_progress"
            aggregate.blocker = None

    class ReviewStarted(FleetAggregate.Event):
        TOPIC = "review_started"
        event_type = "review_started"
        review_id: str
        reviewer_id: str
        review_type: str

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "review"
            aggregate.review = {
                "review_id": self.review_id,
                "reviewer_id": self.reviewer_id,
                "review_type": self.review_type,
                "verdict": None,
                "feedback": None,
            }

    class ReviewCompleted(FleetAggregate.Event):
        """An approved review keeps status ``review``: ``sortie_completed`` follows it."""

        TOPIC = "review_completed"
        event_type = "review_completed"
        review_id: str
        verdict: str
        feedback: str | None = None

        def apply(self, aggregate: Sortie) -> None:
            review = dict(aggregate.review or {"review_id": self.review_id})
            review.update(verdict=self.verdict, feedback=self.feedback)
            aggregate.review = review
            if self.verdict != "approved":
                aggregate.status = "in_progress"

    class Completed(FleetAggregate.Event):
        TOPIC = "sortie_completed"
        event_type = "sortie_completed"
        result: dict[str, Any]
        duration_ms: int

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "completed"
            aggregate.result = dict(self.result)
            aggregate.completed_at = self.timestamp

    class Failed(FleetAggregate.Event):
        TOPIC = "sortie_failed"
        event_type = "sortie_failed"
        error: str
        result: dict[str, Any] | None = None

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "failed"
            aggregate.error = self.error
            aggregate.result = None if self.result is None else dict(self.result)
            aggregate.completed_at = self.timestamp

    class Cancelled(FleetAggregate.Event):
        TOPIC = "sortie_cancelled"
        event_type = "sortie_cancelled"
        reason: str | None = None

        def apply(self, aggregate: Sortie) -> None:
            aggregate.status = "cancelled"
            aggregate.cancel_reason = self.reason
            aggregate.completed_at = self.timestamp

    LIFECYCLE: ClassVar[Lifecycle] = LIFECYCLE

    @property
    def is_final(self) -> bool:
        return LIFECYCLE.is_final(self.status)

    def _restore(self, state: Mapping[str, Any]) -> None:
        # A checkpoint taken before version 2 (3) has no estimate (required capabilities):
        # it had none then.
        super()._restore({"estimate_minutes": None, "required_capabilities": [], **state})

    def _leave_for(self, target: str, expected: str, hint: str) -> None:
        """Lifecycle first (it names the allowed statuses), then the status this command leaves."""
        LIFECYCLE.check(self.status, target)
        if self.status != expected:
            raise RuleError(f"sortie is {self.status}, not {expected}; {hint}")

    # Commands: check the rule, then record the event.

    @classmethod
    def create(
        cls,
        description: str,
        mission_id: str | None = None,
        title: str | None = None,
        priority: str = "medium",
        dependencies: Sequence[str] = (),
        assigned_to: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        estimate_minutes: int | None = None,
        required_capabilities: Sequence[str] = (),
    ) -> Sortie:
        _check_choice("priority", priority, PRIORITIES)
        _check_estimate(estimate_minutes)
        return cls._create(
            cls.Created,
            mission_id=mission_id,
            title=title,
            description=description,
            priority=priority,
            dependencies=list(dependencies),
            assigned_to=assigned_to,
            metadata=dict(metadata or {}),
            estimate_minutes=estimate_minutes,
            required_capabilities=list(dict.fromkeys(required_capabilities)),
        )

    def update(self, changes: Mapping[str, Any]) -> None:
        if self.is_final:
            raise RuleError(f"sortie is {self.status}; a final sortie cannot be changed")
        if not changes:
            raise RuleError("no changes given")
        unknown = sorted(set(changes) - CHANGEABLE)
        if unknown:
            raise RuleError(f"sortie fields that cannot be changed: {', '.join(unknown)}")
        if "priority" in changes:
            _check_choice("priority", changes["priority"], PRIORITIES)
        if "estimate_minutes" in changes:
            _check_estimate(changes["estimate_minutes"])
        if "dependencies" in changes:
            if self.status not in ("pending", "assigned"):
                raise RuleError(
                    f"dependencies change only while pending or assigned; sortie is {self.status}"
                )
            if str(self.id) in {str(d) for d in changes["dependencies"]}:
                raise RuleError("a sortie cannot depend on itself")
        self.trigger_event(self.Updated, changes=dict(changes))

    def assign(self, specialist_id: str) -> None:
        LIFECYCLE.check(self.status, "assigned")
        self.trigger_event(self.Assigned, specialist_id=specialist_id)

    def missing_capabilities(self, capabilities: Sequence[str]) -> list[str]:
        return [c for c in self.required_capabilities if c not in set(capabilities)]

    def claim(
        self,
        specialist_id: str,
        capabilities: Sequence[str],
        unfinished_dependencies: Sequence[str] = (),
    ) -> None:
        """Assign a claimable sortie to its claimer: pending, unheld, its dependencies
        completed and its required capabilities among the claimer's."""
        if self.status != "pending" or self.assigned_to is not None:
            raise RuleError(f"sortie is {self.status}, held by {self.assigned_to}; not claimable")
        if unfinished_dependencies:
            raise RuleError(
                "sortie is not claimable: dependencies not completed: "
                + ", ".join(str(d) for d in unfinished_dependencies)
            )
        missing = self.missing_capabilities(capabilities)
        if missing:
            raise RuleError(f"sortie needs capabilities the claimer lacks: {', '.join(missing)}")
        self.assign(specialist_id)

    def held_by(self, specialist_id: str) -> bool:
        """True while ``specialist_id`` holds this sortie (a lease its end releases)."""
        return self.status in RELEASABLE and self.assigned_to == specialist_id

    def release(self, reason: str) -> None:
        """End the holder's lease: back to pending with no assignee.

        Not a PATCH transition (a client never moves a sortie back to pending), so the
        lifecycle table does not list it; the rule is here.
        """
        _check_choice("reason", reason, SORTIE_RELEASE_REASONS)
        if self.status not in RELEASABLE or self.assigned_to is None:
            raise RuleError(f"sortie is {self.status}; only a held sortie is released")
        self.trigger_event(
            self.Released,
            reason=reason,
            previous_assignee=self.assigned_to,
            previous_status=self.status,
        )

    def start(
        self, specialist_id: str | None = None, unfinished_dependencies: Sequence[str] = ()
    ) -> None:
        hint = {"blocked": "unblock it", "review": "finish the review with a verdict"}
        self._leave_for("in_progress", "assigned", hint.get(self.status, "assign it first"))
        if unfinished_dependencies:
            raise RuleError(
                "sortie cannot start: dependencies not completed: "
                + ", ".join(str(d) for d in unfinished_dependencies)
            )
        specialist = specialist_id or self.assigned_to
        if not specialist:
            raise RuleError("sortie has no specialist to start it")
        self.trigger_event(self.Started, specialist_id=specialist)

    def report_progress(self, progress: int, status_message: str | None = None) -> None:
        if self.status != "in_progress":
            raise RuleError(f"progress is reported only while in_progress; sortie is {self.status}")
        if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
            raise RuleError("progress must be an integer from 0 to 100")
        self.trigger_event(self.Progressed, progress=progress, status_message=status_message)

    def block(
        self, reason: str, blocker_type: str = "external", blocker_id: str | None = None
    ) -> None:
        LIFECYCLE.check(self.status, "blocked")
        _check_choice("blocker_type", blocker_type, BLOCKER_TYPES)
        if not reason:
            raise RuleError("a block needs a reason")
        self.trigger_event(
            self.Blocked, reason=reason, blocker_type=blocker_type, blocker_id=blocker_id
        )

    def unblock(self, resolution: str | None = None) -> None:
        self._leave_for("in_progress", "blocked", "only a blocked sortie can be unblocked")
        self.trigger_event(self.Unblocked, resolution=resolution)

    def submit_for_review(
        self, reviewer_id: str, review_type: str = "general", review_id: str | None = None
    ) -> None:
        LIFECYCLE.check(self.status, "review")
        _check_choice("review_type", review_type, REVIEW_TYPES)
        self.trigger_event(
            self.ReviewStarted,
            review_id=review_id or str(uuid4()),
            reviewer_id=reviewer_id,
            review_type=review_type,
        )

    def request_changes(self, verdict: str = "needs_changes", feedback: str | None = None) -> None:
        """Send a reviewed sortie back to work (``rejected`` or ``needs_changes``)."""
        self._leave_for("in_progress", "review", "only a sortie in review gets a verdict")
        _check_choice("verdict", verdict, REWORK_VERDICTS)
        self._verdict(verdict, feedback)

    def approve(self, result: Mapping[str, Any] | None = None, feedback: str | None = None) -> None:
        """End a review with ``approved``: the sortie is completed with ``result``."""
        if self.status != "review":
            raise RuleError(f"only a sortie in review is approved; sortie is {self.status}")
        self.complete(result, feedback)

    def resume(
        self,
        resolution: str | None = None,
        verdict: str | None = None,
        feedback: str | None = None,
        unfinished_dependencies: Sequence[str] = (),
    ) -> None:
        """Back to ``in_progress`` from where the sortie is: start an assigned one, unblock
        a blocked one, or request changes on one in review (which needs a verdict)."""
        if self.status == "blocked":
            self.unblock(resolution)
        elif self.status == "review":
            if verdict is None:
                raise RuleError(
                    "leaving review for in_progress requires a verdict "
                    "(rejected or needs_changes); to approve, move to completed"
                )
            self.request_changes(verdict, feedback)
        else:
            self.start(unfinished_dependencies=unfinished_dependencies)

    def _verdict(self, verdict: str, feedback: str | None) -> None:
        self.trigger_event(
            self.ReviewCompleted,
            review_id=str((self.review or {}).get("review_id") or uuid4()),
            verdict=verdict,
            feedback=feedback,
        )

    def complete(
        self, result: Mapping[str, Any] | None = None, feedback: str | None = None
    ) -> None:
        """From review this is an approval: an approved ``review_completed`` comes first."""
        LIFECYCLE.check(self.status, "completed")
        if self.status == "review":
            self._verdict("approved", feedback)
        elif feedback is not None:
            raise RuleError("feedback belongs to a review; this sortie is not in review")
        now = self.Completed.create_timestamp()
        self.trigger_event(
            self.Completed,
            result=dict(result or {}),
            duration_ms=self.duration_ms_until(now),
            timestamp=now,
        )

    def fail(self, error: str, result: Mapping[str, Any] | None = None) -> None:
        LIFECYCLE.check(self.status, "failed")
        if not error:
            raise RuleError("a failed sortie needs an error")
        result = None if result is None else dict(result)
        self.trigger_event(self.Failed, error=error, result=result)

    def cancel(self, reason: str | None = None) -> None:
        LIFECYCLE.check(self.status, "cancelled")
        self.trigger_event(self.Cancelled, reason=reason)

    def duration_ms_until(self, now: datetime) -> int:
        """Milliseconds from ``started_at`` to ``now`` (0 if never started)."""
        if self.started_at is None:
            return 0
        return max(0, int((now - self.started_at).total_seconds() * 1000))
