"""The sales cycle engine: the one implementation of what moves a submitted Sales Order to delivered,
invoiced and paid. The Sales Order hook, the endpoints, retry/resume, bulk runs and background jobs
all come here: start a run, resume it, execute its steps (steps.py) under the order's lock (locks.py).

Where things live (README: Architecture): rules.py picks the rule, run_log.py keeps the run record,
steps.py makes the documents, documents.py reads the order and maps ERPNext's documents,
background.py queues, claims and retries, cancel.py undoes a cycle, notifications.py tells people,
progress.py checks what an order claims against its documents, settings.py reads the settings,
cached_values.py fetches the Redis-cached values a cycle reads in one round trip.

Every step re-reads the order and what already exists before it acts, so running a step twice never
makes a second document: that is what makes retry and resume safe.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, now_datetime

from sales_automation import cached_values, gate, locks
from sales_automation.background import (
	claim_run,
	drop_queued_job,
	enqueue_run,
	order_job_id,
	process_run,
	retry_due_runs,
)
from sales_automation.cancel import cancel_cycle, cancel_runs_of_order, cycle_documents
from sales_automation.constants import (
	ACTIVE_STATUSES,
	BACKGROUND,
	CANCELLED,
	COMPLETED,
	DELIVERY_NOTE,
	DONE_STEP_STATUSES,
	FAILED,
	INVOICE_FROM_DELIVERY_NOTE,
	INVOICE_FROM_ORDER,
	INVOICE_UPDATING_STOCK,
	PARTIALLY_COMPLETED,
	PAY_AGAINST_INVOICE,
	PAY_IN_ADVANCE,
	PAYMENT_ENTRY,
	PENDING,
	RUNNING,
	SALES_INVOICE,
	SAME_TRANSACTION,
	SUBMIT,
)
from sales_automation.continuation import note_waiting
from sales_automation.documents import (
	linked_document,
	linked_names,
	order_state,
	order_totals,
	payment_of,
	undelivered_stock_rows,
)
from sales_automation.exceptions import DatabaseBusyError, InvalidStateError, RunNotResumableError
from sales_automation.progress import check_recorded_progress
from sales_automation.rules import default_reason, find_rule, plan_steps, rule_of
from sales_automation.run_log import (
	create_run,
	end_run,
	error_message,
	raise_step_failure,
	record_failure,
	record_progress,
	save_run,
	stuck_before,
)
from sales_automation.settings import get_settings, order_lock_wait, prefetch_cycle_settings
from sales_automation.steps import Cycle

if TYPE_CHECKING:
	from erpnext.accounts.doctype.payment_entry.payment_entry import PaymentEntry
	from erpnext.accounts.doctype.sales_invoice.sales_invoice import SalesInvoice
	from erpnext.selling.doctype.sales_order.sales_order import SalesOrder
	from erpnext.stock.doctype.delivery_note.delivery_note import DeliveryNote

STEP_SAVEPOINT = "sales_automation_step"


class Mode(Enum):
	"""How execute() runs a run's steps."""

	# one transaction with the caller's (the submit hook, the endpoints): a failing step raises
	# StepFailedError naming the step, so everything the caller did, the order's submit included, goes
	ATOMIC = "atomic"
	# each step in a savepoint: a failure rolls back that step only, is recorded on the run and is
	# retried with backoff until the attempts run out (resume, retry)
	WITH_RETRIES = "with retries"
	# as WITH_RETRIES, committing after every step (background jobs): the job holds ERPNext's
	# naming-series and stock rows for one document, not the whole cycle, so parallel workers do not
	# queue behind each other, and a crash keeps the steps already done
	IN_BACKGROUND = "in background"
	# as WITH_RETRIES, but a failure is final (the dry run, which its caller rolls back whole)
	WITHOUT_RETRIES = "without retries"


@dataclass
class Outcome:
	"""What an execution made: the run, the documents it created, what it left open, and the order as
	it stood after the last step (documents.order_state; None when the steps did not all run)."""

	run: Document
	created: set[str] = field(default_factory=set)
	left_open: list[dict] = field(default_factory=list)
	order: frappe._dict | None = None


def start_for_order(
	sales_order: "SalesOrder",
	trigger: str = SUBMIT,
	rule_name: str | None = None,
	execution_mode=None,
	lock_wait: float = 0,
	fallback_rule: Document | None = None,
):
	"""Match a rule (or use `rule_name`), record a run and execute it now or queue it after commit.

	A run executed now holds the order's lock until the transaction ends (`lock_wait` seconds to get
	it; 0 in the submit hook, whose transaction already holds the order's row: waiting there could
	wait on a caller that waits on that row). A queued run's job takes the lock itself.
	`fallback_rule` (an unsaved rule: api.orders.default_rule) applies when no rule matches, as it does
	for the one call; without it such an order gets no run.
	Returns the run, or None when automation is off or no rule matches (and no fallback is given)."""
	if not cint(get_settings().enabled) or sales_order.get("is_internal_customer"):
		return None  # off, or an order the cycle does not automate (gate.out_of_scope_reason)
	if rule_name:
		reason = _("Rule {0} was chosen explicitly").format(rule_name)
	else:
		rule_name, reason = find_rule(sales_order)
		if not rule_name and not fallback_rule:
			return None
	if rule_name:
		rule = frappe.get_cached_doc("Sales Automation Rule", rule_name)
	else:
		rule = fallback_rule
		reason = default_reason()
	mode = execution_mode or rule.execution_mode or get_settings().default_execution_mode or BACKGROUND
	run = create_run(sales_order, rule, reason, trigger, mode)
	if mode == SAME_TRANSACTION:
		locks.take(sales_order.name, timeout=lock_wait)
		execute(run, Mode.ATOMIC)
	else:
		enqueue_run(run)
	return run


def resume(run: Document) -> Document:
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
	refused = gate.refusal(gate.order_facts(run.sales_order))
	if refused:
		frappe.throw(
			_("Sales Order {0}: {1}; its run cannot be resumed.").format(run.sales_order, refused[1]),
			exc=RunNotResumableError,
			title=_("Cannot Resume"),
		)
	for step in run.steps:
		if step.status == FAILED:
			step.status = PENDING
	run.attempts = 0 if run.status == FAILED else run.attempts
	execute(run, Mode.WITH_RETRIES)
	return run


def execute(
	run: Document,
	mode: Mode,
	rule: Document | None = None,
	order_is_new: bool = False,
	permissions_checked: bool = False,
) -> Outcome:
	"""Run every step of `run` not yet done, in order, the `mode`'s way.

	order_is_new: the order was made in this same call (checked as it was made; nothing else can link
	to it yet). permissions_checked: the caller has checked create and submit for every step."""
	raise_errors, retry = mode == Mode.ATOMIC, mode != Mode.WITHOUT_RETRIES
	outcome = Outcome(run)
	cached_values.prefetch()
	settings = get_settings()
	prefetch_cycle_settings()
	rule = rule or rule_of(run)
	run.status = RUNNING
	run.attempts = cint(run.attempts) + 1
	run.started_at = run.started_at or now_datetime()
	run.next_retry_at = None
	run.error = None
	try:
		# an order made in this same call was checked as it was made, and has no documents yet
		if not order_is_new:
			check_in_scope(run.sales_order)
			check_recorded_progress(run.sales_order)
	except InvalidStateError as exc:
		if raise_errors:
			raise
		# retrying cannot help: the order itself must be put right
		record_failure(run, None, exc, settings, retry=False)
		save_run(run)
		return outcome
	cycle = Cycle(run, rule, order_is_new=order_is_new, permissions_checked=permissions_checked)
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
			rollback_step(exc)
			record_failure(run, step, exc, settings, retry)
			break
		if mode == Mode.IN_BACKGROUND:
			record_progress(run, step)
			frappe.db.commit()  # nosemgrep - a background step is kept even if the worker dies later
	else:
		outcome.order = cycle.order()
		outcome.left_open = cycle.left_open(outcome.order)
		run.left_open = "\n".join(f"{item['what']}: {item['why']}" for item in outcome.left_open) or None
		end_run(run, PARTIALLY_COMPLETED if outcome.left_open else COMPLETED, outcome.order)
		note_waiting(run, rule, outcome.order, outcome.left_open)
	outcome.created = cycle.created
	save_run(run)
	cached_values.remember()
	return outcome


# MariaDB's "SAVEPOINT ... does not exist"
MISSING_SAVEPOINT = 1305


def rollback_step(exc: Exception) -> None:
	"""Roll the failed step back to its savepoint. A deadlock makes MariaDB roll the whole transaction
	back, the savepoint with it: then nothing of this attempt is left to record on the run, which stays
	as it was committed last (a resume or the scheduler's next tick runs it again), and the caller gets
	the passing error as such (503, DatabaseBusyError) rather than the missing savepoint."""
	try:
		frappe.db.rollback(save_point=STEP_SAVEPOINT)
	except Exception as rollback_error:
		if getattr(rollback_error, "args", (None,))[0] != MISSING_SAVEPOINT:
			raise
		frappe.db.rollback()
		frappe.local.message_log = []
		raise DatabaseBusyError(
			_("The database rolled this attempt back ({0}); nothing was saved. Try again.").format(
				error_message(exc)
			)
		) from exc


def check_in_scope(sales_order_name: str) -> None:
	"""Refuse, naming the field, an order the cycle does not automate."""
	if frappe.db.get_value("Sales Order", sales_order_name, "is_internal_customer"):
		error = InvalidStateError(gate.out_of_scope_reason(sales_order_name))
		error.field = "sales_order.customer"
		raise error
