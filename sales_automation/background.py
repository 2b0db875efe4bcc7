"""Background runs: jobs queued after commit, claimed under the order's lock, drained for a while,
and the scheduler that retries due runs and queues again the runs of workers that died."""

import hashlib
import time
from datetime import datetime, timezone

import frappe
from frappe.utils import add_to_date, now_datetime

from sales_automation import locks
from sales_automation.constants import BULK, QUEUED, RUNNING
from sales_automation.exceptions import OrderBusyError
from sales_automation.settings import get_settings, order_lock_wait, setting_or


def enqueue_run(run):
	"""Queue the run after commit; one job per order at a time (deduplicated by job id).

	Frappe deduplicates against a job RQ lists as started, and RQ lists the job of a worker killed
	whole as started until a live worker's registry clean-up (about ten minutes later): such a job is
	removed first, or the run would wait for nobody."""
	remove_dead_job(run.sales_order)
	frappe.enqueue(
		"sales_automation.background.process_run",
		queue=queue_of(run.trigger),
		run_name=run.name,
		enqueue_after_commit=True,
		job_id=order_job_id(run.sales_order),
		deduplicate=True,
	)


def queue_of(trigger: str | None) -> str:
	"""The queue a run's job goes on (Settings: Queue, and Bulk Queue for bulk runs and backfills)."""
	settings = get_settings()
	if trigger == BULK and settings.bulk_queue:
		return settings.bulk_queue
	return settings.queue or "default"


def order_job_id(sales_order_name: str) -> str:
	return f"sales_automation::{frappe.local.site}::{sales_order_name}"


def drop_queued_job(sales_order_name: str):
	"""Delete the order's job while it is still waiting in the queue: a draining job has taken its run.

	Each job costs a worker a fork of its own; a job already started is left alone (it finds its run
	taken and returns)."""
	from rq.job import JobStatus

	from frappe.utils.background_jobs import get_job

	job = get_job(order_job_id(sales_order_name))
	if job and job.get_status() == JobStatus.QUEUED:
		job.delete()


def remove_dead_job(sales_order_name: str) -> None:
	"""Delete the order's job when RQ lists it as started but nothing runs it any more."""
	from rq.job import JobStatus

	from frappe.utils.background_jobs import get_job

	job = get_job(order_job_id(sales_order_name))
	if job and job.get_status() == JobStatus.STARTED and not job_is_alive(job):
		job.delete()


# A job RQ has just started takes its lock within a second or two (the fork and Frappe's start-up):
# until then it counts as alive.
JOB_START_GRACE_SECONDS = 10


def job_is_alive(job) -> bool:
	"""Whether a started job is still being run: process_run holds a lock named after the job on its
	database connection, which dies with its process (as the order's lock does, locks.py)."""
	if frappe.db.sql("select is_used_lock(%s)", (job_lock_name(job.id),))[0][0] is not None:  # nosemgrep
		return True
	started_at = job.started_at
	if not started_at:
		return True
	# RQ keeps UTC datetimes, naive
	age = (datetime.now(timezone.utc).replace(tzinfo=None) - started_at.replace(tzinfo=None)).total_seconds()
	return age < JOB_START_GRACE_SECONDS


def job_lock_name(job_id: str) -> str:
	return f"sales_automation_job:{hashlib.sha1(job_id.encode()).hexdigest()}"


def hold_job_lock() -> str | None:
	"""In an RQ job, take the lock that says the job is alive (job_is_alive); its name, else None."""
	from rq import get_current_job

	job = get_current_job()
	if not job:
		return None
	name = job_lock_name(job.id)
	frappe.db.sql("select get_lock(%s, 0)", (name,))  # nosemgrep - a user lock, held for the job's life
	return name


def release_job_lock(name: str | None) -> None:
	if name:
		frappe.db.sql("select release_lock(%s)", (name,))  # nosemgrep - a user lock


# How long one background job keeps taking further queued runs once its own is done (Settings:
# drain_seconds).
DEFAULT_DRAIN_SECONDS = 20


def process_run(run_name: str, drain_seconds: float | None = None):
	"""Background job: execute a queued run, then further queued runs of the site for a while.

	Each run is claimed under its order's lock (so no two workers, and no request, act on one order
	at a time) and executed as the user who submitted its order. The lock is held across the commits
	after each step and released when the run is done; a worker that dies releases it with its
	connection, which is how resume and the scheduler tell its run from a live one. Frappe's worker
	forks a fresh process per job, which imports ERPNext anew (about 1.5 s); taking the next runs in
	the same process spends that once for many orders, and the jobs of the runs it takes are deleted
	from the queue before a worker forks for them."""
	if drain_seconds is None:
		drain_seconds = setting_or("drain_seconds", DEFAULT_DRAIN_SECONDS)
	# the engine imports this module (its jobs are named there too): import it at call time
	from sales_automation.engine import Mode, execute

	deadline = time.monotonic() + drain_seconds
	job_user = frappe.session.user
	job_lock = hold_job_lock()
	claimed = claim_run(run_name)
	try:
		while claimed:
			run_name, sales_order_name = claimed
			try:
				run = frappe.get_doc("Sales Automation Run", run_name)
				if frappe.session.user != run.owner:
					frappe.set_user(run.owner)
				execute(run, Mode.IN_BACKGROUND)
				frappe.db.commit()  # nosemgrep - a background run's outcome is committed before its lock goes
			finally:
				locks.release(sales_order_name)
			if time.monotonic() >= deadline:
				return
			claimed = claim_run()
	finally:
		release_job_lock(job_lock)
		if frappe.session.user != job_user:
			frappe.set_user(job_user)


def claim_run(run_name: str | None = None) -> tuple[str, str] | None:
	"""Take a due queued run (the given one, else the oldest whose order is free) for this worker:
	lock its order, then Queued -> Running. Returns (run, order) with the order's lock held.

	A run taken from the queue (no `run_name`) has its own job deleted if that job still waits."""
	if run_name:
		sales_order_name = frappe.db.get_value("Sales Automation Run", run_name, "sales_order")
		if not sales_order_name:
			return None
		try:
			locks.take(sales_order_name, timeout=order_lock_wait(), scope=locks.SESSION)
		except OrderBusyError:
			# another request or job keeps the order: the scheduler queues this run again shortly
			frappe.local.message_log = []
			postpone(run_name)
			return None
		candidates = [(run_name, sales_order_name)]
	else:
		candidates = due_runs()
	for name, sales_order_name in candidates:
		if not run_name:
			try:
				locks.take(sales_order_name, timeout=0, scope=locks.SESSION)
			except OrderBusyError:
				frappe.local.message_log = []
				continue
		# read again under the lock: another worker may have taken or finished it meanwhile
		if is_due(name):
			# `modified` marks when the run started Running
			frappe.db.set_value("Sales Automation Run", name, "status", RUNNING)
			frappe.db.commit()  # nosemgrep - the claim is visible to every other worker at once
			if not run_name:
				drop_queued_job(sales_order_name)
			return name, sales_order_name
		locks.release(sales_order_name)
	return None


def due_runs(limit: int = 20) -> list[tuple[str, str]]:
	"""The oldest queued runs whose retry time has come, with their orders."""
	Run = frappe.qb.DocType("Sales Automation Run")
	return (
		frappe.qb.from_(Run)
		.select(Run.name, Run.sales_order)
		.where(due_condition(Run))
		.orderby(Run.creation)
		.limit(limit)
		.run()
	)


def due_condition(Run):
	return (Run.status == QUEUED) & (Run.next_retry_at.isnull() | (Run.next_retry_at <= now_datetime()))


def is_due(run_name: str) -> bool:
	Run = frappe.qb.DocType("Sales Automation Run")
	return bool(
		frappe.qb.from_(Run).select(Run.name).where((Run.name == run_name) & due_condition(Run)).run()
	)


def postpone(run_name: str):
	frappe.db.set_value(
		"Sales Automation Run",
		run_name,
		"next_retry_at",
		add_to_date(now_datetime(), seconds=order_lock_wait()),
	)
	frappe.db.commit()  # nosemgrep - the retry time must be visible to the scheduler


def retry_due_runs():
	"""Scheduler: queue again every run whose retry time has come, and at once every run left Running
	by a worker that died (its order's lock is free: a live executor holds it)."""
	for run in frappe.get_all(
		"Sales Automation Run", filters={"status": RUNNING}, fields=["name", "sales_order"]
	):
		if locks.is_held_elsewhere(run.sales_order):
			continue
		try:
			with locks.order_lock(run.sales_order):
				if frappe.db.get_value("Sales Automation Run", run.name, "status") == RUNNING:
					frappe.db.set_value(
						"Sales Automation Run",
						run.name,
						{"status": QUEUED, "next_retry_at": now_datetime()},
					)
				frappe.db.commit()  # nosemgrep - the run is released before its order's lock
		except OrderBusyError:
			frappe.local.message_log = []  # taken by a live executor meanwhile
	for run in frappe.get_all(
		"Sales Automation Run",
		filters={"status": QUEUED, "next_retry_at": ["<=", now_datetime()]},
		fields=["name", "sales_order", "trigger"],
	):
		try:
			enqueue_run(run)
		except Exception:
			# one run that cannot be queued (say, a queue this worker's process does not know) does not
			# keep the others waiting; it is tried again on the next tick
			frappe.local.message_log = []
			frappe.log_error(title=f"Sales automation: run {run.name} could not be queued again")
