"""What every endpoint's call goes through: the caller signed in, the idempotency key claimed or its
answer replayed, the work done whole or not at all (retried on a deadlock or lock wait timeout), the
error answered as the documented `error` object."""

import random
import time

import frappe
from frappe import _
from frappe.utils import cint

from sales_automation.api import idempotency
from sales_automation.api.answers import as_api_error
from sales_automation.api.validation import invalid
from sales_automation.errors import is_transient
from sales_automation.exceptions import DatabaseBusyError


def handle(endpoint: str, request: dict, idempotency_key: str | None, work) -> dict:
	"""Idempotency, atomicity and error shape shared by every endpoint."""
	if frappe.session.user == "Guest":
		frappe.throw(_("Log in or use an API token"), frappe.PermissionError)
	key = idempotency_key
	if key is None and getattr(frappe.local, "request", None):
		key = frappe.get_request_header("Idempotency-Key")
	if key is not None and not (isinstance(key, str) and 0 < len(key) <= 200):
		invalid("idempotency_key", _("must be a string of 1 to 200 characters"))
	dry_run = cint(request.get("dry_run"))
	claim = None
	if key and not dry_run:
		claim, stored = idempotency.claim(endpoint, key, request)
		if stored is not None:
			return {**stored, "replayed": True}
	try:
		result = retrying_transient_errors(work)
	except Exception as exc:
		frappe.db.rollback()
		if claim:
			idempotency.release(claim)
		raise as_api_error(exc)
	if dry_run:
		frappe.db.rollback()
	elif claim:
		idempotency.complete(claim, result)
	return result


# A deadlock or lock-wait timeout is MariaDB's "try again": the call is atomic, so it is retried whole.
TRANSIENT_ATTEMPTS = 3
RETRY_AFTER_SECONDS = 2


def retrying_transient_errors(work):
	for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
		try:
			return work()
		except Exception as exc:
			if not is_transient(exc):
				raise
			frappe.db.rollback()  # undoes the attempt and frees the order's lock
			frappe.local.message_log = []
			if attempt == TRANSIENT_ATTEMPTS:
				frappe.local.flags.sales_automation_retry_after = RETRY_AFTER_SECONDS
				raise DatabaseBusyError(
					_(
						"The database is busy (deadlock or lock wait timeout); nothing was saved. Retry in {0} s"
					).format(RETRY_AFTER_SECONDS)
				) from exc
			time.sleep(random.uniform(0.05, 0.25) * attempt)  # jitter: the other party goes first
