"""Whether the scheduler runs the app's safety net (the retry of due runs), in words a person can act on,
for the workspace and the order's bar."""

from datetime import datetime, timedelta

import frappe
from frappe import _
from frappe.query_builder.functions import Count, Min
from frappe.utils import cint, format_datetime, get_datetime, now_datetime
from frappe.utils.scheduler import is_scheduler_disabled, is_scheduler_inactive

from sales_automation.constants import QUEUED

SAFETY_NET = "sales_automation.background.retry_due_runs"


@frappe.whitelist()
def scheduler_health() -> dict:
	"""{"ok": bool, "reason": why not (None when ok), "last_run": the retry job's last start or None}."""
	frappe.has_permission("Sales Automation Run", "read", throw=True)
	return scheduler_state()


def scheduler_state() -> dict:
	"""scheduler_health's answer, for a caller that has checked its own permission (the order's bar)."""
	job_name = frappe.db.get_value("Scheduled Job Type", {"method": SAFETY_NET})
	job = frappe.get_doc("Scheduled Job Type", job_name) if job_name else None
	last_run = get_datetime(job.last_execution) if job and job.last_execution else None
	reason = why_not_running(job, last_run)
	return {"ok": reason is None, "reason": reason, "last_run": last_run}


@frappe.whitelist()
def safety_net_status() -> dict:
	"""The workspace's warning: the scheduler's health (scheduler_health), and how many queued runs are
	overdue for their retry and since when."""
	frappe.has_permission("Sales Automation Run", "read", throw=True)
	before = overdue_before()
	Run = frappe.qb.DocType("Sales Automation Run")
	count, since = (
		frappe.qb.from_(Run)
		.select(Count(Run.name), Min(Run.next_retry_at))
		.where((Run.status == QUEUED) & (Run.next_retry_at < before))
		.run()[0]
	)
	return {
		"scheduler": scheduler_state(),
		"overdue_runs": count,
		"overdue_since": since,
		# the run list's filter for them
		"overdue_before": before,
	}


def scheduler_tick() -> timedelta:
	"""How often the scheduler looks for due jobs (a minute by default)."""
	return timedelta(seconds=cint(frappe.get_conf().scheduler_tick_interval) or 60)


def overdue_before() -> datetime:
	"""A queued run whose retry time is older than this is overdue: the retry job looks every tick and
	a worker then takes the run, so a retry up to two ticks late is on time."""
	return now_datetime() - 2 * scheduler_tick()


def is_retry_overdue(status: str | None, next_retry_at) -> bool:
	return status == QUEUED and bool(next_retry_at) and get_datetime(next_retry_at) < overdue_before()


def why_not_running(job, last_run: datetime | None) -> str | None:
	site = frappe.local.site
	if is_scheduler_disabled(verbose=False):
		return " ".join(
			[
				_("The scheduler is disabled: failed and queued runs are not retried."),
				last_run_sentence(last_run),
				_("Enable it: bench --site {0} enable-scheduler").format(site),
			]
		)
	if is_scheduler_inactive(verbose=False):
		return " ".join(
			[
				_(
					"The scheduler is paused (maintenance mode or pause_scheduler): failed and queued runs are not retried."
				),
				last_run_sentence(last_run),
				_(
					"Resume it: bench --site {0} set-maintenance-mode off; bench --site {0} scheduler resume"
				).format(site),
			]
		)
	if not job:
		return _(
			"The retry job is not scheduled on this site: bench --site {0} migrate schedules it."
		).format(site)
	if job.stopped:
		return _("The retry job is stopped (Scheduled Job Type {0}): untick its Stopped box.").format(
			job.name
		)
	now = now_datetime()
	since = last_run or get_datetime(job.creation)
	if since > now:
		return _(
			"The retry job is held until {0}: its last run is recorded in the future, as after a change of time zone (bench --site {1} migrate repairs it)."
		).format(format_datetime(since), site)
	# the scheduler looks every tick and a worker then takes the job
	if job.get_next_execution() + 2 * scheduler_tick() < now:
		if last_run:
			return _(
				"The retry job has not run since {0}: is the scheduler (bench schedule) running?"
			).format(format_datetime(last_run))
		return _("The retry job has never run: is the scheduler (bench schedule) running?")
	return None


def last_run_sentence(last_run: datetime | None) -> str:
	if last_run:
		return _("The retry job last ran at {0}.").format(format_datetime(last_run))
	return _("The retry job has never run.")
