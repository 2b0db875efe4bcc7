"""The sales cycle engine: the one implementation of the steps that move a submitted Sales Order to
delivered, invoiced and paid. The Sales Order hook, retry/resume, the API and bulk runs all call it.

Every step re-reads the order and what already exists before it acts, so running a step twice never
makes a second document: that is what makes retry and resume safe.
"""

import json
import time

import frappe
from frappe import _
from frappe.utils import add_to_date, cint, flt, get_datetime, now, now_datetime, nowdate, strip_html

from sales_automation import locks
from sales_automation.constants import (
	ACTIVE_STATUSES,
	BACKGROUND,
	CANCELLED,
	COMPLETED,
	DELIVERY_NOTE,
	DONE_STEP_STATUSES,
	DROP_SHIP_AFTER_SUPPLIER_DELIVERY,
	DROP_SHIP_AT_ONCE,
	FAILED,
	INVOICE_FROM_DELIVERY_NOTE,
	INVOICE_FROM_ORDER,
	INVOICE_UPDATING_STOCK,
	PARTIALLY_COMPLETED,
	PAY_AGAINST_INVOICE,
	PAY_IN_ADVANCE,
	PAYMENT_ENTRY,
	PENDING,
	QUEUED,
	RUNNING,
	SALES_INVOICE,
	SAME_TRANSACTION,
	SKIPPED,
)
from sales_automation.exceptions import (
	CycleNotCancellableError,
	InvalidStateError,
	OrderBusyError,
	RunNotResumableError,
	StepFailedError,
	StockShortageError,
)
from sales_automation.progress import check_recorded_progress
from sales_automation.references import fill_reference

STEP_SAVEPOINT = "sales_automation_step"

# How long a caller waits for an order another request or job is working on before it gets a 409
# (Settings: order_lock_wait_seconds). The longest holder is one call at 100 lines (about 5 s) or one
# background run.
DEFAULT_ORDER_LOCK_WAIT_SECONDS = 20


def get_settings():
	return frappe.get_cached_doc("Sales Automation Settings")


def order_lock_wait() -> int:
	return setting_or("order_lock_wait_seconds", DEFAULT_ORDER_LOCK_WAIT_SECONDS)


def setting_or(fieldname: str, default: int) -> int:
	"""A whole-number setting (0 included), or `default` where a site has never saved it."""
	value = get_settings().get(fieldname)
	return default if value in (None, "") else cint(value)


# --- choosing a rule -------------------------------------------------------------------------------


def find_rule(sales_order) -> tuple[str | None, str | None]:
	"""The first enabled rule, by priority, whose conditions the order meets, and why it matched."""
	for rule_name in frappe.get_all(
		"Sales Automation Rule",
		filters={"enabled": 1},
		order_by="priority desc, creation asc",
		pluck="name",
	):
		reason = frappe.get_cached_doc("Sales Automation Rule", rule_name).match(sales_order)
		if reason is not None:
			return rule_name, reason
	return None, None


RULE_ACTION_FIELDS = (
	"create_delivery_note",
	"submit_delivery_note",
	"shortage_policy",
	"create_sales_invoice",
	"invoice_source",
	"submit_sales_invoice",
	"drop_ship_invoicing",
	"email_invoice",
	"create_payment_entry",
	"payment_against",
	"mode_of_payment",
	"reference_no_pattern",
	"submit_payment_entry",
)


def plan_steps(rule) -> list[str]:
	"""The steps a rule asks for, in the order they must run."""
	steps = []
	if rule.create_payment_entry and rule.payment_against == PAY_IN_ADVANCE:
		steps.append(PAYMENT_ENTRY)
	if rule.create_delivery_note:
		steps.append(DELIVERY_NOTE)
	if rule.create_sales_invoice:
		steps.append(SALES_INVOICE)
	if rule.create_payment_entry and rule.payment_against == PAY_AGAINST_INVOICE:
		steps.append(PAYMENT_ENTRY)
	return steps


# --- starting and running ----------------------------------------------------------------------------


def start_for_order(
	sales_order,
	trigger: str = "Submit",
	rule_name: str | None = None,
	execution_mode=None,
	lock_wait: float = 0,
):
	"""Match a rule (or use `rule_name`), record a run and execute it now or queue it after commit.

	A run executed now holds the order's lock until the transaction ends (`lock_wait` seconds to get
	it; 0 in the submit hook, whose transaction already holds the order's row: waiting there could
	wait on a caller that waits on that row). A queued run's job takes the lock itself.
	Returns the run, or None when automation is off or no rule matches."""
	if not cint(get_settings().enabled) or sales_order.get("is_internal_customer"):
		return None  # off, or an order the cycle does not automate (out_of_scope_reason)
	if rule_name:
		reason = _("Rule {0} was chosen explicitly").format(rule_name)
	else:
		rule_name, reason = find_rule(sales_order)
		if not rule_name:
			return None
	rule = frappe.get_cached_doc("Sales Automation Rule", rule_name)
	mode = execution_mode or rule.execution_mode or get_settings().default_execution_mode or BACKGROUND
	run = create_run(sales_order, rule, reason, trigger, mode)
	if mode == SAME_TRANSACTION:
		locks.take(sales_order.name, timeout=lock_wait)
		execute(run, raise_errors=True)
	else:
		enqueue_run(run)
	return run


def create_run(
	sales_order, rule, reason: str, trigger: str, execution_mode: str, steps=None, payment: dict | None = None
):
	"""Record a run of `rule` (saved or not) for the order; `steps` narrows the rule's steps."""
	run = frappe.new_doc("Sales Automation Run")
	run.update(
		{
			"sales_order": sales_order.name,
			"company": sales_order.company,
			"customer": sales_order.customer,
			"rule": rule.name if not rule.is_new() else None,
			"rule_version": rule.modified if not rule.is_new() else None,
			"rule_snapshot": json.dumps(
				{field: rule.get(field) for field in RULE_ACTION_FIELDS}, sort_keys=True
			),
			"payment_options": json.dumps(payment, sort_keys=True) if payment else None,
			"match_reason": reason,
			"trigger": trigger,
			"execution_mode": execution_mode,
			"status": QUEUED,
		}
	)
	for step in plan_steps(rule):
		if steps is None or step in steps:
			run.append("steps", {"step": step, "status": PENDING})
	if execution_mode != SAME_TRANSACTION:
		# background runs must exist before their job does; same-transaction runs are written once, when done
		save_run(run)
	return run


def save_run(run):
	# The run log is the app's own bookkeeping, written for whoever submitted the order; the documents
	# of the cycle are created with the caller's own permissions. Its links are all to records the
	# engine has just read or made.
	run.flags.ignore_permissions = True
	run.flags.ignore_links = True
	if run.is_new():
		run.insert()
	else:
		run.save()


def record_progress(run, step):
	"""Write a step just done and the run's fields it set, between the full saves of a saved run.

	Two plain updates instead of a save (which reloads the run with every step to compare, validates
	and rewrites every row): the run is saved in full when it ends, so Notifications and hooks on the
	run see its outcome. As with a save, a run changed elsewhere meanwhile (cancelled with its order,
	say) is not overwritten: TimestampMismatchError ends the job and rolls the step back. `modified`
	moves on: a run Running with an old `modified` is taken for one whose worker died (retry_due_runs)."""
	stored = frappe.db.get_value(run.doctype, run.name, "modified", for_update=True)
	if get_datetime(stored) != get_datetime(run.modified):
		frappe.throw(
			_("Run {0} was changed while its {1} step ran").format(run.name, _(step.step)),
			exc=frappe.TimestampMismatchError,
		)
	run.modified = now()
	step.db_update()
	run.db_update()


def enqueue_run(run):
	"""Queue the run after commit; one job per order at a time (deduplicated by job id)."""
	frappe.enqueue(
		"sales_automation.engine.process_run",
		queue="default",
		run_name=run.name,
		enqueue_after_commit=True,
		job_id=order_job_id(run.sales_order),
		deduplicate=True,
	)


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
	deadline = time.monotonic() + drain_seconds
	job_user = frappe.session.user
	claimed = claim_run(run_name)
	try:
		while claimed:
			run_name, sales_order_name = claimed
			try:
				run = frappe.get_doc("Sales Automation Run", run_name)
				if frappe.session.user != run.owner:
					frappe.set_user(run.owner)
				execute(run, raise_errors=False, commit_steps=True)
				frappe.db.commit()  # nosemgrep - a background run's outcome is committed before its lock goes
			finally:
				locks.release(sales_order_name)
			if time.monotonic() >= deadline:
				return
			claimed = claim_run()
	finally:
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


def resume(run):
	"""Continue a run from its first step not done (Retry / Resume); runs in the caller's request.

	A run still being executed (its order's lock is held) is refused with OrderBusyError (409); a run
	left Running by a worker that died (the lock is free) is resumed at once."""
	locks.take(
		run.sales_order,
		busy_message=_(
			"Run {0} is being executed right now (its worker holds Sales Order {1}); it cannot be resumed until it stops"
		).format(run.name, run.sales_order),
	)
	run.reload()  # as it stands under the lock
	if run.status in (COMPLETED, CANCELLED):
		frappe.throw(
			_("Run {0} is {1} and cannot be resumed.").format(run.name, _(run.status)),
			exc=RunNotResumableError,
			title=_("Cannot Resume"),
		)
	if frappe.db.get_value("Sales Order", run.sales_order, "docstatus") != 1:
		frappe.throw(
			_("Sales Order {0} is not submitted; its run cannot be resumed.").format(run.sales_order),
			exc=RunNotResumableError,
			title=_("Cannot Resume"),
		)
	for step in run.steps:
		if step.status == FAILED:
			step.status = PENDING
	run.attempts = 0 if run.status == FAILED else run.attempts
	execute(run, raise_errors=False)
	return run


def rule_of(run):
	"""The rule a run follows: the snapshot taken when it started (so retries follow the same rule)."""
	if run.rule_snapshot:
		rule = frappe.new_doc("Sales Automation Rule")
		rule.update(json.loads(run.rule_snapshot))
		rule.rule_name = run.rule
		return rule
	return frappe.get_doc("Sales Automation Rule", run.rule)


def execute(run, raise_errors: bool, rule=None, retry: bool = True, commit_steps: bool = False):
	"""Run every step of `run` not yet done, in order.

	raise_errors=True (same transaction): a failing step raises StepFailedError naming the step, so the
	caller's whole transaction, the order's submit included, is rolled back.
	raise_errors=False: each step runs in a savepoint; a failure rolls back that step only, is recorded
	on the run and (with `retry`) is retried with backoff until the attempts run out.

	commit_steps (background jobs): commit after every step done. The job then holds ERPNext's
	naming-series and stock rows for one document, not for the whole cycle, so parallel workers do
	not queue behind each other, and a crash keeps the steps already done.
	"""
	settings = get_settings()
	rule = rule or rule_of(run)
	run.status = RUNNING
	run.attempts = cint(run.attempts) + 1
	run.started_at = run.started_at or now_datetime()
	run.next_retry_at = None
	run.error = None
	try:
		# an order made in this same call was checked as it was made, and has no documents yet
		if not run.flags.new_order:
			check_in_scope(run.sales_order)
			check_recorded_progress(run.sales_order)
	except InvalidStateError as exc:
		if raise_errors:
			raise
		# retrying cannot help: the order itself must be put right
		record_failure(run, None, exc, settings, retry=False)
		save_run(run)
		return run
	cycle = Cycle(run, rule)
	for step in run.steps:
		if step.status in DONE_STEP_STATUSES:
			continue
		step.started_at = now_datetime()
		if raise_errors:
			try:
				cycle.run_step(step)
			except Exception as exc:
				raise_step_failure(step.step, exc)
			continue
		frappe.db.savepoint(STEP_SAVEPOINT)
		try:
			cycle.run_step(step)
		except Exception as exc:
			frappe.db.rollback(save_point=STEP_SAVEPOINT)
			record_failure(run, step, exc, settings, retry)
			break
		if commit_steps:
			record_progress(run, step)
			frappe.db.commit()  # nosemgrep - a background step is kept even if the worker dies later
	else:
		left_open = cycle.left_open()
		run.status = PARTIALLY_COMPLETED if left_open else COMPLETED
		run.left_open = "\n".join(f"{item['what']}: {item['why']}" for item in left_open) or None
		run.flags.left_open = left_open
		run.finished_at = now_datetime()
	save_run(run)
	return run


def out_of_scope_reason(sales_order_name: str) -> str | None:
	"""Why the cycle does not automate this order (README: Supported ERPNext setups), or None."""
	if frappe.db.get_value("Sales Order", sales_order_name, "is_internal_customer"):
		return _(
			"Sales Order {0} is an inter-company order (internal customer); its delivery and billing run through ERPNext's inter-company documents, which sales automation does not create"
		).format(sales_order_name)
	return None


def check_in_scope(sales_order_name: str):
	"""Refuse, naming the field, an order the cycle does not automate."""
	reason = out_of_scope_reason(sales_order_name)
	if reason:
		error = InvalidStateError(reason)
		error.field = "sales_order.customer"
		raise error


def raise_step_failure(step: str, exc: Exception):
	"""Refuse the whole transaction with one message naming the step; keep the cause for the API."""
	frappe.local.message_log = []
	try:
		frappe.throw(
			_("Sales automation could not complete the {0} step: {1}").format(_(step), error_message(exc)),
			exc=StepFailedError,
			title=_("Sales Automation: {0} failed").format(_(step)),
		)
	except StepFailedError as error:
		error.step = frappe.scrub(step)
		error.cause = exc
		raise error from exc


def record_failure(run, step, exc: Exception, settings, retry: bool = True):
	"""Record a failed step (or, with `step` None, a run refused before its first step)."""
	message = error_message(exc)
	if step:
		step.status = FAILED
		step.message = message
		step.traceback = frappe.get_traceback(with_context=False)
		step.finished_at = now_datetime()
	run.error = f"{step.step}: {message}" if step else message
	# what the failed step put in the message log must not leak into the caller's response
	frappe.local.message_log = []
	if not retry:
		run.status = FAILED
		run.finished_at = now_datetime()
	elif cint(run.attempts) < cint(settings.max_attempts):
		backoff = cint(settings.retry_backoff_seconds) * 2 ** (cint(run.attempts) - 1)
		run.status = QUEUED
		run.next_retry_at = add_to_date(now_datetime(), seconds=backoff)
	else:
		run.status = FAILED
		run.finished_at = now_datetime()
		notify_failure(run)


def error_message(exc: Exception) -> str:
	args = getattr(exc, "args", None) or (exc,)
	# database errors carry (code, text)
	text = args[1] if len(args) > 1 and isinstance(args[0], int) else args[0]
	message = strip_html(str(text) or "").strip()
	return message or exc.__class__.__name__


def notify_failure(run):
	"""Tell the rule's owner, or the System Managers, in the desk that the run failed for good."""
	from frappe.desk.doctype.notification_log.notification_log import make_notification_logs

	owner = frappe.db.get_value("Sales Automation Rule", run.rule, "owner")
	if owner and owner not in ("Administrator", "Guest") and frappe.db.get_value("User", owner, "enabled"):
		users = [owner]
	else:
		users = [
			user
			for user in frappe.get_all(
				"Has Role", {"role": "System Manager", "parenttype": "User"}, pluck="parent"
			)
			if user != "Guest"
		]
	make_notification_logs(
		{
			"type": "Alert",
			"document_type": "Sales Automation Run",
			"document_name": run.name,
			"subject": _("Sales automation failed for {0} at the {1} step").format(
				run.sales_order, run.error.split(":", 1)[0] if run.error else ""
			),
			"email_content": run.error,
		},
		sorted(set(users)),
	)


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
		fields=["name", "sales_order"],
	):
		enqueue_run(run)


def cancel_cycle(sales_order_name: str, cancel_order: bool = False) -> list[tuple[str, str]]:
	"""Cancel what the order's runs created, in reverse (Payment Entry, Sales Invoice, Delivery Note,
	then the order when asked), all or nothing: stock and ledgers end as before the cycle.

	Refuses, changing nothing, when a document cannot be cancelled, e.g. a payment that is also
	allocated to an invoice outside the cycle. Returns the cancelled (doctype, name) pairs."""
	locks.take(sales_order_name, timeout=order_lock_wait())
	documents = cycle_documents(sales_order_name)
	if not any(documents.values()) and not cancel_order:
		frappe.throw(
			_("Sales Order {0} has no submitted document made by sales automation").format(sales_order_name),
			exc=CycleNotCancellableError,
			title=_("Nothing to Cancel"),
		)
	cycle_references = {sales_order_name, *documents[SALES_INVOICE]}
	for payment_name in documents[PAYMENT_ENTRY]:
		outside = [
			reference
			for reference in frappe.get_all(
				"Payment Entry Reference", filters={"parent": payment_name}, pluck="reference_name"
			)
			if reference not in cycle_references
		]
		if outside:
			frappe.throw(
				_("Payment Entry {0} is also allocated to {1}; unreconcile it first.").format(
					payment_name, ", ".join(outside)
				),
				exc=CycleNotCancellableError,
				title=_("Cannot Cancel the Cycle"),
			)
	order = [
		(doctype, name)
		for doctype in (PAYMENT_ENTRY, SALES_INVOICE, DELIVERY_NOTE)
		for name in documents[doctype]
	]
	if cancel_order:
		order.append(("Sales Order", sales_order_name))
	frappe.db.savepoint("sales_automation_cancel")
	for doctype, name in order:
		try:
			frappe.get_doc(doctype, name).cancel()
		except Exception as exc:
			frappe.db.rollback(save_point="sales_automation_cancel")
			frappe.local.message_log = []
			frappe.throw(
				_("Could not cancel {0} {1}, so nothing was cancelled: {2}").format(
					_(doctype), name, error_message(exc)
				),
				exc=CycleNotCancellableError,
				title=_("Cannot Cancel the Cycle"),
			)
	cancel_runs_of_order(sales_order_name, statuses=None)
	return order


def cycle_documents(sales_order_name: str, docstatuses=(1,)) -> dict[str, dict[str, int]]:
	"""The documents the order's runs made, by doctype, newest first, with their docstatus (only
	those in `docstatuses`)."""
	runs = frappe.get_all("Sales Automation Run", filters={"sales_order": sales_order_name}, pluck="name")
	documents = {PAYMENT_ENTRY: {}, SALES_INVOICE: {}, DELIVERY_NOTE: {}}
	for row in frappe.get_all(
		"Sales Automation Run Step",
		filters={
			"parent": ["in", runs or [""]],
			"parenttype": "Sales Automation Run",
			"status": COMPLETED,  # skipped steps may point at documents the cycle did not make
			"reference_name": ["is", "set"],
		},
		fields=["reference_doctype", "reference_name"],
		order_by="creation desc",
	):
		if row.reference_name in documents[row.reference_doctype]:
			continue
		docstatus = frappe.db.get_value(row.reference_doctype, row.reference_name, "docstatus")
		if docstatus in docstatuses:
			documents[row.reference_doctype][row.reference_name] = docstatus
	return documents


def stuck_before():
	"""Runs and orders older than this, and not done, count as stuck (Settings: stuck_after_minutes)."""
	return add_to_date(now_datetime(), minutes=-cint(get_settings().stuck_after_minutes))


def cancel_runs_of_order(sales_order_name: str, statuses=(*ACTIVE_STATUSES, FAILED)):
	"""Mark the order's runs (those in `statuses`, or all) Cancelled."""
	filters = {"sales_order": sales_order_name}
	if statuses:
		filters["status"] = ["in", statuses]
	frappe.db.set_value("Sales Automation Run", filters, "status", CANCELLED)


# --- the steps ---------------------------------------------------------------------------------------


class Cycle:
	"""The steps of one run. Each re-reads the order and the documents already linked to it."""

	def __init__(self, run, rule):
		self.run = run
		self.rule = rule
		self.payment = frappe._dict(json.loads(run.payment_options or "{}"))
		# an order made in this same call has no documents but the run's own (none of another session
		# can link to it before the call commits): no drafts to look for
		self.may_have_drafts = not run.flags.new_order

	def check_create(self, doctype: str):
		"""The caller may create `doctype` (the API checks every step before it starts)."""
		if not self.run.flags.permissions_checked:
			frappe.has_permission(doctype, "create", throw=True)

	def order(self):
		"""The order as it stands now: the header fields and rows the steps read, fresh from the database.

		Two light queries instead of loading the whole document with all its child tables."""
		return order_state(self.run.sales_order)

	def run_step(self, step):
		handler = {DELIVERY_NOTE: self.deliver, SALES_INVOICE: self.invoice, PAYMENT_ENTRY: self.pay}[
			step.step
		]
		status, document, message = handler()
		step.status = status
		step.reference_doctype = document.doctype if document else None
		step.reference_name = document.name if document else None
		step.message = message
		step.traceback = None
		step.finished_at = now_datetime()
		if document:
			self.run.set(frappe.scrub(document.doctype), document.name)

	# Delivery Note ---------------------------------------------------------------------------------

	def deliver(self):
		sales_order = self.order()
		draft = self.may_have_drafts and linked_document(
			DELIVERY_NOTE, "against_sales_order", sales_order.name, docstatus=0
		)
		if draft:
			return self.finish_document(draft, self.rule.submit_delivery_note, _("Used the existing draft"))
		rows = undelivered_stock_rows(sales_order.lines)
		if not rows:
			delivered = linked_document(DELIVERY_NOTE, "against_sales_order", sales_order.name, docstatus=1)
			return SKIPPED, delivered, _("Nothing left to deliver")
		caps, shortage = self.available_quantities(rows)
		if shortage and not caps:
			return SKIPPED, None, shortage
		self.check_create(DELIVERY_NOTE)
		delivery_note = map_delivery_note(sales_order.name)
		cap_rows(delivery_note, caps)
		return self.save_new(delivery_note, self.rule.submit_delivery_note, shortage)

	def available_quantities(self, rows) -> tuple[dict, str | None]:
		"""Per Sales Order row, the qty that can ship now under the rule's shortage policy; a product
		bundle ships its packed items, so each component's stock counts.

		Returns ({so_detail: qty} for rows that must be capped, a message when stock is short)."""
		if cint(frappe.db.get_single_value("Stock Settings", "allow_negative_stock")):
			return {}, None
		on_hand = {}
		caps, short = {}, []
		for row in rows:
			remaining = flt(row.qty) - flt(row.delivered_qty)
			components = self.components(row)
			can_ship = remaining
			for item_code, warehouse, per_unit in components:
				key = (item_code, warehouse)
				if key not in on_hand:
					on_hand[key] = flt(
						frappe.db.get_value(
							"Bin", {"item_code": item_code, "warehouse": warehouse}, "actual_qty"
						)
					)
				needed = remaining * per_unit
				available = max(on_hand[key], 0)
				if available < needed:
					short.append(
						_("{0} in {1}: {2} needed, {3} available").format(
							item_code, warehouse, needed, available
						)
					)
					can_ship = min(can_ship, available / per_unit)
			if row.item_code != (components[0][0] if components else None):
				can_ship = int(can_ship)  # a bundle ships whole
			for item_code, warehouse, per_unit in components:
				on_hand[(item_code, warehouse)] -= can_ship * per_unit
			if can_ship < remaining:
				caps[row.name] = can_ship
		if not short:
			return {}, None
		detail = "; ".join(short)
		policy = self.rule.shortage_policy or "Fail"
		if policy == "Fail":
			frappe.throw(
				_("Not enough stock: {0}").format(detail), exc=StockShortageError, title=_("Stock Short")
			)
		if policy == "Skip Delivery":
			return {}, _("Delivery skipped, not enough stock: {0}").format(detail)
		if all(caps.get(row.name, 1) <= 0 for row in rows):
			return {}, _("Nothing delivered, no stock on hand: {0}").format(detail)
		return caps, _("Delivered what is on hand, the rest stays open: {0}").format(detail)

	def components(self, row) -> list[tuple[str, str, float]]:
		"""(item, warehouse, stock qty per unit of the order row) of what ships for an order row."""
		if is_stock_item(row.item_code):
			return [(row.item_code, row.warehouse, flt(row.conversion_factor or 1))]
		if not flt(row.qty):
			return []
		return [
			(packed.item_code, packed.warehouse or row.warehouse, flt(packed.qty) / flt(row.qty))
			for packed in frappe.get_all(
				"Packed Item",
				filters={
					"parent": self.run.sales_order,
					"parenttype": "Sales Order",
					"parent_detail_docname": row.name,
				},
				fields=["item_code", "warehouse", "qty"],
			)
			if is_stock_item(packed.item_code)
		]

	# Sales Invoice ---------------------------------------------------------------------------------

	def invoice(self):
		sales_order = self.order()
		draft = self.may_have_drafts and linked_document(
			SALES_INVOICE, "sales_order", sales_order.name, docstatus=0
		)
		if draft:
			return self.finish_document(draft, self.rule.submit_sales_invoice, _("Used the existing draft"))
		if flt(sales_order.per_billed) >= 100:
			billed = linked_document(SALES_INVOICE, "sales_order", sales_order.name, docstatus=1)
			return SKIPPED, billed, _("Already fully billed")
		self.check_create(SALES_INVOICE)
		drop_ship, waiting = self.billable_drop_ship_rows(sales_order)
		shortage = None
		if self.rule.invoice_source == INVOICE_FROM_DELIVERY_NOTE:
			# every submitted note of the order not fully billed, whoever made it, in one invoice
			sales_invoice = None
			for delivery_note_name in self.unbilled_delivery_notes(sales_order.name):
				sales_invoice = merge_rows(sales_invoice, map_invoice_from_delivery_note(delivery_note_name))
			if drop_ship:
				sales_invoice = add_order_rows(sales_invoice, sales_order.name, drop_ship)
			if not sales_invoice:
				return SKIPPED, None, waiting or _("No submitted Delivery Note left to invoice")
		else:
			sales_invoice = map_invoice_from_order(sales_order.name)
			keep_drop_ship_rows(sales_invoice, sales_order, drop_ship)
			if self.rule.invoice_source == INVOICE_UPDATING_STOCK:
				sales_invoice.update_stock = 1
				rows = undelivered_stock_rows(sales_order.lines)
				caps, shortage = self.available_quantities(rows) if rows else ({}, None)
				if shortage and not caps:
					return SKIPPED, None, shortage
				cap_rows(sales_invoice, caps)
		cap_to_unbilled(sales_invoice, sales_order)
		if not sales_invoice.items:
			return SKIPPED, None, waiting or _("Nothing left to bill")
		if sales_order.payment_terms_template and not sales_invoice.payment_terms_template:
			# ERPNext copies the order's terms only with an Accounts Setting on; the rule's invoices keep them
			sales_invoice.payment_terms_template = sales_order.payment_terms_template
			sales_invoice.payment_schedule = []
		if flt(sales_order.advance_paid) > 0:
			sales_invoice.allocate_advances_automatically = 1
		message = " ".join(part for part in (shortage, waiting) if part)
		status, document, message = self.save_new(
			sales_invoice, self.rule.submit_sales_invoice, message or None
		)
		if self.rule.email_invoice and document.docstatus == 1:
			message = " ".join(part for part in (message, email_invoice(document)) if part)
		return status, document, message

	def unbilled_delivery_notes(self, sales_order_name: str) -> list[str]:
		"""The order's submitted, non-return Delivery Notes not fully billed: the run's own first."""
		return self.submitted_documents(
			DELIVERY_NOTE, "against_sales_order", sales_order_name, {"per_billed": ["<", 100]}
		)

	def submitted_documents(self, doctype: str, link_field: str, sales_order_name: str, condition: dict):
		"""The order's submitted, non-return documents of `doctype` meeting `condition`, oldest first,
		the run's own first."""
		names = frappe.get_all(
			doctype,
			filters={
				"name": ["in", linked_names(doctype, link_field, sales_order_name, 1) or [""]],
				"is_return": 0,
				**condition,
			},
			order_by="creation asc",
			pluck="name",
		)
		own = self.run.get(frappe.scrub(doctype))
		if own in names:
			names.remove(own)
			names.insert(0, own)
		return names

	def billable_drop_ship_rows(self, sales_order) -> tuple[dict, str | None]:
		"""Drop-shipped order rows to bill now ({so_detail: qty}), and why others wait.

		They never go on a Delivery Note: the rule bills them at once, or only as far as the supplier's
		delivery is recorded (the Purchase Order's Delivered by Supplier sets their delivered_qty)."""
		billable, waiting = {}, []
		for row in sales_order.lines:
			if not row.delivered_by_supplier or not flt(row.rate):
				continue
			billed_qty = flt(row.billed_amt) / flt(row.rate)
			if self.rule.drop_ship_invoicing == DROP_SHIP_AT_ONCE:
				qty = flt(row.qty) - billed_qty
			else:
				qty = flt(row.delivered_qty) - billed_qty
				if flt(row.qty) - flt(row.delivered_qty) > 0:
					waiting.append(row.item_code)
			if qty > 0:
				billable[row.name] = qty
		message = (
			_("Drop-ship lines wait for the supplier's delivery: {0}").format(", ".join(waiting))
			if waiting
			else None
		)
		return billable, message

	# Payment Entry ---------------------------------------------------------------------------------

	def pay(self):
		sales_order = self.order()
		invoices = []
		if self.rule.payment_against == PAY_IN_ADVANCE:
			reference_doctype, reference_name = "Sales Order", sales_order.name
			outstanding = flt(sales_order.rounded_total or sales_order.grand_total) - flt(
				sales_order.advance_paid
			)
			if flt(sales_order.per_billed) >= 100:
				return SKIPPED, None, _("The order is already billed; nothing to pay in advance")
		else:
			reference_doctype = SALES_INVOICE
			if (
				self.run.sales_invoice
				and frappe.db.get_value(SALES_INVOICE, self.run.sales_invoice, "docstatus") != 1
			):
				frappe.throw(
					_(
						"Sales Invoice {0} is a draft; a payment can only be made against a submitted invoice."
					).format(self.run.sales_invoice),
					exc=StepFailedError,
				)
			# what the customer owes across every submitted invoice of the order, whoever made it
			invoices = self.outstanding_invoices(sales_order.name)
			if not invoices:
				billed = linked_document(SALES_INVOICE, "sales_order", sales_order.name, 1, name_only=True)
				if not billed:
					return SKIPPED, None, _("No submitted Sales Invoice to pay")
				return SKIPPED, None, _("{0} {1} is already paid").format(_(SALES_INVOICE), billed)
			reference_name = invoices[0]
			outstanding = 1
		draft = self.may_have_drafts and draft_payment(reference_doctype, reference_name)
		if draft:
			return self.finish_document(draft, self.rule.submit_payment_entry, _("Used the existing draft"))
		if outstanding <= 0:
			return SKIPPED, None, _("{0} {1} is already paid").format(_(reference_doctype), reference_name)
		self.check_create(PAYMENT_ENTRY)
		payment_entry = self.map_payment(sales_order, reference_doctype, reference_name)
		for other in invoices[1:] if not self.payment.amount else []:
			add_references(payment_entry, self.map_payment(sales_order, SALES_INVOICE, other))
		return self.save_new(payment_entry, self.rule.submit_payment_entry, None)

	def outstanding_invoices(self, sales_order_name: str) -> list[str]:
		"""The order's submitted, non-return invoices with something outstanding: the run's own first."""
		return self.submitted_documents(
			SALES_INVOICE, "sales_order", sales_order_name, {"outstanding_amount": [">", 0]}
		)

	def map_payment(self, sales_order, reference_doctype: str, reference_name: str):
		from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry
		from erpnext.accounts.doctype.sales_invoice.sales_invoice import get_bank_cash_account

		mode_of_payment = self.payment.mode_of_payment or self.rule.mode_of_payment
		account = (
			get_bank_cash_account(mode_of_payment, sales_order.company)["account"]
			if mode_of_payment
			else None
		)
		payment_entry = get_payment_entry(
			reference_doctype, reference_name, party_amount=self.payment.amount, bank_account=account
		)
		payment_entry.mode_of_payment = mode_of_payment
		if self.payment.reference_no:
			payment_entry.reference_no = self.payment.reference_no  # the caller's own, verbatim
		else:
			payment_entry.reference_no = fill_reference(
				self.rule.reference_no_pattern or "{sales_order}",
				{
					"sales_order": sales_order.name,
					"po_no": sales_order.po_no or sales_order.name,
					"customer": sales_order.customer,
					"sales_invoice": reference_name if reference_doctype == SALES_INVOICE else "",
				},
			)
		payment_entry.reference_date = self.payment.reference_date or nowdate()
		return payment_entry

	# shared ----------------------------------------------------------------------------------------

	def save_new(self, document, submit: bool, message: str | None):
		"""Insert a mapped document, submitted in the same save when the rule says so.

		submit() on an unsaved document inserts and submits in one save: ERPNext validates it once,
		where insert() then submit() would validate it twice (about a quarter of the cycle's time)."""
		if submit:
			document.submit()
		else:
			document.insert()
		self.run.flags.setdefault("created_documents", set()).add(document.name)
		return COMPLETED, document, message

	def finish_document(self, document, submit: bool, message: str | None):
		if submit and document.docstatus == 0:
			document.submit()
		return COMPLETED, document, message

	def left_open(self) -> list[dict]:
		"""What the order still needs that the rule asks for, and why ([] when nothing)."""
		sales_order = self.order()
		messages = {row.step: row.message for row in self.run.steps if row.message}
		left = []
		if self.rule.create_delivery_note or self.rule.invoice_source == INVOICE_UPDATING_STOCK:
			rows = undelivered_stock_rows(sales_order.lines)
			if rows:
				why = messages.get(DELIVERY_NOTE if self.rule.create_delivery_note else SALES_INVOICE)
				left.append(
					{
						"what": "delivery",
						"why": why or _("{0} not delivered").format(", ".join(row.item_code for row in rows)),
					}
				)
		if (
			self.rule.create_sales_invoice
			and self.rule.submit_sales_invoice
			and flt(sales_order.per_billed) < 100
		):
			left.append(
				{
					"what": "billing",
					"why": messages.get(SALES_INVOICE)
					or _("{0}% of the order is billed").format(flt(sales_order.per_billed, 2)),
				}
			)
		if self.rule.create_payment_entry and self.rule.submit_payment_entry:
			outstanding = sum(
				flt(value)
				for value in frappe.get_all(
					SALES_INVOICE,
					filters={
						"name": [
							"in",
							linked_names(SALES_INVOICE, "sales_order", sales_order.name, 1) or [""],
						]
					},
					pluck="outstanding_amount",
				)
			)
			if outstanding > 0.005:
				left.append(
					{
						"what": "payment",
						"why": messages.get(PAYMENT_ENTRY)
						or _("{0} outstanding on the order's invoices").format(flt(outstanding, 2)),
					}
				)
		return left


ORDER_FIELDS = (
	"name",
	"company",
	"customer",
	"po_no",
	"currency",
	"grand_total",
	"rounded_total",
	"advance_paid",
	"per_billed",
	"payment_terms_template",
)
ORDER_ITEM_FIELDS = (
	"name",
	"item_code",
	"qty",
	"rate",
	"amount",
	"billed_amt",
	"delivered_qty",
	"warehouse",
	"conversion_factor",
	"delivered_by_supplier",
)


def order_state(sales_order_name: str) -> frappe._dict:
	sales_order = frappe.db.get_value("Sales Order", sales_order_name, ORDER_FIELDS, as_dict=True)
	# "lines", not "items": a frappe._dict key named items would hide dict.items
	sales_order["lines"] = frappe.get_all(
		"Sales Order Item",
		filters={"parent": sales_order_name, "parenttype": "Sales Order"},
		fields=ORDER_ITEM_FIELDS,
		order_by="idx asc",
	)
	return sales_order


def order_totals(sales_order) -> dict:
	"""Grand total, paid and outstanding of an order, over its submitted invoices and advances."""
	grand_total = flt(sales_order.rounded_total or sales_order.grand_total)
	invoices = frappe.get_all(
		"Sales Invoice",
		filters={"name": ["in", linked_names("Sales Invoice", "sales_order", sales_order.name, docstatus=1)]},
		fields=["outstanding_amount", "rounded_total", "grand_total"],
	)
	if invoices:
		billed = sum(flt(row.rounded_total or row.grand_total) for row in invoices)
		outstanding = sum(flt(row.outstanding_amount) for row in invoices) + max(grand_total - billed, 0)
	else:
		outstanding = grand_total - flt(sales_order.advance_paid)
	return {
		"currency": sales_order.currency,
		"grand_total": grand_total,
		"paid": flt(grand_total - outstanding, 2),
		"outstanding": flt(outstanding, 2),
	}


def map_delivery_note(sales_order_name: str):
	from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

	return make_delivery_note(sales_order_name)


def map_invoice_from_order(sales_order_name: str):
	from erpnext.selling.doctype.sales_order.sales_order import make_sales_invoice

	sales_invoice = make_sales_invoice(sales_order_name)
	# the mapper skips permission checks on insert and submit; the caller's own rights apply here
	sales_invoice.flags.ignore_permissions = False
	return sales_invoice


def map_invoice_from_delivery_note(delivery_note_name: str):
	"""An invoice of what the note has neither billed nor had returned yet; None when that is nothing."""
	from erpnext.stock.doctype.delivery_note.delivery_note import make_sales_invoice

	pending = frappe.db.sql(  # nosemgrep - correlated sums, as ERPNext's own mapper computes what is pending
		"""select 1 from `tabDelivery Note Item` item
		where item.parent = %(note)s and item.qty > ifnull((
			select sum(invoiced.qty) from `tabSales Invoice Item` invoiced
			where invoiced.dn_detail = item.name and invoiced.docstatus = 1), 0) + ifnull((
			select -sum(returned.qty) from `tabDelivery Note Item` returned
			where returned.dn_detail = item.name and returned.docstatus = 1), 0)
		limit 1""",
		{"note": delivery_note_name},
	)
	# ERPNext's mapper refuses a note with nothing pending ("already Invoiced/Returned")
	return make_sales_invoice(delivery_note_name) if pending else None


def merge_rows(sales_invoice, other):
	"""One invoice for several sources: `other`'s item rows join `sales_invoice` (either may be None)."""
	if other is None or sales_invoice is None:
		return sales_invoice or other
	for row in other.items:
		sales_invoice.append(
			"items", {key: value for key, value in row.as_dict().items() if key not in ROW_KEYS_NOT_COPIED}
		)
	renumber(sales_invoice)
	return sales_invoice


ROW_KEYS_NOT_COPIED = ("name", "idx", "parent", "parentfield", "parenttype", "doctype", "docstatus")


def add_order_rows(sales_invoice, sales_order_name: str, quantities: dict):
	"""Bill order rows ({so_detail: qty}) that no Delivery Note carries (drop-ship), in `sales_invoice`
	or in a new invoice from the order."""
	from_order = map_invoice_from_order(sales_order_name)
	rows = [row for row in from_order.items if row.so_detail in quantities]
	for row in rows:
		row.qty = quantities[row.so_detail]
	from_order.items = rows
	renumber(from_order)
	return merge_rows(sales_invoice, from_order)


def keep_drop_ship_rows(sales_invoice, sales_order, quantities: dict):
	"""In an invoice from the order, bill drop-shipped rows only as far as the rule allows now."""
	drop_shipped = {row.name for row in sales_order.lines if row.delivered_by_supplier}
	if not drop_shipped:
		return
	rows = []
	for row in sales_invoice.items:
		if row.so_detail in drop_shipped:
			if row.so_detail not in quantities:
				continue
			row.qty = min(flt(row.qty), quantities[row.so_detail])
		rows.append(row)
	sales_invoice.items = rows
	renumber(sales_invoice)


def cap_to_unbilled(sales_invoice, sales_order):
	"""Never bill an order row beyond what is left of it: an invoice made by hand may have billed part."""
	lines = {row.name: row for row in sales_order.lines}
	left = {name: flt(row.amount) - flt(row.billed_amt) for name, row in lines.items()}
	changed = False
	for row in sales_invoice.items:
		if row.so_detail not in left or not flt(row.rate):
			continue
		amount = flt(row.qty) * flt(row.rate)
		if amount > left[row.so_detail] + 0.005:
			row.qty = max(left[row.so_detail], 0) / flt(row.rate)
			changed = True
		left[row.so_detail] -= flt(row.qty) * flt(row.rate)
	if changed:
		sales_invoice.items = [row for row in sales_invoice.items if flt(row.qty) > 0]
		renumber(sales_invoice)


def renumber(document):
	for idx, row in enumerate(document.items, start=1):
		row.idx = idx
	document.calculate_taxes_and_totals()


def add_references(payment_entry, other):
	"""One Payment Entry for several invoices: `other`'s references and amounts join `payment_entry`."""
	for reference in other.references:
		payment_entry.append(
			"references",
			{key: value for key, value in reference.as_dict().items() if key not in ROW_KEYS_NOT_COPIED},
		)
	payment_entry.paid_amount = flt(payment_entry.paid_amount) + flt(other.paid_amount)
	payment_entry.received_amount = flt(payment_entry.received_amount) + flt(other.received_amount)


def cap_rows(document, caps: dict):
	"""Lower mapped rows to the qty that can ship (`caps` by Sales Order row) and drop empty rows."""
	if not caps:
		return
	for row in list(document.items):
		if row.so_detail in caps:
			row.qty = caps[row.so_detail]
	document.items = [row for row in document.items if flt(row.qty) > 0]
	renumber(document)


def linked_names(doctype: str, link_field: str, link_value: str, docstatus: int | list) -> list[str]:
	"""Names of the documents of `doctype` with a row whose `link_field` is `link_value`."""
	return frappe.get_all(
		f"{doctype} Item",
		filters={link_field: link_value, "docstatus": docstatus, "parenttype": doctype},
		pluck="parent",
		distinct=True,
	)


def linked_document(doctype: str, link_field: str, link_value: str, docstatus: int, name_only=False):
	"""The newest document of `doctype` with a row whose `link_field` is `link_value`."""
	names = linked_names(doctype, link_field, link_value, docstatus)
	if not names:
		return None
	name = frappe.get_all(
		doctype, filters={"name": ["in", names]}, order_by="creation desc", pluck="name", limit=1
	)[0]
	return name if name_only else frappe.get_doc(doctype, name)


def payment_of(sales_invoice_name: str):
	"""The newest submitted Payment Entry allocated to the invoice, or None."""
	names = frappe.get_all(
		"Payment Entry Reference",
		filters={"reference_doctype": SALES_INVOICE, "reference_name": sales_invoice_name, "docstatus": 1},
		pluck="parent",
		order_by="creation desc",
		limit=1,
	)
	return frappe.get_doc(PAYMENT_ENTRY, names[0]) if names else None


def draft_payment(reference_doctype: str, reference_name: str):
	names = frappe.get_all(
		"Payment Entry Reference",
		filters={
			"reference_doctype": reference_doctype,
			"reference_name": reference_name,
			"docstatus": 0,
			"parenttype": PAYMENT_ENTRY,
		},
		pluck="parent",
		distinct=True,
	)
	return frappe.get_doc(PAYMENT_ENTRY, names[0]) if names else None


def undelivered_stock_rows(rows) -> list:
	"""The order rows with qty still to deliver from our warehouses: stock items and product bundles
	(which deliver their packed items), not drop-shipped lines."""
	return [
		row
		for row in rows
		if flt(row.delivered_qty) < flt(row.qty)
		and not row.delivered_by_supplier
		and (is_stock_item(row.item_code) or is_product_bundle(row.item_code))
	]


def is_stock_item(item_code: str) -> bool:
	return bool(frappe.get_cached_value("Item", item_code, "is_stock_item"))


def is_product_bundle(item_code: str) -> bool:
	from erpnext.stock.doctype.packed_item.packed_item import is_product_bundle as erpnext_is_product_bundle

	return erpnext_is_product_bundle(item_code)


def email_invoice(sales_invoice) -> str:
	"""Queue the invoice to the customer's e-mail with its print attached (rendered when sent)."""
	recipient = sales_invoice.contact_email or frappe.db.get_value(
		"Customer", sales_invoice.customer, "email_id"
	)
	if not recipient:
		return _("Not e-mailed: the customer has no e-mail address.")
	frappe.sendmail(
		recipients=[recipient],
		subject=_("Invoice {0}").format(sales_invoice.name),
		message=_("Dear {0},<br><br>please find invoice {1} for {2} attached.").format(
			sales_invoice.customer_name,
			sales_invoice.name,
			frappe.format_value(
				sales_invoice.grand_total, {"fieldtype": "Currency", "options": sales_invoice.currency}
			),
		),
		reference_doctype=SALES_INVOICE,
		reference_name=sales_invoice.name,
		attachments=[{"print_format_attachment": 1, "doctype": SALES_INVOICE, "name": sales_invoice.name}],
	)
	return _("E-mailed to {0}.").format(recipient)
