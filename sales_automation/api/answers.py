"""What the endpoints answer: the cycle's result, a dry run's preview, a step's document, and errors
as the documented `error` object (never a server traceback for an answer the app gives on purpose)."""

from urllib.parse import quote

import frappe
from frappe.utils import cint

from sales_automation import engine
from sales_automation.constants import ACTIVE_STATUSES, DONE_STEP_STATUSES, FAILED
from sales_automation.exceptions import InvalidRequestError, SalesAutomationError
from sales_automation.run_log import order_for_totals, run_totals


def step_answer(document, created: bool, run: str | None = None) -> dict:
	return {
		"doctype": document.doctype,
		"name": document.name,
		"docstatus": document.docstatus,
		"status": document.get("status"),
		"created": created,
		"run": run,
		"replayed": False,
	}


def answer(outcome) -> dict:
	return cycle_answer(outcome.run, outcome.left_open)


def cycle_answer(run, left_open: list[dict], totals: dict | None = None) -> dict:
	"""The one call's answer: the run's documents, and the order's totals (`totals`, else as the run
	recorded them when it ended: end_run, in the same transaction for the one call; a run that has not
	ended recorded none, so the order's as they stand)."""
	if totals is None:
		ended = run.status not in ACTIVE_STATUSES
		totals = run_totals(run) if ended else live_totals(run)
	return {
		"status": run.status,
		"sales_order": run.sales_order,
		"delivery_note": run.delivery_note,
		"sales_invoice": run.sales_invoice,
		"payment_entry": run.payment_entry,
		"run": run.name,
		"rule": run.rule,
		"match_reason": run.match_reason,
		"totals": totals,
		# what a Partially Completed run leaves, and why: [{"what": delivery|billing|payment, "why"}]
		"left_open": left_open,
		"replayed": False,
	}


def live_totals(run) -> dict:
	"""The order's totals as they stand now; as the run recorded them when the order is gone (deleted
	while its runs are kept)."""
	order = order_for_totals(run.sales_order)
	return engine.order_totals(order) if order else run_totals(run)


def accepted(run) -> dict:
	"""The asynchronous call's 202: the queued run and where to follow it."""
	return {
		"status": run.status,
		"sales_order": run.sales_order,
		"run": run.name,
		"rule": run.rule,
		"match_reason": run.match_reason,
		"status_url": f"/api/method/sales_automation.api.get_run?run={quote(run.name)}",
		"replayed": False,
	}


def run_answer(run) -> dict:
	"""A run as get_run shows it: the one call's answer, with the step under way and every step's
	status; a Failed run's error as the `error` object of a refused call. Its totals are the order's as
	they stand now, whatever the run's status (a run waiting for a retry has recorded none, and an
	ended run's may have moved on since)."""
	left_open = [
		dict(zip(("what", "why"), line.split(": ", 1), strict=False))
		for line in (run.left_open or "").splitlines()
		if line
	]
	under_way = next((row for row in run.steps if row.status not in DONE_STEP_STATUSES), None)
	failed = next((row for row in run.steps if row.status == FAILED), None)
	return {
		**cycle_answer(run, left_open, live_totals(run)),
		"step": frappe.scrub(under_way.step) if under_way and run.status in ACTIVE_STATUSES else None,
		"steps": [
			{
				"step": frappe.scrub(row.step),
				"status": row.status,
				"document": row.reference_name,
				"message": row.message,
				# a side effect that could not be done (an e-mail), the documents standing
				"warning": row.get("warning"),
			}
			for row in run.steps
		],
		"attempts": run.attempts,
		"next_retry_at": run.next_retry_at,
		"order_completed": bool(run.get("order_completed")),
		# what a Partially Completed run's order waits for; it continues by itself when that arrives
		"waiting_for": run.get("waiting_for"),
		"waiting_since": run.get("waiting_since"),
		"continuations": cint(run.get("continuations")),
		"error": {
			"type": "StepFailedError" if failed else "InvalidStateError",
			"message": run.error,
			"step": frappe.scrub(failed.step) if failed else None,
			# errors.classify: Transient, Stock Shortage, Configuration, Validation, Permission, ...
			"error_class": failed.get("error_class") if failed else None,
		}
		if run.status == FAILED
		else None,
	}


def preview(run, rule, reason: str) -> dict:
	"""What a dry run would create: documents with items, taxes, totals and accounts, ledgers, errors."""
	documents = []
	vouchers = []
	for row in run.steps:
		if not row.reference_name:
			continue
		document = frappe.get_doc(row.reference_doctype, row.reference_name)
		vouchers.append(document.name)
		documents.append(describe(document))
	gl = frappe.get_all(
		"GL Entry",
		filters={"voucher_no": ["in", vouchers or [""]], "is_cancelled": 0},
		fields=["voucher_type", "voucher_no", "account", "debit", "credit"],
		order_by="creation asc",
	)
	stock = frappe.get_all(
		"Stock Ledger Entry",
		filters={"voucher_no": ["in", vouchers or [""]], "is_cancelled": 0},
		fields=[
			"voucher_type",
			"voucher_no",
			"item_code",
			"warehouse",
			"actual_qty",
			"qty_after_transaction",
		],
		order_by="creation asc",
	)
	errors = [
		{"step": frappe.scrub(row.step), "message": row.message} for row in run.steps if row.status == FAILED
	]
	return {
		"status": "dry_run",
		"would_succeed": not errors,
		"rule": rule.name,
		"match_reason": reason,
		"sales_order": describe(frappe.get_doc("Sales Order", run.sales_order)),
		"steps": [
			{"step": frappe.scrub(row.step), "status": row.status, "message": row.message}
			for row in run.steps
		],
		"documents": documents,
		"gl_entries": gl,
		"stock_ledger_entries": stock,
		"errors": errors,
		"replayed": False,
	}


def describe(document) -> dict:
	description = {
		"doctype": document.doctype,
		"name": document.name,
		"docstatus": document.docstatus,
		"currency": document.get("currency") or document.get("paid_to_account_currency"),
	}
	if document.doctype == "Payment Entry":
		description.update(
			{
				"paid_from": document.paid_from,
				"paid_to": document.paid_to,
				"paid_amount": document.paid_amount,
				"received_amount": document.received_amount,
				"mode_of_payment": document.mode_of_payment,
				"reference_no": document.reference_no,
				"references": [
					{
						"reference_doctype": row.reference_doctype,
						"reference_name": row.reference_name,
						"allocated_amount": row.allocated_amount,
					}
					for row in document.references
				],
			}
		)
		return description
	description.update(
		{
			"items": [
				{
					"item_code": row.item_code,
					"qty": row.qty,
					"rate": row.rate,
					"amount": row.amount,
					"warehouse": row.get("warehouse"),
					"income_account": row.get("income_account"),
				}
				for row in document.items
			],
			"taxes": [
				{"account_head": row.account_head, "rate": row.rate, "tax_amount": row.tax_amount}
				for row in document.get("taxes") or []
			],
			"net_total": document.net_total,
			"total_taxes_and_charges": document.total_taxes_and_charges,
			"grand_total": document.grand_total,
			"rounded_total": document.get("rounded_total"),
			"debit_to": document.get("debit_to"),
		}
	)
	return description


def as_api_error(exc: Exception) -> Exception:
	"""Give the caller a JSON error naming the step, the message and the field where known.

	`type` is the app's own class of the refusal (docs/openapi.yaml, Error), `cause` the class of what
	raised it underneath (ERPNext's or Frappe's). A validation error of ERPNext or Frappe (417) is a
	422: the request cannot be done as sent; a permission error is a 403 wherever it was raised."""
	cause = getattr(exc, "cause", None) or exc
	if isinstance(cause, frappe.PermissionError):
		answered = cause
	else:
		answered = exc
	error_type = type_of(answered)
	error = {
		"type": error_type,
		"message": engine.error_message(exc),
		"step": getattr(exc, "step", None),
		"field": getattr(exc, "field", None) or mandatory_field(cause),
		"cause": cause.__class__.__name__ if cause.__class__.__name__ != error_type else None,
	}
	frappe.local.response["error"] = error
	if getattr(answered, "http_status_code", 500) == 417:
		answered.http_status_code = 422  # the instance's: Frappe answers with it
	if getattr(answered, "http_status_code", 500) < 500:
		# an answer, not a crash: no traceback of the server's code paths in it
		frappe.local.flags.disable_traceback = True
	return answered


def type_of(exc: Exception) -> str:
	"""The app's class of a refusal: its own exceptions by name, Frappe's permission and not-found
	errors as they are, any other validation error of ERPNext or Frappe as InvalidRequestError."""
	if isinstance(exc, SalesAutomationError | frappe.PermissionError | frappe.DoesNotExistError):
		return exc.__class__.__name__
	if isinstance(exc, frappe.ValidationError):
		return InvalidRequestError.__name__
	return exc.__class__.__name__


def mandatory_field(exc: Exception) -> str | None:
	if isinstance(exc, frappe.MandatoryError):
		# frappe says "[Delivery Note, new-delivery-note-1]: items, posting_date"
		return str(exc).rsplit("]: ", 1)[-1].split(",")[0].strip() or None
	return None
