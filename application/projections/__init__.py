"""Read models: projection tables kept by followers of the notification log."""

from application.projections.checkpoints import CheckpointsProjection
from application.projections.locks import LocksProjection
from application.projections.messages import MessagesProjection
from application.projections.runner import Projector
from application.projections.specialists import SpecialistsProjection
from application.projections.work import WorkProjection

PROJECTIONS = (
    SpecialistsProjection,
    WorkProjection,
    CheckpointsProjection,
    MessagesProjection,
    LocksProjection,
)

__all__ = ["PROJECTIONS", "Projector"]
