"""Scheduled Job Types that are due whatever the site's time zone history.

Until System Settings has a time zone, Frappe's clock reads Asia/Kolkata. Jobs created then keep that
clock's `creation` (and `last_execution`); once the site moves to a zone behind it those times lie in the
future, and the scheduler, which counts from `last_execution or creation`, holds each job until the wall
clock catches up: hours in which nothing runs. A last run in the future is never true: such a job of this
app is set to have last run one interval ago, which makes it due at once.
"""

from datetime import datetime

from croniter import croniter

import frappe
from frappe.utils import get_datetime, now_datetime

APP_NAME = "sales_automation"


def app_job_methods(app: str) -> list[str]:
	"""The methods an app's hooks.py schedules, of every event type (cron included)."""
	methods = []
	for events in (frappe.get_hooks("scheduler_events", app_name=app) or {}).values():
		if isinstance(events, dict):
			for cron_methods in events.values():
				methods.extend(cron_methods)
		else:
			methods.extend(events)
	return methods


def repair_job_schedules(apps: list[str] | None = None, at_once: bool = True) -> list[str]:
	"""The jobs of `apps` (this app by default) whose last run or creation lies in the future made due at
	once, or with at_once=False at their next time after now (as Frappe starts a new job); their names."""
	now = now_datetime()
	repaired = []
	for app in apps or [APP_NAME]:
		for method in app_job_methods(app):
			job_name = frappe.db.get_value("Scheduled Job Type", {"method": method})
			if not job_name:
				continue
			job = frappe.get_doc("Scheduled Job Type", job_name)
			if get_datetime(job.last_execution or job.creation) <= now:
				continue
			last_run = one_interval_back(job, now) if at_once else now
			job.db_set("last_execution", last_run, update_modified=False)
			repaired.append(job_name)
	return repaired


def repair_all_job_schedules() -> list[str]:
	"""repair_job_schedules for every installed app, as a change of time zone shifts them all alike. Only
	this app's are made due at once: another app's weekly job is not ours to run early."""
	others = [app for app in frappe.get_installed_apps() if app != APP_NAME]
	return repair_job_schedules() + repair_job_schedules(others, at_once=False)


def one_interval_back(job, now: datetime) -> datetime:
	"""A last run such that the job's next execution is the latest due time at or before `now`."""
	job.get_next_execution()  # fills cron_format from the frequency when the job has none
	schedule = croniter(job.cron_format, now)
	schedule.get_prev(datetime)
	return schedule.get_prev(datetime)


def after_time_zone_change():
	# System Settings' cached copies still hold the old zone until its save ends
	frappe.clear_document_cache("System Settings", "System Settings")
	repair_all_job_schedules()
