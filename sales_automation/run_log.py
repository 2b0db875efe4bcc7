"""The run record: created, saved, progress written between full saves, failures recorded."""

import json

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import (
	add_to_date,
	cint,
	get_datetime,
	now,
	now_datetime,
	strip_html,
	time_diff_in_seconds,
)

from sales_automation import errors
from sales_automation.constants import (
	ACTIVE_STATUSES,
	CANCELLED,
	DELIVERY_NOTE,
	FAILED,
	PARTIALLY_COMPLETED,
	PAYMENT_ENTRY,
	PENDING,
	QUEUED,
	SALES_INVOICE,
	SAME_TRANSACTION,
)
from sales_automation.documents import linked_names, order_amounts, order_state
from sales_automation.exceptions import StepFailedError
from sales_automation.notifications import notify_failure, publish_run
from sales_automation.progress import what_is_left
from sales_automation.rules import RULE_ACTION_FIELDS, plan_steps
from sales_automation.settings import get_settings


def create_run(
	sales_order, rule, reason: str, trigger: str, execution_mode: str, steps=None, payment: dict | None = None
):
	"""Record a run of `rule` (saved or not) for the order; `steps` narrows the rule's steps."""
	# get_doc, not new_doc: every field is set here, and new_doc's look-ups of user defaults cost more
	run = frappe.get_doc(
		{
			"doctype": "Sales Automation Run",
			"sales_order": sales_order.name,
			"company": sales_order.company,
			"customer": sales_order.customer,
			# set here: insert() fills an empty Link from the user's defaults (their default currency)
			"currency": sales_order.currency,
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


def save_run(run: Document) -> None:
	"""Write the run in full (insert or save) and tell the desk. A run flagged `recorded_by_caller` is
	left unwritten: its caller records it only if it changed something (api.cycle.one_step)."""
	if run.flags.recorded_by_caller:
		return
	# The run log is the app's own bookkeeping, written for whoever submitted the order; the documents
	# of the cycle are created with the caller's own permissions. Its links are all to records the
	# engine has just read or made.
	run.flags.ignore_permissions = True
	run.flags.ignore_links = True
	if run.is_new() or not run.name:
		run.insert()
	else:
		run.save()
	publish_run(run)


# what documents.order_amounts reads of the order
TOTALS_FIELDS = ("name", "currency", "grand_total", "rounded_total", "advance_paid")


def order_for_totals(sales_order_name: str) -> frappe._dict:
	"""The order's fields its totals are computed from (documents.order_amounts)."""
	return frappe.db.get_value("Sales Order", sales_order_name, TOTALS_FIELDS, as_dict=True)


def end_run(run: Document, status: str, sales_order: frappe._dict | None = None) -> None:
	"""The one place a run ends (Completed, Partially Completed, Failed, Cancelled): its status, when it
	stopped working and how long it took, and the order's totals as they stand now (`sales_order`: the
	order as just read, with TOTALS_FIELDS). The caller then saves the run in full (save_run): that
	save, whose on_update Webhooks and Notifications on the run see, is the only one with an end status.

	A run cancelled after it had stopped working (its cycle undone later) keeps its finished_at and
	duration: they say how the run went, the Cancelled status and `modified` when it was undone."""
	if status != CANCELLED or run.status in ACTIVE_STATUSES:
		run.finished_at = now_datetime()
		run.duration = time_diff_in_seconds(run.finished_at, run.started_at) if run.started_at else None
	run.status = status
	if status != PARTIALLY_COMPLETED:
		run.waiting_for = run.waiting_since = run.wait_until = None  # nothing to wait for any more
	amounts = order_amounts(sales_order or order_for_totals(run.sales_order))
	run.currency = amounts["currency"]
	run.grand_total = amounts["grand_total"]
	run.invoiced_amount = amounts["invoiced"]
	run.paid_amount = amounts["paid"]
	run.outstanding_amount = amounts["outstanding"]
	if status != CANCELLED:
		mark_order_completed(run, sales_order)


def mark_order_completed(run: Document, sales_order: frappe._dict | None = None) -> None:
	"""Set `order_completed` (and the order's documents) on the one run of an order that ends finding it
	delivered, billed and paid (progress.what_is_left with no rule, as api.orders.order_is_done) while
	no earlier run of the order carries it: the order-completed event's Webhook fires on that save only.

	Called by end_run, under the order's lock (every path that ends a run holds it, and the lock starts
	a fresh snapshot, so a run that carried it and committed before is seen here). `sales_order`: the
	order as just read, used when it is a documents.order_state (with `lines`)."""
	if run.order_completed:
		return  # a run ending again (a retried one): its order completed once, with its first ending
	state = sales_order if sales_order and "lines" in sales_order else order_state(run.sales_order)
	if not state or what_is_left(state):
		return
	if frappe.db.exists("Sales Automation Run", {"sales_order": run.sales_order, "order_completed": 1}):
		return
	run.order_completed = 1
	run.order_documents = json.dumps(order_documents(run.sales_order))


def order_documents(sales_order_name: str) -> dict:
	"""The names of the order's submitted Delivery Notes, Sales Invoices and Payment Entries (those
	allocated to the order or to its invoices)."""
	delivery_notes = linked_names(DELIVERY_NOTE, "against_sales_order", sales_order_name, 1)
	sales_invoices = linked_names(SALES_INVOICE, "sales_order", sales_order_name, 1)
	payment_entries = frappe.get_all(
		"Payment Entry Reference",
		filters={
			"reference_doctype": ["in", ["Sales Order", SALES_INVOICE]],
			"reference_name": ["in", [sales_order_name, *sales_invoices]],
			"parenttype": PAYMENT_ENTRY,
			"docstatus": 1,
		},
		pluck="parent",
	)
	return {
		"delivery_notes": sorted(delivery_notes),
		"sales_invoices": sorted(sales_invoices),
		"payment_entries": sorted(set(payment_entries)),
	}


def run_totals(run: Document) -> dict:
	"""The order's totals as an ended run recorded them (end_run), in documents.order_totals' shape."""
	return {
		"currency": run.currency,
		"grand_total": run.grand_total,
		"paid": run.paid_amount,
		"outstanding": run.outstanding_amount,
	}


def record_progress(run: Document, step: Document) -> None:
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
	publish_run(run, step.step)


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


def record_failure(
	run: Document, step: Document | None, exc: Exception, settings: Document, retry: bool = True
) -> None:
	"""Record a failed step (or, with `step` None, a run refused before its first step), classed first
	(errors.classify): a transient error is retried with backoff until the attempts run out; a
	configuration, validation or permission error fails the run at once, saying what to fix."""
	error_class = errors.classify(exc)
	message = error_message(exc)
	if step:
		step.status = FAILED
		step.message = message
		step.error_class = error_class
		step.traceback = frappe.get_traceback(with_context=False)
		step.finished_at = now_datetime()
	run.error = f"{step.step}: {message}" if step else message
	# what the failed step put in the message log must not leak into the caller's response
	frappe.local.message_log = []
	if not retry:
		end_run(run, FAILED)
	elif not errors.is_retried(error_class):
		run.error = f"{run.error} {errors.what_to_fix(error_class)}"
		end_run(run, FAILED)
		notify_failure(run)
	elif cint(run.attempts) < cint(settings.max_attempts):
		backoff = cint(settings.retry_backoff_seconds) * 2 ** (cint(run.attempts) - 1)
		run.status = QUEUED
		run.next_retry_at = add_to_date(now_datetime(), seconds=backoff)
	else:
		end_run(run, FAILED)
		notify_failure(run)


def error_message(exc: Exception) -> str:
	args = getattr(exc, "args", None) or (exc,)
	# database errors carry (code, text)
	text = args[1] if len(args) > 1 and isinstance(args[0], int) else args[0]
	message = strip_html(str(text) or "").strip()
	return message or exc.__class__.__name__


def stuck_before():
	"""Runs and orders older than this, and not done, count as stuck (Settings: stuck_after_minutes)."""
	return add_to_date(now_datetime(), minutes=-cint(get_settings().stuck_after_minutes))
