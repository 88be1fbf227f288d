"""Jobs around APScheduler: our small API (`core`), leader election (`leader`, `service`) and the jobs
themselves with the standard schedule (`jobs`)."""

from scheduler.core import Daily, Every, JobContext, JobEvent, JobInfo, JobSpec, Monthly, Once, Policy, Scheduler
from scheduler.service import SchedulerService

__all__ = [
    "Daily",
    "Every",
    "JobContext",
    "JobEvent",
    "JobInfo",
    "JobSpec",
    "Monthly",
    "Once",
    "Policy",
    "Scheduler",
    "SchedulerService",
]
